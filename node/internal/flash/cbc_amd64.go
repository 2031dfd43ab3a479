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

// encryptBatch CBC-encrypts bufs[:n] in place, each from a zero IV, as n
// crypt calls would. A packet's blocks form a chain, but the chains of
// different packets are independent, so up to four run interleaved: AESENC
// has a latency of several cycles and a throughput of one or more per cycle,
// so a lone chain leaves the AES unit mostly idle. Each pass takes the (up
// to) four packets with the most blocks left and runs them together for as
// many blocks as the shortest of them has left; that packet is then done,
// so there are at most n passes. A packet left alone finishes with the
// single-chain routine. Call only when ok answers true.
func (h *hwCBC) encryptBatch(bufs *[maxBatch][]byte, n int) {
	var done [maxBatch]int    // bytes encrypted so far
	var iv [maxBatch][16]byte // each chain's last ciphertext block
	for range n {
		// The up to four packets with the most bytes left.
		var lane [4]int
		k := 0
		for ; k < 4; k++ {
			best, most := -1, 0
			for i := range n {
				left := len(bufs[i]) - done[i]
				if left > most && (k < 1 || lane[0] != i) && (k < 2 || lane[1] != i) && (k < 3 || lane[2] != i) {
					best, most = i, left
				}
			}
			if best < 0 {
				break
			}
			lane[k] = best
		}
		if k == 0 {
			return
		}
		if k == 1 {
			l := lane[0]
			b := bufs[l][done[l]:]
			cbcEncryptAESNI(&h.rk, &iv[l], b, b)
			done[l] = len(bufs[l])
			continue
		}
		m := len(bufs[lane[k-1]]) - done[lane[k-1]] // the fewest left, in bytes
		// Fill unused lanes with copies of the last: a copy computes the same
		// blocks from the same chain value and stores the same bytes, after
		// every lane has loaded its plaintext block for the step.
		for j := k; j < 4; j++ {
			lane[j] = lane[k-1]
		}
		var chain [4][16]byte
		for j := range 4 {
			chain[j] = iv[lane[j]]
		}
		cbcEncrypt4AESNI(&h.rk, &chain,
			&bufs[lane[0]][done[lane[0]]], &bufs[lane[1]][done[lane[1]]],
			&bufs[lane[2]][done[lane[2]]], &bufs[lane[3]][done[lane[3]]], m/16)
		for j := range k {
			iv[lane[j]] = chain[j]
			done[lane[j]] += m
		}
	}
}

// cbcEncrypt4AESNI CBC-encrypts blocks 16-byte blocks in place at each of
// p0..p3, four independent chains interleaved, each starting from and
// leaving its last ciphertext block in iv[lane]. Lanes may be the same
// buffer with the same chain value (they then store identical bytes).
//
//go:noescape
func cbcEncrypt4AESNI(rk *aes128RoundKeys, iv *[4][16]byte, p0, p1, p2, p3 *byte, blocks int)
