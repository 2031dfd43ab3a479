package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// appender is what every chunk struct implements.
type appender interface{ Append([]byte) []byte }

type chunkCase struct {
	name string
	typ  ChunkType
	c    appender
	// parse decodes a payload into the same struct type.
	parse func([]byte) (appender, error)
	// tail is the length of the trailing "rest of payload" field, which a
	// truncated payload legitimately shortens; cutting before it must fail.
	tail int
}

func wrapParse[T appender](f func([]byte) (T, error)) func([]byte) (appender, error) {
	return func(p []byte) (appender, error) {
		v, err := f(p)
		return v, err
	}
}

func chunkCases() []chunkCase {
	tag := []byte("0123456789abcdef")
	opts := AppendOptionMarker(AppendReturnFlowOption(AppendUserMetadataOption(nil, []byte("md")), 7))
	v4 := netip.MustParseAddrPort("198.51.100.7:1935")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	ranges, _, _ := AppendAckRanges(nil, 5, 64, 1000, []SeqRange{{1002, 1010}, {1100, 1300}, {100000, 100000}}, 0)
	return []chunkCase{
		{"Fragment", ChunkFragment, Fragment{MoreFragments: true, PacketID: 1 << 40, FragmentNum: 3, Data: []byte("frag")}, wrapParse(ParseFragment), 4},
		{"FragmentLast", ChunkFragment, Fragment{PacketID: 1, FragmentNum: 0}, wrapParse(ParseFragment), 0},
		{"IHello", ChunkIHello, IHello{EPD: []byte{0x0a, 0x01, 0x02}, Tag: tag}, wrapParse(ParseIHello), 16},
		{"FIHello", ChunkFIHello, FIHello{EPD: []byte("epd"), ReplyAddress: v6, ReplyOrigin: OriginObserved, Tag: tag}, wrapParse(ParseFIHello), 16},
		{"RHello", ChunkRHello, RHello{Tag: tag, Cookie: []byte("cookie"), Cert: []byte("cert")}, wrapParse(ParseRHello), 4},
		{"Redirect", ChunkRedirect, Redirect{Tag: tag, Addresses: []Address{{v4, OriginLocal}, {v6, OriginRelay}}}, wrapParse(func(p []byte) (Redirect, error) { return ParseRedirect(p, nil) }), 0},
		{"RedirectEmpty", ChunkRedirect, Redirect{Tag: tag}, wrapParse(func(p []byte) (Redirect, error) { return ParseRedirect(p, nil) }), 0},
		{"RHelloCookieChange", ChunkCookieChange, RHelloCookieChange{OldCookie: []byte("old"), NewCookie: []byte("newer")}, wrapParse(ParseRHelloCookieChange), 5},
		{"IIKeying", ChunkIIKeying, IIKeying{InitiatorSessionID: 0xdeadbeef, Cookie: []byte("c"), Cert: []byte("cert"), SKIC: []byte("skic"), Signature: []byte("sig")}, wrapParse(ParseIIKeying), 3},
		{"RIKeying", ChunkRIKeying, RIKeying{ResponderSessionID: 0x01020304, SKRC: []byte("skrc"), Signature: []byte("signature")}, wrapParse(ParseRIKeying), 9},
		{"Ping", ChunkPing, Ping{Message: []byte("M\x01\x02")}, wrapParse(ParsePing), 3},
		{"PingEmpty", ChunkPing, Ping{}, wrapParse(ParsePing), 0},
		{"PingReply", ChunkPingReply, PingReply{Message: []byte("pong")}, wrapParse(ParsePingReply), 4},
		{"UserData", ChunkUserData, UserData{Fragmentation: FragMiddle, Abandon: true, Final: true, FlowID: 3, SequenceNumber: 1 << 35, FSNOffset: 17, Options: opts, Data: []byte("payload")}, wrapParse(ParseUserData), 7},
		{"UserDataPlain", ChunkUserData, UserData{FlowID: 1, SequenceNumber: 1, Data: []byte("x")}, wrapParse(ParseUserData), 1},
		{"NextUserData", ChunkNextData, NextUserData{Fragmentation: FragEnd, Data: []byte("tail")}, wrapParse(ParseNextUserData), 4},
		{"NextUserDataOpts", ChunkNextData, NextUserData{Fragmentation: FragBegin, Options: opts, Data: []byte("d")}, wrapParse(ParseNextUserData), 1},
		{"AckBitmap", ChunkAckBitmap, AckBitmap{FlowID: 2, BufferBlocksAvailable: 128, CumulativeAck: 70000, Bitmap: []byte{0x05, 0x80}}, wrapParse(ParseAckBitmap), 2},
		{"AckRanges", ChunkAckRanges, mustParseAckRanges(ranges[3:]), wrapParse(ParseAckRanges), 0},
		{"BufferProbe", ChunkBufferProbe, BufferProbe{FlowID: 1 << 20}, wrapParse(ParseBufferProbe), 0},
		{"FlowException", ChunkException, FlowException{FlowID: 4, Code: 0x101}, wrapParse(ParseFlowException), 0},
		{"Close", ChunkClose, Close{}, wrapParse(ParseClose), 0},
		{"CloseAck", ChunkCloseAck, CloseAck{}, wrapParse(ParseCloseAck), 0},
	}
}

func mustParseAckRanges(p []byte) AckRanges {
	a, err := ParseAckRanges(p)
	if err != nil {
		panic(err)
	}
	return a
}

// normalize makes decoded and original values comparable: empty slices and
// nil slices are the same on the wire, and Signed is decoder output only.
func normalize(v any) any {
	rv := reflect.New(reflect.TypeOf(v)).Elem()
	rv.Set(reflect.ValueOf(v))
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		if rv.Type().Field(i).Name == "Signed" {
			f.Set(reflect.Zero(f.Type()))
			continue
		}
		if f.Kind() == reflect.Slice && f.Len() == 0 {
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return rv.Interface()
}

func TestChunkRoundTrip(t *testing.T) {
	for _, tc := range chunkCases() {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte{0xaa, 0xbb}
			wire := tc.c.Append(append([]byte{}, prefix...))
			if !bytes.Equal(wire[:2], prefix) {
				t.Fatal("Append clobbered the prefix")
			}
			wire = wire[2:]
			r := NewChunkReader(wire)
			typ, payload, ok, err := r.Next()
			if err != nil || !ok || typ != tc.typ {
				t.Fatalf("ChunkReader: %v %v %v", typ, ok, err)
			}
			if _, _, ok, err := r.Next(); ok || err != nil {
				t.Fatalf("extra chunk: %v %v", ok, err)
			}
			got, err := tc.parse(payload)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(normalize(got), normalize(tc.c)) {
				t.Fatalf("round trip:\n got  %+v\n want %+v", got, tc.c)
			}
			if again := got.Append(nil); !bytes.Equal(again, wire) {
				t.Fatalf("re-encode %x, want %x", again, wire)
			}
		})
	}
}

// TestChunkTruncation cuts each payload at every offset: cuts into the
// structured part must be errors, cuts into the trailing free-form field
// must decode to that shorter field, and nothing may panic.
func TestChunkTruncation(t *testing.T) {
	for _, tc := range chunkCases() {
		t.Run(tc.name, func(t *testing.T) {
			payload := tc.c.Append(nil)[ChunkHeaderLength:]
			fixed := len(payload) - tc.tail
			for i := 0; i < len(payload); i++ {
				got, err := tc.parse(payload[:i])
				switch {
				case i < fixed && !lenient(tc.typ):
					if err == nil {
						t.Fatalf("cut at %d/%d decoded without error: %+v", i, len(payload), got)
					}
					if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
						t.Fatalf("cut at %d: unexpected error %v", i, err)
					}
				case i >= fixed:
					if err != nil {
						t.Fatalf("cut at %d in trailing field: %v", i, err)
					}
					if re := got.Append(nil); !bytes.Equal(re[ChunkHeaderLength:], payload[:i]) {
						t.Fatalf("cut at %d re-encodes to %x, want %x", i, re[ChunkHeaderLength:], payload[:i])
					}
				}
			}
		})
	}
}

// lenient chunk types accept a shorter payload by design: Redirect reads
// addresses until the end (a cut inside an address is still an error, but a
// cut between addresses is valid), AckRanges tolerates a cut range list,
// and Close/CloseAck/Ping ignore or keep whatever is there.
func lenient(t ChunkType) bool {
	switch t {
	case ChunkRedirect, ChunkAckRanges, ChunkClose, ChunkCloseAck:
		return true
	}
	return false
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name  string
		parse func([]byte) error
		in    []byte
		want  error
	}{
		{"UserData FSN offset above seq", func(p []byte) error { _, err := ParseUserData(p); return err }, []byte{0x00, 1, 5, 6}, ErrMalformed},
		{"UserData OPT without marker", func(p []byte) error { _, err := ParseUserData(p); return err }, []byte{0x80, 1, 5, 0, 2, 0x0a, 1}, ErrTruncated},
		{"UserData bad option", func(p []byte) error { _, err := ParseUserData(p); return err }, []byte{0x80, 1, 5, 0, 1, 0x81}, ErrMalformed},
		{"NextUserData OPT without marker", func(p []byte) error { _, err := ParseNextUserData(p); return err }, []byte{0x80}, ErrTruncated},
		{"UserData empty", func(p []byte) error { _, err := ParseUserData(p); return err }, nil, ErrTruncated},
		{"IIKeying short ID", func(p []byte) error { _, err := ParseIIKeying(p); return err }, []byte{1, 2, 3}, ErrTruncated},
		{"RIKeying field overrun", func(p []byte) error { _, err := ParseRIKeying(p); return err }, []byte{1, 2, 3, 4, 9, 0}, ErrTruncated},
		{"Redirect partial address", func(p []byte) error { _, err := ParseRedirect(p, nil); return err }, []byte{0, 0x80, 1, 2, 3}, ErrTruncated},
		{"FIHello missing address", func(p []byte) error { _, err := ParseFIHello(p); return err }, []byte{1, 0}, ErrTruncated},
		{"VLU overflow in AckBitmap", func(p []byte) error { _, err := ParseAckBitmap(p); return err }, []byte{0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0}, ErrMalformed},
		{"AckRanges overflow", func(p []byte) error { _, err := ParseAckRanges(p); return err }, append([]byte{1, 1}, append(AppendVLU(nil, ^uint64(0)-1), 0, 0)...), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.parse(tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRedirectReuseAndIterate(t *testing.T) {
	addrs := []Address{
		{netip.MustParseAddrPort("192.0.2.1:1"), OriginLocal},
		{netip.MustParseAddrPort("192.0.2.2:2"), OriginObserved},
		{netip.MustParseAddrPort("[2001:db8::2]:3"), OriginRelay},
	}
	p := Redirect{Tag: []byte("t"), Addresses: addrs}.Append(nil)[3:]
	buf := make([]Address, 0, 8)
	r, err := ParseRedirect(p, buf)
	if err != nil || !reflect.DeepEqual(r.Addresses, addrs) || &r.Addresses[:1][0] != &buf[:1][0] {
		t.Fatalf("ParseRedirect = %+v, %v (reused buffer: %v)", r, err, len(r.Addresses) > 0 && &r.Addresses[0] == &buf[:1][0])
	}
	var seen []Address
	tag, err := RedirectAddresses(p, func(a Address) bool { seen = append(seen, a); return len(seen) < 2 })
	if err != nil || string(tag) != "t" || !reflect.DeepEqual(seen, addrs[:2]) {
		t.Fatalf("RedirectAddresses = %q %+v %v", tag, seen, err)
	}
}

func TestKeyingSignedBytes(t *testing.T) {
	ii := IIKeying{InitiatorSessionID: 0x0a0b0c0d, Cookie: []byte("ck"), Cert: []byte("ce"), SKIC: []byte("sk"), Signature: []byte("SIG")}
	p := ii.Append(nil)[3:]
	got, err := ParseIIKeying(p)
	if err != nil {
		t.Fatal(err)
	}
	// ID big-endian, then three length-prefixed fields.
	if want := "\x0a\x0b\x0c\x0d\x02ck\x02ce\x02sk"; string(got.Signed) != want || string(ii.AppendSigned(nil)) != want {
		t.Fatalf("Signed = %q, AppendSigned = %q", got.Signed, ii.AppendSigned(nil))
	}
	ri := RIKeying{ResponderSessionID: 1, SKRC: []byte("r"), Signature: []byte("S")}
	gr, err := ParseRIKeying(ri.Append(nil)[3:])
	if err != nil || string(gr.Signed) != "\x00\x00\x00\x01\x01r" || string(gr.Signature) != "S" {
		t.Fatalf("RIKeying = %+v %v", gr, err)
	}
}

func TestOversizedAppendWritesNothing(t *testing.T) {
	big := make([]byte, MaxChunkPayload+1)
	for _, c := range []appender{Ping{Message: big}, UserData{Data: big}, NextUserData{Data: big}, IHello{Tag: big}, AckBitmap{Bitmap: big}, AckRanges{Ranges: big}} {
		if out := c.Append([]byte{1}); len(out) != 1 {
			t.Errorf("%T: appended %d bytes, want none", c, len(out)-1)
		}
	}
	if out := (Ping{Message: big[:MaxChunkPayload]}).Append(nil); len(out) != ChunkHeaderLength+MaxChunkPayload {
		t.Errorf("max-size ping: %d bytes", len(out))
	}
}

// TestPacketTruncation builds a realistic packet and parses every prefix:
// no panics, and each prefix yields an in-order prefix of the chunks.
func TestPacketTruncation(t *testing.T) {
	pkt := AppendHeader(nil, Header{Mode: ModeInitiator, HasTimestamp: true, Timestamp: 7})
	for _, tc := range chunkCases() {
		if tc.typ == ChunkRedirect || tc.typ == ChunkIHello || tc.typ == ChunkRHello {
			continue // startup chunks do not share a packet with session chunks
		}
		pkt = tc.c.Append(pkt)
	}
	full := countChunks(t, pkt)
	for i := 0; i < len(pkt); i++ {
		n := countChunks(t, pkt[:i])
		if n > full {
			t.Fatalf("prefix %d has %d chunks, full packet %d", i, n, full)
		}
	}
}

func countChunks(t *testing.T, pkt []byte) int {
	t.Helper()
	_, hn, err := ParseHeader(pkt)
	if err != nil {
		return 0
	}
	r := NewChunkReader(pkt[hn:])
	n := 0
	for {
		_, _, ok, err := r.Next()
		if !ok || err != nil {
			return n
		}
		n++
	}
}

func TestChunkTypeString(t *testing.T) {
	if ChunkUserData.String() != "UserData" || ChunkType(0x99).String() != "Chunk(0x99)" {
		t.Fatal(ChunkUserData.String(), ChunkType(0x99).String())
	}
	if !ChunkPaddingFF.IsPadding() || !ChunkPaddingZero.IsPadding() || ChunkPing.IsPadding() {
		t.Fatal("IsPadding")
	}
}
