package group

import (
	"testing"
	"time"
)

// A pusher whose pushes keep a member current is not dropped as stale
// because its advertisement is older than another neighbour's: the
// pieces it pushes show what it holds. One that pushed nothing of the
// newest blocks is replaced.
func TestPusherNotStaleWhilePushing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pushed int  // blocks whose class-0 piece the pusher pushed
		keep   bool // the pusher keeps class 0
	}{
		{"pushes the newest", 8, true},
		{"pushed only the first", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runVirtual(t, func(t *testing.T) {
				blocks, x := publishedBlocks(t, 8)
				x.mu.Lock()
				defer x.mu.Unlock()
				s := x.st
				p, q := fakeLink(x, 1), fakeLink(x, 2)
				defer removeFake(x, p, q)
				now := time.Now()
				depth := make([]byte, s.P)
				for k := range depth {
					depth[k] = 2
				}
				for _, l := range []*link{p, q} {
					for k := range l.depth {
						l.depth[k] = 2
					}
				}
				for k := range s.parents {
					s.parents[k] = nil
				}
				s.parents[0] = p
				p.parentAt[0], p.pushedAt[0] = now, now
				for i, h := range blocks {
					s.handleManifest(q, h.sm, now)
					if i < tc.pushed {
						s.handlePiece(p, h.pieces[0], true, now)
					}
				}
				// q advertises every block whole; p has not advertised.
				s.handleControl(q, &control{Type: ctlAvail, Block: blocks[0].sm.Manifest.Block, Full: uint64(len(blocks)), Depth: depth}, now)
				s.selectParents(now)
				acceptTries(s, now)
				if kept := s.parents[0] == p; kept != tc.keep {
					t.Errorf("the pusher kept class 0: %v, want %v (why: stale %d)", kept, tc.keep, s.why[whyStale])
				}
			})
		})
	}
}
