//go:build !amd64 || purego

package flash

// hwCBC has no hardware path on this build: crypto/cipher does all CBC.
type hwCBC struct{}

func (*hwCBC) init([]byte, bool) {}

func (*hwCBC) ok() bool { return false }

func (*hwCBC) crypt(dst, src []byte, iv *[16]byte, encrypt bool) bool { return false }
