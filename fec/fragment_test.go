package fec

import (
	"bytes"
	"slices"
	"testing"
)

// encodeFilled writes data in chunks of chunk bytes, taking Filled after
// every write as a publisher would, then closes the stream with Sync.
func encodeFilled(t *testing.T, p Params, data []byte, chunk int) ([]Block, []Fragment) {
	t.Helper()
	e, err := NewEncoder(p)
	if err != nil {
		t.Fatal(err)
	}
	var frags []Fragment
	for len(data) > 0 {
		n := min(chunk, len(data))
		e.Write(t0, data[:n])
		data = data[n:]
		for f, ok := e.Filled(); ok; f, ok = e.Filled() {
			frags = append(frags, f)
		}
	}
	e.Sync()
	if f, ok := e.Filled(); ok {
		t.Fatalf("Filled after Sync: %+v", f)
	}
	var blocks []Block
	for b, ok := e.Next(); ok; b, ok = e.Next() {
		blocks = append(blocks, b)
	}
	return blocks, frags
}

// TestFilled checks which fragments the encoder hands out before their
// block closes: every full fragment of a block still open after the write
// that filled it, as its block will have it, and nothing else.
func TestFilled(t *testing.T) {
	p := Params{K: 4, M: 2, FragmentSize: 10}
	tests := []struct {
		name  string
		size  int
		chunk int
		want  []int // block*10+index of the fragments Filled returns
	}{
		{"small writes", 95, 3, []int{0, 1, 2, 10, 11, 12, 20}},
		{"writes of a fragment", 40, 10, []int{0, 1, 2}},
		{"writes of a block", 80, 40, nil},
		{"a write closes a block and opens the next", 70, 25, []int{0, 1, 10, 11, 12}},
		{"short last block, all full", 60, 10, []int{0, 1, 2, 10, 11}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := streamBytes(tt.size, 3)
			blocks, frags := encodeFilled(t, p, in, tt.chunk)
			var got []int
			for _, f := range frags {
				got = append(got, int(f.Block)*10+f.Index)
				b := blocks[f.Block]
				pc := b.Pieces[f.Index]
				if f.Offset != b.Offset || !bytes.Equal(f.Data, pc.Data) || pc.ShardSize != p.FragmentSize+lengthPrefix {
					t.Errorf("fragment %d of block %d differs from its piece", f.Index, f.Block)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Filled gave %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFragmentsBeforeBlock feeds a decoder a block's early fragments
// (AddFragment) and then some of its pieces, and checks what is out after
// each step and that the whole stream comes out right.
func TestFragmentsBeforeBlock(t *testing.T) {
	p := Params{K: 4, M: 2, FragmentSize: 10}
	// Block 0 full (fragments 0-2 filled early), block 1 short: two full
	// fragments, both early, closed by Sync with nothing more.
	in := streamBytes(60, 7)
	blocks, frags := encodeFilled(t, p, in, 5)
	if len(blocks) != 2 || blocks[1].Pieces[0].K != 2 || len(frags) != 5 {
		t.Fatalf("setup: %d blocks, %d fragments", len(blocks), len(frags))
	}
	type step struct {
		frag  int // index into frags, or -1
		piece [2]int
	}
	f := func(i int) step { return step{frag: i} }
	pc := func(b, i int) step { return step{frag: -1, piece: [2]int{b, i}} }
	tests := []struct {
		name  string
		steps []step
		out   []int // bytes out after each step
	}{
		{"early then the closing fragment", []step{f(0), f(1), f(2), pc(0, 3), f(3), f(4), pc(1, 2)},
			[]int{10, 20, 30, 40, 50, 60, 60}},
		{"early then parity", []step{f(0), f(1), f(2), pc(0, 4), f(3), f(4), pc(1, 3)},
			[]int{10, 20, 30, 40, 50, 60, 60}},
		{"a hole filled by a piece", []step{f(1), f(2), pc(0, 0), pc(0, 3), f(4), f(3), pc(1, 1)},
			[]int{0, 0, 30, 40, 40, 60, 60}},
		{"parity before any data", []step{pc(0, 5), pc(0, 4), f(0), f(2), f(1), f(3), pc(1, 3), f(4)},
			[]int{0, 0, 10, 40, 40, 50, 60, 60}},
		{"duplicates", []step{f(0), f(0), pc(0, 0), f(1), pc(0, 1), f(2), pc(0, 5), f(3), f(4), pc(1, 0)},
			[]int{10, 10, 10, 20, 20, 30, 40, 50, 60, 60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDecoder(DecoderConfig{Params: p, Early: true})
			if err != nil {
				t.Fatal(err)
			}
			var outs []Output
			for i, s := range tt.steps {
				if s.frag >= 0 {
					err = d.AddFragment(frags[s.frag], t0)
				} else {
					err = d.Add(blocks[s.piece[0]].Pieces[s.piece[1]], t0)
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				outs = append(outs, drain(d)...)
				n := 0
				for _, o := range outs {
					n += o.Len()
				}
				if n != tt.out[i] {
					t.Fatalf("after step %d (%+v): %d bytes out, want %d", i, s, n, tt.out[i])
				}
			}
			if got, missing := checkOutputs(t, in, outs, blocks); got != len(in) || len(missing) != 0 {
				t.Fatalf("delivered %d of %d bytes, missing %v", got, len(in), missing)
			}
			if last := outs[len(outs)-1]; last.More || last.Block != 1 {
				t.Errorf("the last record (%+v) does not end block 1", last)
			}
		})
	}
}

// TestBadFragments checks that fragments that cannot be a block's are
// rejected and counted, and that one contradicting its block's pieces
// does not change it.
func TestBadFragments(t *testing.T) {
	p := Params{K: 4, M: 2, FragmentSize: 10}
	in := streamBytes(40, 9)
	blocks, frags := encodeFilled(t, p, in, 5)
	good := frags[1]
	tests := []struct {
		name  string
		first []Piece // pieces given before
		f     Fragment
	}{
		{"short data", nil, Fragment{Block: 0, Index: 1, Data: good.Data[:9]}},
		{"long data", nil, Fragment{Block: 0, Index: 1, Data: append(append([]byte(nil), good.Data...), 0)}},
		{"index past K", nil, Fragment{Block: 0, Index: 4, Data: good.Data}},
		{"negative index", nil, Fragment{Block: 0, Index: -1, Data: good.Data}},
		{"another offset", blocks[0].Pieces[:1], Fragment{Block: 0, Offset: 3, Index: 1, Data: good.Data}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDecoder(DecoderConfig{Params: p, Early: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, pc := range tt.first {
				if err := d.Add(pc, t0); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.AddFragment(tt.f, t0); err == nil {
				t.Fatalf("AddFragment(%+v) took it", tt.f)
			}
			if d.Stats().Invalid != 1 {
				t.Errorf("Invalid = %d, want 1", d.Stats().Invalid)
			}
		})
	}
	// A piece that contradicts early fragments (another offset, or fewer
	// fragments than were filled) is rejected; the block still completes.
	d, _ := NewDecoder(DecoderConfig{Params: p, Early: true})
	for _, f := range frags {
		if err := d.AddFragment(f, t0); err != nil {
			t.Fatal(err)
		}
	}
	liar := blocks[0].Pieces[4]
	liar.K, liar.M = 2, 2
	if err := d.Add(liar, t0); err == nil {
		t.Fatal("a piece saying 2 fragments after 3 were filled was taken")
	}
	for _, pc := range blocks[0].Pieces[3:] {
		if err := d.Add(pc, t0); err != nil {
			t.Fatal(err)
		}
	}
	if got, missing := checkOutputs(t, in, drain(d), blocks); got != len(in) || len(missing) != 0 {
		t.Fatalf("delivered %d of %d bytes, missing %v", got, len(in), missing)
	}
}
