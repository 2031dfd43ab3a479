package flash

import (
	"bytes"
	"math/big"
	"testing"
)

// The shared secret (bigmod, constant time) equals far^priv mod p computed
// with math/big, for keys drawn at random and for far keys at the edges of
// what RFC 7425 §4.6.2 accepts, with and without leading zero bytes. The
// secret is the minimal encoding (the HMAC keys depend on it).
func TestSharedSecretMatchesMathBig(t *testing.T) {
	checked := 0
	for seed := range uint64(20) {
		k, err := newDHKey(testRand(100 + seed))
		if err != nil {
			t.Fatal(err)
		}
		other, err := newDHKey(testRand(200 + seed))
		if err != nil {
			t.Fatal(err)
		}
		fars := map[string][]byte{
			"other's key":             other.pub,
			"with leading zero bytes": append(make([]byte, 200), other.pub...),
			"p - 2^24":                group2Upper.Bytes(),
			"2^64 + 0x5a5a5a5a5a":     new(big.Int).Add(new(big.Int).Lsh(twoTo24, 40), big.NewInt(0x5a5a5a5a5a)).Bytes(),
		}
		for name, far := range fars {
			if !validPublicKey(far) {
				t.Fatalf("%s: not a valid public key", name)
			}
			checked++
			got, err := k.sharedSecret(far)
			if err != nil {
				t.Fatalf("seed %d, %s: %v", seed, name, err)
			}
			want := new(big.Int).Exp(new(big.Int).SetBytes(far), k.priv, group2Prime).Bytes()
			if !bytes.Equal(got, want) {
				t.Fatalf("seed %d, %s: secret %x, want %x", seed, name, got, want)
			}
		}
		wantPub := new(big.Int).Exp(big.NewInt(2), k.priv, group2Prime).Bytes()
		if !bytes.Equal(k.pub, wantPub) {
			t.Fatalf("seed %d: public key %x, want %x", seed, k.pub, wantPub)
		}
		a, _ := k.sharedSecret(other.pub)
		b, _ := other.sharedSecret(k.pub)
		if !bytes.Equal(a, b) || len(a) == 0 || a[0] == 0 {
			t.Fatalf("seed %d: the two ends' secrets differ or are not minimal: %x, %x", seed, a, b)
		}
	}
	if checked != 80 {
		t.Fatalf("%d far keys checked, want 80", checked)
	}
	k, _ := newDHKey(testRand(1))
	for _, far := range [][]byte{nil, {1}, group2Prime.Bytes(), append(group2Prime.Bytes(), 0)} {
		if _, err := k.sharedSecret(far); err != ErrBadPublicKey {
			t.Errorf("far key %x: err %v, want ErrBadPublicKey", far, err)
		}
	}
}

// BenchmarkSharedSecret measures one shared-secret computation (the
// costliest step of every handshake, at each end), against math/big's
// exponentiation of the same numbers in the same run.
func BenchmarkSharedSecret(b *testing.B) {
	k, _ := newDHKey(testRand(1))
	other, _ := newDHKey(testRand(2))
	b.Run("impl=bigmod", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.sharedSecret(other.pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=mathbig", func(b *testing.B) {
		y := new(big.Int).SetBytes(other.pub)
		for b.Loop() {
			new(big.Int).Exp(y, k.priv, group2Prime)
		}
	})
}
