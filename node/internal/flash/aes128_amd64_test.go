//go:build amd64 && !purego

package flash

import (
	"encoding/hex"
	"testing"
)

// FIPS-197 Appendix A.1: the AES-128 key expansion, first and last round keys.
func TestExpandKey128FIPS197(t *testing.T) {
	key, _ := hex.DecodeString("2b7e151628aed2a6abf7158809cf4f3c")
	rk := expandKey128((*[16]byte)(key))
	for _, tc := range []struct {
		round int
		want  string
	}{
		{0, "2b7e151628aed2a6abf7158809cf4f3c"},
		{1, "a0fafe1788542cb123a339392a6c7605"},
		{10, "d014f9a8c9ee2589e13f0cc8b6630ca6"},
	} {
		if got := hex.EncodeToString(rk[tc.round*16 : tc.round*16+16]); got != tc.want {
			t.Errorf("round %d: got %s, want %s", tc.round, got, tc.want)
		}
	}
	dk := decryptionKeys(&rk)
	if hex.EncodeToString(dk[:16]) != "d014f9a8c9ee2589e13f0cc8b6630ca6" ||
		hex.EncodeToString(dk[160:]) != "2b7e151628aed2a6abf7158809cf4f3c" {
		t.Errorf("decryption keys do not start and end with the last and first round keys")
	}
}

// The S-box table is the multiplicative inverse in GF(2^8) followed by the
// affine map of FIPS-197 §5.1.1.
func TestSboxTable(t *testing.T) {
	for x := 0; x < 256; x++ {
		var inv byte
		for y := 1; y < 256 && x != 0; y++ {
			if gfMul(byte(x), byte(y)) == 1 {
				inv = byte(y)
				break
			}
		}
		s := inv
		for i := 1; i <= 4; i++ {
			s ^= inv<<i | inv>>(8-i)
		}
		if s ^= 0x63; aesSbox[x] != s {
			t.Fatalf("S-box[%#x] = %#x, want %#x", x, aesSbox[x], s)
		}
	}
}
