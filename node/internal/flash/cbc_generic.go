//go:build !amd64 || purego

package flash

// hwCBC has no hardware path on this build: crypto/cipher does all CBC.
type hwCBC struct{}

func (*hwCBC) init([]byte, bool) {}

func (*hwCBC) ok() bool { return false }

func (*hwCBC) crypt(dst, src []byte, iv *[16]byte, encrypt bool) bool { return false }

// encryptBatch is never called on this build (ok answers false); it panics
// rather than leave plaintext unencrypted.
func (*hwCBC) encryptBatch(*[maxBatch][]byte, int) { panic("flash: no hardware CBC") }
