package group

import (
	"testing"
	"time"

	"github.com/strata-net/strata/fec"
)

// A neighbour cannot make a member remember blocks without end: pieces of
// blocks out of range teach nothing, and the blocks its availability maps
// name far ahead of the window are forgotten at the next prune once there
// are more than maxLinkBlocks of them, while those the member tracks stay.
func TestLinkBlocksBounded(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		blocks, x := publishedBlocks(t, 1)
		x.mu.Lock()
		defer x.mu.Unlock()
		s := x.st
		q := fakeLink(x, 7)
		defer removeFake(x, q)
		now := time.Now()
		// The stream reaches this member through another neighbour.
		src := fakeLink(x, 6)
		defer removeFake(x, src)
		s.handleManifest(src, blocks[0].sm, now)
		for _, pc := range blocks[0].pieces {
			s.handlePiece(src, pc, true, now)
		}
		tracked := blocks[0].sm.Manifest.Block
		if s.blocks[tracked] == nil || !s.anchored {
			t.Fatalf("block %d not tracked (anchored %v)", tracked, s.anchored)
		}
		q.learn(tracked, 0) // as its pieces or maps would teach
		before := len(q.know)
		far := tracked + 1<<30
		for i := range 64 {
			p := blocks[0].pieces[0]
			p.Block = far + uint64(i)
			s.handlePiece(q, p, true, now)
		}
		if len(q.know) != before {
			t.Errorf("pieces of blocks out of range: %d blocks known, want %d", len(q.know), before)
		}
		full := make([]byte, fec.MaxShards/8)
		for j := range full {
			full[j] = 0xff
		}
		// Within the allowance of maps at once (40).
		for i := range 36 {
			s.handleControl(q, &control{Type: ctlAvail, Block: far + uint64(i)*1000, Full: 16, Maps: [][]byte{full}}, now)
		}
		if x.stats.FloodDropped > 0 || x.stats.MalformedDropped > 0 {
			t.Fatalf("maps dropped: %d floods, %d malformed", x.stats.FloodDropped, x.stats.MalformedDropped)
		}
		if len(q.know) <= maxLinkBlocks {
			t.Fatalf("the maps named %d blocks, want more than %d for the test", len(q.know), maxLinkBlocks)
		}
		s.prune(now)
		for seq := range q.know {
			if s.blocks[seq] == nil {
				t.Errorf("block %d kept in what the neighbour holds, though not tracked (%d kept)", seq, len(q.know))
				break
			}
		}
		if !q.knows(tracked, 0) {
			t.Errorf("a tracked block was forgotten")
		}
		if len(q.hasManifest) > len(s.blocks) {
			t.Errorf("%d blocks remembered as having their manifest at the neighbour, %d tracked", len(q.hasManifest), len(s.blocks))
		}
	})
}
