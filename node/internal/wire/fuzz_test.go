package wire

import (
	"bytes"
	"net/netip"
	"testing"
)

// Every fuzz target checks two things: no panic, and when decoding
// succeeds, re-encoding and decoding again is stable.

func FuzzReadVLU(f *testing.F) {
	for _, s := range []string{"", "00", "7f", "8100", "81ffffffffffffffff7f", "82ffffffffffffffff7f", "808080"} {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, err := ReadVLU(b)
		if err != nil {
			return
		}
		if n < 1 || n > len(b) {
			t.Fatalf("n=%d len=%d", n, len(b))
		}
		v2, n2, err := ReadVLU(AppendVLU(nil, v))
		if err != nil || v2 != v || n2 > n {
			t.Fatalf("re-encode %d: %d %d %v", v, v2, n2, err)
		}
	})
}

func FuzzOptionList(f *testing.F) {
	f.Add(AppendOptionMarker(AppendReturnFlowOption(AppendUserMetadataOption(nil, []byte("x")), 3)))
	f.Add([]byte{0x05, 0x00})
	f.Add([]byte{0x01, 0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		var rebuilt []byte
		n, marker, err := parseOptionList(b, func(typ uint64, v []byte) error {
			rebuilt = AppendOption(rebuilt, typ, v)
			return nil
		})
		if n < 0 || n > len(b) {
			t.Fatalf("n=%d", n)
		}
		_, _ = ParseUserDataOptions(b)
		if err != nil {
			return
		}
		if marker {
			rebuilt = AppendOptionMarker(rebuilt)
		}
		n2, marker2, err := parseOptionList(rebuilt, nil)
		if err != nil || n2 != len(rebuilt) || marker2 != marker {
			t.Fatalf("rebuilt list: %d %v %v", n2, marker2, err)
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x03})
	f.Add([]byte{0x8d, 0, 1, 0, 2})
	f.Add([]byte{0x0c})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseHeader(b)
		if err != nil {
			return
		}
		enc := AppendHeader(nil, h)
		if len(enc) != n || enc[0]&^0x30 != b[0]&^0x30 || !bytes.Equal(enc[1:], b[1:n]) {
			t.Fatalf("re-encode %x vs %x", enc, b[:n])
		}
	})
}

func FuzzChunkReader(f *testing.F) {
	f.Add(Ping{Message: []byte("x")}.Append(nil))
	f.Add(append(Close{}.Append(nil), 0xff, 0xff))
	f.Add([]byte{0x10, 0xff, 0xff, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewChunkReader(b)
		total := 0
		for i := 0; i <= len(b); i++ {
			typ, p, ok, err := r.Next()
			if err != nil || !ok {
				return
			}
			total += ChunkHeaderLength + len(p)
			if total > len(b) || r.Offset() != total {
				t.Fatalf("offset %d total %d len %d", r.Offset(), total, len(b))
			}
			parseAny(typ, p)
		}
		t.Fatal("reader did not terminate")
	})
}

// parseAny runs the decoder for typ; used to fuzz all decoders at once.
func parseAny(typ ChunkType, p []byte) {
	switch typ {
	case ChunkFragment:
		_, _ = ParseFragment(p)
	case ChunkIHello:
		_, _ = ParseIHello(p)
	case ChunkFIHello:
		_, _ = ParseFIHello(p)
	case ChunkRHello:
		_, _ = ParseRHello(p)
	case ChunkRedirect:
		_, _ = ParseRedirect(p, nil)
	case ChunkCookieChange:
		_, _ = ParseRHelloCookieChange(p)
	case ChunkIIKeying:
		_, _ = ParseIIKeying(p)
	case ChunkRIKeying:
		_, _ = ParseRIKeying(p)
	case ChunkPing:
		_, _ = ParsePing(p)
	case ChunkPingReply:
		_, _ = ParsePingReply(p)
	case ChunkUserData:
		_, _ = ParseUserData(p)
	case ChunkNextData:
		_, _ = ParseNextUserData(p)
	case ChunkAckBitmap:
		if a, err := ParseAckBitmap(p); err == nil {
			for range a.Received() {
			}
		}
	case ChunkAckRanges:
		_, _ = ParseAckRanges(p)
	case ChunkBufferProbe:
		_, _ = ParseBufferProbe(p)
	case ChunkException:
		_, _ = ParseFlowException(p)
	case ChunkClose:
		_, _ = ParseClose(p)
	case ChunkCloseAck:
		_, _ = ParseCloseAck(p)
	}
}

func FuzzParseUserData(f *testing.F) {
	opts := AppendOptionMarker(AppendUserMetadataOption(nil, []byte("m")))
	f.Add(UserData{FlowID: 1, SequenceNumber: 2, FSNOffset: 1, Options: opts, Data: []byte("d")}.Append(nil)[3:])
	f.Add(UserData{Fragmentation: FragEnd, Final: true, FlowID: 300, SequenceNumber: 1 << 30}.Append(nil)[3:])
	f.Add([]byte{0x80, 1, 1, 0, 3, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		if n, err := ParseNextUserData(p); err == nil {
			if _, err := ParseNextUserData(n.Append(nil)[3:]); err != nil {
				t.Fatalf("next re-parse: %v", err)
			}
		}
		c, err := ParseUserData(p)
		if err != nil {
			return
		}
		if c.FSNOffset > c.SequenceNumber {
			t.Fatal("accepted FSN offset above sequence number")
		}
		_, _ = ParseUserDataOptions(c.Options)
		c2, err := ParseUserData(c.Append(nil)[3:])
		if err != nil || c2.FlowID != c.FlowID || c2.SequenceNumber != c.SequenceNumber || c2.FSNOffset != c.FSNOffset ||
			c2.Flags() != c.Flags() || !bytes.Equal(c2.Options, c.Options) || !bytes.Equal(c2.Data, c.Data) {
			t.Fatalf("re-parse %+v vs %+v: %v", c2, c, err)
		}
	})
}

func FuzzAckRanges(f *testing.F) {
	w, _, _ := AppendAckRanges(nil, 1, 2, 3, []SeqRange{{5, 6}, {9, 20}}, 0)
	f.Add(w[3:])
	f.Add([]byte{1, 1, 10, 0, 2, 4})
	f.Add([]byte{1, 1, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x7f, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		a, err := ParseAckRanges(p)
		if err != nil {
			return
		}
		var ranges []SeqRange
		it := a.Iter()
		prev := a.CumulativeAck
		for i := 0; i <= len(p); i++ {
			from, to, ok := it.Next()
			if !ok {
				break
			}
			if from < prev+2 || to < from {
				t.Fatalf("range [%d,%d] after %d", from, to, prev)
			}
			prev = to
			ranges = append(ranges, SeqRange{from, to})
		}
		if it.Err() != nil {
			t.Fatalf("iter error after successful parse: %v", it.Err())
		}
		w, n, err := AppendAckRanges(nil, a.FlowID, a.BufferBlocksAvailable, a.CumulativeAck, ranges, 0)
		if err != nil || n != len(ranges) {
			t.Fatalf("re-encode: %d %v", n, err)
		}
		a2, err := ParseAckRanges(w[3:])
		if err != nil {
			t.Fatal(err)
		}
		it2 := a2.Iter()
		for _, r := range ranges {
			from, to, ok := it2.Next()
			if !ok || from != r.From || to != r.To {
				t.Fatalf("re-decoded [%d,%d] %v, want %v", from, to, ok, r)
			}
		}
	})
}

func FuzzHandshakeChunks(f *testing.F) {
	tag := []byte("0123456789abcdef")
	f.Add(uint8(ChunkIHello), IHello{EPD: []byte("e"), Tag: tag}.Append(nil)[3:])
	f.Add(uint8(ChunkFIHello), FIHello{EPD: []byte("e"), ReplyAddress: netip.MustParseAddrPort("[::1]:5"), Tag: tag}.Append(nil)[3:])
	f.Add(uint8(ChunkRHello), RHello{Tag: tag, Cookie: []byte("c"), Cert: []byte("x")}.Append(nil)[3:])
	f.Add(uint8(ChunkRedirect), Redirect{Tag: tag, Addresses: []Address{{netip.MustParseAddrPort("1.2.3.4:5"), 1}}}.Append(nil)[3:])
	f.Add(uint8(ChunkCookieChange), RHelloCookieChange{OldCookie: []byte("o"), NewCookie: []byte("n")}.Append(nil)[3:])
	f.Add(uint8(ChunkIIKeying), IIKeying{InitiatorSessionID: 1, Cookie: []byte("c"), Cert: []byte("e"), SKIC: []byte("s"), Signature: []byte("g")}.Append(nil)[3:])
	f.Add(uint8(ChunkRIKeying), RIKeying{ResponderSessionID: 2, SKRC: []byte("s"), Signature: []byte("g")}.Append(nil)[3:])
	f.Add(uint8(ChunkFragment), Fragment{MoreFragments: true, PacketID: 9, FragmentNum: 1, Data: []byte("d")}.Append(nil)[3:])
	f.Fuzz(func(t *testing.T, typ uint8, p []byte) {
		var c appender
		var err error
		switch ChunkType(typ) {
		case ChunkIHello:
			c, err = ParseIHello(p)
		case ChunkFIHello:
			var v FIHello
			v, err = ParseFIHello(p)
			v.ReplyAddress = netip.AddrPortFrom(v.ReplyAddress.Addr().Unmap(), v.ReplyAddress.Port())
			c = v
		case ChunkRHello:
			c, err = ParseRHello(p)
		case ChunkRedirect:
			var v Redirect
			v, err = ParseRedirect(p, nil)
			for i := range v.Addresses {
				ap := v.Addresses[i].AddrPort
				v.Addresses[i].AddrPort = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			}
			c = v
		case ChunkCookieChange:
			c, err = ParseRHelloCookieChange(p)
		case ChunkIIKeying:
			c, err = ParseIIKeying(p)
		case ChunkRIKeying:
			c, err = ParseRIKeying(p)
		case ChunkFragment:
			c, err = ParseFragment(p)
		default:
			return
		}
		if err != nil {
			return
		}
		// Re-encoding is canonical (minimal VLUs, cleared reserved bits),
		// so compare the decoded values of both encodings instead.
		w := c.Append(nil)
		r := NewChunkReader(w)
		typ2, p2, ok, err := r.Next()
		if !ok || err != nil || typ2 != ChunkType(typ) {
			t.Fatalf("re-encoded chunk unreadable: %v %v", ok, err)
		}
		if again := reparse(t, ChunkType(typ), p2).Append(nil); !bytes.Equal(again, w) {
			t.Fatalf("unstable encoding %x vs %x", again, w)
		}
	})
}

func reparse(t *testing.T, typ ChunkType, p []byte) appender {
	t.Helper()
	var c appender
	var err error
	switch typ {
	case ChunkIHello:
		c, err = ParseIHello(p)
	case ChunkFIHello:
		c, err = ParseFIHello(p)
	case ChunkRHello:
		c, err = ParseRHello(p)
	case ChunkRedirect:
		c, err = ParseRedirect(p, nil)
	case ChunkCookieChange:
		c, err = ParseRHelloCookieChange(p)
	case ChunkIIKeying:
		c, err = ParseIIKeying(p)
	case ChunkRIKeying:
		c, err = ParseRIKeying(p)
	case ChunkFragment:
		c, err = ParseFragment(p)
	}
	if err != nil {
		t.Fatalf("re-parse %v: %v", typ, err)
	}
	return c
}

func FuzzSessionChunks(f *testing.F) {
	f.Add(uint8(ChunkAckBitmap), AckBitmap{FlowID: 1, CumulativeAck: 4, Bitmap: []byte{1}}.Append(nil)[3:])
	f.Add(uint8(ChunkBufferProbe), BufferProbe{FlowID: 7}.Append(nil)[3:])
	f.Add(uint8(ChunkException), FlowException{FlowID: 7, Code: 2}.Append(nil)[3:])
	f.Add(uint8(ChunkPing), []byte("M"))
	f.Fuzz(func(t *testing.T, typ uint8, p []byte) {
		parseAny(ChunkType(typ), p)
	})
}
