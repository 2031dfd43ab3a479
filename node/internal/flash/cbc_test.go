package flash

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// stdCBC is the reference: crypto/cipher's CBC with a fresh BlockMode.
func stdCBC(t testing.TB, key, iv, src []byte, encrypt bool) []byte {
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(src))
	if encrypt {
		cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, src)
	} else {
		cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, src)
	}
	return out
}

// hwOrSkip runs the hardware CBC with iv, or skips the test on builds and
// CPUs without it.
func hwOrSkip(t testing.TB, c *cbc, dst, src []byte, iv *[16]byte) {
	if !c.hw.crypt(dst, src, iv, c.encr) {
		t.Skip("no hardware CBC on this build or CPU")
	}
}

// FIPS-197 Appendix C.1: one AES-128 block, which is CBC under a zero IV.
func TestCBCFIPS197Block(t *testing.T) {
	key, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	plain, _ := hex.DecodeString("00112233445566778899aabbccddeeff")
	want, _ := hex.DecodeString("69c4e0d86a7b0430d8cdb78070b4c55a")
	var enc, dec cbc
	enc.init(key, true)
	dec.init(key, false)
	got := make([]byte, 16)
	enc.crypt(got, plain)
	if !bytes.Equal(got, want) {
		t.Fatalf("encrypt: got %x, want %x", got, want)
	}
	dec.crypt(got, got)
	if !bytes.Equal(got, plain) {
		t.Fatalf("decrypt: got %x, want %x", got, plain)
	}
}

// Every length from 16 to 4096 bytes, random keys and IVs, in place and
// out of place, both directions, against crypto/cipher.
func TestCBCMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	for n := 16; n <= 4096; n += 16 {
		key := make([]byte, 16)
		fill(key)
		var iv [16]byte
		if n%64 != 0 { // a zero IV, as the profile uses, for a quarter of them
			fill(iv[:])
		}
		src := make([]byte, n)
		fill(src)
		for _, encrypt := range []bool{true, false} {
			want := stdCBC(t, key, iv[:], src, encrypt)
			var c cbc
			c.init(key, encrypt)
			if iv == [16]byte{} {
				// The path Seal and Open take, on every build.
				out := make([]byte, n)
				c.crypt(out, src)
				if !bytes.Equal(out, want) {
					t.Fatalf("n=%d encrypt=%v: crypt differs from crypto/cipher", n, encrypt)
				}
			}
			if !c.hw.ok() {
				continue
			}
			// Out of place, into a larger buffer that must be untouched past n.
			out := make([]byte, n+16)
			for i := range out {
				out[i] = 0xa5
			}
			c.hw.crypt(out, src, &iv, encrypt)
			if !bytes.Equal(out[:n], want) {
				t.Fatalf("n=%d encrypt=%v: out of place differs from crypto/cipher", n, encrypt)
			}
			if !bytes.Equal(out[n:], bytes.Repeat([]byte{0xa5}, 16)) {
				t.Fatalf("n=%d encrypt=%v: wrote past the input length", n, encrypt)
			}
			in := bytes.Clone(src)
			c.hw.crypt(in, in, &iv, encrypt)
			if !bytes.Equal(in, want) {
				t.Fatalf("n=%d encrypt=%v: in place differs from crypto/cipher", n, encrypt)
			}
		}
	}
}

func TestCBCEmptyAndBadLengths(t *testing.T) {
	var c cbc
	c.init(DefaultSessionKey[:], false)
	c.crypt(nil, nil) // no blocks: nothing to do, no panic
	if !c.hw.ok() {
		t.Skip("no hardware CBC on this build or CPU")
	}
	for _, tc := range []struct {
		name     string
		dst, src int
	}{
		{"partial block", 32, 17},
		{"short dst", 16, 32},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			c.hw.crypt(make([]byte, tc.dst), make([]byte, tc.src), &c.zero, false)
		}()
	}
}

func FuzzCBC(f *testing.F) {
	f.Add(DefaultSessionKey[:], make([]byte, 16), make([]byte, 16), false)
	f.Add([]byte("0123456789abcdef"), []byte("fedcba9876543210"), bytes.Repeat([]byte{7}, 1248), true)
	f.Add(bytes.Repeat([]byte{0xff}, 16), make([]byte, 16), bytes.Repeat([]byte{1, 2, 3}, 100), false)
	f.Fuzz(func(t *testing.T, key, ivb, data []byte, inPlace bool) {
		if len(key) != 16 || len(ivb) != 16 {
			return
		}
		data = data[:len(data)&^15]
		iv := [16]byte(ivb)
		for _, encrypt := range []bool{true, false} {
			want := stdCBC(t, key, iv[:], data, encrypt)
			var c cbc
			c.init(key, encrypt)
			got := make([]byte, len(data))
			src := data
			if inPlace {
				copy(got, data)
				src = got
			}
			if iv == [16]byte{} {
				c.crypt(got, src)
			} else {
				hwOrSkip(t, &c, got, src, &iv)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encrypt=%v len=%d: differs from crypto/cipher", encrypt, len(data))
			}
		}
	})
}

func benchmarkCBC(b *testing.B, encrypt bool) {
	var c cbc
	c.init(DefaultSessionKey[:], encrypt)
	buf := make([]byte, 1200)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		c.crypt(buf, buf)
	}
}

func BenchmarkCBCEncrypt1200(b *testing.B) { benchmarkCBC(b, true) }
func BenchmarkCBCDecrypt1200(b *testing.B) { benchmarkCBC(b, false) }
