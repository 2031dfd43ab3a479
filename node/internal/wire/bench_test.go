package wire

import "testing"

func benchUserData() UserData {
	return UserData{
		Fragmentation: FragMiddle, FlowID: 5, SequenceNumber: 1 << 20, FSNOffset: 12,
		Data: make([]byte, 1100),
	}
}

func BenchmarkAppendUserData(b *testing.B) {
	c := benchUserData()
	buf := make([]byte, 0, MaxSessionPacketLength)
	b.ReportAllocs()
	b.SetBytes(int64(len(c.Data)))
	for b.Loop() {
		buf = AppendHeader(buf[:0], Header{Mode: ModeInitiator, HasTimestamp: true, Timestamp: 9})
		buf = c.Append(buf)
	}
}

func BenchmarkParseUserData(b *testing.B) {
	opts := AppendOptionMarker(AppendReturnFlowOption(nil, 3))
	c := benchUserData()
	c.Options = opts
	pkt := c.Append(AppendHeader(nil, Header{Mode: ModeInitiator}))
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		_, n, err := ParseHeader(pkt)
		if err != nil {
			b.Fatal(err)
		}
		r := NewChunkReader(pkt[n:])
		for {
			typ, p, ok, err := r.Next()
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
			if typ == ChunkUserData {
				u, err := ParseUserData(p)
				if err != nil || len(u.Data) != 1100 {
					b.Fatal(err)
				}
				if o, err := ParseUserDataOptions(u.Options); err != nil || o.ReturnFlowID != 3 {
					b.Fatal(err)
				}
			}
		}
	}
}

func benchRanges() []SeqRange {
	r := make([]SeqRange, 20)
	for i := range r {
		base := uint64(1000 + i*10)
		r[i] = SeqRange{base, base + 4}
	}
	return r
}

func BenchmarkAppendAckRanges(b *testing.B) {
	ranges := benchRanges()
	buf := make([]byte, 0, MaxSessionPacketLength)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, _, err = AppendAckRanges(buf[:0], 5, 64, 990, ranges, 200)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAckRanges(b *testing.B) {
	w, _, _ := AppendAckRanges(nil, 5, 64, 990, benchRanges(), 0)
	p := w[ChunkHeaderLength:]
	b.ReportAllocs()
	for b.Loop() {
		a, err := ParseAckRanges(p)
		if err != nil {
			b.Fatal(err)
		}
		it := a.Iter()
		n := 0
		for {
			_, _, ok := it.Next()
			if !ok {
				break
			}
			n++
		}
		if n != 20 {
			b.Fatal(n)
		}
	}
}

// TestHotPathAllocs pins the zero-allocation property in the normal test
// run (benchmarks are not run by go test).
func TestHotPathAllocs(t *testing.T) {
	u := benchUserData()
	u.Options = AppendOptionMarker(AppendReturnFlowOption(nil, 3))
	ranges := benchRanges()
	buf := make([]byte, 0, MaxSessionPacketLength)
	pkt := u.Append(AppendHeader(nil, Header{Mode: ModeInitiator}))
	w, _, _ := AppendAckRanges(nil, 5, 64, 990, ranges, 0)
	cases := map[string]func(){
		"AppendUserData": func() { buf = u.Append(AppendHeader(buf[:0], Header{Mode: ModeInitiator})) },
		"ParseUserData": func() {
			_, n, _ := ParseHeader(pkt)
			r := NewChunkReader(pkt[n:])
			_, p, _, _ := r.Next()
			c, _ := ParseUserData(p)
			_, _ = ParseUserDataOptions(c.Options)
		},
		"AppendAckRanges": func() { buf, _, _ = AppendAckRanges(buf[:0], 5, 64, 990, ranges, 200) },
		"ParseAckRanges": func() {
			a, _ := ParseAckRanges(w[3:])
			it := a.Iter()
			for {
				if _, _, ok := it.Next(); !ok {
					break
				}
			}
		},
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs/op", name, n)
		}
	}
}
