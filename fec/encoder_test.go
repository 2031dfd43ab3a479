package fec

import (
	"testing"
	"time"
)

func TestEncoderStartAt(t *testing.T) {
	p := Params{K: 4, M: 2, FragmentSize: 8}
	e, err := NewEncoder(p)
	if err != nil {
		t.Fatal(err)
	}
	const first = 7 << 28
	if err := e.StartAt(first); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(0, 0)
	e.Write(now, make([]byte, 3*4*8)) // three full blocks
	for i := uint64(0); i < 3; i++ {
		b, ok := e.Next()
		if !ok {
			t.Fatalf("block %d missing", i)
		}
		if b.Seq != first+i || b.Offset != i*32 {
			t.Errorf("block %d: seq %d offset %d, want %d and %d", i, b.Seq, b.Offset, first+i, i*32)
		}
		for _, pc := range b.Pieces {
			if pc.Block != b.Seq {
				t.Errorf("piece of block %d says block %d", b.Seq, pc.Block)
			}
		}
	}
	if e.NextSeq() != first+3 {
		t.Errorf("NextSeq %d, want %d", e.NextSeq(), first+3)
	}
	if err := e.StartAt(0); err != ErrStarted {
		t.Errorf("StartAt after writing: %v, want ErrStarted", err)
	}
}
