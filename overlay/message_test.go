package overlay

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func addrBytes(s string) []byte {
	b, _ := netip.MustParseAddrPort(s).MarshalBinary()
	return b
}

func b32(v byte) []byte { return bytes.Repeat([]byte{v}, 32) }

func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    Message
	}{
		{"hello", Message{Type: MsgHello, Estimate: 42, Neighbour: true}},
		{"find_node", Message{Type: MsgFindNode, ReqID: 7, Target: b32(1)}},
		{"nodes", Message{Type: MsgNodes, ReqID: 7, Nodes: []WireContact{{PeerID: b32(2), Addr: addrBytes("10.0.0.1:1935")}}}},
		{"route", Message{Type: MsgRoute, Target: b32(3), MsgID: 9, TTL: 5, Path: [][]byte{b32(4), b32(5)}, Payload: []byte("hi")}},
		{"data", Message{Type: MsgData, Payload: []byte{0, 1, 2}}},
		{"bye", Message{Type: MsgBye}},
		{"register", Message{Type: MsgRegister, ReqID: 3, Target: b32(6)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			m.Version = ProtocolVersion
			b, err := Encode(&m, DefaultMaxMessageSize)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b, DefaultMaxMessageSize)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Encode(got, DefaultMaxMessageSize)
			if !bytes.Equal(b, again) {
				t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
			}
			if got.Type != m.Type || got.ReqID != m.ReqID || got.TTL != m.TTL || got.MsgID != m.MsgID ||
				!bytes.Equal(got.Payload, m.Payload) || !bytes.Equal(got.Target, m.Target) ||
				len(got.Path) != len(m.Path) || len(got.Nodes) != len(m.Nodes) || got.Estimate != m.Estimate || got.Neighbour != m.Neighbour {
				t.Fatalf("got %+v, want %+v", got, m)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"empty", nil, 100, ErrMalformed},
		{"too big", make([]byte, 101), 100, ErrMessageTooBig},
		{"not a map", enc(5), 100, ErrMalformed},
		{"no version", enc(map[string]any{"t": 1}), 100, ErrVersion},
		{"version 2", enc(map[string]any{"v": 2, "t": 1}), 100, ErrVersion},
		{"unknown type", enc(map[string]any{"v": 1, "t": 99}), 100, ErrMalformed},
		{"short target", enc(map[string]any{"v": 1, "t": 2, "k": []byte{1}}), 100, ErrMalformed},
		{"route without path", enc(map[string]any{"v": 1, "t": 4, "k": b32(1)}), 200, ErrMalformed},
		{"route ttl", enc(map[string]any{"v": 1, "t": 4, "k": b32(1), "ttl": 200, "path": [][]byte{b32(2)}}), 200, ErrMalformed},
		{"route short path entry", enc(map[string]any{"v": 1, "t": 4, "k": b32(1), "path": [][]byte{{1}}}), 200, ErrMalformed},
		{"nodes bad addr", enc(map[string]any{"v": 1, "t": 3, "n": []map[string]any{{"p": b32(1), "a": []byte{9}}}}), 200, ErrMalformed},
		{"nodes bad peer", enc(map[string]any{"v": 1, "t": 3, "n": []map[string]any{{"p": []byte{1}, "a": addrBytes("1.2.3.4:5")}}}), 200, ErrMalformed},
		{"wrong field type", enc(map[string]any{"v": 1, "t": "x"}), 100, ErrMalformed},
		{"trailing bytes", append(enc(map[string]any{"v": 1, "t": 1}), 0), 100, ErrMalformed},
		{"huge bin length", []byte{0x81, 0xa1, 'd', 0xc6, 0x7f, 0xff, 0xff, 0xff}, 100, ErrMalformed},
		{"huge array length", []byte{0x81, 0xa1, 'n', 0xdd, 0x7f, 0xff, 0xff, 0xff}, 100, ErrMalformed},
		{"deep nesting", bytes.Repeat([]byte{0x91}, 20), 100, ErrMalformed},
		{"never-used byte", []byte{0xc1}, 100, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.in, tt.max)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncodeTooBig(t *testing.T) {
	_, err := Encode(&Message{Version: 1, Type: MsgData, Payload: make([]byte, 100)}, 50)
	if !errors.Is(err, ErrMessageTooBig) {
		t.Fatalf("got %v", err)
	}
}

func TestCheckMsgpackAcceptsAllKinds(t *testing.T) {
	v := map[string]any{
		"i": []any{1, -1, 200, -200, 70000, -70000, 1 << 40, -(1 << 40), uint64(1 << 63)},
		"f": []any{float32(1.5), 2.5},
		"s": []any{"", "short", string(make([]byte, 40)), string(make([]byte, 300)), string(make([]byte, 70000))},
		"b": []any{[]byte{}, make([]byte, 300), make([]byte, 70000)},
		"n": []any{nil, true, false},
		"a": make([]any, 20),
		"m": map[string]any{"x": map[string]any{}},
	}
	for i := 0; i < 20; i++ {
		v["k"+string(rune('a'+i))] = i
	}
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkMsgpack(b); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(b); i += 97 {
		if checkMsgpack(b[:i]) == nil {
			t.Fatalf("truncation at %d accepted", i)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range []Message{
		{Type: MsgHello, Estimate: 3},
		{Type: MsgFindNode, ReqID: 1, Target: b32(1)},
		{Type: MsgNodes, ReqID: 1, Nodes: []WireContact{{PeerID: b32(2), Addr: addrBytes("10.0.0.1:1")}}},
		{Type: MsgRoute, Target: b32(3), TTL: 2, Path: [][]byte{b32(4)}, Payload: []byte("x")},
	} {
		m.Version = ProtocolVersion
		b, _ := Encode(&m, DefaultMaxMessageSize)
		f.Add(b)
	}
	f.Add([]byte{0x81, 0xa1, 'd', 0xc6, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b, 4096)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same thing.
		b2, err := Encode(m, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Decode(b2, 1<<20)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if m2.Type != m.Type || !bytes.Equal(m2.Payload, m.Payload) || len(m2.Path) != len(m.Path) || len(m2.Nodes) != len(m.Nodes) {
			t.Fatalf("round trip changed the message")
		}
	})
}
