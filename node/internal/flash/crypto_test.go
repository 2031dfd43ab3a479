package flash

import (
	"bytes"
	"errors"
	"testing"
)

// The goldens below were computed outside this package: the checksum and
// padding by a separate script, AES-128-CBC by the OpenSSL command line tool,
// and HMAC-SHA256 by another language's standard library.

const (
	goldenDefaultPlain  = "0b123430002a210f000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
	goldenDefaultCipher = "05c836201f39e8c82ed6606a5b76ce2f387c51d78e352b36cf5977baee5cbc91ebcb84015951801323715eb327254cdf1f057f4ba54e5d31b91acfca4d59bda6"
)

// RFC 7425 §4.1: startup packets use the default session key, a checksum and
// 0xff padding.
func TestSection4_1DefaultKeyGolden(t *testing.T) {
	plain, want := mustDecode(goldenDefaultPlain), mustDecode(goldenDefaultCipher)
	got := NewDefaultCrypto().Seal(nil, plain)
	if !bytes.Equal(got, want) {
		t.Fatalf("Seal = %x\nwant   %x", got, want)
	}
	opened, err := NewDefaultCrypto().Open(nil, want)
	if err != nil {
		t.Fatal(err)
	}
	// 2 checksum bytes + 56 plaintext bytes pad to 64: 6 bytes of 0xff remain.
	wantOpen := append(bytes.Clone(plain), bytes.Repeat([]byte{0xff}, 6)...)
	if !bytes.Equal(opened, wantOpen) {
		t.Fatalf("Open = %x\nwant   %x", opened, wantOpen)
	}
}

// RFC 7425 §4.6.5 key derivation, checked against independently computed values.
func TestSection4_6_5KeyDerivationGolden(t *testing.T) {
	secret := make([]byte, 128)
	for i := range secret {
		secret[i] = byte(7*i + 3)
	}
	sknc, skfc := []byte("initiator component"), []byte("responder component")
	tests := []struct {
		name  string
		neg   negotiation
		plain string
		want  string
	}{
		{
			name:  "HMAC and sequence numbers",
			neg:   negotiation{hmacSend: true, hmacSendLen: 16, sseqSend: true},
			plain: "8d00010203",
			want:  "81c1d30dc1c744b0e9add50064b902952aaf44e807d855c7a2bdead99fcd941a",
		},
		{
			name:  "checksum after an odd-length sequence number",
			neg:   negotiation{sseqSend: true},
			plain: "8d00010203",
			want:  "4d48800d5b0e7feb1dacd4b236b266bd",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSessionCrypto(tt.neg, bytes.Clone(secret), sknc, skfc)
			if got := hexString(s.NearNonce()); got != "b747cf3156e46e7e46ab25b0bf777a8ebd9671bb4217725d586747fe706bea1a" {
				t.Errorf("near nonce %s", got)
			}
			if got := hexString(s.FarNonce()); got != "f331ad2463b43b7c128dac6c1c3f2e16b90b21c977443cfa0c258fe4385daae7" {
				t.Errorf("far nonce %s", got)
			}
			if got := hexString(s.Seal(nil, mustDecode(tt.plain))); got != tt.want {
				t.Errorf("Seal = %s, want %s", got, tt.want)
			}
		})
	}
}

// sessionPair builds the two ends of one session from a fixed secret, with
// negotiations as a and b would hold them after keying.
func sessionPair(a, b negotiation) (*SessionCrypto, *SessionCrypto) {
	secret := bytes.Repeat([]byte{0x5a, 0xc3}, 64)
	sknc, skfc := []byte("skic"), []byte("skrc")
	return newSessionCrypto(a, bytes.Clone(secret), sknc, skfc), newSessionCrypto(b, bytes.Clone(secret), skfc, sknc)
}

var protectionModes = []struct {
	name string
	a, b negotiation
}{
	{"checksum", negotiation{}, negotiation{}},
	{"sseq", negotiation{sseqSend: true, sseqRecv: true}, negotiation{sseqSend: true, sseqRecv: true}},
	{"hmac", negotiation{hmacSend: true, hmacRecv: true, hmacSendLen: 16, hmacRecvLen: 10}, negotiation{hmacSend: true, hmacRecv: true, hmacSendLen: 10, hmacRecvLen: 16}},
	{"hmac+sseq", negotiation{hmacSend: true, hmacRecv: true, sseqSend: true, sseqRecv: true, hmacSendLen: 32, hmacRecvLen: 4}, negotiation{hmacSend: true, hmacRecv: true, sseqSend: true, sseqRecv: true, hmacSendLen: 4, hmacRecvLen: 32}},
}

func TestSealOpenRoundTrip(t *testing.T) {
	for _, m := range protectionModes {
		t.Run(m.name, func(t *testing.T) {
			a, b := sessionPair(m.a, m.b)
			for size := 1; size <= 70; size++ {
				plain := make([]byte, size)
				for i := range plain {
					plain[i] = byte(i * size)
				}
				for _, dir := range []struct{ tx, rx *SessionCrypto }{{a, b}, {b, a}} {
					sealed := dir.tx.Seal([]byte("prefix"), plain)
					ct := sealed[len("prefix"):]
					if len(ct) > size+MaxOverhead || len(ct) < 16 {
						t.Fatalf("size %d: ciphertext %d bytes", size, len(ct))
					}
					opened, err := dir.rx.Open([]byte("x"), ct)
					if err != nil {
						t.Fatalf("size %d: %v", size, err)
					}
					if opened[0] != 'x' || !bytes.Equal(opened[1:1+size], plain) {
						t.Fatalf("size %d: opened %x", size, opened)
					}
					for _, c := range opened[1+size:] {
						if c != 0xff {
							t.Fatalf("size %d: padding %x", size, opened[1+size:])
						}
					}
				}
			}
		})
	}
}

func TestOpenInPlace(t *testing.T) {
	a, b := sessionPair(protectionModes[3].a, protectionModes[3].b)
	plain := []byte("in place decryption keeps the plaintext")
	ct := a.Seal(nil, plain)
	got, err := b.Open(ct[:0], ct)
	if err != nil || !bytes.HasPrefix(got, plain) {
		t.Fatalf("Open in place = %q, %v", got, err)
	}
}

func TestOpenRejects(t *testing.T) {
	for _, m := range protectionModes {
		t.Run(m.name, func(t *testing.T) {
			a, b := sessionPair(m.a, m.b)
			plain := bytes.Repeat([]byte("tamper "), 20)
			ct := a.Seal(nil, plain)
			hmacLen := b.Params().HMACRecvLength
			wantTamper := ErrBadChecksum
			if b.Params().HMACRecv {
				wantTamper = ErrBadHMAC
			}
			for i := range ct {
				bad := bytes.Clone(ct)
				bad[i] ^= 0x10
				_, err := b.Open(nil, bad)
				if err == nil {
					t.Fatalf("tampered byte %d accepted", i)
				}
				// Without an HMAC a flipped bit may also garble the sequence
				// number into a malformed or replayed one.
				if !errors.Is(err, wantTamper) && !(wantTamper == ErrBadChecksum && (errors.Is(err, ErrMalformed) || errors.Is(err, ErrReplay))) {
					t.Fatalf("tampered byte %d: %v, want %v", i, err, wantTamper)
				}
			}
			lengthCases := [][]byte{nil, ct[:hmacLen], ct[:len(ct)-1], append(bytes.Clone(ct), 0)}
			for _, bad := range lengthCases {
				if _, err := b.Open(nil, bad); !errors.Is(err, ErrBadLength) {
					t.Fatalf("length %d: %v, want ErrBadLength", len(bad), err)
				}
			}
			// Wrong key: the default crypto cannot open a session packet.
			if _, err := NewDefaultCrypto().Open(nil, ct[:len(ct)-hmacLen]); err == nil {
				t.Fatal("default key opened a session packet")
			}
			// The untouched packet still opens (drops did not disturb state).
			if _, err := b.Open(nil, ct); err != nil {
				t.Fatalf("clean packet: %v", err)
			}
		})
	}
}

func TestWrongDirectionFails(t *testing.T) {
	a, _ := sessionPair(negotiation{}, negotiation{})
	ct := a.Seal(nil, []byte("to the far end"))
	// a's receive key is the far end's send key, not its own.
	if _, err := a.Open(nil, ct); !errors.Is(err, ErrBadChecksum) {
		t.Fatalf("own packet: %v, want ErrBadChecksum", err)
	}
}

// RFC 7425 §4.6.5: session sequence numbers defeat replays.
func TestReplay(t *testing.T) {
	m := protectionModes[1]
	a, b := sessionPair(m.a, m.b)
	var pkts [][]byte
	for i := 0; i < 100; i++ {
		pkts = append(pkts, a.Seal(nil, []byte{byte(i)}))
	}
	steps := []struct {
		seq  int
		want error
	}{
		{0, nil}, {0, ErrReplay}, {2, nil}, {1, nil}, {1, ErrReplay}, {2, ErrReplay},
		// After 40, everything up to 40-32 = 8 is too old; 9 is still in the window.
		{40, nil}, {8, ErrReplay}, {3, ErrReplay}, {9, nil}, {9, ErrReplay}, {39, nil},
		{99, nil}, {67, ErrReplay}, {68, nil}, {98, nil}, {41, ErrReplay},
	}
	for _, s := range steps {
		_, err := b.Open(nil, pkts[s.seq])
		if !errors.Is(err, s.want) {
			t.Fatalf("seq %d: %v, want %v", s.seq, err, s.want)
		}
	}
}

func TestReplayWindowMatchesReference(t *testing.T) {
	// Model of the reference: a set of seen numbers, and on each accepted
	// number s > 32 every number up to s-32 counts as seen.
	seen := map[uint64]bool{}
	var floor uint64 // numbers < floor are seen
	ref := func(s uint64) bool {
		if s < floor || seen[s] {
			return false
		}
		seen[s] = true
		if s > replayWindow && s-replayWindow+1 > floor {
			floor = s - replayWindow + 1
		}
		return true
	}
	var w replayWindowState
	x := uint64(12345)
	for i := 0; i < 20000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		base := uint64(i / 4)
		s := base + (x>>33)%48
		if s >= 20 {
			s -= 20
		}
		if got, want := w.accept(s), ref(s); got != want {
			t.Fatalf("step %d seq %d: accept %v, reference %v", i, s, got, want)
		}
	}
}

func TestOverhead(t *testing.T) {
	for _, m := range protectionModes {
		a, _ := sessionPair(m.a, m.b)
		for size := 0; size < 40; size++ {
			over := a.Overhead()
			ct := a.Seal(nil, make([]byte, size))
			if len(ct)-size > over || over > MaxOverhead {
				t.Fatalf("%s size %d: added %d, Overhead %d", m.name, size, len(ct)-size, over)
			}
		}
	}
}

func TestSealDoesNotAllocate(t *testing.T) {
	for _, m := range protectionModes {
		a, b := sessionPair(m.a, m.b)
		plain := make([]byte, 1200)
		buf := make([]byte, 0, 1200+MaxOverhead)
		out := make([]byte, 0, 1200+MaxOverhead)
		var ct []byte
		if n := testing.AllocsPerRun(50, func() { ct = a.Seal(buf[:0], plain) }); n != 0 {
			t.Errorf("%s: Seal allocates %v times", m.name, n)
		}
		if m.b.sseqRecv {
			continue // each Open needs a fresh sequence number
		}
		if n := testing.AllocsPerRun(50, func() {
			if _, err := b.Open(out[:0], ct); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: Open allocates %v times", m.name, n)
		}
	}
}

func benchmarkSealOpen(b *testing.B, m int, open bool) {
	tx, rx := sessionPair(protectionModes[m].a, protectionModes[m].b)
	rx.p.SSeqRecv = false // replay checks would refuse the repeated packet
	plain := make([]byte, 1200)
	buf := make([]byte, 0, 1200+MaxOverhead)
	out := make([]byte, 0, 1200+MaxOverhead)
	ct := tx.Seal(nil, plain)
	b.SetBytes(1200)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if open {
			if _, err := rx.Open(out[:0], ct); err != nil {
				b.Fatal(err)
			}
		} else {
			tx.Seal(buf[:0], plain)
		}
	}
}

func BenchmarkSeal1200(b *testing.B)     { benchmarkSealOpen(b, 0, false) }
func BenchmarkOpen1200(b *testing.B)     { benchmarkSealOpen(b, 0, true) }
func BenchmarkSealHMAC1200(b *testing.B) { benchmarkSealOpen(b, 2, false) }
func BenchmarkOpenHMAC1200(b *testing.B) { benchmarkSealOpen(b, 2, true) }

func hexString(b []byte) string { return string(appendHex(nil, b)) }

func appendHex(dst, b []byte) []byte {
	const digits = "0123456789abcdef"
	for _, c := range b {
		dst = append(dst, digits[c>>4], digits[c&15])
	}
	return dst
}

// The fallback CBC (for a BlockMode without SetIV) must match the fast path.
func TestManualCBCMatches(t *testing.T) {
	for _, encrypt := range []bool{true, false} {
		var fast, slow cbc
		fast.init(DefaultSessionKey[:], encrypt)
		slow.init(DefaultSessionKey[:], encrypt)
		slow.hw = hwCBC{} // no assembly either
		slow.software()
		slow.setIV = nil // and no SetIV: the manual loop
		src := make([]byte, 96)
		for i := range src {
			src[i] = byte(i * 7)
		}
		a, b := make([]byte, len(src)), bytes.Clone(src)
		fast.crypt(a, src)
		slow.crypt(b, b) // in place
		if !bytes.Equal(a, b) {
			t.Fatalf("encrypt=%v: manual CBC differs", encrypt)
		}
		// Twice in a row: the IV must be reset each time.
		fast.crypt(a, src)
		if !bytes.Equal(a, b) {
			t.Fatalf("encrypt=%v: IV not reset", encrypt)
		}
	}
}
