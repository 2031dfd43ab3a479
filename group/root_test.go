package group

import (
	"context"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// A member holding the publisher key is the push trees' root from Join,
// so the trees are there before the stream: within seconds of the
// bootstrap, with nothing published, every other member has a pusher and
// a route in every class, and the key holder takes at most
// SourcePushCopies subscribers per class. The stream's first block then
// reaches every member about as fast as the later ones (when the trees
// formed with the stream, its fragments took 2-3 times as long, pulled
// after the fetch period). A second holder of the key that joins while
// the stream runs stops being a root, and the stream goes on whole.
// 16 members, links of 10-30 ms, virtual clock.
func TestTreesBeforePublish(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "root", Multicast: true, PublisherKey: pub}
		link := memnet.Link{Delay: 10 * time.Millisecond, Jitter: 20 * time.Millisecond}
		m := newMesh(t, 16, link, spec, Config{}, priv)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		m.bootstrap(ctx)
		m.impairPairs(7)
		// Routes spread with the availability messages, which an idle
		// group sends unchanged only every eighth period.
		start := time.Now()
		for {
			missing := 0
			for _, mb := range m.members[1:] {
				mb.g.mu.Lock()
				for k := range mb.g.st.P {
					if mb.g.st.myDepth(k) >= noRoute {
						missing++
					}
				}
				mb.g.mu.Unlock()
			}
			if missing == 0 {
				t.Logf("every member has a route in every class %v after the bootstrap", time.Since(start).Round(time.Millisecond))
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("5 s after the bootstrap, with nothing published, %d classes of the members have no route", missing)
			}
			time.Sleep(50 * time.Millisecond)
		}

		copies := Config{}.withDefaults().SourcePushCopies
		for i, mb := range m.members {
			mb.g.mu.Lock()
			st := mb.g.st
			perClass := make([]int, st.P)
			for _, l := range mb.g.links {
				for k, on := range l.subs {
					if on {
						perClass[k]++
					}
				}
			}
			for k := range st.P {
				switch {
				case i == 0 && (!st.rooted || st.source || st.myDepth(k) != 0):
					t.Errorf("key holder: rooted %v, source %v, hops %d in class %d before Publish", st.rooted, st.source, st.myDepth(k), k)
				case i == 0 && (perClass[k] < 1 || perClass[k] > copies):
					t.Errorf("key holder: %d subscribers in class %d (want 1 to %d)", perClass[k], k, copies)
				case i > 0 && st.rooted:
					t.Errorf("member %d without the key is a root", i)
				case i > 0 && (st.parents[k] == nil || st.myDepth(k) >= noRoute):
					t.Errorf("member %d: no pusher or route in class %d before Publish (hops %d)", i, k, st.myDepth(k))
				}
			}
			mb.g.mu.Unlock()
		}

		data := streamData(3 * 125_000)
		m.subscribe(ctx, data)
		p, err := m.members[0].g.Publish()
		if err != nil {
			t.Fatal(err)
		}
		// A second instance of the publisher (the same key) joins
		// while the stream runs.
		again := m.add(spec, Config{}, priv)
		go func() {
			time.Sleep(500 * time.Millisecond)
			again.g.Bootstrap(ctx, m.members[3].h.Self(), m.members[7].h.Self())
		}()
		publish(t, ctx, p, data, 125_000, 1000)
		res := m.collect(data, 5*time.Second, len(m.members)-1)
		if res.missing > 0 {
			t.Errorf("a member misses %.3f%% of the stream", res.missing*100)
		}
		var firsts, later []time.Duration
		for i, mb := range m.members[1 : len(m.members)-1] {
			mb.mu.Lock()
			k := Config{}.withDefaults().K
			if len(mb.lats) < 2*k {
				t.Errorf("member %d: %d fragments output", i+1, len(mb.lats))
			} else {
				firsts = append(firsts, mb.lats[:k]...)
				later = append(later, mb.lats[k:]...)
			}
			mb.mu.Unlock()
		}
		slices.Sort(firsts)
		slices.Sort(later)
		if len(firsts) > 0 && len(later) > 0 {
			f, l := firsts[len(firsts)/2], later[len(later)/2]
			t.Logf("first block's fragments: median %v, max %v; later blocks' median %v, p99 %v", f, firsts[len(firsts)-1], l, later[len(later)*99/100])
			if f > l*3/2 || firsts[len(firsts)-1] > later[len(later)*99/100]*3/2 {
				t.Errorf("the first block came late: median %v against %v later, max %v against a p99 of %v", f, l, firsts[len(firsts)-1], later[len(later)*99/100])
			}
		}
		again.g.mu.Lock()
		rooted, anchored := again.g.st.rooted, again.g.st.anchored
		again.g.mu.Unlock()
		if rooted || !anchored {
			t.Errorf("second key holder: rooted %v, anchored %v (want a member of the running stream)", rooted, anchored)
		}
	})
}
