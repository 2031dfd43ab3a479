package group

import (
	"testing"
	"time"
)

// Pushers are chosen by delay from the publisher, not by hops: a
// neighbour two hops out on fast links beats one a hop out on a slow one.
// A current pusher is kept unless another is nearer by switchMargin; a
// neighbour that advertises no delay is judged by its hops times the
// half round trip to it; a hop counts at least minHop.
func TestPushersChosenByDelay(t *testing.T) {
	const ms = time.Millisecond
	type cand struct {
		depth   int
		delay   time.Duration // advertised; -1: none
		halfRTT time.Duration
	}
	for _, tc := range []struct {
		name string
		a, b cand
		cur  int // 0: no pusher yet, 1: a, 2: b
		want int // 1: a, 2: b
	}{
		{"fewer hops but slower", cand{1, 100 * ms, 50 * ms}, cand{2, 40 * ms, 10 * ms}, 0, 2},
		{"fewer hops and faster", cand{1, 20 * ms, 10 * ms}, cand{2, 40 * ms, 10 * ms}, 0, 1},
		{"current kept within the margin", cand{1, 40 * ms, 20 * ms}, cand{2, 40 * ms, 10 * ms}, 1, 1},
		{"current replaced beyond the margin", cand{1, 80 * ms, 20 * ms}, cand{2, 40 * ms, 10 * ms}, 1, 2},
		{"no delay advertised: hops", cand{1, -1, 20 * ms}, cand{3, -1, 20 * ms}, 0, 1},
		{"no delay advertised: hops times the hop", cand{1, -1, 60 * ms}, cand{3, -1, 10 * ms}, 0, 2},
		{"no route", cand{3, 200 * ms, 50 * ms}, cand{noRoute, 10 * ms, 5 * ms}, 0, 1},
		{"a hop counts at least minHop", cand{1, 25 * ms, 1 * ms}, cand{1, 20 * ms, 8 * ms}, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runVirtual(t, func(t *testing.T) {
				_, x := publishedBlocks(t, 1)
				x.mu.Lock()
				defer x.mu.Unlock()
				s := x.st
				now := time.Now()
				holdOff(now, others(x), 0) // only the two below compete
				a, b := fakeLink(x, 1), fakeLink(x, 2)
				defer removeFake(x, a, b)
				for i, l := range []*link{a, b} {
					c := []cand{tc.a, tc.b}[i]
					l.depth[0], l.delay[0], l.halfRTT = c.depth, c.delay, c.halfRTT
				}
				s.parents[0] = []*link{nil, a, b}[tc.cur]
				s.selectParents(now)
				acceptTries(s, now)
				if want := []*link{nil, a, b}[tc.want]; s.parents[0] != want {
					t.Errorf("class 0 pushed by %v, want %v (a costs %v, b %v)", s.parents[0].peer[0], want.peer[0], cost(a, 0), cost(b, 0))
				}
			})
		})
	}
}

// A member advertises its delay from the publisher per class (its
// pusher's plus half the round trip to it, in delayUnit steps), none to
// that pusher itself.
func TestAdvertisedDelay(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		_, x := publishedBlocks(t, 1)
		x.mu.Lock()
		defer x.mu.Unlock()
		s := x.st
		p, q, r := fakeLink(x, 1), fakeLink(x, 2), fakeLink(x, 3)
		defer removeFake(x, p, q, r)
		for k := range s.parents {
			s.parents[k] = nil
		}
		p.depth[0], p.delay[0], p.halfRTT = 1, 40*time.Millisecond, 10*time.Millisecond
		q.depth[1], q.delay[1], q.halfRTT = 2, 20*time.Millisecond, 8*time.Millisecond
		s.parents[0], s.parents[1] = p, q
		latest := func(l *link) *control {
			t.Helper()
			var last *control
			for {
				m, ok := l.q.pop()
				if !ok {
					break
				}
				if c, err := decodeControl(m.b); err == nil && !m.data && c.Type == ctlAvail {
					last = c
				}
			}
			if last == nil {
				t.Fatal("no availability message")
			}
			return last
		}
		s.idleDepth = nil // not an idle repeat, whether or not x holds blocks
		s.advertise()
		toR, toP, toQ := latest(r), latest(p), latest(q)
		// 50 ms, and 30 ms (q's 8 ms hop counts as minHop, 10 ms), in
		// 4 ms steps, rounded.
		if toR.Delay[0] != 13 || toR.Delay[1] != 8 || toR.Delay[2] != noDelay {
			t.Errorf("delays advertised %v, want [13 8 %d ...]", toR.Delay, noDelay)
		}
		if toP.Delay[0] != noDelay || toP.Delay[1] != 8 || toQ.Delay[1] != noDelay || toQ.Delay[0] != 13 {
			t.Errorf("a pusher was offered a route through itself: to p %v, to q %v", toP.Delay, toQ.Delay)
		}
	})
}
