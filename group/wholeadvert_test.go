package group

import (
	"testing"
	"time"
)

// A started member that no piece of some blocks reached (no pusher yet:
// it just joined, or lost its pushers) pulls them when a neighbour
// advertises them whole. Only partly held blocks were learned of from
// advertisements, so a joiner that started at the live edge lost the
// block after its start in about one run in fifteen of TestLateStart:
// its neighbours had it whole by their next advertisement, before any
// push tree reached the joiner.
func TestWholeBlocksAdvertisedArePulled(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		blocks, x := publishedBlocks(t, 4)
		x.mu.Lock()
		defer x.mu.Unlock()
		s := x.st
		q := fakeLink(x, 1)
		defer removeFake(x, q)
		queued := func() map[uint64]bool {
			asked := make(map[uint64]bool)
			for {
				m, ok := q.q.pop()
				if !ok {
					return asked
				}
				if m.data {
					continue
				}
				c, err := decodeControl(m.b)
				if err != nil {
					t.Fatal(err)
				}
				if c.Type == ctlPull && c.Manifest {
					asked[c.Block] = true
				}
			}
		}
		now := time.Now()
		first := blocks[0].sm.Manifest.Block
		s.handleManifest(q, blocks[0].sm, now) // starts this member
		for _, p := range blocks[0].pieces {
			s.handlePiece(q, p, true, now)
		}
		if !s.anchored {
			t.Fatal("the first manifest did not start the member")
		}
		queued()
		// q holds all four blocks whole; nothing of blocks 1-3 came here.
		s.handleControl(q, &control{Type: ctlAvail, Block: first, Full: 4, Depth: make([]byte, s.P)}, now)
		s.pull(now.Add(x.cfg.FetchPeriod))
		asked := queued()
		for i := 1; i < 4; i++ {
			if seq := first + uint64(i); !asked[seq] {
				t.Errorf("block %d (advertised whole, nothing of it here) was not pulled; pulls: %v", i, asked)
			}
		}
		if asked[first] {
			t.Errorf("block 0, held whole, was pulled")
		}
	})
}
