package wire

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

func collectRanges(t *testing.T, a AckRanges) []SeqRange {
	t.Helper()
	var out []SeqRange
	it := a.Iter()
	for i := 0; i < 1000; i++ {
		from, to, ok := it.Next()
		if !ok {
			break
		}
		out = append(out, SeqRange{from, to})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iter: %v", err)
	}
	return out
}

func TestAckRangesEncodeDecode(t *testing.T) {
	tests := []struct {
		name   string
		cumAck uint64
		in     []SeqRange
	}{
		{"none", 0, nil},
		{"one single", 5, []SeqRange{{7, 7}}},
		{"several", 100, []SeqRange{{102, 105}, {107, 107}, {200, 1000}, {1 << 40, 1<<40 + 9}}},
		{"near max", ^uint64(0) - 10, []SeqRange{{^uint64(0) - 8, ^uint64(0) - 4}, {^uint64(0) - 2, ^uint64(0)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wire, n, err := AppendAckRanges(nil, 3, 10, tc.cumAck, tc.in, 0)
			if err != nil || n != len(tc.in) {
				t.Fatalf("encode n=%d err=%v", n, err)
			}
			a, err := ParseAckRanges(wire[ChunkHeaderLength:])
			if err != nil || a.FlowID != 3 || a.BufferBlocksAvailable != 10 || a.CumulativeAck != tc.cumAck {
				t.Fatalf("decode %+v %v", a, err)
			}
			if got := collectRanges(t, a); !reflect.DeepEqual(got, tc.in) {
				t.Fatalf("ranges %v, want %v", got, tc.in)
			}
		})
	}
}

func TestAckRangesRejectsBadInput(t *testing.T) {
	bad := [][]SeqRange{
		{{11, 12}},           // no hole after cumAck 10
		{{10, 12}},           // overlaps cumAck
		{{12, 11}},           // reversed
		{{12, 14}, {15, 16}}, // adjacent: no hole
		{{20, 30}, {12, 14}}, // unsorted
	}
	for _, in := range bad {
		b, _, err := AppendAckRanges([]byte{9}, 1, 1, 10, in, 0)
		if !errors.Is(err, ErrMalformed) || len(b) != 1 {
			t.Errorf("%v: err=%v len=%d", in, err, len(b))
		}
	}
	if _, _, err := AppendAckRanges(nil, 1, 1, 1, nil, 3); !errors.Is(err, ErrTooLarge) {
		t.Errorf("tiny limit: %v", err)
	}
}

func TestAckRangesLimitDropsHighest(t *testing.T) {
	var in []SeqRange
	for i := uint64(0); i < 100; i++ {
		in = append(in, SeqRange{10 + i*3, 10 + i*3})
	}
	wire, n, err := AppendAckRanges(nil, 1, 1, 0, in, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(wire) > 20 || n == 0 || n >= len(in) {
		t.Fatalf("len=%d n=%d", len(wire), n)
	}
	a, err := ParseAckRanges(wire[3:])
	if err != nil {
		t.Fatal(err)
	}
	if got := collectRanges(t, a); !reflect.DeepEqual(got, in[:n]) {
		t.Fatalf("got %v, want first %d", got, n)
	}
}

// A sender short of room may end the chunk after a holesMinusOne without
// its receivedMinusOne (the reference does); that pair is ignored.
func TestAckRangesTrailingHalfPair(t *testing.T) {
	p := []byte{1, 1, 10, 0, 2, 4}
	a, err := ParseAckRanges(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := collectRanges(t, a); !reflect.DeepEqual(got, []SeqRange{{12, 14}}) {
		t.Fatalf("got %v", got)
	}
}

func TestAckBitmapReceived(t *testing.T) {
	a := AckBitmap{CumulativeAck: 10, Bitmap: []byte{0b0000_0101, 0b1000_0000}}
	got := slices.Collect(a.Received())
	// bit 0 -> 12, bit 2 -> 14, byte 1 bit 7 -> 12+15 = 27
	if want := []uint64{12, 14, 27}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Early stop.
	n := 0
	for range a.Received() {
		n++
		break
	}
	if n != 1 {
		t.Fatal("no early stop")
	}
	top := AckBitmap{CumulativeAck: ^uint64(0) - 3, Bitmap: []byte{0xff}}
	if got := slices.Collect(top.Received()); !reflect.DeepEqual(got, []uint64{^uint64(0) - 1, ^uint64(0)}) {
		t.Fatalf("overflow: %v", got)
	}
}
