package group

import (
	"testing"
	"time"
)

// When a push class changes pusher while a block is short of pieces, the
// pieces of that class the block lacks are pulled a round trip (to the
// slower of the two pushers) after the change, not a fetch period after
// the block began; other classes still wait for the fetch period.
func TestSwitchedPusherPullsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		switched bool
		chosen   bool          // the switch comes from selectParents
		after    time.Duration // since the switch (and the block's start)
		want     []int         // pieces asked for
	}{
		{"no switch", false, false, 80 * time.Millisecond, nil},
		{"before the round trip", true, false, 60 * time.Millisecond, nil},
		{"after the round trip", true, false, 80 * time.Millisecond, []int{3, 13}},
		{"a nearer pusher chosen", true, true, 80 * time.Millisecond, []int{3, 13}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runVirtual(t, func(t *testing.T) {
				blocks, x := publishedBlocks(t, 1)
				x.mu.Lock()
				defer x.mu.Unlock()
				s := x.st
				old, nu := fakeLink(x, 1), fakeLink(x, 2)
				defer removeFake(x, old, nu)
				old.halfRTT, nu.halfRTT = 20*time.Millisecond, 30*time.Millisecond
				h := blocks[0]
				seq := h.sm.Manifest.Block
				delete(s.blocks, seq)
				now := time.Now()
				s.handleManifest(nu, h.sm, now)
				// Pieces of every class but 3 came; nu holds the block.
				for i, p := range h.pieces {
					if i%s.P != 3 && i < 12 {
						s.handlePiece(old, p, true, now)
					}
				}
				nu.learnAll(seq)
				switch {
				case tc.chosen:
					// Only class 3 has candidates: old, its pusher,
					// and nu, much nearer the publisher.
					for _, l := range x.links {
						for c := range l.refused {
							if c != 3 || (l != old && l != nu) {
								l.refused[c] = now.Add(time.Hour)
							}
						}
					}
					for c := range s.parents {
						s.parents[c] = nil
					}
					s.parents[3] = old
					old.depth[3], old.delay[3] = 1, 300*time.Millisecond
					nu.depth[3], nu.delay[3] = 1, 20*time.Millisecond
					s.selectParents(now)
					acceptTries(s, now)
					if s.parents[3] != nu {
						t.Fatal("class 3 did not move to the nearer pusher")
					}
				case tc.switched:
					s.switchedPusher(3, old, nu, now)
				}
				s.pull(now.Add(tc.after))
				var got []int
				for {
					m, ok := nu.q.pop()
					if !ok {
						break
					}
					c, err := decodeControl(m.b)
					if m.data || err != nil || c.Type != ctlPull || c.Block != seq {
						continue
					}
					for i := range h.pieces {
						if bitSet(c.Want, i) {
							got = append(got, i)
						}
					}
				}
				if len(got) != len(tc.want) || (len(got) > 0 && (got[0] != tc.want[0] || got[1] != tc.want[1])) {
					t.Errorf("pulled %v, want %v", got, tc.want)
				}
			})
		})
	}
}
