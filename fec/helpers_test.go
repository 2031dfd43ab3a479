package fec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

// streamBytes returns n deterministic pseudo-random bytes.
func streamBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// encodeAll writes data in chunks of chunk bytes and returns every block.
func encodeAll(t testing.TB, p Params, data []byte, chunk int) []Block {
	t.Helper()
	e, err := NewEncoder(p)
	if err != nil {
		t.Fatal(err)
	}
	for len(data) > 0 {
		n := min(chunk, len(data))
		e.Write(t0, data[:n])
		data = data[n:]
	}
	e.Sync()
	var blocks []Block
	for b, ok := e.Next(); ok; b, ok = e.Next() {
		blocks = append(blocks, b)
	}
	return blocks
}

func newDecoder(t testing.TB, p Params) *Decoder {
	t.Helper()
	d, err := NewDecoder(DecoderConfig{Params: p})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// drain returns all pending outputs.
func drain(d *Decoder) []Output {
	var out []Output
	for o, ok := d.Next(); ok; o, ok = d.Next() {
		out = append(out, o)
	}
	return out
}

// checkOutputs verifies that outputs are in block order without holes,
// that every data record matches the input at its offset, that data
// records follow one another exactly unless a gap separates them, that a
// block output in parts (DecoderConfig.Early) comes in consecutive
// fragments, and returns the delivered bytes and the missing byte ranges.
func checkOutputs(t testing.TB, input []byte, outs []Output, blocks []Block) (delivered int, missing [][2]uint64) {
	t.Helper()
	var nextBlock, pos uint64
	inGap := false
	part, nextIndex := false, 0 // inside a block output in parts
	for _, o := range outs {
		if part && o.Block != nextBlock-1 || !part && o.Block != nextBlock {
			t.Fatalf("output for block %d, want %d (inside a block: %v)", o.Block, nextBlock, part)
		}
		if o.IsGap() {
			if o.Offset != pos {
				t.Fatalf("gap at block %d offset %d, want %d", o.Block, o.Offset, pos)
			}
			nextBlock = o.Block + o.Lost
			inGap, part = true, false
			continue
		}
		want := blocks[o.Block].Offset
		if part {
			want = pos
			if o.Index != nextIndex {
				t.Fatalf("block %d continues at fragment %d, want %d", o.Block, o.Index, nextIndex)
			}
		} else if o.Index != 0 {
			t.Fatalf("block %d starts at fragment %d", o.Block, o.Index)
		}
		if o.Offset != want {
			t.Fatalf("block %d offset %d, want %d", o.Block, o.Offset, want)
		}
		if inGap {
			missing = append(missing, [2]uint64{pos, o.Offset})
		} else if o.Offset != pos {
			t.Fatalf("block %d at offset %d without gap, want %d", o.Block, o.Offset, pos)
		}
		got := bytes.Join(o.Fragments, nil)
		end := o.Offset + uint64(len(got))
		if end > uint64(len(input)) || !bytes.Equal(got, input[o.Offset:end]) {
			t.Fatalf("block %d: %d bytes at offset %d differ from input", o.Block, len(got), o.Offset)
		}
		delivered += len(got)
		pos, inGap = end, false
		part, nextIndex = o.More, o.Index+len(o.Fragments)
		nextBlock = o.Block + 1
	}
	if inGap {
		missing = append(missing, [2]uint64{pos, uint64(len(input))})
	}
	return delivered, missing
}

func (p Params) String() string {
	return fmt.Sprintf("k%d-m%d-f%d", p.K, p.M, p.FragmentSize)
}
