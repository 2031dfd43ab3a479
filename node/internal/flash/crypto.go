package flash

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"hash"
)

// Errors from Open, one per reason a packet is dropped, so drops can be counted.
var (
	// ErrBadLength: the packet (less any HMAC) is empty or not a whole number
	// of AES blocks, or too short to hold the negotiated HMAC.
	ErrBadLength = errors.New("flash: encrypted packet length is not a positive multiple of 16")
	// ErrBadHMAC: the negotiated HMAC does not verify.
	ErrBadHMAC = errors.New("flash: packet HMAC mismatch")
	// ErrBadChecksum: the Internet checksum does not verify; with the default
	// key this usually means the packet is for another session or garbage.
	ErrBadChecksum = errors.New("flash: packet checksum mismatch")
	// ErrMalformed: the decrypted header (session sequence number or checksum
	// field) does not fit in the packet.
	ErrMalformed = errors.New("flash: malformed decrypted packet header")
	// ErrReplay: the session sequence number was already seen or is too old.
	ErrReplay = errors.New("flash: replayed or stale session sequence number")
)

// DefaultSessionKey is the well-known key of RFC 7425 §4.1, "Adobe Systems 02"
// in ASCII, which protects startup packets (session ID 0, IHello to RIKeying)
// and anything sent before keying completes.
var DefaultSessionKey = [16]byte{'A', 'd', 'o', 'b', 'e', ' ', 'S', 'y', 's', 't', 'e', 'm', 's', ' ', '0', '2'}

const (
	// MinHMACLength and MaxHMACLength bound a negotiated HMAC (RFC 7425 §4.6.4).
	MinHMACLength = 4
	MaxHMACLength = sha256.Size
	// DefaultHMACLength is the truncated HMAC length offered by default (RFC 2104 §5).
	DefaultHMACLength = 16
	// MaxOverhead bounds the bytes Seal adds to a plaintext: a session
	// sequence number (at most 10), padding (up to 15 bytes, or a whole block
	// for an empty plaintext), and the larger of the 2-byte checksum and a
	// 32-byte HMAC.
	MaxOverhead = maxVLULen + aes.BlockSize + MaxHMACLength
	// replayWindow is how far behind the newest session sequence number a
	// packet may be and still be accepted (the reference's MAX_SSEQ_GAP).
	replayWindow = 32
)

// Params reports what protection a SessionCrypto applies in each direction
// after negotiation (RFC 7425 §4.6.4, §4.6.5).
type Params struct {
	HMACSend       bool // outgoing packets carry an HMAC instead of a checksum
	HMACSendLength int  // bytes of HMAC appended when HMACSend
	HMACRecv       bool // incoming packets must carry an HMAC
	HMACRecvLength int  // bytes of HMAC expected when HMACRecv
	SSeqSend       bool // outgoing packets carry a session sequence number
	SSeqRecv       bool // incoming packets must carry one, checked against replay
}

// SessionCrypto protects the packets of one session, or of the startup
// session when built by NewDefaultCrypto. Encryption is AES-128-CBC with a
// zero IV; integrity is the Internet checksum or a truncated HMAC-SHA256.
//
// A SessionCrypto is not safe for concurrent use: it holds a sequence number,
// a replay window and cipher state. Give each goroutine its own, or serialize.
type SessionCrypto struct {
	p      Params
	enc    cbc
	dec    cbc
	txMAC  hash.Hash
	rxMAC  hash.Hash
	txSeq  uint64
	replay replayWindowState
	sum    [sha256.Size]byte

	nearNonce, farNonce []byte
}

// NewDefaultCrypto answers a SessionCrypto using the default session key, with
// checksums and no sequence numbers, as every end uses for startup packets.
func NewDefaultCrypto() *SessionCrypto {
	s := &SessionCrypto{}
	s.enc.init(DefaultSessionKey[:], true)
	s.dec.init(DefaultSessionKey[:], false)
	return s
}

// Params answers the negotiated protection.
func (s *SessionCrypto) Params() Params { return s.p }

// NearNonce answers this end's session nonce (RFC 7016 §3.5 and RFC 7425
// §4.6.5): HMAC-SHA256 keyed with the shared secret over this end's keying
// component. It is nil for the default crypto. The caller must not modify it.
func (s *SessionCrypto) NearNonce() []byte { return s.nearNonce }

// FarNonce answers the far end's session nonce.
func (s *SessionCrypto) FarNonce() []byte { return s.farNonce }

// Overhead answers the most bytes the next Seal adds to its plaintext.
func (s *SessionCrypto) Overhead() int {
	n := aes.BlockSize
	if s.p.SSeqSend {
		n += vluLen(s.txSeq)
	}
	if s.p.HMACSend {
		n += s.p.HMACSendLength
	} else {
		n += 2
	}
	return n
}

// Seal appends to dst the encrypted form of plaintext (an RTMFP packet from
// its flags byte on; the scrambled session ID is not included) and answers
// the extended slice. The ciphertext is
//
//	AES-CBC( [session sequence number VLU] [checksum] plaintext [0xff padding] ) [HMAC]
//
// where the checksum is absent when an HMAC is sent. The 0xff padding stays
// in what the far end's Open answers (the plaintext length is not carried, so
// it cannot be stripped): the packet parser must treat a chunk of type 0xff,
// or fewer than 3 bytes left, as the end of the packet, as RFC 7016 packet
// parsers do. The result is at least 16 bytes, enough for the session ID
// scrambling, which XORs its first two 32-bit words.
//
// Seal does not allocate when dst has Overhead()+len(plaintext) spare
// capacity. plaintext may overlap dst's spare capacity.
func (s *SessionCrypto) Seal(dst, plaintext []byte) []byte {
	dst, start, padded := s.sealBegin(dst, plaintext)
	buf := dst[start : start+padded]
	s.enc.crypt(buf, buf)
	s.sealEnd(dst, start, padded)
	return dst
}

// maxBatch is how many packets SealBatch lays out before encrypting them
// together; larger batches are taken this many at a time.
const maxBatch = 8

// SealBatch seals len(plain) packets exactly as len(plain) successive calls
// dst[i] = s.Seal(dst[i], plain[i]) would, byte for byte and with the same
// session sequence numbers in the same order, but faster: CBC encryption is
// a chain within a packet, so a single packet leaves most of the AES unit
// idle, while the chains of different packets are independent and run
// interleaved (on amd64 with AES-NI; elsewhere SealBatch is a loop over Seal).
// Use it when a sender has several packets ready for one session.
//
// SealBatch does not allocate when each dst[i] has Overhead()+len(plain[i])
// spare capacity (Overhead grows by at most one byte per packet with session
// sequence numbers; MaxOverhead always suffices). plain[i] may overlap
// dst[i]'s spare capacity but no other dst[j]. It panics if len(dst) !=
// len(plain).
func (s *SessionCrypto) SealBatch(dst, plain [][]byte) {
	if len(dst) != len(plain) {
		panic("flash: SealBatch with len(dst) != len(plain)")
	}
	if !s.enc.hw.ok() {
		for i := range plain {
			dst[i] = s.Seal(dst[i], plain[i])
		}
		return
	}
	for len(plain) > 0 {
		n := min(len(plain), maxBatch)
		var start, padded [maxBatch]int
		var bufs [maxBatch][]byte
		for i := range n {
			dst[i], start[i], padded[i] = s.sealBegin(dst[i], plain[i])
			bufs[i] = dst[i][start[i] : start[i]+padded[i]]
		}
		s.enc.hw.encryptBatch(&bufs, n)
		for i := range n {
			s.sealEnd(dst[i], start[i], padded[i])
		}
		dst, plain = dst[n:], plain[n:]
	}
}

// sealBegin grows dst by the sealed packet's length and lays out its
// plaintext (sequence number, checksum, plaintext, padding) at dst[start:],
// padded bytes long, ready to encrypt in place, consuming a sequence number.
func (s *SessionCrypto) sealBegin(dst, plaintext []byte) (out []byte, start, padded int) {
	head := 0
	if s.p.SSeqSend {
		head += vluLen(s.txSeq)
	}
	if !s.p.HMACSend {
		head += 2
	}
	n := head + len(plaintext)
	padded = (n + aes.BlockSize - 1) &^ (aes.BlockSize - 1)
	if padded == 0 {
		padded = aes.BlockSize
	}
	hmacLen := 0
	if s.p.HMACSend {
		hmacLen = s.p.HMACSendLength
	}
	start = len(dst)
	dst = grow(dst, padded+hmacLen)
	buf := dst[start : start+padded]
	copy(buf[head:], plaintext) // first, in case plaintext overlaps buf
	for i := n; i < padded; i++ {
		buf[i] = 0xff
	}
	h := 0
	if s.p.SSeqSend {
		h = len(appendVLU(buf[:0], s.txSeq))
		s.txSeq++
	}
	if !s.p.HMACSend {
		c := checksum(buf[h+2:])
		buf[h], buf[h+1] = byte(c>>8), byte(c)
	}
	return dst, start, padded
}

// sealEnd appends the HMAC, when one is sent, over the encrypted
// dst[start:start+padded], into the room sealBegin left after it.
func (s *SessionCrypto) sealEnd(dst []byte, start, padded int) {
	if !s.p.HMACSend {
		return
	}
	s.txMAC.Reset()
	s.txMAC.Write(dst[start : start+padded])
	copy(dst[start+padded:], s.txMAC.Sum(s.sum[:0])[:s.p.HMACSendLength])
}

// Open verifies and decrypts packet (the bytes after the scrambled session
// ID) and appends the plaintext, from the RTMFP flags byte on and including
// any trailing 0xff padding, to dst. On error dst is answered unchanged in
// length, though bytes past its length may have been overwritten. dst may be
// packet[:0] to decrypt in place.
func (s *SessionCrypto) Open(dst, packet []byte) ([]byte, error) {
	hmacLen := 0
	if s.p.HMACRecv {
		hmacLen = s.p.HMACRecvLength
	}
	if len(packet) < hmacLen {
		return dst, ErrBadLength
	}
	ct := packet[:len(packet)-hmacLen]
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return dst, ErrBadLength
	}
	if hmacLen > 0 {
		s.rxMAC.Reset()
		s.rxMAC.Write(ct)
		if subtle.ConstantTimeCompare(s.rxMAC.Sum(s.sum[:0])[:hmacLen], packet[len(ct):]) != 1 {
			return dst, ErrBadHMAC
		}
	}
	start := len(dst)
	out := grow(dst, len(ct))
	pt := out[start:]
	s.dec.crypt(pt, ct)

	h := 0
	var seq uint64
	if s.p.SSeqRecv {
		v, n, err := parseVLU(pt)
		if err != nil {
			return dst, ErrMalformed
		}
		seq, h = v, n
	}
	if !s.p.HMACRecv {
		if len(pt)-h < 2 {
			return dst, ErrMalformed
		}
		if uint16(pt[h])<<8|uint16(pt[h+1]) != checksum(pt[h+2:]) {
			return dst, ErrBadChecksum
		}
		h += 2
	}
	if s.p.SSeqRecv && !s.replay.accept(seq) {
		return dst, ErrReplay
	}
	m := copy(pt, pt[h:])
	return out[:start+m], nil
}

// grow extends b by n bytes, reusing its capacity when it can.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*len(b)+n)
	copy(nb, b)
	return nb
}

// cbc is AES-128-CBC with a zero IV for every packet. Where the CPU allows
// (amd64 with AES-NI, not built with the purego tag) hw does the work in one
// assembly call per packet; otherwise it keeps one crypto/cipher BlockMode
// and rewinds its IV, because building a BlockMode per packet allocates.
// The crypto/cipher state is built only when hw cannot do the work: a node
// holds a cbc pair per session, and with thousands of sessions in one
// process (a simulated swarm) the unused software key schedules were a
// fifth of the heap.
type cbc struct {
	hw    hwCBC
	key   [16]byte
	block cipher.Block
	mode  cipher.BlockMode
	setIV func([]byte)
	zero  [aes.BlockSize]byte
	encr  bool
}

type ivSetter interface{ SetIV([]byte) }

func (c *cbc) init(key []byte, encrypt bool) {
	if len(key) != len(c.key) {
		panic("flash: AES key of the wrong size") // keys here are always 16 bytes
	}
	*c = cbc{encr: encrypt}
	copy(c.key[:], key)
	c.hw.init(key, encrypt)
}

// software builds the crypto/cipher state, on first use.
func (c *cbc) software() {
	if c.block != nil {
		return
	}
	b, err := aes.NewCipher(c.key[:])
	if err != nil {
		panic("flash: AES key of the wrong size")
	}
	c.block = b
	if c.encr {
		c.mode = cipher.NewCBCEncrypter(b, c.zero[:])
	} else {
		c.mode = cipher.NewCBCDecrypter(b, c.zero[:])
	}
	if s, ok := c.mode.(ivSetter); ok {
		c.setIV = s.SetIV
	}
}

// crypt runs CBC over src into dst (whole blocks; dst and src either the same
// or disjoint).
func (c *cbc) crypt(dst, src []byte) {
	if c.hw.crypt(dst, src, &c.zero, c.encr) {
		return
	}
	c.software()
	if c.setIV != nil {
		c.setIV(c.zero[:])
		c.mode.CryptBlocks(dst, src)
		return
	}
	c.manual(dst, src)
}

// manual is the fallback CBC for a BlockMode without SetIV.
func (c *cbc) manual(dst, src []byte) {
	const bs = aes.BlockSize
	if c.encr {
		var iv [bs]byte
		for i := 0; i+bs <= len(src); i += bs {
			subtle.XORBytes(dst[i:i+bs], src[i:i+bs], iv[:])
			c.block.Encrypt(dst[i:i+bs], dst[i:i+bs])
			copy(iv[:], dst[i:i+bs])
		}
		return
	}
	var iv, next [bs]byte
	for i := 0; i+bs <= len(src); i += bs {
		copy(next[:], src[i:i+bs])
		c.block.Decrypt(dst[i:i+bs], src[i:i+bs])
		subtle.XORBytes(dst[i:i+bs], dst[i:i+bs], iv[:])
		iv = next
	}
}

// newMAC answers an HMAC-SHA256 keyed with key.
func newMAC(key []byte) hash.Hash { return hmac.New(sha256.New, key) }

// replayWindowState tracks received session sequence numbers as the
// reference does: a number is refused if already seen, or if it is at least
// replayWindow behind the newest seen once that exceeds replayWindow.
type replayWindowState struct {
	seen bool
	max  uint64
	bits uint64 // bit i set: max-i was received
}

func (r *replayWindowState) accept(seq uint64) bool {
	if !r.seen {
		r.seen, r.max, r.bits = true, seq, 1
		return true
	}
	if seq > r.max {
		shift := seq - r.max
		if shift >= 64 {
			r.bits = 0
		} else {
			r.bits <<= shift
		}
		r.bits |= 1
		r.max = seq
		return true
	}
	if r.max > replayWindow && seq <= r.max-replayWindow {
		return false
	}
	d := r.max - seq // at most replayWindow here
	if r.bits&(1<<d) != 0 {
		return false
	}
	r.bits |= 1 << d
	return true
}
