package fec

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// drainCopy returns all pending outputs with their fragments copied, as a
// caller of a decoder with DecoderConfig.Recycle must before its next Add
// or Next.
func drainCopy(d *Decoder) []Output {
	var out []Output
	for o, ok := d.Next(); ok; o, ok = d.Next() {
		fs := make([][]byte, len(o.Fragments))
		for j, f := range o.Fragments {
			fs[j] = bytes.Clone(f)
		}
		o.Fragments = fs
		out = append(out, o)
	}
	return out
}

// TestRecycle decodes a lossy stream with DecoderConfig.Recycle, whole and
// in parts, copying each output before the next Add or Next: every byte
// must be the input's, as without it. Outputs not yet taken must survive
// later Adds: the decoder may reuse a block's memory only once every
// Output was taken.
func TestRecycle(t *testing.T) {
	p := Params{K: 8, M: 3, FragmentSize: 100}
	in := streamBytes(300*800, 9)
	blocks := encodeAll(t, p, in, 800)
	for _, tt := range []struct {
		name    string
		early   bool
		batch   int // blocks fed between drains
		loss    float64
		wantGap bool
	}{
		{"whole, drained after each block", false, 1, 0.15, true},
		{"in parts, drained after each block", true, 1, 0.15, true},
		{"whole, drained every 10 blocks", false, 10, 0.15, true},
		{"in parts, drained every 10 blocks", true, 10, 0.05, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDecoder(DecoderConfig{Params: p, Timeout: 50 * time.Millisecond, Early: tt.early, Recycle: true})
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(3, uint64(tt.batch)))
			now := t0
			var outs []Output
			for i, b := range blocks {
				for _, pc := range b.Pieces {
					if r.Float64() >= tt.loss {
						if err := d.Add(pc, now); err != nil {
							t.Fatal(err)
						}
					}
				}
				now = now.Add(10 * time.Millisecond)
				d.Advance(now)
				if (i+1)%tt.batch == 0 {
					outs = append(outs, drainCopy(d)...)
				}
			}
			d.Advance(now.Add(time.Second))
			outs = append(outs, drainCopy(d)...)
			n, missing := checkOutputs(t, in, outs, blocks)
			st := d.Stats()
			if st.BlocksDelivered+st.BlocksLost != uint64(len(blocks)) || st.BlocksRecovered == 0 || (st.BlocksLost > 0) != tt.wantGap {
				t.Fatalf("stats %+v", st)
			}
			if len(missing) == 0 && n != len(in) {
				t.Fatalf("delivered %d of %d bytes", n, len(in))
			}
			if d.reused < len(blocks)/10 {
				t.Fatalf("%d of %d blocks reused memory", d.reused, len(blocks))
			}
			t.Logf("%d of %d blocks reused memory; %d lost", d.reused, len(blocks), st.BlocksLost)
			// Idle with every output taken, it keeps at most maxSpare
			// blocks it is done with.
			if len(d.retired) != 0 || len(d.spare) > maxSpare {
				t.Fatalf("idle decoder holds %d retired and %d spare blocks", len(d.retired), len(d.spare))
			}
		})
	}
}

// TestRecycleSavesMemory: with Recycle, a decoder in its steady state
// takes no new memory for blocks; without it, every block takes its
// shards' worth.
func TestRecycleSavesMemory(t *testing.T) {
	p := Params{K: 16, M: 4, FragmentSize: 1024}
	blocks := encodeAll(t, p, streamBytes(400<<10, 4), 16<<10)
	perBlock := uint64((p.K + p.M) * (p.FragmentSize + lengthPrefix))
	for _, recycle := range []bool{false, true} {
		d, err := NewDecoder(DecoderConfig{Params: p, Recycle: recycle})
		if err != nil {
			t.Fatal(err)
		}
		feed := func(bs []Block) {
			for _, b := range bs {
				for _, pc := range b.Pieces[1:] { // one rebuilt fragment each
					if err := d.Add(pc, t0); err != nil {
						t.Fatal(err)
					}
				}
				for o, ok := d.Next(); ok; o, ok = d.Next() {
					_ = o
				}
			}
		}
		feed(blocks[:5])
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		feed(blocks[5:])
		runtime.ReadMemStats(&after)
		got := (after.TotalAlloc - before.TotalAlloc) / uint64(len(blocks)-5)
		t.Logf("recycle %v: %d bytes per block (shards %d)", recycle, got, perBlock)
		if recycle && got >= perBlock/4 || !recycle && got < perBlock {
			t.Errorf("recycle %v: %d bytes allocated per block, shards take %d", recycle, got, perBlock)
		}
	}
}
