package fec

import (
	"testing"
	"time"
)

// TestEarlyOutput feeds one block's pieces in several orders to a decoder
// with DecoderConfig.Early and checks, after every piece, how many data
// fragments are out: the leading run of data fragments held, or the whole
// block once it can be rebuilt.
func TestEarlyOutput(t *testing.T) {
	p := Params{K: 4, M: 2, FragmentSize: 10}
	in := streamBytes(2*40, 5) // two full blocks
	blocks := encodeAll(t, p, in, 40)
	tests := []struct {
		name  string
		order []int // piece indexes of block 0, in arrival order
		out   []int // data fragments of block 0 out after each piece
	}{
		{"data in order", []int{0, 1, 2, 3}, []int{1, 2, 3, 4}},
		{"data reversed", []int{3, 2, 1, 0}, []int{0, 0, 0, 4}},
		{"a hole", []int{0, 2, 3, 1}, []int{1, 1, 1, 4}},
		{"parity fills the hole", []int{0, 1, 3, 4}, []int{1, 2, 2, 4}},
		{"parity first", []int{5, 4, 0, 2}, []int{0, 0, 1, 4}},
		{"first fragment last", []int{1, 2, 4, 5}, []int{0, 0, 0, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDecoder(DecoderConfig{Params: p, Early: true})
			if err != nil {
				t.Fatal(err)
			}
			var outs []Output
			for i, idx := range tt.order {
				if err := d.Add(blocks[0].Pieces[idx], t0); err != nil {
					t.Fatal(err)
				}
				outs = append(outs, drain(d)...)
				n := 0
				for _, o := range outs {
					n += len(o.Fragments)
				}
				if n != tt.out[i] {
					t.Fatalf("after piece %d (%d of %v): %d fragments out, want %d", idx, i+1, tt.order, n, tt.out[i])
				}
				if n == p.K && outs[len(outs)-1].More {
					t.Fatalf("block complete but its last record says more follows: %+v", outs)
				}
				if n > 0 && n < p.K && !outs[len(outs)-1].More {
					t.Fatalf("part of the block out without More: %+v", outs)
				}
			}
			for _, pc := range blocks[1].Pieces {
				if err := d.Add(pc, t0); err != nil {
					t.Fatal(err)
				}
			}
			outs = append(outs, drain(d)...)
			if got, missing := checkOutputs(t, in, outs, blocks); got != len(in) || len(missing) != 0 {
				t.Fatalf("delivered %d of %d bytes, missing %v", got, len(in), missing)
			}
			if st := d.Stats(); st.BlocksDelivered != 2 || st.BytesOut != uint64(len(in)) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestEarlyOutputThenGap gives up on a block whose first fragments went out
// early: the gap starts where they end, and the stream goes on with the next
// block.
func TestEarlyOutputThenGap(t *testing.T) {
	p := Params{K: 4, M: 2, FragmentSize: 10}
	in := streamBytes(3*40, 6)
	blocks := encodeAll(t, p, in, 40)
	d, _ := NewDecoder(DecoderConfig{Params: p, Timeout: time.Second, Early: true})
	for _, pc := range blocks[0].Pieces {
		d.Add(pc, t0)
	}
	d.Add(blocks[1].Pieces[0], t0)
	d.Add(blocks[1].Pieces[1], t0)
	d.Add(blocks[1].Pieces[3], t0) // 3 of 4: not enough, fragment 2 missing
	for _, pc := range blocks[2].Pieces {
		d.Add(pc, t0)
	}
	outs := drain(d)
	if got, _ := checkOutputs(t, in, outs, blocks); got != 40+20 {
		t.Fatalf("before the timeout %d bytes out, want block 0 and two fragments of block 1", got)
	}
	d.Advance(t0.Add(time.Second))
	outs = append(outs, drain(d)...)
	got, missing := checkOutputs(t, in, outs, blocks)
	if got != 100 || len(missing) != 1 || missing[0] != [2]uint64{60, 80} {
		t.Fatalf("delivered %d, missing %v; want 100 and [60 80]", got, missing)
	}
	var gap Output
	for _, o := range outs {
		if o.IsGap() {
			gap = o
		}
	}
	if gap.Block != 1 || gap.Lost != 1 || gap.Offset != 60 {
		t.Errorf("gap %+v, want block 1 at offset 60", gap)
	}
	if st := d.Stats(); st.BlocksDelivered != 2 || st.BlocksLost != 1 || st.BytesOut != 100 {
		t.Errorf("stats %+v", st)
	}
}

// TestEarlyOutputCorruptRebuild: a block whose rebuilt fragments are
// inconsistent is given up after its early fragments went out; the gap
// starts after them.
func TestEarlyOutputCorruptRebuild(t *testing.T) {
	p := Params{K: 4, M: 2, FragmentSize: 10}
	in := streamBytes(2*40, 7)
	blocks := encodeAll(t, p, in, 40)
	d, _ := NewDecoder(DecoderConfig{Params: p, Early: true})
	d.Add(blocks[0].Pieces[0], t0)
	bad := blocks[0].Pieces[4]
	bad.Data = append([]byte(nil), bad.Data...)
	for i := range bad.Data {
		bad.Data[i] ^= 0x5a
	}
	d.Add(bad, t0)
	d.Add(blocks[0].Pieces[5], t0)
	d.Add(blocks[0].Pieces[3], t0) // four pieces: rebuild, which fails
	for _, pc := range blocks[1].Pieces {
		d.Add(pc, t0)
	}
	outs := drain(d)
	got, missing := checkOutputs(t, in, outs, blocks)
	if got != 10+40 || len(missing) != 1 || missing[0] != [2]uint64{10, 40} {
		t.Fatalf("delivered %d, missing %v; want 50 and [10 40] (records %+v)", got, missing, outs)
	}
	if st := d.Stats(); st.Corrupt != 1 {
		t.Errorf("stats %+v, want one corrupt block", st)
	}
}
