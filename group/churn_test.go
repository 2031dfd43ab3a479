package group

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// Churn during a stream: 30 % of the members leave while it runs (half
// of them close in an orderly way, half crash: their socket closes under
// them, so their neighbours only learn it from silence) and as many new
// nodes join and subscribe. The members present throughout output at
// least 99.9 % of the stream, byte for byte; every joiner outputs a
// contiguous suffix of the stream from within a window of subscribing to
// its end. 40 members, 1 Mbit/s for 20 s, links of 10-20 ms with 1 %
// loss, on the virtual clock; with the default Config, and with
// BackupPushers (and EarlyFragments) at every member.
func TestChurnDuringStream(t *testing.T) {
	if raceEnabled {
		t.Skip("a long scenario: .ci/run runs it without -race")
	}
	runConfigs(t, churnScenario)
}

func churnScenario(t *testing.T, cfg Config) {
	const (
		members = 40
		rate    = 125_000
		size    = 20 * rate
		churnAt = 4 * time.Second // first departure
		every   = 800 * time.Millisecond
	)
	leavers := members * 30 / 100
	synctest.Test(t, func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "churn", Multicast: true, PublisherKey: pub}
		link := memnet.Link{Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01}
		m := newMesh(t, members, link, spec, cfg, priv)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		m.bootstrap(ctx)
		data := streamData(size)
		m.subscribe(ctx, data)
		m.impair()
		p, err := m.members[0].g.Publish()
		if err != nil {
			t.Fatal(err)
		}

		r := rand.New(rand.NewPCG(11, 11))
		gone := r.Perm(members - 1)[:leavers] // never the publisher
		for i := range gone {
			gone[i]++
		}
		var (
			mu     sync.Mutex
			joined []int
			tails  []*tail
		)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(churnAt)
			for k, i := range gone {
				mb := m.members[i]
				if k%2 == 0 {
					wg.Add(1)
					go func() { // an orderly leave takes its time
						defer wg.Done()
						mb.g.Close()
						mb.h.Close()
						cctx, ccancel := context.WithTimeout(ctx, 200*time.Millisecond)
						mb.n.Close(cctx)
						ccancel()
					}()
				} else {
					mb.c.Close() // a crash: no goodbye
				}
				// A new node joins through a member still present, and
				// subscribes once it has.
				nb := m.add(spec, Config{BackupPushers: cfg.BackupPushers}, nil)
				mu.Lock()
				idx := len(m.members) - 1
				joined = append(joined, idx)
				tl := &tail{}
				tails = append(tails, tl)
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					t0 := time.Now()
					var err error
					for try := range 5 {
						seed := 1 + (i+try*7)%(members-1)
						if slices.Contains(gone[:k+1], seed) {
							continue
						}
						if err = nb.g.Bootstrap(ctx, m.members[seed].h.Self()); err == nil {
							break
						}
					}
					if err != nil {
						t.Errorf("joiner %d: bootstrap: %v", idx, err)
					}
					tl.boot = time.Since(t0)
					tl.follow(ctx, t, nb, m.members[0].g.Stats().BytesPublished)
				}()
				time.Sleep(every)
			}
		}()
		publish(t, ctx, p, data, rate, 1000)
		wg.Wait()

		skip := append(slices.Clone(gone), joined...)
		res := m.collect(data, 8*time.Second, skip...)
		t.Logf("%d left (%d crashed), %d joined; members present throughout: missing %.4f%%, %.3f bytes received per useful byte, p99 %v",
			len(gone), len(gone)/2, len(joined), res.missing*100, res.meanOverhead, res.poolP99.Round(time.Millisecond))
		if res.missing > 0.001 {
			t.Errorf("a member present throughout misses %.3f%% of the stream (limit 0.1%%)", res.missing*100)
		}
		if res.banned > 0 {
			// Nobody here misbehaves: leaving or crashing is no offence.
			t.Errorf("honest members banned %d neighbours", res.banned)
		}

		waitTails(tails, len(data), 8*time.Second)
		for k, tl := range tails {
			if tl.check(t, fmt.Sprintf("joiner %d", k), data, rate) {
				t.Logf("joiner %d: bootstrap %v, first record %v after subscribing, %d bytes behind the live edge", k, tl.boot.Round(time.Millisecond), tl.delay.Round(time.Millisecond), int64(tl.edge)-int64(tl.start))
			}
		}
	})
}
