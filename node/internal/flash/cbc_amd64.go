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
// different packets are independent, so up to eight run interleaved: AESENC
// has a latency of several cycles and a throughput of one or two per cycle,
// so a lone chain leaves the AES unit mostly idle. Each pass takes the (up
// to) eight packets with the most blocks left and runs them together for as
// many blocks as the shortest of them has left; that packet is then done,
// so there are at most n passes. Two to four packets go through the 4-way
// routine, five to eight through the 8-way one, and a packet left alone
// finishes with the single-chain routine. Call only when ok answers true.
func (h *hwCBC) encryptBatch(bufs *[maxBatch][]byte, n int) {
	var done [maxBatch]int    // bytes encrypted so far
	var iv [maxBatch][16]byte // each chain's last ciphertext block
	for range n {
		// The packets with blocks left, most first.
		var lane [8]int
		var chosen uint
		k := 0
		for ; k < 8; k++ {
			best, most := -1, 0
			for i := range n {
				if left := len(bufs[i]) - done[i]; left > most && chosen&(1<<i) == 0 {
					best, most = i, left
				}
			}
			if best < 0 {
				break
			}
			lane[k], chosen = best, chosen|1<<best
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
		w := 4
		if k > 4 {
			w = 8
		}
		var chain [8][16]byte
		var ptr [8]*byte
		for j := range w {
			l := lane[min(j, k-1)]
			chain[j], ptr[j] = iv[l], &bufs[l][done[l]]
		}
		if w == 4 {
			cbcEncrypt4AESNI(&h.rk, (*[4][16]byte)(chain[:4]), ptr[0], ptr[1], ptr[2], ptr[3], m/16)
		} else {
			cbcEncrypt8AESNI(&h.rk, &chain, &ptr, m/16)
		}
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

// cbcEncrypt8AESNI is cbcEncrypt4AESNI with eight lanes, at p[0..7].
//
//go:noescape
func cbcEncrypt8AESNI(rk *aes128RoundKeys, iv *[8][16]byte, p *[8]*byte, blocks int)
