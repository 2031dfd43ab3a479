package fec

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

func FuzzUnmarshalPiece(f *testing.F) {
	for _, p := range []Piece{
		{K: 1, ShardSize: 2},
		{Block: 9, Offset: 100, K: 4, M: 2, Index: 1, ShardSize: 5, Data: []byte("abc")},
		{Block: 9, Offset: 100, K: 4, M: 2, Index: 5, ShardSize: 5, Data: []byte("12345")},
	} {
		b, _ := p.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePiece(b)
		if err != nil {
			return
		}
		// A piece that parses re-encodes to the same bytes: the encoding
		// is canonical, which manifests rely on.
		enc, err := p.MarshalBinary()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		var q Piece
		if err := q.UnmarshalBinary(b); err != nil || !bytes.Equal(q.Data, p.Data) {
			t.Fatalf("UnmarshalBinary: %v", err)
		}
	})
}

func FuzzUnmarshalManifest(f *testing.F) {
	blocks := encodeAll(f, Params{K: 3, M: 2, FragmentSize: 8}, []byte("some stream bytes"), 5)
	m, _ := blocks[0].Manifest()
	b, _ := m.MarshalBinary()
	f.Add(b)
	f.Add(b[:30])
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Manifest
		if m.UnmarshalBinary(b) != nil {
			return
		}
		enc, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}

// FuzzDecoder drives a decoder with genuine pieces of a stream in an order,
// with losses, duplicates and clock steps chosen by the fuzzer, some of the
// data as early fragments (AddFragment), mixed with fuzzer-made pieces and
// fragments of blocks the stream does not have. It must never
// panic, must keep records in block order, and every byte it delivers for
// a genuine block must be the stream's byte at that offset.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{3, 2, 7, 40, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{1, 0, 1, 5, 0xff, 0xfe, 3, 3, 3})
	f.Add([]byte{8, 4, 16, 200, 0x80, 1, 2, 0x81, 0xc0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9})
	f.Add([]byte{0x84, 2, 9, 90, 0, 1, 2, 3, 9, 8, 7, 0x85, 4, 6, 5})
	f.Add([]byte{0x83, 1, 4, 120, 2, 0, 1, 0xbf, 3, 4, 0xc1, 0, 0, 0, 0, 0, 0, 7, 7})
	f.Add([]byte{0x83, 2, 9, 90, 0x40, 0x41, 0x42, 5, 0x44, 0x61, 3, 9, 9, 9, 0x45, 6, 0x9f, 0x46})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) < 4 {
			return
		}
		p := Params{K: 1 + int(script[0])%8, M: int(script[1]) % 5, FragmentSize: 1 + int(script[2])%32}
		in := streamBytes(int(script[3])*3, uint64(script[3]))
		early := script[0]&0x80 != 0   // the K above uses the low bits only
		recycle := script[2]&0x80 != 0 // and FragmentSize those of this one
		script = script[4:]
		blocks := encodeAll(t, p, in, 1+len(script)%50)
		var all []Piece
		for _, b := range blocks {
			all = append(all, b.Pieces...)
		}
		d, err := NewDecoder(DecoderConfig{Params: p, Window: 1 + len(script)%8, Timeout: time.Second, Early: early, Recycle: recycle})
		if err != nil {
			t.Fatal(err)
		}
		take := drain
		if recycle {
			take = drainCopy // fragments are valid until the next Add
		}
		now := t0
		var outs []Output
		for i := 0; i < len(script); i++ {
			c := script[i]
			switch {
			case c&0xc0 == 0xc0 && i+PieceHeaderSize <= len(script):
				// A fuzzer-made piece, moved past the genuine blocks.
				q, err := ParsePiece(script[i : i+PieceHeaderSize])
				i += PieceHeaderSize - 1
				if err != nil {
					continue
				}
				q.Block = uint64(len(blocks)) + q.Block%1000
				_ = d.Add(q, now)
			case c&0xe0 == 0x40 && len(all) > 0:
				// A genuine piece's data as an early fragment (taken only
				// if full-sized and a data piece).
				q := all[int(c&0x1f)%len(all)]
				_ = d.AddFragment(Fragment{Block: q.Block, Offset: q.Offset, Index: q.Index, Data: q.Data}, now)
			case c&0xe0 == 0x60 && i+2 < len(script):
				// A fuzzer-made fragment, past the genuine blocks.
				n := int(script[i+1])
				data := script[i+2 : i+2+min(n%40, len(script)-i-2)]
				_ = d.AddFragment(Fragment{Block: uint64(len(blocks)) + uint64(c&0x1f), Offset: uint64(n), Index: int(int8(script[i+1])), Data: data}, now)
				i += 1 + len(data)
			case c&0xc0 == 0x80:
				now = now.Add(time.Duration(c&0x3f) * 100 * time.Millisecond)
				d.Advance(now)
			default:
				if len(all) > 0 {
					_ = d.Add(all[int(c)%len(all)], now)
				}
			}
			outs = append(outs, take(d)...)
		}
		d.Advance(now.Add(time.Hour))
		outs = append(outs, take(d)...)
		var next uint64
		part := false // the last record left its block unfinished
		var pos uint64
		for j, o := range outs {
			if j > 0 && (part && o.Block != next-1 || !part && o.Block != next) {
				t.Fatalf("record for block %d, want %d (inside a block: %v)", o.Block, next, part)
			}
			if o.More && !early {
				t.Fatalf("block %d output in parts without Early", o.Block)
			}
			next, part = o.Block+max(o.Lost, 1), o.More
			if o.IsGap() || o.Block >= uint64(len(blocks)) {
				pos = 0
				continue
			}
			got := bytes.Join(o.Fragments, nil)
			want := blocks[o.Block].Offset // a block's first record
			if o.Index > 0 {
				want = pos // its next ones: where the last one ended
			}
			if o.Offset != want || !bytes.Equal(got, in[o.Offset:o.Offset+uint64(len(got))]) {
				t.Fatalf("block %d: delivered bytes that were not encoded", o.Block)
			}
			pos = o.Offset + uint64(len(got))
		}
	})
}

func TestManifest(t *testing.T) {
	p := Params{K: 4, M: 2, FragmentSize: 10}
	blocks := encodeAll(t, p, streamBytes(60, 1), 60)
	m, err := blocks[1].Manifest()
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := m.MarshalBinary()
	var m2 Manifest
	if err := m2.UnmarshalBinary(enc); err != nil || len(enc) != 21+4*HashSize { // block 1 is short: k'=2, m=2
		t.Fatalf("manifest round trip: %v, %d bytes", err, len(enc))
	}
	if binary.BigEndian.Uint64(enc[1:]) != 1 || binary.BigEndian.Uint64(enc[9:]) != 40 {
		t.Errorf("manifest header % x", enc[:21])
	}
	for _, pc := range blocks[1].Pieces {
		if err := m2.Verify(pc); err != nil {
			t.Errorf("piece %d: %v", pc.Index, err)
		}
	}
	forged := blocks[1].Pieces[0]
	forged.Data = append([]byte("X"), forged.Data[1:]...)
	other := blocks[0].Pieces[0]
	for name, pc := range map[string]Piece{"forged payload": forged, "other block": other} {
		if err := m2.Verify(pc); err == nil {
			t.Errorf("%s verified", name)
		}
	}
	if _, err := (Block{}).Manifest(); err == nil {
		t.Error("manifest of an empty block")
	}
}
