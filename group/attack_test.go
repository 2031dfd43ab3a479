package group

import (
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
)

// Three hostile members at once, each caught by its own check while the
// others' output stays whole: one takes on push classes and pushes
// nothing (withholds), one sends valid availability maps fifty times a
// second (floods), one writes random bytes on its control and data flows
// (garbage). Every honest neighbour of the flooder and of the garbage
// sender counts what it dropped and bans it; a member that takes a class
// from the withholder finds the pieces it advertises and never pushes
// and bans it (or first shuns it for its silence); the honest members
// output the whole
// stream byte for byte. 30 members, 1 Mbit/s for 20 s, links of 10-20 ms
// with 1 % loss, on the virtual clock; with the default Config, and with
// BackupPushers (and EarlyFragments) at every member.
func TestHostileMembersAreDisconnected(t *testing.T) {
	if raceEnabled {
		t.Skip("a long scenario: .ci/run runs it without -race")
	}
	// Members with backup pushers seldom lack a piece the withholder
	// owes (the backup brought it): what it never sent is owed all the
	// same if its map showed it within a round trip of the piece's
	// coming here (owe). With backups, ten runs at a89f09c: the withholder
	// banned by 4-20 members (60-163 pieces counted), no honest member
	// banned (before the round-trip rule: 1 in 6 runs banned one).
	runConfigs(t, hostileScenario)
}

// runConfigs runs a long scenario as subtests: with the default Config,
// and with BackupPushers (and EarlyFragments) at every member.
func runConfigs(t *testing.T, scenario func(*testing.T, Config)) {
	wall := time.Now()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"default", Config{}},
		{"backup pushers", Config{BackupPushers: true, EarlyFragments: true}},
	} {
		t.Run(tc.name, func(t *testing.T) { scenario(t, tc.cfg) })
	}
	t.Logf("%v of real time", time.Since(wall).Round(time.Millisecond))
}

func hostileScenario(t *testing.T, cfg Config) {
	const (
		members = 30
		rate    = 125_000
		size    = 20 * rate
	)
	const withholder, flooder, garbler = 3, 7, 11
	hostile := []int{withholder, flooder, garbler}
	synctest.Test(t, func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "hostile", Multicast: true, PublisherKey: pub}
		link := memnet.Link{Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01}
		m := newMesh(t, members, link, spec, cfg, priv)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		m.bootstrap(ctx)
		data := streamData(size)
		m.subscribe(ctx, data)
		m.impair()

		w := m.members[withholder].g
		w.mu.Lock()
		w.st.withhold = true
		w.mu.Unlock()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // the flooder: its real maps, 50 a second
			defer wg.Done()
			g := m.members[flooder].g
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				g.mu.Lock()
				g.st.advertise()
				g.mu.Unlock()
			}
		}()
		go func() { // the garbage sender: random bytes on every flow
			defer wg.Done()
			g := m.members[garbler].g
			r := rand.New(rand.NewPCG(5, 5))
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				g.mu.Lock()
				for _, l := range g.links {
					junk := make([]byte, 1+r.IntN(200))
					for i := range junk {
						junk[i] = byte(r.Uint32())
					}
					l.enqueue(outMsg{b: junk})
					l.enqueue(outMsg{data: true, lane: r.IntN(len(l.data)), b: junk, deadline: time.Now().Add(time.Second)})
				}
				g.mu.Unlock()
			}
		}()

		p, err := m.members[0].g.Publish()
		if err != nil {
			t.Fatal(err)
		}
		publish(t, ctx, p, data, rate, 1000)
		res := m.collect(data, 8*time.Second, hostile...)
		close(stop)
		wg.Wait()
		t.Logf("honest members: missing %.4f%%, %.3f bytes received per useful byte, p99 %v",
			res.missing*100, res.meanOverhead, res.poolP99.Round(time.Millisecond))
		if res.missing > 0.001 {
			t.Errorf("an honest member misses %.3f%% of the stream (limit 0.1%%)", res.missing*100)
		}

		ids := map[int]node.PeerID{}
		for _, i := range hostile {
			ids[i] = m.members[i].n.PeerID()
		}
		banned := map[int]int{}
		var floods, malformed, shunned, withheld, withheldPieces uint64
		stillParent := 0
		for i, mb := range m.members {
			if i == withholder || i == flooder || i == garbler {
				continue
			}
			st := mb.g.Stats()
			floods += st.FloodDropped
			malformed += st.MalformedDropped
			shunned += st.PushersShunned
			withheld += st.Withholding
			withheldPieces += st.WithheldPieces
			mb.g.mu.Lock()
			for _, h := range hostile {
				if mb.g.banned[ids[h]] != nil {
					banned[h]++
					if h == withholder && st.WithheldPieces == 0 {
						t.Errorf("member %d banned the withholder without counting a withheld piece", i)
					}
				}
				// A ban short of forgery expires (firstBan); a member
				// readmitted after one is judged afresh.
				if mb.g.links[ids[h]] != nil && (mb.g.isBanned(ids[h]) || h != withholder && mb.g.banned[ids[h]] == nil) {
					t.Errorf("member %d still has a link to hostile member %d", i, h)
				}
			}
			for _, par := range mb.g.st.parents {
				if par != nil && par.peer == ids[withholder] {
					stillParent++
					break
				}
			}
			// No honest member is banned by another.
			for j, other := range m.members {
				if j != i && j != withholder && j != flooder && j != garbler && mb.g.banned[other.n.PeerID()] != nil {
					t.Errorf("member %d banned honest member %d", i, j)
				}
			}
			mb.g.mu.Unlock()
		}
		t.Logf("banned by honest members: withholder %d, flooder %d, garbage sender %d; counted: %d maps dropped as floods, %d malformed messages, %d pushers shunned (%d for withholding), %d pieces withheld; %d members still take a class from the withholder",
			banned[withholder], banned[flooder], banned[garbler], floods, malformed, shunned, withheld, withheldPieces, stillParent)
		if banned[flooder] == 0 || floods == 0 {
			t.Errorf("the flooder was banned by %d members after %d dropped maps", banned[flooder], floods)
		}
		if banned[garbler] == 0 || malformed == 0 {
			t.Errorf("the garbage sender was banned by %d members after %d malformed messages", banned[garbler], malformed)
		}
		// Members that never took a class from the withholder have no
		// evidence against it; those that did ban it (4-15 of them a
		// run, 9-20 before pieces stopped being owed in the last quarter
		// of the window: how many chose it as a pusher varies).
		// Or, in a run where few members chose it, found silent (its
		// class taken from it) by some: in 10 runs of the default case
		// in one session it was banned by 0 members twice (found silent
		// by 2 and 1), by 2 once, by 10-17 in the others. After the
		// stream a member may choose it again (it has nothing to
		// withhold then), so who takes a class from it at the end is
		// not asked.
		if !(banned[withholder] >= 1 && withheldPieces > 0) && withheld == 0 {
			t.Errorf("the withholder was banned by %d members after %d pieces withheld (%d detected silent; %d members still take a class from it)",
				banned[withholder], withheldPieces, withheld, stillParent)
		}
	})
}

// TestBansExpire: a ban short of forgery refuses the member for firstBan,
// then the link comes back; a repeat offence is refused twice as long; a
// forger is refused for good. Three members on the virtual clock.
func TestBansExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMesh(t, 3, memnet.Link{Delay: 5 * time.Millisecond}, Specifier{Name: "bans"}, Config{}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		m.bootstrap(ctx)
		g, other := m.members[0].g, m.members[1].n.PeerID()
		linked := func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return g.links[other] != nil
		}
		waitLinked := func(within time.Duration) time.Duration {
			start := time.Now()
			for !linked() {
				if time.Since(start) > within {
					t.Fatalf("no link back %v after the ban", time.Since(start))
				}
				time.Sleep(100 * time.Millisecond)
			}
			return time.Since(start)
		}
		waitLinked(5 * time.Second)
		ban := func(forGood bool) {
			g.mu.Lock()
			defer g.mu.Unlock()
			if forGood {
				g.ban(g.links[other])
			} else {
				g.banFor(g.links[other], "test", false)
			}
		}
		for offence, want := range []time.Duration{firstBan, 2 * firstBan} {
			ban(false)
			time.Sleep(want - time.Second)
			if linked() {
				t.Fatalf("offence %d: linked again %v into a ban of %v", offence+1, want-time.Second, want)
			}
			back := waitLinked(5*time.Second) + want - time.Second
			t.Logf("offence %d: refused for %v, linked again after %v", offence+1, want, back.Round(100*time.Millisecond))
		}
		ban(true)
		time.Sleep(2 * maxBan)
		if linked() {
			t.Fatal("a forger was linked again")
		}
		if st := g.Stats(); st.Banned != 3 {
			t.Errorf("Stats.Banned %d, want 3", st.Banned)
		}
	})
}
