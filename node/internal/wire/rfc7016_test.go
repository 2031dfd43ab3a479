package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// Tests in this file are named after the RFC 7016 section whose layout they
// pin down with hand-computed byte vectors.

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRFC7016_2_1_2_VLU(t *testing.T) {
	tests := []struct {
		v    uint64
		wire string
	}{
		{0, "00"},
		{1, "01"},
		{127, "7f"},
		{128, "8100"},
		{300, "822c"},
		{16383, "ff7f"},
		{16384, "818000"},
		{1<<63 - 1, "ffffffffffffffff7f"},
		{^uint64(0), "81ffffffffffffffff7f"},
	}
	for _, tc := range tests {
		got := AppendVLU(nil, tc.v)
		if hex.EncodeToString(got) != tc.wire {
			t.Errorf("AppendVLU(%d) = %x, want %s", tc.v, got, tc.wire)
		}
		if VLULen(tc.v) != len(got) {
			t.Errorf("VLULen(%d) = %d, want %d", tc.v, VLULen(tc.v), len(got))
		}
		// Trailing bytes must not be consumed.
		v, n, err := ReadVLU(append(got, 0xaa, 0x01))
		if err != nil || v != tc.v || n != len(got) {
			t.Errorf("ReadVLU(%s) = %d, %d, %v; want %d, %d", tc.wire, v, n, err, tc.v, len(got))
		}
	}
}

func TestRFC7016_2_1_2_VLUErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
		v    uint64
	}{
		{"empty", "", ErrTruncated, 0},
		{"continuation at end", "8180", ErrTruncated, 0},
		{"overflow 65 bits", "82ffffffffffffffff7f", ErrMalformed, 0},
		{"11 bytes", "8181ffffffffffffffff7f", ErrMalformed, 0},
		{"non-minimal zeros accepted", "80808005", nil, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, _, err := ReadVLU(mustHex(t, tc.in))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if v != tc.v {
				t.Fatalf("v = %d, want %d", v, tc.v)
			}
		})
	}
}

func TestRFC7016_2_1_3_Options(t *testing.T) {
	var b []byte
	b = AppendOption(b, 0x0a, []byte{0x05})
	b = AppendOption(b, 300, nil)
	b = AppendUserMetadataOption(b, []byte("ab"))
	b = AppendOptionMarker(b)
	b = append(b, 0xde, 0xad) // data after the list
	// len=2 type=0a value=05 | len=2 type=822c | len=3 type=00 "ab" | marker
	want := "020a05" + "02822c" + "03006162" + "00" + "dead"
	if hex.EncodeToString(b) != want {
		t.Fatalf("encoded %x, want %s", b, want)
	}
	type opt struct {
		typ uint64
		val string
	}
	var got []opt
	n, err := ParseOptionList(b, func(typ uint64, v []byte) error {
		got = append(got, opt{typ, string(v)})
		return nil
	})
	if err != nil || n != len(b)-2 {
		t.Fatalf("ParseOptionList n=%d err=%v, want n=%d", n, err, len(b)-2)
	}
	wantOpts := []opt{{0x0a, "\x05"}, {300, ""}, {0, "ab"}}
	if len(got) != len(wantOpts) {
		t.Fatalf("got %v, want %v", got, wantOpts)
	}
	for i := range got {
		if got[i] != wantOpts[i] {
			t.Errorf("option %d = %v, want %v", i, got[i], wantOpts[i])
		}
	}
}

func TestRFC7016_2_1_3_OptionListEdges(t *testing.T) {
	stop := errors.New("stop")
	tests := []struct {
		name  string
		in    string
		fn    func(uint64, []byte) error
		n     int
		want  error
		calls int
	}{
		{"empty list", "", nil, 0, nil, 0},
		{"marker only", "00ff", nil, 1, nil, 0},
		{"no marker until end", "020a05", nil, 3, nil, 1},
		{"length past end", "050a05", nil, 0, ErrTruncated, 0},
		{"type overruns length", "0181", nil, 0, ErrMalformed, 0},
		{"callback error stops", "020a05020b0600", func(uint64, []byte) error { return stop }, 3, stop, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			n, err := ParseOptionList(mustHex(t, tc.in), func(typ uint64, v []byte) error {
				calls++
				if tc.fn != nil {
					return tc.fn(typ, v)
				}
				return nil
			})
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && n != tc.n {
				t.Fatalf("n = %d, want %d", n, tc.n)
			}
			if calls != tc.calls {
				t.Fatalf("calls = %d, want %d", calls, tc.calls)
			}
		})
	}
}

func TestRFC7016_2_2_1_SessionIDScrambling(t *testing.T) {
	enc := mustHex(t, "1122334455667788aabb")
	s := ScrambleSessionID(0x01020304, enc)
	if s != 0x454647c8 {
		t.Fatalf("scrambled = %#x, want 0x454647c8", s)
	}
	if got := DescrambleSessionID(s, enc); got != 0x01020304 {
		t.Fatalf("descrambled = %#x", got)
	}
	// Short packets: missing bytes count as zero.
	if got := ScrambleSessionID(0x01020304, []byte{0xaa}); got != 0x01020304^0xaa000000 {
		t.Fatalf("short scramble = %#x", got)
	}
	if got := ScrambleSessionID(7, nil); got != 7 {
		t.Fatalf("empty scramble = %#x", got)
	}
	dgram := AppendSessionID(nil, 0x01020304, enc)
	dgram = append(dgram, enc...)
	if hex.EncodeToString(dgram[:4]) != "454647c8" {
		t.Fatalf("datagram prefix %x", dgram[:4])
	}
	id, e, err := SplitPacket(dgram)
	if err != nil || id != 0x01020304 || !bytes.Equal(e, enc) {
		t.Fatalf("SplitPacket = %#x, %x, %v", id, e, err)
	}
	if _, _, err := SplitPacket([]byte{1, 2, 3}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("SplitPacket short: %v", err)
	}
}

func TestRFC7016_2_2_4_Header(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		wire string
	}{
		{"startup no timestamps", Header{Mode: ModeStartup}, "03"},
		{"initiator timestamp TC", Header{TimeCritical: true, Mode: ModeInitiator, HasTimestamp: true, Timestamp: 0x1234}, "891234"},
		{"responder echo TCR", Header{TimeCriticalReverse: true, Mode: ModeResponder, HasTimestampEcho: true, TimestampEcho: 0xbeef}, "46beef"},
		{"both", Header{Mode: ModeInitiator, HasTimestamp: true, Timestamp: 1, HasTimestampEcho: true, TimestampEcho: 2}, "0d00010002"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendHeader(nil, tc.h)
			if hex.EncodeToString(got) != tc.wire {
				t.Fatalf("AppendHeader = %x, want %s", got, tc.wire)
			}
			if tc.h.Len() != len(got) {
				t.Fatalf("Len = %d, want %d", tc.h.Len(), len(got))
			}
			h, n, err := ParseHeader(append(got, 0x10))
			if err != nil || n != len(got) || h != tc.h {
				t.Fatalf("ParseHeader = %+v, %d, %v", h, n, err)
			}
			for i := 0; i < len(got); i++ {
				if _, _, err := ParseHeader(got[:i]); !errors.Is(err, ErrTruncated) {
					t.Fatalf("ParseHeader(%x) err = %v, want truncated", got[:i], err)
				}
			}
		})
	}
	if _, _, err := ParseHeader([]byte{0x80}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("mode 0: %v", err)
	}
	// Reserved bits are ignored.
	if h, _, err := ParseHeader([]byte{0x33}); err != nil || h.Mode != ModeStartup || h.HasTimestamp {
		t.Fatalf("reserved bits: %+v %v", h, err)
	}
}

func TestRFC7016_2_2_4_TimestampClock(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want uint16
	}{
		{0, 0},
		{3 * time.Millisecond, 0},
		{4 * time.Millisecond, 1},
		{time.Second, 250},
		{65535 * 4 * time.Millisecond, 65535},
		{65536 * 4 * time.Millisecond, 0},
		{65537 * 4 * time.Millisecond, 1},
	}
	for _, tc := range tests {
		if got := TimestampAt(tc.d); got != tc.want {
			t.Errorf("TimestampAt(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func TestRFC7016_2_2_4_ChunkPadding(t *testing.T) {
	ping := Ping{Message: []byte("hi")}.Append(nil) // 01 0002 6869
	tests := []struct {
		name   string
		body   []byte
		chunks int
		err    error
	}{
		{"empty", nil, 0, nil},
		{"one chunk", ping, 1, nil},
		{"0xff padding after chunk", append(append([]byte{}, ping...), 0xff, 0xff, 0xff, 0xff, 0xff), 1, nil},
		{"single 0xff byte", append(append([]byte{}, ping...), 0xff), 1, nil},
		{"0x00 padding", append(append([]byte{}, ping...), 0, 0, 0, 0), 1, nil},
		{"padding hides later bytes", append(append([]byte{0xff}, ping...), ping...), 0, nil},
		{"short tail", append(append([]byte{}, ping...), 0x01, 0x00), 1, ErrTruncated},
		{"length overruns", append(append([]byte{}, ping...), 0x01, 0x00, 0x05, 0x00), 1, ErrTruncated},
		{"two chunks", append(append([]byte{}, ping...), ping...), 2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewChunkReader(tc.body)
			n := 0
			var err error
			for i := 0; i < 100; i++ {
				typ, p, ok, e := r.Next()
				if e != nil {
					err = e
					break
				}
				if !ok {
					break
				}
				if typ != ChunkPing || string(p) != "hi" || cap(p) != len(p) {
					t.Fatalf("chunk %d = %v %q cap %d", n, typ, p, cap(p))
				}
				n++
			}
			if n != tc.chunks {
				t.Fatalf("chunks = %d, want %d", n, tc.chunks)
			}
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			// Once finished, the reader stays finished.
			if _, _, ok, e := r.Next(); ok || e != nil {
				t.Fatalf("Next after end = %v, %v", ok, e)
			}
		})
	}
}

func TestRFC7016_2_2_4_BeginEndChunk(t *testing.T) {
	b := []byte{0xee}
	start := len(b)
	b = BeginChunk(b, ChunkPing)
	b = append(b, "abc"...)
	b, err := EndChunk(b, start)
	if err != nil || hex.EncodeToString(b) != "ee01000361626"+"3" {
		t.Fatalf("got %x, %v", b, err)
	}
	big := BeginChunk(nil, ChunkPing)
	big = append(big, make([]byte, MaxChunkPayload+1)...)
	if _, err := EndChunk(big, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	exact := append(BeginChunk(nil, ChunkPing), make([]byte, MaxChunkPayload)...)
	if out, err := EndChunk(exact, 0); err != nil || out[1] != 0xff || out[2] != 0xff {
		t.Fatalf("max size: %x %v", out[:3], err)
	}
	if _, err := EndChunk([]byte{1}, 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad start: %v", err)
	}
	if _, err := EndChunk(b, -1); !errors.Is(err, ErrMalformed) {
		t.Fatalf("negative start: %v", err)
	}
}

func TestRFC7016_2_3_1_FragmentGolden(t *testing.T) {
	got := Fragment{MoreFragments: true, PacketID: 300, FragmentNum: 1, Data: []byte("x")}.Append(nil)
	if want := "7f000580822c0178"; hex.EncodeToString(got) != want {
		t.Fatalf("got %x, want %s", got, want)
	}
}

func TestRFC7016_2_3_2_IHelloGolden(t *testing.T) {
	tag := mustHex(t, "000102030405060708090a0b0c0d0e0f")
	got := IHello{EPD: []byte("ab"), Tag: tag}.Append(nil)
	if want := "300013" + "026162" + "000102030405060708090a0b0c0d0e0f"; hex.EncodeToString(got) != want {
		t.Fatalf("got %x, want %s", got, want)
	}
}

func TestRFC7016_2_3_5_AddressGolden(t *testing.T) {
	tests := []struct {
		a    Address
		wire string
	}{
		{Address{netip.MustParseAddrPort("192.0.2.1:1935"), OriginObserved}, "02c0000201078f"},
		{Address{netip.MustParseAddrPort("[::1]:80"), OriginRelay}, "83000000000000000000000000000000010050"},
		{Address{netip.MustParseAddrPort("10.0.0.1:1"), OriginLocal}, "010a0000010001"},
	}
	for _, tc := range tests {
		got := AppendAddress(nil, tc.a)
		if hex.EncodeToString(got) != tc.wire {
			t.Errorf("AppendAddress(%v) = %x, want %s", tc.a, got, tc.wire)
		}
		if tc.a.EncodedLen() != len(got) {
			t.Errorf("EncodedLen = %d, want %d", tc.a.EncodedLen(), len(got))
		}
		a, n, err := ReadAddress(got)
		if err != nil || n != len(got) || a != tc.a {
			t.Errorf("ReadAddress(%s) = %v, %d, %v", tc.wire, a, n, err)
		}
	}
	// IPv4-mapped IPv6 is sent as IPv4.
	mapped := Address{netip.AddrPortFrom(netip.MustParseAddr("::ffff:192.0.2.1"), 1935), OriginObserved}
	if got := hex.EncodeToString(AppendAddress(nil, mapped)); got != "02c0000201078f" {
		t.Fatalf("mapped = %s", got)
	}
}

func TestRFC7016_2_3_11_UserDataGolden(t *testing.T) {
	opts := AppendOptionMarker(AppendUserMetadataOption(nil, []byte("ab")))
	c := UserData{Fragmentation: FragBegin, FlowID: 2, SequenceNumber: 5, FSNOffset: 1, Options: opts, Data: []byte("hi")}
	got := c.Append(nil)
	if want := "10000b" + "90" + "020501" + "0300616200" + "6869"; hex.EncodeToString(got) != want {
		t.Fatalf("got %x, want %s", got, want)
	}
	flags := []struct {
		c    UserData
		want uint8
	}{
		{UserData{Fragmentation: FragWhole}, 0x00},
		{UserData{Fragmentation: FragBegin}, 0x10},
		{UserData{Fragmentation: FragEnd}, 0x20},
		{UserData{Fragmentation: FragMiddle}, 0x30},
		{UserData{Abandon: true}, 0x02},
		{UserData{Final: true}, 0x01},
		{UserData{Options: []byte{0}}, 0x80},
		{UserData{Fragmentation: FragEnd, Abandon: true, Final: true, Options: []byte{0}}, 0xa3},
	}
	for _, f := range flags {
		if got := f.c.Flags(); got != f.want {
			t.Errorf("Flags(%+v) = %#x, want %#x", f.c, got, f.want)
		}
	}
}

func TestRFC7016_2_3_12_NextUserData(t *testing.T) {
	prev := UserData{FlowID: 9, SequenceNumber: 100, FSNOffset: 3, Data: []byte("a")}
	next := UserData{Fragmentation: FragEnd, FlowID: 9, SequenceNumber: 101, FSNOffset: 4, Data: []byte("b")}
	if !next.Follows(prev) {
		t.Fatal("Follows = false")
	}
	wire := next.Next().Append(nil)
	if want := "110002" + "20" + "62"; hex.EncodeToString(wire) != want {
		t.Fatalf("got %x, want %s", wire, want)
	}
	n, err := ParseNextUserData(wire[3:])
	if err != nil {
		t.Fatal(err)
	}
	r := n.Resolve(prev)
	if r.FlowID != 9 || r.SequenceNumber != 101 || r.FSNOffset != 4 || r.FSN() != prev.FSN() || string(r.Data) != "b" || r.Fragmentation != FragEnd {
		t.Fatalf("Resolve = %+v", r)
	}
	notFollow := []UserData{
		{FlowID: 8, SequenceNumber: 101, FSNOffset: 4},
		{FlowID: 9, SequenceNumber: 102, FSNOffset: 5},
		{FlowID: 9, SequenceNumber: 101, FSNOffset: 3}, // FSN moved
	}
	for _, c := range notFollow {
		if c.Follows(prev) {
			t.Errorf("%+v should not follow %+v", c, prev)
		}
	}
	if (UserData{SequenceNumber: 0}).Follows(UserData{SequenceNumber: ^uint64(0)}) {
		t.Error("sequence wrap should not follow")
	}
}

func TestRFC7016_2_3_11_1_UserDataOptions(t *testing.T) {
	var o []byte
	o = AppendUserMetadataOption(o, []byte("meta"))
	o = AppendReturnFlowOption(o, 300)
	o = AppendOption(o, 0x3000, []byte("ignored")) // above the mandatory limit
	o = AppendOptionMarker(o)
	got, err := ParseUserDataOptions(o)
	if err != nil || !got.HasMetadata || string(got.Metadata) != "meta" || !got.HasReturnFlow || got.ReturnFlowID != 300 || got.UnknownMandatory {
		t.Fatalf("ParseUserDataOptions = %+v, %v", got, err)
	}
	if md, ok, err := UserMetadata(o); err != nil || !ok || string(md) != "meta" {
		t.Fatalf("UserMetadata = %q %v %v", md, ok, err)
	}
	if id, ok, err := ReturnFlowAssociation(o); err != nil || !ok || id != 300 {
		t.Fatalf("ReturnFlowAssociation = %d %v %v", id, ok, err)
	}
	mand := AppendOptionMarker(AppendOption(nil, 0x05, nil))
	if got, err := ParseUserDataOptions(mand); err != nil || !got.UnknownMandatory {
		t.Fatalf("unknown mandatory = %+v %v", got, err)
	}
	bad := AppendOptionMarker(AppendOption(nil, OptionReturnFlowAssociation, []byte{0x80}))
	if _, err := ParseUserDataOptions(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad return flow: %v", err)
	}
	if _, ok, err := UserMetadata(nil); ok || err != nil {
		t.Fatalf("no options: %v %v", ok, err)
	}
}

func TestRFC7016_2_3_14_AckRangesGolden(t *testing.T) {
	got, n, err := AppendAckRanges(nil, 1, 16, 10, []SeqRange{{12, 14}, {20, 20}}, 0)
	if err != nil || n != 2 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	// holesMinusOne = 12-10-2 = 0, receivedMinusOne = 2; then 20-14-2 = 4, 0.
	if want := "510007" + "01100a" + "0002" + "0400"; hex.EncodeToString(got) != want {
		t.Fatalf("got %x, want %s", got, want)
	}
}

func TestMaxUserDataFragmentFits(t *testing.T) {
	if MaxUserDataFragment != 1161 {
		t.Fatalf("MaxUserDataFragment = %d", MaxUserDataFragment)
	}
	max := ^uint64(0)
	pkt := AppendHeader(nil, Header{Mode: ModeInitiator, HasTimestamp: true, HasTimestampEcho: true})
	pkt = UserData{FlowID: max, SequenceNumber: max, FSNOffset: max, Data: make([]byte, MaxUserDataFragment)}.Append(pkt)
	if len(pkt) != MaxSessionPacketLength {
		t.Fatalf("worst-case packet is %d bytes", len(pkt))
	}
}
