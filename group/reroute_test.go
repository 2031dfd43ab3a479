package group

import (
	"slices"
	"testing"
	"time"
)

// A member chooses pushers as it reads the availability message that
// gave it a route, not at its next tick, and a member whose own hops
// changed advertises them at once: trees form in a hop's time per level.
func TestRouteTakenOnAdvert(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		_, x := publishedBlocks(t, 1)
		x.mu.Lock()
		defer x.mu.Unlock()
		s := x.st
		now := time.Now()
		holdOff(now, others(x)) // only p below competes
		p, q := fakeLink(x, 1), fakeLink(x, 2)
		defer removeFake(x, p, q)
		holdOff(now, []*link{q})
		for k := range s.parents {
			s.parents[k] = nil
		}
		s.dirty, s.extraAdvertised = false, 0
		p.halfRTT = 10 * time.Millisecond
		depth := make([]byte, s.P) // p is the publisher: depth 0 everywhere
		s.handleControl(p, &control{Type: ctlAvail, Source: true, Depth: depth}, now)
		for k, l := range s.parents {
			if l != p {
				t.Fatalf("class %d pushed by %v right after the advert, want p", k, name(l))
			}
		}
		subs := controls(t, p, ctlSubscribe)
		if len(subs) != 1 || len(subs[0].Classes) != s.P {
			t.Fatalf("p was sent %+v, want one subscription to every class", subs)
		}
		var adv *control
		for _, c := range controls(t, q, ctlAvail) {
			adv = c
		}
		if adv == nil || !slices.ContainsFunc(adv.Depth, func(d byte) bool { return d == 1 }) {
			t.Fatalf("q was not told the new hops at once: %+v", adv)
		}
	})
}
