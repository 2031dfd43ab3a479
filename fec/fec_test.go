package fec

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		p  Params
		ok bool
	}{
		{Params{K: 1, M: 0, FragmentSize: 1}, true},
		{Params{K: 16, M: 4, FragmentSize: 1024, MaxDelay: time.Millisecond}, true},
		{Params{K: 200, M: 56, FragmentSize: MaxFragmentSize}, true},
		{Params{K: 0, M: 4, FragmentSize: 1024}, false},
		{Params{K: 4, M: -1, FragmentSize: 1024}, false},
		{Params{K: 200, M: 57, FragmentSize: 1024}, false},
		{Params{K: 4, M: 2, FragmentSize: 0}, false},
		{Params{K: 4, M: 2, FragmentSize: MaxFragmentSize + 1}, false},
		{Params{K: 4, M: 2, FragmentSize: 10, MaxDelay: -1}, false},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%+v: Validate() = %v, want ok=%v", tt.p, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%+v: error %v does not wrap ErrInvalidParams", tt.p, err)
		}
	}
}

func TestPieceRoundTrip(t *testing.T) {
	pieces := []Piece{
		{Block: 0, Offset: 0, K: 1, M: 0, Index: 0, ShardSize: 2, Data: nil},
		{Block: 7, Offset: 1 << 40, K: 16, M: 4, Index: 3, ShardSize: 1026, Data: bytes.Repeat([]byte{7}, 1024)},
		{Block: 1<<64 - 1, Offset: 5, K: 16, M: 4, Index: 19, ShardSize: 10, Data: []byte("0123456789")},
		{Block: 3, Offset: 9, K: 256, M: 0, Index: 255, ShardSize: 1<<16 - 1, Data: make([]byte, 1<<16-3)},
	}
	for _, p := range pieces {
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("%+v: %v", p.Index, err)
		}
		if len(b) != PieceHeaderSize+len(p.Data) {
			t.Errorf("encoded %d bytes, want %d", len(b), PieceHeaderSize+len(p.Data))
		}
		var q Piece
		if err := q.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if q.Block != p.Block || q.Offset != p.Offset || q.K != p.K || q.M != p.M || q.Index != p.Index ||
			q.ShardSize != p.ShardSize || !bytes.Equal(q.Data, p.Data) {
			t.Errorf("round trip: got %+v, want %+v", q, p)
		}
	}
}

func TestPieceMalformed(t *testing.T) {
	good, _ := Piece{Block: 1, K: 4, M: 2, Index: 4, ShardSize: 3, Data: []byte("abc")}.MarshalBinary()
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := map[string][]byte{
		"empty":            nil,
		"short header":     good[:PieceHeaderSize-1],
		"bad version":      mut(func(b []byte) []byte { b[0] = 2; return b }),
		"truncated":        good[:len(good)-1],
		"trailing":         append(append([]byte(nil), good...), 0),
		"k+m over 256":     mut(func(b []byte) []byte { b[17], b[18] = 255, 1; return b }),
		"index out":        mut(func(b []byte) []byte { b[19] = 6; return b }),
		"shard too small":  mut(func(b []byte) []byte { b[20], b[21] = 0, 1; return b }),
		"parity size":      mut(func(b []byte) []byte { b[21] = 4; return b }),
		"data over shard":  mut(func(b []byte) []byte { b[19] = 0; return b }),
		"length too large": mut(func(b []byte) []byte { b[23] = 4; return b }),
	}
	for name, b := range tests {
		if _, err := ParsePiece(b); !errors.Is(err, ErrMalformedPiece) {
			t.Errorf("%s: ParsePiece error %v, want ErrMalformedPiece", name, err)
		}
	}
	if _, err := (Piece{K: 0, ShardSize: 2}).MarshalBinary(); err == nil {
		t.Error("MarshalBinary accepted k=0")
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		p      Params
		n      int // stream bytes
		chunks int // write size
	}{
		{Params{K: 1, M: 0, FragmentSize: 1}, 50, 7},
		{Params{K: 1, M: 1, FragmentSize: 3}, 100, 1},
		{Params{K: 2, M: 1, FragmentSize: 16}, 1000, 33},
		{Params{K: 4, M: 2, FragmentSize: 100}, 10_000, 1000},
		{Params{K: 16, M: 4, FragmentSize: 1024}, 100_000, 4096},
		{Params{K: 16, M: 4, FragmentSize: 1024}, 16 * 1024, 16 * 1024}, // exactly one block
		{Params{K: 10, M: 10, FragmentSize: 1200}, 50_000, 999},
		{Params{K: 200, M: 56, FragmentSize: 64}, 40_000, 3000},
		{Params{K: 128, M: 128, FragmentSize: 20}, 10_000, 512},
		{Params{K: 5, M: 3, FragmentSize: MaxFragmentSize}, 700_000, 65536},
	}
	for _, tt := range tests {
		t.Run(tt.p.String(), func(t *testing.T) {
			in := streamBytes(tt.n, uint64(tt.n))
			blocks := encodeAll(t, tt.p, in, tt.chunks)
			wantBlocks := (tt.n + tt.p.K*tt.p.FragmentSize - 1) / (tt.p.K * tt.p.FragmentSize)
			if len(blocks) != wantBlocks {
				t.Fatalf("%d blocks, want %d", len(blocks), wantBlocks)
			}
			// Drop every data piece the parity can replace, so each
			// block goes through a rebuild when it has parity.
			d := newDecoder(t, tt.p)
			for _, b := range blocks {
				k := b.Pieces[0].K
				drop := min(tt.p.M, k)
				for _, p := range b.Pieces[drop:] {
					if err := d.Add(p, t0); err != nil {
						t.Fatal(err)
					}
				}
			}
			outs := drain(d)
			n, missing := checkOutputs(t, in, outs, blocks)
			if n != tt.n || len(missing) != 0 {
				t.Fatalf("delivered %d of %d bytes, missing %v", n, tt.n, missing)
			}
			st := d.Stats()
			if st.BytesOut != uint64(tt.n) || st.BlocksDelivered != uint64(len(blocks)) || st.BlocksLost != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestAnyKOfN feeds a block to a fresh decoder through every subset of its
// pieces (exhaustively for small k+m, randomly for large) and checks that
// exactly the subsets of at least k pieces rebuild it.
func TestAnyKOfN(t *testing.T) {
	tests := []struct {
		p      Params
		subset int // 0: all subsets; else this many random subsets
	}{
		{Params{K: 1, M: 2, FragmentSize: 5}, 0},
		{Params{K: 3, M: 2, FragmentSize: 7}, 0},
		{Params{K: 4, M: 4, FragmentSize: 13}, 0},
		{Params{K: 6, M: 5, FragmentSize: 32}, 0},
		{Params{K: 16, M: 4, FragmentSize: 256}, 300},
		{Params{K: 100, M: 40, FragmentSize: 16}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.p.String(), func(t *testing.T) {
			// A little less than a full block, so the last fragment is short.
			in := streamBytes(tt.p.K*tt.p.FragmentSize-3, 42)
			blocks := encodeAll(t, tt.p, in, len(in))
			if len(blocks) != 1 {
				t.Fatalf("%d blocks", len(blocks))
			}
			pieces := blocks[0].Pieces
			n := len(pieces)
			r := rand.New(rand.NewPCG(1, 2))
			try := func(sel []int) {
				d := newDecoder(t, tt.p) // codecs come from the process-wide cache (Codec)
				for _, i := range sel {
					if err := d.Add(pieces[i], t0); err != nil {
						t.Fatal(err)
					}
				}
				outs := drain(d)
				if len(sel) < tt.p.K {
					if len(outs) != 0 {
						t.Fatalf("subset %v of %d pieces delivered %d records", sel, len(sel), len(outs))
					}
					return
				}
				if len(outs) != 1 || !bytes.Equal(bytes.Join(outs[0].Fragments, nil), in) {
					t.Fatalf("subset %v did not rebuild the block", sel)
				}
			}
			if tt.subset == 0 {
				for mask := range 1 << n {
					var sel []int
					for i := range n {
						if mask&(1<<i) != 0 {
							sel = append(sel, i)
						}
					}
					try(sel)
				}
				return
			}
			for range tt.subset {
				perm := r.Perm(n)
				try(perm[:tt.p.K+r.IntN(n-tt.p.K+1)])
			}
			perm := r.Perm(n)
			try(perm[:tt.p.K-1])
		})
	}
}

func TestLossBeyondParityGivesGap(t *testing.T) {
	p := Params{K: 4, M: 2, FragmentSize: 10}
	in := streamBytes(5*40, 3) // five full blocks
	blocks := encodeAll(t, p, in, 17)
	d, _ := NewDecoder(DecoderConfig{Params: p, Timeout: time.Second})
	now := t0
	for _, b := range blocks {
		for i, pc := range b.Pieces {
			if b.Seq == 2 && i < p.M+1 { // lose m+1 pieces of block 2
				continue
			}
			if err := d.Add(pc, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	outs := drain(d)
	if len(outs) != 2 {
		t.Fatalf("before the timeout got %d records, want blocks 0 and 1", len(outs))
	}
	if _, ok := d.Deadline(); !ok {
		t.Fatal("no deadline while block 2 is incomplete")
	}
	d.Advance(now.Add(time.Second - 1))
	if o := drain(d); len(o) != 0 {
		t.Fatalf("gave up before the timeout: %+v", o)
	}
	d.Advance(now.Add(time.Second))
	outs = append(outs, drain(d)...)
	if len(outs) != 5 || !outs[2].IsGap() || outs[2].Block != 2 || outs[2].Lost != 1 || outs[2].Offset != 80 {
		t.Fatalf("records %+v, want data 0, 1, gap 2 at offset 80, data 3, 4", outs)
	}
	_, missing := checkOutputs(t, in, outs, blocks)
	if len(missing) != 1 || missing[0] != [2]uint64{80, 120} {
		t.Errorf("missing %v, want [80 120]", missing)
	}
	st := d.Stats()
	if st.BlocksLost != 1 || st.BlocksDelivered != 4 || st.BytesOut != 160 {
		t.Errorf("stats %+v", st)
	}
	// A late piece of the lost block is old now.
	old := st.Old
	if err := d.Add(blocks[2].Pieces[0], now.Add(2*time.Second)); err != nil || d.Stats().Old != old+1 {
		t.Errorf("late piece: err %v, old %d, was %d", err, d.Stats().Old, old)
	}
}

func TestReorderAndDuplicate(t *testing.T) {
	p := Params{K: 8, M: 3, FragmentSize: 50}
	in := streamBytes(20_000, 9)
	blocks := encodeAll(t, p, in, 333)
	var all []Piece
	for _, b := range blocks {
		all = append(all, b.Pieces...)
	}
	for seed := range uint64(5) {
		r := rand.New(rand.NewPCG(seed, 7))
		// Shuffle locally (pieces move up to 3 blocks), duplicate a third.
		feed := append([]Piece(nil), all...)
		for i := range feed {
			j := i + r.IntN(min(3*(p.K+p.M), len(feed)-i))
			feed[i], feed[j] = feed[j], feed[i]
		}
		var dup []Piece
		for _, pc := range feed {
			dup = append(dup, pc)
			if r.IntN(3) == 0 {
				dup = append(dup, pc)
			}
		}
		d := newDecoder(t, p)
		for _, pc := range dup {
			if err := d.Add(pc, t0); err != nil {
				t.Fatal(err)
			}
		}
		n, missing := checkOutputs(t, in, drain(d), blocks)
		st := d.Stats()
		if n != len(in) || len(missing) != 0 {
			t.Fatalf("seed %d: delivered %d/%d, missing %v", seed, n, len(in), missing)
		}
		if st.Duplicates+st.Pieces+st.Old != uint64(len(dup)) || st.Duplicates+st.Old < uint64(len(dup)-len(all)) {
			t.Errorf("seed %d: stats %+v for %d pieces of which %d duplicates", seed, st, len(dup), len(dup)-len(all))
		}
	}
}

func TestDeadlineShortBlocks(t *testing.T) {
	p := Params{K: 8, M: 2, FragmentSize: 100, MaxDelay: 10 * time.Millisecond}
	e, _ := NewEncoder(p)
	var in []byte
	now := t0
	write := func(n int) {
		b := streamBytes(n, uint64(len(in)))
		in = append(in, b...)
		e.Write(now, b)
	}
	write(250) // 2 full fragments + 50 bytes pending
	if dl, ok := e.Deadline(); !ok || !dl.Equal(t0.Add(10*time.Millisecond)) {
		t.Fatalf("deadline %v %v", dl, ok)
	}
	now = now.Add(9 * time.Millisecond)
	e.Flush(now)
	if _, ok := e.Next(); ok {
		t.Fatal("block closed before its deadline")
	}
	now = now.Add(time.Millisecond)
	e.Flush(now)
	b0, ok := e.Next()
	if !ok || len(b0.Pieces) != 3+p.M || b0.Pieces[0].K != 3 || b0.Length != 250 || b0.Pieces[0].ShardSize != 102 {
		t.Fatalf("short block: ok=%v %d pieces, k'=%d, length %d", ok, len(b0.Pieces), b0.Pieces[0].K, b0.Length)
	}
	if _, ok := e.Deadline(); ok {
		t.Error("deadline with no open block")
	}
	// A Write after the deadline closes the open block before it appends.
	write(10)
	now = now.Add(time.Hour)
	write(1000)
	b1, _ := e.Next()
	if b1.Pieces[0].K != 1 || b1.Length != 10 || b1.Offset != 250 || b1.Pieces[0].ShardSize != 12 {
		t.Fatalf("block 1: k'=%d length %d offset %d shard %d", b1.Pieces[0].K, b1.Length, b1.Offset, b1.Pieces[0].ShardSize)
	}
	e.Sync()
	b2, _ := e.Next()
	if b2.Pieces[0].K != 8 || b2.Length != 800 || e.Stats().Blocks != 4 || e.Stats().ShortBlocks != 3 {
		t.Fatalf("block 2: k'=%d length %d, stats %+v", b2.Pieces[0].K, b2.Length, e.Stats())
	}
	b3, _ := e.Next()
	blocks := []Block{b0, b1, b2, b3}
	// Decode using only parity where it can stand in for data.
	d := newDecoder(t, p)
	for _, b := range blocks {
		for _, pc := range b.Pieces[min(p.M, len(b.Pieces)-p.M):] {
			if err := d.Add(pc, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, missing := checkOutputs(t, in, drain(d), blocks)
	if n != len(in) || len(missing) != 0 || d.Stats().BlocksRecovered != 4 {
		t.Fatalf("delivered %d/%d missing %v stats %+v", n, len(in), missing, d.Stats())
	}
}

func TestWriteFragmentKeepsBoundaries(t *testing.T) {
	p := Params{K: 3, M: 1, FragmentSize: 10}
	e, _ := NewEncoder(p)
	frags := [][]byte{[]byte("a"), {}, []byte("0123456789"), []byte("xyz"), []byte("hello")}
	for _, f := range frags {
		if err := e.WriteFragment(t0, f); err != nil {
			t.Fatal(err)
		}
	}
	e.Write(t0, []byte("stream")) // pending partial fragment
	if err := e.WriteFragment(t0, []byte("end")); err != nil {
		t.Fatal(err)
	}
	if err := e.WriteFragment(t0, make([]byte, 11)); !errors.Is(err, ErrFragmentTooLarge) {
		t.Errorf("oversized fragment: %v", err)
	}
	e.Sync()
	d := newDecoder(t, p)
	for b, ok := e.Next(); ok; b, ok = e.Next() {
		for _, pc := range b.Pieces[1:] { // lose the first data piece of every block
			if err := d.Add(pc, t0); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got [][]byte
	for _, o := range drain(d) {
		got = append(got, o.Fragments...)
	}
	want := append(append([][]byte(nil), frags...), []byte("stream"), []byte("end"))
	if len(got) != len(want) {
		t.Fatalf("%d fragments, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("fragment %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestDecoderWindow(t *testing.T) {
	p := Params{K: 2, M: 1, FragmentSize: 4}
	in := streamBytes(8*100, 5) // 100 blocks
	blocks := encodeAll(t, p, in, 64)
	d, _ := NewDecoder(DecoderConfig{Params: p, Window: 4, Timeout: time.Second})
	add := func(b, i int, now time.Time) {
		t.Helper()
		if err := d.Add(blocks[b].Pieces[i], now); err != nil {
			t.Fatal(err)
		}
	}
	add(0, 0, t0)
	add(0, 1, t0)
	add(0, 0, t0) // duplicate of a delivered block: old
	add(10, 0, t0)
	add(99, 2, t0.Add(time.Millisecond))
	st := d.Stats()
	if st.Old != 1 || st.Future != 2 || st.BlocksDelivered != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Nothing in the window ever arrives: after the timeout the decoder
	// jumps so the newest far-future block falls inside the window.
	d.Advance(t0.Add(time.Second))
	outs := drain(d)
	if len(outs) != 2 || outs[1].Block != 1 || outs[1].Lost != 95 || outs[1].Offset != 8 || d.Head() != 96 {
		t.Fatalf("records %+v head %d, want gap of blocks 1..95 at offset 8", outs, d.Head())
	}
	for b := 96; b < 100; b++ {
		add(b, 1, t0.Add(2*time.Second))
		add(b, 2, t0.Add(2*time.Second))
	}
	outs = append(outs, drain(d)...)
	n, missing := checkOutputs(t, in, outs, blocks)
	if n != 8*5 || len(missing) != 1 || missing[0] != [2]uint64{8, 96 * 8} {
		t.Fatalf("delivered %d, missing %v", n, missing)
	}
}

func TestDecoderRejects(t *testing.T) {
	p := Params{K: 4, M: 2, FragmentSize: 10}
	blocks := encodeAll(t, p, streamBytes(100, 1), 100)
	d := newDecoder(t, p)
	good := blocks[0].Pieces[0]
	bad := map[string]Piece{
		"more data fragments": {Block: 0, K: 5, M: 2, Index: 0, ShardSize: 12},
		"other parity count":  {Block: 0, K: 4, M: 3, Index: 0, ShardSize: 12},
		"shard too large":     {Block: 0, K: 4, M: 2, Index: 0, ShardSize: 13},
		"malformed":           {Block: 0, K: 4, M: 2, Index: 6, ShardSize: 12},
		"contradicts block":   {Block: 0, Offset: 1, K: 4, M: 2, Index: 1, ShardSize: 12},
	}
	if err := d.Add(good, t0); err != nil {
		t.Fatal(err)
	}
	for name, pc := range bad {
		if err := d.Add(pc, t0); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if st := d.Stats(); st.Invalid != uint64(len(bad)) || st.Pieces != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestCorruptRebuildIsGap checks that a block whose rebuilt fragments are
// impossible (a forged parity piece) is reported lost, not delivered.
func TestCorruptRebuildIsGap(t *testing.T) {
	p := Params{K: 4, M: 2, FragmentSize: 10}
	in := streamBytes(80, 1)
	blocks := encodeAll(t, p, in, 80)
	d := newDecoder(t, p)
	forged := blocks[0].Pieces[4]
	forged.Data = bytes.Repeat([]byte{0xff}, forged.ShardSize)
	for _, pc := range append([]Piece{forged}, blocks[0].Pieces[1:4]...) {
		if err := d.Add(pc, t0); err != nil {
			t.Fatal(err)
		}
	}
	for _, pc := range blocks[1].Pieces {
		if err := d.Add(pc, t0); err != nil {
			t.Fatal(err)
		}
	}
	outs := drain(d)
	if len(outs) != 2 || !outs[0].IsGap() || d.Stats().Corrupt != 1 {
		t.Fatalf("records %+v stats %+v", outs, d.Stats())
	}
	checkOutputs(t, in, outs, blocks)
}

func TestStartAnywhere(t *testing.T) {
	p := Params{K: 2, M: 1, FragmentSize: 4}
	in := streamBytes(80, 5)
	blocks := encodeAll(t, p, in, 80)
	d, _ := NewDecoder(DecoderConfig{Params: p, StartAnywhere: true})
	for _, b := range blocks[3:] {
		for _, pc := range b.Pieces {
			if err := d.Add(pc, t0); err != nil {
				t.Fatal(err)
			}
		}
	}
	outs := drain(d)
	if len(outs) != 7 || outs[0].Block != 3 || outs[0].Offset != 24 {
		t.Fatalf("records %+v", outs)
	}
}

// TestLongStreamLoss sends 8 MiB through independent random loss and
// checks that the output is the input except for exactly reported ranges.
func TestLongStreamLoss(t *testing.T) {
	p := Params{K: 16, M: 4, FragmentSize: 1024}
	in := streamBytes(8<<20, 77)
	blocks := encodeAll(t, p, in, 64<<10)
	for _, loss := range []float64{0.05, 0.10, 0.25} {
		r := rand.New(rand.NewPCG(uint64(loss*1000), 1))
		d, _ := NewDecoder(DecoderConfig{Params: p, Timeout: 100 * time.Millisecond})
		now := t0
		var outs []Output
		var lostBlocks int
		for _, b := range blocks {
			got := 0
			for _, pc := range b.Pieces {
				if r.Float64() < loss {
					continue
				}
				got++
				if err := d.Add(pc, now); err != nil {
					t.Fatal(err)
				}
			}
			if got < p.K {
				lostBlocks++
			}
			now = now.Add(10 * time.Millisecond)
			d.Advance(now)
			outs = append(outs, drain(d)...)
		}
		d.Advance(now.Add(time.Second))
		outs = append(outs, drain(d)...)
		n, missing := checkOutputs(t, in, outs, blocks)
		var missingBytes uint64
		for _, m := range missing {
			missingBytes += m[1] - m[0]
		}
		st := d.Stats()
		if n+int(missingBytes) != len(in) || st.BlocksLost != uint64(lostBlocks) ||
			st.BlocksDelivered+st.BlocksLost != uint64(len(blocks)) {
			t.Fatalf("loss %.2f: delivered %d + missing %d of %d; lost %d blocks, expected %d; stats %+v",
				loss, n, missingBytes, len(in), st.BlocksLost, lostBlocks, st)
		}
		t.Logf("loss %.0f%%: %d blocks, %d lost, %d rebuilt from parity (%d fragments), %d bytes missing in %d ranges",
			loss*100, len(blocks), st.BlocksLost, st.BlocksRecovered, st.Recovered, missingBytes, len(missing))
	}
}

// ParityFor: M for a full block, ceil(M·k'/K) (at least one) for a short
// one.
func TestParityFor(t *testing.T) {
	for _, c := range []struct{ k, m, kk, want int }{
		{16, 4, 16, 4}, {16, 4, 15, 4}, {16, 4, 13, 4}, {16, 4, 12, 3}, {16, 4, 9, 3},
		{16, 4, 8, 2}, {16, 4, 5, 2}, {16, 4, 4, 1}, {16, 4, 2, 1}, {16, 4, 1, 1},
		{16, 0, 2, 0}, {8, 8, 3, 3}, {1, 4, 1, 4},
	} {
		p := Params{K: c.k, M: c.m}
		if got := p.ParityFor(c.kk); got != c.want {
			t.Errorf("K=%d M=%d: ParityFor(%d) = %d, want %d", c.k, c.m, c.kk, got, c.want)
		}
		if !p.ParityOK(c.kk, c.m) || !p.ParityOK(c.kk, c.want) {
			t.Errorf("K=%d M=%d k'=%d: M or ParityFor not accepted", c.k, c.m, c.kk)
		}
	}
}

// A publisher with ShortParity gives short blocks ParityFor(k') parity
// pieces; a decoder without the option decodes them, also from parity
// standing in for data, and still rejects any other parity count.
func TestShortParity(t *testing.T) {
	pub := Params{K: 16, M: 4, FragmentSize: 100, ShortParity: true}
	e, _ := NewEncoder(pub)
	var in []byte
	for _, n := range []int{150, 1600, 450, 50} { // k' = 2, 16, 5, 1
		b := streamBytes(n, uint64(len(in)))
		in = append(in, b...)
		e.Write(t0, b)
		e.Sync()
	}
	var blocks []Block
	for {
		b, ok := e.Next()
		if !ok {
			break
		}
		blocks = append(blocks, b)
	}
	wantParity := []int{1, 4, 2, 1}
	if len(blocks) != len(wantParity) {
		t.Fatalf("%d blocks, want %d", len(blocks), len(wantParity))
	}
	sub := pub
	sub.ShortParity = false
	d := newDecoder(t, sub)
	for i, b := range blocks {
		k, m := b.Pieces[0].K, b.Pieces[0].M
		if m != wantParity[i] || len(b.Pieces) != k+m {
			t.Fatalf("block %d: k'=%d m=%d, %d pieces; want m=%d", i, k, m, len(b.Pieces), wantParity[i])
		}
		// Drop the first m pieces (data): parity stands in for them.
		for _, pc := range b.Pieces[m:] {
			if err := d.Add(pc, t0); err != nil {
				t.Fatalf("block %d: %v", i, err)
			}
		}
	}
	n, missing := checkOutputs(t, in, drain(d), blocks)
	if n != len(in) || len(missing) != 0 {
		t.Fatalf("delivered %d/%d, missing %v", n, len(in), missing)
	}
	forged := blocks[0].Pieces[0]
	forged.Block += 100
	forged.M = 3 // neither M (4) nor ParityFor(2) (1)
	forged.Index = 0
	if err := d.Add(forged, t0); !errors.Is(err, ErrPieceMismatch) {
		t.Errorf("a piece with 3 parity for k'=2: %v, want ErrPieceMismatch", err)
	}
}

// A piece's hash, taken without building its encoding, is the hash of its
// encoding; Verify allocates nothing (it built the whole encoding before:
// 1,152 bytes per piece of 1024).
func TestPieceHashMatchesEncoding(t *testing.T) {
	for _, p := range []Params{{K: 4, M: 2, FragmentSize: 10}, {K: 16, M: 4, FragmentSize: 1024}} {
		blocks := encodeAll(t, p, streamBytes(3*p.K*p.FragmentSize+7, 11), 333)
		for _, b := range blocks {
			mf, err := b.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, pc := range b.Pieces {
				enc, err := pc.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(enc)
				if pc.hash() != [HashSize]byte(sum[:HashSize]) {
					t.Fatalf("%v block %d piece %d: hash differs from its encoding's", p, b.Seq, pc.Index)
				}
				if err := mf.Verify(pc); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	blocks := encodeAll(t, Params{K: 16, M: 4, FragmentSize: 1024}, streamBytes(16*1024, 12), 1024)
	mf, _ := blocks[0].Manifest()
	pc := blocks[0].Pieces[3]
	if n := testing.AllocsPerRun(100, func() { mf.Verify(pc) }); n != 0 {
		t.Errorf("Verify allocates %v times per piece, want none", n)
	}
}
