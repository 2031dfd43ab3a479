package group

import (
	"testing"
	"time"
)

// A pusher whose pushes come a quarter of the window late is shunned in
// every class at once, for as long as a withholder; one merely later
// than the others loses its latest class; one on time keeps its.
func TestHopelessPusherShunned(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		_, x := publishedBlocks(t, 1)
		x.mu.Lock()
		defer x.mu.Unlock()
		s := x.st
		now := time.Now()
		holdOff(now, others(x)) // only the fakes push
		bad, slow, good := fakeLink(x, 1), fakeLink(x, 2), fakeLink(x, 3)
		defer removeFake(x, bad, slow, good)
		for _, l := range []*link{bad, slow, good} {
			for k := range l.depth {
				l.depth[k], l.delay[k], l.newest[k] = 1, 20*time.Millisecond, 0
			}
			l.halfRTT = 10 * time.Millisecond
		}
		late := map[*link]time.Duration{bad: s.g.cfg.WindowDuration/4 + time.Millisecond, slow: 400 * time.Millisecond, good: 40 * time.Millisecond}
		for k := range s.parents {
			p := []*link{bad, bad, bad, slow, good, good, good, good, good, good}[k%10]
			s.parents[k] = p
			p.late[k] = late[p]
		}
		// It is also being asked to take class 4 from the good one.
		s.trying[4], s.tryingAt[4], s.tryingWhy[4] = bad, now, whyDeeper
		s.selectParents(now)
		if s.trying[4] != nil {
			t.Error("the hopeless pusher is still asked to take a class")
		}
		for k, p := range s.parents {
			if p == bad {
				t.Errorf("class %d still pushed by the hopeless pusher", k)
			}
		}
		for k := range s.parents {
			if !bad.refused[k].After(now.Add(10 * s.g.cfg.AvailabilityUpdatePeriod)) {
				t.Errorf("class %d refused to the hopeless pusher only for %v", k, bad.refused[k].Sub(now))
			}
		}
		if s.parents[3] == slow {
			t.Error("the slower pusher kept its class")
		}
		for k := 4; k < s.P; k++ {
			if s.parents[k] != good {
				t.Errorf("class %d moved from the pusher on time to %v", k, name(s.parents[k]))
			}
		}
	})
}
