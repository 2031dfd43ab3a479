package flash

import (
	"bytes"
	"errors"
	"io"
	"math/big"

	"filippo.io/bigmod"
)

// DHGroup2 is the Oakley group 2 of RFC 2409 §6.2: the 1024-bit MODP group
// with generator 2. It is the one group every Flash profile peer must support
// (RFC 7425 §4.2) and the only one this package implements.
const DHGroup2 = 2

// ErrBadPublicKey is returned when a far Diffie-Hellman public key fails the
// RFC 7425 §4.6.2 sanity checks, or names a group this end does not support.
var ErrBadPublicKey = errors.New("flash: unacceptable Diffie-Hellman public key")

// group2Prime is the RFC 2409 §6.2 modulus, 2^1024 - 2^960 - 1 + 2^64 * (floor(2^894 pi) + 129093).
var group2Prime = mustHex("" +
	"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1" +
	"29024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
	"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245" +
	"E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
	"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381" +
	"FFFFFFFFFFFFFFFF")

// group2ExponentBits is the private exponent length. 224 bits gives the
// 112-bit strength the group offers (RFC 3526 §8 style sizing) at a fraction of
// the cost of a full-length exponent; the top bit is forced to one.
const group2ExponentBits = 224

var (
	twoTo24     = new(big.Int).Lsh(big.NewInt(1), 24)
	group2Upper = new(big.Int).Sub(group2Prime, twoTo24)
	// group2Modulus is group2Prime for bigmod, whose exponentiation
	// takes the same time whatever the exponent's bits (math/big's does
	// not, and a static key's exponent serves every handshake) and, at
	// this size, about three quarters of math/big's time.
	group2Modulus = mustModulus(group2Prime.Bytes())
)

func mustModulus(b []byte) *bigmod.Modulus {
	m, err := bigmod.NewModulus(b)
	if err != nil {
		panic("flash: bad built-in modulus")
	}
	return m
}

func mustHex(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("flash: bad built-in constant")
	}
	return v
}

// dhKey is a Diffie-Hellman key pair in group 2.
type dhKey struct {
	priv *big.Int
	exp  []byte // priv, big-endian, as bigmod takes exponents
	pub  []byte // minimal big-endian encoding, as the reference sends it
}

// newDHKey draws a fresh private exponent from rand.
func newDHKey(rand io.Reader) (*dhKey, error) {
	var buf [group2ExponentBits / 8]byte
	if _, err := io.ReadFull(rand, buf[:]); err != nil {
		return nil, err
	}
	buf[0] |= 0x80
	return dhKeyFromPrivate(new(big.Int).SetBytes(buf[:]))
}

// dhKeyFromPrivate rebuilds a key pair from its private exponent.
func dhKeyFromPrivate(priv *big.Int) (*dhKey, error) {
	if priv.Sign() <= 0 || priv.Cmp(group2Prime) >= 0 {
		return nil, ErrBadPublicKey
	}
	k := &dhKey{priv: priv, exp: priv.Bytes()}
	two, err := bigmod.NewNat().SetBytes([]byte{2}, group2Modulus)
	if err != nil {
		return nil, err
	}
	k.pub = modExp(two, k.exp)
	return k, nil
}

// modExp answers y^exp mod p as a minimal big-endian encoding.
func modExp(y *bigmod.Nat, exp []byte) []byte {
	out := bigmod.NewNat().Exp(y, exp, group2Modulus).Bytes(group2Modulus)
	return bytes.TrimLeft(out, "\x00")
}

// sharedSecret computes far^priv mod p after checking far per RFC 7425 §4.6.2.
// The result is the minimal big-endian encoding, which is what both ends feed
// to HMAC-SHA256, so leading zero bytes must not be kept.
func (k *dhKey) sharedSecret(far []byte) ([]byte, error) {
	if !validPublicKey(far) {
		return nil, ErrBadPublicKey
	}
	// bigmod wants at most the modulus's length: drop leading zero
	// bytes, which the checks above allowed.
	y, err := bigmod.NewNat().SetBytes(bytes.TrimLeft(far, "\x00"), group2Modulus)
	if err != nil {
		return nil, ErrBadPublicKey
	}
	return modExp(y, k.exp), nil
}

// validPublicKey applies the §4.6.2 checks the reference applies: the value
// lies in [2^24, p-2^24] and its encoding has at least 16 one bits and 16 zero
// bits. Zero bits are counted the way the reference counts them (bytes in
// order, bits from least significant, zeros only after the first one bit), so
// both ends accept exactly the same keys.
func validPublicKey(b []byte) bool {
	if len(b) == 0 || len(b) > 1024 {
		return false
	}
	y := new(big.Int).SetBytes(b)
	if y.Cmp(twoTo24) < 0 || y.Cmp(group2Upper) > 0 {
		return false
	}
	ones, zeros := 0, 0
	for _, c := range b {
		for bit := 0; bit < 8; bit++ {
			if c&1 != 0 {
				ones++
			} else if ones != 0 {
				zeros++
			}
			c >>= 1
		}
	}
	return ones >= 16 && zeros >= 16
}
