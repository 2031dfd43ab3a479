package group

import (
	"bytes"
	"testing"
	"time"
)

// A forgotten block's slab serves a later block, zeroed (the rebuild
// relies on zero padding); at most maxSpareSlabs are kept.
func TestSlabsReusedAfterPrune(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		blocks, x := publishedBlocks(t, 4)
		x.mu.Lock()
		defer x.mu.Unlock()
		s := x.st
		from := fakeLink(x, 1)
		defer removeFake(x, from)
		now := time.Now()
		for _, b := range blocks {
			s.handleManifest(from, b.sm, now)
			for _, p := range b.pieces[:len(b.pieces)-2] { // two rebuilt
				s.handlePiece(from, p, true, now)
			}
		}
		for _, b := range blocks {
			got := s.blocks[b.sm.Manifest.Block]
			for i, p := range b.pieces {
				if got == nil || !bytes.Equal(got.pieces[i], p.Data) {
					t.Fatalf("block %d piece %d not held as sent", b.sm.Manifest.Block, i)
				}
			}
		}
		slabs := map[*byte]int{} // first byte of each block's slab: its length
		for _, b := range s.blocks {
			if b.slab != nil {
				slabs[&b.slab[0]] = len(b.slab)
			}
		}
		if len(slabs) < 3 {
			t.Fatalf("the receiver keeps %d blocks in slabs, want at least 3", len(slabs))
		}
		s.slabs = nil
		s.prune(now.Add(time.Hour))
		if len(s.slabs) != maxSpareSlabs {
			t.Fatalf("%d slabs kept after forgetting %d blocks, want %d", len(s.slabs), len(slabs), maxSpareSlabs)
		}
		for range maxSpareSlabs {
			var n int
			for _, n = range slabs {
				break
			}
			sl := s.newSlab(n)
			if _, ok := slabs[&sl[0]]; !ok {
				t.Fatal("a new block's slab is not a forgotten block's")
			}
			for i, c := range sl {
				if c != 0 {
					t.Fatalf("reused slab byte %d is %d, want zero", i, c)
				}
			}
		}
		if sl := s.newSlab(100); slabs[&sl[0]] != 0 {
			t.Fatal("a slab was handed out twice")
		}
	})
}
