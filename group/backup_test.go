package group

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// With BackupPushers every member takes nearly every push class from a
// second neighbour as well, one that is neither its pusher nor the
// publisher nor below it in the class's tree; every piece then comes
// twice (the duplicates about match the pieces), and under 5 % loss
// every output is the stream byte for byte within the multicast targets
// (bytes per useful byte doubled), with EarlyFragments and without (where
// a block's pieces all come at its close, and pushers told the block is
// whole skip the rest: no honest pusher may be banned for it). What it
// does to latency and pulls is measured by the dissemination bench
// (docs/benchmarks.md §6). Virtual clock.
func TestBackupPushers(t *testing.T) {
	for _, early := range []bool{true, false} {
		t.Run(fmt.Sprintf("early fragments %v", early), func(t *testing.T) { backupScenario(t, early) })
	}
}

func backupScenario(t *testing.T, early bool) {
	runVirtual(t, func(t *testing.T) {
		sc := streamScenario{
			members:  12,
			link:     memnet.Link{Delay: 20 * time.Millisecond, Jitter: 40 * time.Millisecond, Loss: 0.05},
			perPair:  true,
			settle:   2 * time.Second,
			seed:     3,
			bytes:    1_000_000,
			rate:     125_000,
			drain:    6 * time.Second,
			deadline: 40 * time.Second,
			cfg:      Config{EarlyFragments: early, BackupPushers: true},
		}
		sc.check = func(t *testing.T, m *mesh, res result) {
			var pulls, pieces, dups uint64
			var backups int
			for i, mb := range m.members[1:] {
				st := mb.g.Stats()
				pulls += st.PullsSent
				pieces += st.Pieces
				dups += st.Duplicates
				backups += st.BackupClasses
				mb.g.mu.Lock()
				s := mb.g.st
				// Routes move between selections (a backup's own
				// route may have gone since): check a fresh one.
				s.selectBackups(time.Now(), map[*link]bool{})
				for c, b := range s.backup {
					switch {
					case b == nil:
					case b == s.parents[c]:
						t.Errorf("member %d: class %d's backup is its pusher", i+1, c)
					case b.depth[c] == 0:
						t.Errorf("member %d: class %d's backup is the publisher", i+1, c)
					case b.depth[c] > s.myDepth(c):
						t.Errorf("member %d: class %d's backup is at depth %d, below this member's %d", i+1, c, b.depth[c], s.myDepth(c))
					}
				}
				mb.g.mu.Unlock()
			}
			per := float64(backups) / float64(len(m.members)-1)
			t.Logf("pulls %d, pieces %d, duplicates %d, classes with a backup %.1f per member; p50 %v p99 %v",
				pulls, pieces, dups, per, res.poolP50, res.poolP99)
			if per < 7 {
				t.Errorf("%.1f classes of 10 have a backup pusher per member, want at least 7", per)
			}
			if dups < pieces*3/4 {
				t.Errorf("%d duplicates for %d pieces: pieces did not come twice", dups, pieces)
			}
		}
		sc.run(t)
	})
}

// selectBackups takes, per class, the nearest neighbour (in delay from
// the publisher) that is not the class's pusher, not the publisher and not
// below this member in the class's tree; one that refuses to be a backup
// may still be chosen as a pusher.
func TestSelectBackups(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		_, x := publishedBlocks(t, 1)
		x.mu.Lock()
		defer x.mu.Unlock()
		x.cfg.BackupPushers = true
		s := x.st
		now := time.Now()
		pusher, src, deep, far, near := fakeLink(x, 1), fakeLink(x, 2), fakeLink(x, 3), fakeLink(x, 4), fakeLink(x, 5)
		defer removeFake(x, pusher, src, deep, far, near)
		const c = 3
		for _, f := range []struct {
			l     *link
			depth int
			delay time.Duration
		}{
			{pusher, 1, 20 * time.Millisecond},
			{src, 0, 0},
			{deep, 3, time.Millisecond}, // nearest, but below us (we are at 2)
			{far, 1, 60 * time.Millisecond},
			{near, 2, 30 * time.Millisecond},
		} {
			f.l.depth[c], f.l.delay[c], f.l.halfRTT = f.depth, f.delay, 10*time.Millisecond
			f.l.newest[c] = 1 << 40
		}
		s.parents[c] = pusher
		if got := s.myDepth(c); got != 2 {
			t.Fatalf("depth %d, want 2", got)
		}
		changed := map[*link]bool{}
		s.selectBackups(now, changed)
		if s.backup[c] != near || !changed[near] {
			t.Fatalf("backup %v (changed %v), want the nearest eligible neighbour", s.backup[c], changed)
		}
		// near refuses to be a backup: far takes its place; near is not
		// refused as a pusher.
		for _, l := range []*link{pusher, src, deep, far, near} {
			controls(t, l, ctlSubscribe)
		}
		s.handleControl(near, &control{Type: ctlRefuse, Classes: []byte{c}, Modulus: uint8(s.P)}, now)
		if s.parents[c] == near {
			t.Fatalf("near refused as backup became the pusher")
		}
		if s.backup[c] != far {
			t.Errorf("after the refusal backup %v, want far", s.backup[c])
		}
		if !near.refused[c].IsZero() {
			t.Errorf("refused as a backup, near is refused as a pusher until %v", near.refused[c])
		}
		// far is told to push class c.
		subs := controls(t, far, ctlSubscribe)
		if len(subs) == 0 || !slices.Contains(subs[len(subs)-1].Classes, byte(c)) {
			t.Errorf("far was not asked to push class %d: %+v", c, subs)
		}
	})
}
