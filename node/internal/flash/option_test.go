package flash

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestVLU(t *testing.T) {
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
		{^uint64(0), "81ffffffffffffffff7f"},
	}
	for _, tt := range tests {
		got := appendVLU(nil, tt.v)
		if hex.EncodeToString(got) != tt.wire {
			t.Errorf("appendVLU(%d) = %x, want %s", tt.v, got, tt.wire)
		}
		if vluLen(tt.v) != len(got) {
			t.Errorf("vluLen(%d) = %d, want %d", tt.v, vluLen(tt.v), len(got))
		}
		v, n, err := parseVLU(append(got, 0xaa))
		if err != nil || v != tt.v || n != len(got) {
			t.Errorf("parseVLU(%s) = %d, %d, %v", tt.wire, v, n, err)
		}
	}
}

func TestVLURejects(t *testing.T) {
	for _, wire := range []string{"", "80", "ffff", "82ffffffffffffffff7f", "8080808080808080808000"} {
		b, _ := hex.DecodeString(wire)
		if _, _, err := parseVLU(b); err == nil {
			t.Errorf("parseVLU(%s) succeeded", wire)
		}
	}
}

func TestOptionParse(t *testing.T) {
	tests := []struct {
		name    string
		wire    string
		typ     uint64
		value   string
		marker  bool
		n       int
		wantErr bool
	}{
		{"empty value", "010a", 0x0a, "", false, 2, false},
		{"value", "030f0102", 0x0f, "0102", false, 4, false},
		{"marker", "00", 0, "", true, 1, false},
		{"two byte type", "03811d09", 0x9d, "09", false, 4, false},
		{"length past end", "050f01", 0, "", false, 0, true},
		{"type past option", "0181", 0, "", false, 0, true},
		{"no input", "", 0, "", false, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := hex.DecodeString(tt.wire)
			o, n, err := parseOption(b)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if o.typ != tt.typ || hex.EncodeToString(o.value) != tt.value || o.marker != tt.marker || n != tt.n {
				t.Fatalf("got %+v n=%d", o, n)
			}
		})
	}
}

func TestOptionAppendRoundTrip(t *testing.T) {
	var b []byte
	b = appendOption(b, 0x00, []byte("host"))
	b = appendOption(b, 0x0a, nil)
	b = appendVLUOption(b, 0x15, 2)
	b = appendOption(b, 0x0e, bytes.Repeat([]byte{7}, 200)) // two-byte length
	if want := "05" + hex.EncodeToString([]byte("\x00host")) + "010a" + "021502"; !bytes.HasPrefix(b, mustDecode(want)) {
		t.Fatalf("encoding %x, want prefix %s", b, want)
	}
	if v, ok := findOption(b, 0x15); !ok || !bytes.Equal(v, []byte{2}) {
		t.Fatalf("findOption(0x15) = %x, %v", v, ok)
	}
	if v, ok := findOption(b, 0x0e); !ok || len(v) != 200 {
		t.Fatalf("findOption(0x0e) len %d, %v", len(v), ok)
	}
	// A marker hides what follows it.
	hidden := appendOption(append(appendOption(nil, 0x01, nil), 0), 0x1d, []byte{2})
	if _, ok := findOption(hidden, 0x1d); ok {
		t.Fatal("findOption looked past a marker")
	}
}

func TestChecksum(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint16
	}{
		{"RFC 1071 §3 example", "0001f203f4f5f6f7", 0x220d},
		{"empty", "", 0xffff},
		{"all ones", "ffff", 0x0000},
		{"carry", "ffff0001", 0xfffe},
		// The reference adds a trailing odd byte unshifted.
		{"odd byte", "000105", 0xfff9},
	}
	for _, tt := range tests {
		if got := checksum(mustDecode(tt.in)); got != tt.want {
			t.Errorf("%s: checksum = %04x, want %04x", tt.name, got, tt.want)
		}
	}
}

func mustDecode(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// checksumSlow is RFC 1071 word by word, the way the reference computes it.
func checksumSlow(b []byte) uint16 {
	var sum uint32
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0])
	}
	sum = sum>>16 + sum&0xffff
	sum += sum >> 16
	return ^uint16(sum)
}

func TestChecksumMatchesWordByWord(t *testing.T) {
	r := testRand(7)
	for n := 0; n < 300; n++ {
		b := make([]byte, n)
		r.Read(b)
		if n%3 == 0 {
			for i := range b {
				b[i] = 0xff
			}
		}
		if checksum(b) != checksumSlow(b) {
			t.Fatalf("length %d: %04x, want %04x", n, checksum(b), checksumSlow(b))
		}
	}
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 60000 {
			return
		}
		if checksum(b) != checksumSlow(b) {
			t.Fatalf("%04x != %04x", checksum(b), checksumSlow(b))
		}
	})
}
