package group

import (
	"bytes"
	"testing"
	"time"
)

// An availability message leaves out the routes (Depth, Delay) its
// receiver already has from the sender's previous one on the same flow
// (SameRoutes), and carries them again when they change, when a delay
// moves by more than idleDelaySlack, and every routesRefresh messages.
// The receiver keeps the routes it had on SameRoutes.
func TestAvailLeavesOutSameRoutes(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		blocks, x := publishedBlocks(t, 1)
		x.mu.Lock()
		defer x.mu.Unlock()
		s := x.st
		now := time.Now()
		holdOff(now, others(x)) // only p below pushes to this member
		p, q := fakeLink(x, 1), fakeLink(x, 2)
		defer removeFake(x, p, q)
		holdOff(now, []*link{q})
		for k := range s.parents {
			s.parents[k] = nil
		}
		p.halfRTT = 20 * time.Millisecond
		s.handleControl(p, &control{Type: ctlAvail, Source: true, Depth: make([]byte, s.P)}, now)
		for k, l := range s.parents {
			if l != p {
				t.Fatalf("class %d pushed by %v, want p", k, name(l))
			}
		}
		// A block held: the stream is on (idle members advertise less).
		s.handleManifest(p, blocks[0].sm, now)
		for _, pc := range blocks[0].pieces {
			s.handlePiece(p, pc, true, now)
		}
		sent := controls(t, q, ctlAvail) // the new routes, at once
		if len(sent) == 0 {
			t.Fatal("q was not told the new routes")
		}
		// next advertises and returns the one availability message q got.
		next := func(what string) *control {
			t.Helper()
			s.advertise()
			got := controls(t, q, ctlAvail)
			if len(got) != 1 {
				t.Fatalf("%s: q got %d availability messages, want 1", what, len(got))
			}
			return got[0]
		}
		full := func(what string, c *control, delay byte) {
			t.Helper()
			if c.SameRoutes || len(c.Depth) != s.P || len(c.Delay) != s.P {
				t.Fatalf("%s: routes left out: %+v", what, c)
			}
			for k := range c.Depth {
				if c.Depth[k] != 1 || c.Delay[k] != delay {
					t.Fatalf("%s: class %d depth %d delay %d, want 1 and %d", what, k, c.Depth[k], c.Delay[k], delay)
				}
			}
		}
		same := func(what string, c *control) {
			t.Helper()
			if !c.SameRoutes || c.Depth != nil || c.Delay != nil {
				t.Fatalf("%s: want routes left out, got %+v", what, c)
			}
		}
		unit := byte(p.halfRTT / delayUnit)
		full("first", sent[len(sent)-1], unit)
		same("unchanged", next("unchanged"))
		p.halfRTT += idleDelaySlack * delayUnit // within the slack
		same("delay moved by the slack", next("slack"))
		p.halfRTT += 40 * time.Millisecond
		full("delay moved by 40 ms", next("moved"), byte(p.halfRTT/delayUnit))
		for i := 1; i < routesRefresh; i++ {
			same("unchanged again", next("again"))
		}
		full("refresh", next("refresh"), byte(p.halfRTT/delayUnit))
		s.parents[3] = nil // class 3 loses its route
		c := next("route lost")
		if c.SameRoutes || len(c.Depth) != s.P || c.Depth[3] != noRoute || c.Depth[2] != 1 {
			t.Fatalf("route lost: %+v", c)
		}

		// The receiving side: routes kept on SameRoutes, and a message
		// with neither routes nor SameRoutes means no route.
		depth := bytes.Repeat([]byte{2}, s.P)
		delay := bytes.Repeat([]byte{9}, s.P)
		s.handleControl(q, &control{Type: ctlAvail, Depth: depth, Delay: delay}, now)
		s.handleControl(q, &control{Type: ctlAvail, SameRoutes: true}, now)
		for k := range q.depth {
			if q.depth[k] != 2 || q.delay[k] != 9*delayUnit {
				t.Fatalf("class %d after SameRoutes: depth %d delay %v, want 2 and %v", k, q.depth[k], q.delay[k], 9*delayUnit)
			}
		}
		s.handleControl(q, &control{Type: ctlAvail}, now)
		for k := range q.depth {
			if q.depth[k] != noRoute || q.delay[k] != -1 {
				t.Fatalf("class %d after no routes: depth %d delay %v", k, q.depth[k], q.delay[k])
			}
		}
	})
}
