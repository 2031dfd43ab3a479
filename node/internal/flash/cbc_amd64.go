//go:build amd64 && !purego

package flash

import "golang.org/x/sys/cpu"

// hwCBC is AES-128-CBC in one assembly call per packet, with AES-NI. The
// standard library's CBC makes one AES call per 16-byte block; decryption here
// runs eight blocks at once, since CBC decryption of a block depends only on
// ciphertext, and encryption keeps the whole chain in registers.
type hwCBC struct {
	rk    aes128RoundKeys // encryption keys, or decryption keys when !encrypt
	ready bool            // the CPU has AES-NI and init was given a 16-byte key
}

func (h *hwCBC) init(key []byte, encrypt bool) {
	h.ready = false
	if !cpu.X86.HasAES || len(key) != 16 {
		return
	}
	ek := expandKey128((*[16]byte)(key))
	if encrypt {
		h.rk = ek
	} else {
		h.rk = decryptionKeys(&ek)
	}
	h.ready = true
}

// ok answers whether crypt does the work.
func (h *hwCBC) ok() bool { return h.ready }

// crypt runs CBC with initial vector iv over src (whole blocks) into dst,
// which must be src itself or not overlap it, and answers whether it could:
// false means no AES-NI, and the caller falls back to crypto/cipher.
func (h *hwCBC) crypt(dst, src []byte, iv *[16]byte, encrypt bool) bool {
	if !h.ready {
		return false
	}
	if len(src)%16 != 0 || len(dst) < len(src) {
		panic("flash: CBC input is not whole blocks or output is too short")
	}
	if len(src) == 0 {
		return true
	}
	if encrypt {
		cbcEncryptAESNI(&h.rk, iv, dst, src)
	} else {
		cbcDecryptAESNI(&h.rk, iv, dst, src)
	}
	return true
}

// cbcEncryptAESNI encrypts len(src)/16 blocks of src into dst under the
// encryption round keys rk, chaining from iv.
//
//go:noescape
func cbcEncryptAESNI(rk *aes128RoundKeys, iv *[16]byte, dst, src []byte)

// cbcDecryptAESNI decrypts len(src)/16 blocks of src into dst under the
// decryption round keys rk, chaining from iv. dst may be src.
//
//go:noescape
func cbcDecryptAESNI(rk *aes128RoundKeys, iv *[16]byte, dst, src []byte)
