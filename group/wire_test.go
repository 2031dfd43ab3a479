package group

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/strata-net/strata/fec"
)

func TestControlRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    control
	}{
		{"avail", control{Type: ctlAvail, Block: 7, Full: 3, Maps: [][]byte{{0xff, 0x0f}, nil, {1}}, Source: true}},
		{"avail empty", control{Type: ctlAvail}},
		{"avail routes", control{Type: ctlAvail, Depth: []byte{0, 1, noRoute}, Delay: []byte{0, 13, noDelay}}},
		{"avail node", control{Type: ctlAvail, Source: true, Node: bytes.Repeat([]byte{7}, ed25519.SignatureSize)}},
		{"avail same routes", control{Type: ctlAvail, Block: 9, Full: 2, SameRoutes: true}},
		{"parity sparing", control{Type: ctlParity, Spare: true}},
		{"parity all", control{Type: ctlParity}},
		{"subscribe", control{Type: ctlSubscribe, Classes: []byte{0, 3}, Modulus: 5}},
		{"unsubscribe", control{Type: ctlSubscribe, Modulus: 5}},
		{"refuse", control{Type: ctlRefuse, Classes: []byte{4}, Modulus: 5}},
		{"pull", control{Type: ctlPull, Block: 1 << 40, Want: []byte{0x81, 0, 1}, Manifest: true}},
		{"busy", control{Type: ctlBusy, Block: 1 << 40, Want: []byte{0x81, 0, 1}}},
		{"post", control{Type: ctlPost, ID: bytes.Repeat([]byte{9}, postIDSize), TTL: 3, Payload: []byte("hello")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			b, err := encodeControl(&c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeControl(b)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.c
			want.Version = ProtocolVersion
			if !reflect.DeepEqual(normalise(*got), normalise(want)) {
				t.Fatalf("got %+v, want %+v", *got, want)
			}
		})
	}
}

// normalise makes empty and nil slices equal for comparison.
func normalise(c control) control {
	for i, m := range c.Maps {
		if len(m) == 0 {
			c.Maps[i] = nil
		}
	}
	if len(c.Maps) == 0 {
		c.Maps = nil
	}
	if len(c.Classes) == 0 {
		c.Classes = nil
	}
	return c
}

func rawControl(t testing.TB, v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeControlRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"not msgpack", []byte{0xc1}, ErrMalformed},
		{"wrong version", rawControl(t, map[string]any{"v": ProtocolVersion + 1, "t": 1}), ErrVersion},
		{"version 1", rawControl(t, map[string]any{"v": 1, "t": 1}), ErrVersion},
		{"no version", rawControl(t, map[string]any{"t": 1}), ErrVersion},
		{"unknown type", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 99}), ErrMalformed},
		{"class out of range", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 2, "p": 5, "c": []byte{5}}), ErrMalformed},
		{"zero modulus", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 2, "p": 0}), ErrMalformed},
		{"bitmap too long", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 4, "w": make([]byte, 33)}), ErrMalformed},
		{"busy bitmap too long", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 7, "w": make([]byte, 33)}), ErrMalformed},
		{"avail too many blocks", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 1, "m": make([][]byte, maxAvailBlocks+1)}), ErrMalformed},
		{"avail too many delays", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 1, "dl": make([]byte, maxClasses+1)}), ErrMalformed},
		{"avail routes new and same", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 1, "h": []byte{1}, "u": true}), ErrMalformed},
		{"avail delays new and same", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 1, "dl": []byte{1}, "u": true}), ErrMalformed},
		{"avail short node signature", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 1, "pn": make([]byte, 63)}), ErrMalformed},
		{"avail overflow", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 1, "b": uint64(1<<64 - 1), "m": [][]byte{{1}, {1}}}), ErrMalformed},
		{"post short id", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 5, "i": []byte{1}}), ErrMalformed},
		{"post too big", rawControl(t, map[string]any{"v": ProtocolVersion, "t": 5, "i": make([]byte, 16), "d": make([]byte, MaxPostSize+1)}), ErrMalformed},
		{"too big", make([]byte, MaxControlSize+1), ErrTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeControl(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func testManifestMsg(t testing.TB) ([]byte, fec.Piece) {
	enc, err := fec.NewEncoder(fec.Params{K: 4, M: 2, FragmentSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(testNow, bytes.Repeat([]byte("abcdefgh"), 8))
	blk, ok := enc.Next()
	if !ok {
		t.Fatal("no block")
	}
	mf, _ := blk.Manifest()
	raw, _ := mf.MarshalBinary()
	sm := &signedManifest{Stamp: 42, Sig: make([]byte, 64), Manifest: mf, raw: raw}
	return appendManifestMsg(nil, sm), blk.Pieces[1]
}

func TestDataRoundTrip(t *testing.T) {
	mb, p := testManifestMsg(t)
	sm, gp, _, err := decodeData(mb)
	if err != nil || sm == nil || gp != nil {
		t.Fatalf("manifest: %v", err)
	}
	if sm.Stamp != 42 || len(sm.Sig) != 64 || sm.Manifest.Verify(p) != nil {
		t.Fatalf("manifest decoded wrong: %+v", sm)
	}
	pb, _ := appendPieceMsg(nil, viaPull, p)
	sm, gp, how, err := decodeData(pb)
	if err != nil || sm != nil || gp == nil || how != viaPull || !bytes.Equal(gp.Data, p.Data) || gp.Index != p.Index {
		t.Fatalf("piece: %v %+v", err, gp)
	}
	bad := [][]byte{nil, {dataPiece}, {dataPiece, 9}, {7, 1}, mb[:9], append([]byte{dataManifest}, make([]byte, 9)...)}
	for i, b := range bad {
		if _, _, _, err := decodeData(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("bad input %d: %v", i, err)
		}
	}
}

func TestHaveMessage(t *testing.T) {
	for _, seq := range []uint64{0, 1, 1 << 40, ^uint64(0)} {
		b := appendHaveMsg(nil, seq)
		got, err := decodeHave(b)
		if err != nil || got != seq || len(b) != haveMsgLen {
			t.Errorf("have %d: got %d, %v (%d bytes)", seq, got, err, len(b))
		}
	}
	good := appendHaveMsg(nil, 7)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", good[:8]},
		{"long", append(slices.Clone(good), 0)},
		{"other type", append([]byte{dataPiece}, good[1:]...)},
	} {
		if _, err := decodeHave(tc.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// decodeData takes manifests and pieces only.
	if _, _, _, err := decodeData(good); !errors.Is(err, ErrMalformed) {
		t.Errorf("decodeData took a have message: %v", err)
	}
}

func TestParseMetadata(t *testing.T) {
	gid := [32]byte{1, 2, 3}
	tests := []struct {
		in   string
		role string
		ok   bool
	}{
		{string(flowMetadata(gid, roleControl)), roleControl, true},
		{string(flowMetadata(gid, "d0")), "d0", true},
		{string(flowMetadata(gid, "d64")), "d64", true},
		{string(flowMetadata(gid, "d65")), "", false},
		{string(flowMetadata(gid, "d")), "", false},
		{string(flowMetadata(gid, "dx")), "", false},
		{string(flowMetadata(gid, "e")), "", false},
		{"strata/overlay/1 " + string(flowMetadata(gid, "c")[len(MetadataPrefix):]), "", false},
		{MetadataPrefix + "zz c", "", false},
	}
	for _, tt := range tests {
		g, role, ok := parseMetadata(tt.in)
		if ok != tt.ok || role != tt.role || (ok && g != gid) {
			t.Errorf("%q: got %v %q %v", tt.in, g, role, ok)
		}
	}
}

func FuzzDecodeControl(f *testing.F) {
	for _, c := range []control{
		{Type: ctlAvail, Block: 7, Full: 3, Maps: [][]byte{{0xff}}},
		{Type: ctlAvail, Depth: []byte{0, 2, noRoute}, Delay: []byte{0, 9, noDelay}, Node: make([]byte, 64)},
		{Type: ctlSubscribe, Classes: []byte{0, 3}, Modulus: 5},
		{Type: ctlPull, Block: 9, Want: []byte{3}, Manifest: true},
		{Type: ctlBusy, Block: 9, Want: []byte{3}, Manifest: true},
		{Type: ctlPost, ID: make([]byte, postIDSize), TTL: 3, Payload: []byte("x")},
		{Type: ctlAvail, Block: 9, SameRoutes: true},
		{Type: ctlParity, Spare: true},
	} {
		b, _ := encodeControl(&c)
		f.Add(b)
	}
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeControl(b)
		if err != nil {
			return
		}
		// A valid message re-encodes and decodes to a valid message.
		out, err := encodeControl(c)
		if err != nil {
			return
		}
		if _, err := decodeControl(out); err != nil {
			t.Fatalf("re-encoded message invalid: %v", err)
		}
	})
}

func FuzzDecodeData(f *testing.F) {
	mb, p := testManifestMsg(f)
	pb, _ := appendPieceMsg(nil, viaPush, p)
	f.Add(mb)
	f.Add(pb)
	f.Add([]byte{dataPiece, viaPull})
	f.Add(appendHaveMsg(nil, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		if seq, err := decodeHave(b); err == nil && !bytes.Equal(appendHaveMsg(nil, seq), b) {
			t.Fatalf("have %d does not encode back to its input", seq)
		}
		sm, gp, _, err := decodeData(b)
		if err != nil {
			return
		}
		if (sm == nil) == (gp == nil) {
			t.Fatal("exactly one of manifest and piece must be set")
		}
		if gp != nil {
			if err := gp.Check(); err != nil {
				t.Fatalf("accepted piece fails Check: %v", err)
			}
		}
	})
}

var testNow = time.Unix(1700000000, 0)

// The newest block an availability message describes: the last non-empty
// map, else the last whole block.
func TestAvailNewest(t *testing.T) {
	for _, c := range []struct {
		name string
		c    control
		seq  uint64
		ok   bool
	}{
		{"nothing", control{Block: 7}, 0, false},
		{"empty maps", control{Block: 7, Maps: [][]byte{nil, {}}}, 0, false},
		{"whole only", control{Block: 7, Full: 3}, 9, true},
		{"whole, then empty maps", control{Block: 7, Full: 3, Maps: [][]byte{{}, nil}}, 9, true},
		{"maps only", control{Block: 7, Maps: [][]byte{{1}, {0x80}}}, 8, true},
		{"whole and maps", control{Block: 7, Full: 2, Maps: [][]byte{{1}, {3}}}, 10, true},
		{"last map empty", control{Block: 7, Full: 2, Maps: [][]byte{{1}, {}}}, 9, true},
	} {
		seq, ok := c.c.newest()
		if seq != c.seq || ok != c.ok {
			t.Errorf("%s: newest %d, %v; want %d, %v", c.name, seq, ok, c.seq, c.ok)
		}
	}
}

// Encoding and decoding reuse their codec: a message encoded earlier must
// keep its bytes, and a decoded message must not take fields of the one
// decoded before it.
func TestControlCodecReuse(t *testing.T) {
	a := &control{Type: ctlAvail, Block: 7, Full: 3, Maps: [][]byte{{0xff, 0x0f}}, Depth: []byte{0, 2}}
	b := &control{Type: ctlPull, Block: 9, Want: []byte{3}}
	ea, err := encodeControl(a)
	if err != nil {
		t.Fatal(err)
	}
	keep := bytes.Clone(ea)
	eb, err := encodeControl(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ea, keep) {
		t.Fatal("encoding a second message changed the first one's bytes")
	}
	for _, tt := range []struct {
		in   []byte
		want *control
	}{{ea, a}, {eb, b}, {ea, a}} {
		got, err := decodeControl(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != tt.want.Type || got.Block != tt.want.Block || got.Full != tt.want.Full ||
			!bytes.Equal(got.Want, tt.want.Want) || !bytes.Equal(got.Depth, tt.want.Depth) || len(got.Maps) != len(tt.want.Maps) {
			t.Fatalf("decoded %+v, want %+v", got, tt.want)
		}
	}
}

// BenchmarkControlCodec encodes and decodes an availability message.
func BenchmarkControlCodec(b *testing.B) {
	c := &control{Type: ctlAvail, Block: 700, Full: 3, Maps: [][]byte{{0xff, 0xff, 0x0f}, {0x01, 0, 0}}, Depth: []byte{1, 2, 3, 4}, Delay: []byte{9, 9, 9, 9}}
	b.ReportAllocs()
	for b.Loop() {
		enc, err := encodeControl(c)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodeControl(enc); err != nil {
			b.Fatal(err)
		}
	}
}
