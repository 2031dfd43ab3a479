package group

import (
	"testing"
	"time"
)

// A member serves pulls up to RelayPullShare of the bytes it received
// (at least sourcePullFloor blocks' worth), then refuses them and counts
// the refusals.
func TestRelayPullBudget(t *testing.T) {
	for _, tc := range []struct {
		name  string
		share float64 // 0: the default, 1
	}{
		{"default share (the floor is above it here)", 0},
		{"share 4", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runVirtual(t, func(t *testing.T) {
				blocks, x := publishedBlocks(t, 2)
				x.mu.Lock()
				defer x.mu.Unlock()
				if tc.share > 0 {
					x.cfg.RelayPullShare = tc.share
				}
				s := x.st
				from, to := fakeLink(x, 1), fakeLink(x, 2)
				defer removeFake(x, from, to)
				now := time.Now()
				for _, b := range blocks {
					s.handleManifest(from, b.sm, now)
					for _, pc := range b.pieces {
						s.handlePiece(from, pc, true, now)
					}
				}
				// What the fake links' queues hold is never counted as
				// received: count the replayed bytes as a neighbour's
				// messages would have been.
				for _, b := range blocks {
					for _, pc := range b.pieces {
						msg, _ := appendPieceMsg(nil, viaPush, pc)
						x.stats.Received.Push += uint64(len(msg))
					}
				}
				received := float64(x.stats.Received.Total())
				floor := float64(sourcePullFloor * x.cfg.K * x.cfg.FragmentSize)
				budget := max(x.cfg.RelayPullShare*received, floor)
				served := func() float64 { return float64(x.stats.Sent.Pull + s.pulledParity + s.pulledManifests) }
				var pullBytes float64
				for i := 0; i < 200 && x.stats.PullsRefused == 0; i++ {
					before := served()
					s.handlePull(to, &control{Type: ctlPull, Block: blocks[i%2].sm.Manifest.Block, Want: fullMap(), Manifest: true})
					pullBytes = max(pullBytes, served()-before)
				}
				if x.stats.PullsRefused == 0 {
					t.Fatalf("200 whole-block pulls served (%.0f bytes), budget %.0f", served(), budget)
				}
				// It serves up to the budget, overshooting by at most the
				// pull that crossed it.
				if got := served(); got < budget || got > budget+pullBytes {
					t.Errorf("served %.0f bytes of pulls, want %.0f to %.0f", got, budget, budget+pullBytes)
				}
				s.handlePull(to, &control{Type: ctlPull, Block: blocks[0].sm.Manifest.Block, Want: fullMap()})
				if x.stats.PullsRefused != 2 {
					t.Errorf("PullsRefused %d after two refusals", x.stats.PullsRefused)
				}
			})
		})
	}
}

// fullMap is the bitmap of every piece of a block.
func fullMap() []byte {
	m := make([]byte, 32)
	for i := range m {
		m[i] = 0xff
	}
	return m
}
