package flash

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"math"
)

// Keying component option types (RFC 7425 §4.6.3 - §4.6.5).
const (
	keyOptDHPublicKey   = 0x0d
	keyOptExtraRandom   = 0x0e
	keyOptDHGroupSelect = 0x1d
	keyOptHMAC          = 0x1a
	keyOptSSeq          = 0x1e
)

// Negotiation flags carried in the HMAC and session sequence number options.
const (
	flagSND = 0x04 // will always send
	flagSOR = 0x02 // will send on request
	flagREQ = 0x01 // requests (here: requires) the far end to send
)

// Keying errors.
var (
	// ErrNoCommonGroup: the far certificate supports no DH group this end does.
	ErrNoCommonGroup = errors.New("flash: no common Diffie-Hellman group")
	// ErrNegotiation: the far end will not send an HMAC or sequence number
	// this end requires, or offered an HMAC length outside 4..32.
	ErrNegotiation = errors.New("flash: HMAC or session sequence number negotiation failed")
	// ErrBadComponent: a keying component lacks the DH option it must carry.
	ErrBadComponent = errors.New("flash: malformed session keying component")
	// ErrFinished: Finish was called again after it succeeded.
	ErrFinished = errors.New("flash: initiator keying already finished")
)

// Policy is this end's wish for packet integrity and replay protection,
// negotiated per session (RFC 7425 §4.6.4, §4.6.5). The zero value is the
// reference's default and what interoperates with it: checksums, no session
// sequence numbers, but willing to send either when the far end asks.
type Policy struct {
	// HMACLength is the truncated HMAC length this end sends; 0 means
	// DefaultHMACLength, other values are clamped to 4..32.
	HMACLength int
	// HMACSendAlways makes this end send an HMAC whether asked or not.
	HMACSendAlways bool
	// HMACRecvRequired makes this end require an HMAC on received packets.
	HMACRecvRequired bool
	// SSeqSendAlways makes this end send session sequence numbers.
	SSeqSendAlways bool
	// SSeqRecvRequired makes this end require and check them.
	SSeqRecvRequired bool
}

// StrictPolicy answers the policy the reference's own programs (echoserver,
// fcclient) use unless told otherwise: always send, and require, a 16-byte
// HMAC and session sequence numbers. Against an end with the zero Policy it
// still negotiates both in both directions, because that end sends on request.
func StrictPolicy() Policy {
	return Policy{HMACSendAlways: true, HMACRecvRequired: true, SSeqSendAlways: true, SSeqRecvRequired: true}
}

func (p Policy) hmacLength() int {
	switch {
	case p.HMACLength == 0:
		return DefaultHMACLength
	case p.HMACLength < MinHMACLength:
		return MinHMACLength
	case p.HMACLength > MaxHMACLength:
		return MaxHMACLength
	}
	return p.HMACLength
}

// negotiation is one side's evolving view of both negotiations.
type negotiation struct {
	hmacSend, hmacRecv bool
	sseqSend, sseqRecv bool
	hmacSendLen        int
	hmacRecvLen        int
}

func newNegotiation(p Policy) negotiation {
	return negotiation{
		hmacSend: p.HMACSendAlways, hmacRecv: p.HMACRecvRequired,
		sseqSend: p.SSeqSendAlways, sseqRecv: p.SSeqRecvRequired,
		hmacSendLen: p.hmacLength(),
	}
}

// flags answers the negotiation byte this end advertises. "Send on request"
// is always offered, as the reference does.
func flags(sendAlways, recvRequired bool) byte {
	f := byte(flagSOR)
	if sendAlways {
		f |= flagSND
	}
	if recvRequired {
		f |= flagREQ
	}
	return f
}

// merge applies the far end's flags: if it always sends, we require; if it
// requests, we always send; if we require and it will send neither always nor
// on request, the session cannot proceed.
func merge(far byte, sendAlways, recvRequired *bool) bool {
	if *recvRequired && far&(flagSND|flagSOR) == 0 {
		return false
	}
	if far&flagSND != 0 {
		*recvRequired = true
	}
	if far&flagREQ != 0 {
		*sendAlways = true
	}
	return true
}

// negotiationOption answers the flags byte of option typ in a far component
// (0 when absent) and, for the HMAC option, the far end's HMAC length.
func negotiationOption(comp []byte, typ uint64) (f byte, length uint64) {
	v, ok := findOption(comp, typ)
	if !ok || len(v) == 0 {
		return 0, 0
	}
	if l, _, err := parseVLU(v[1:]); err == nil {
		length = l
	}
	return v[0], length
}

// absorb merges the far component's negotiation options into n.
func (n *negotiation) absorb(far []byte) error {
	sf, _ := negotiationOption(far, keyOptSSeq)
	if !merge(sf, &n.sseqSend, &n.sseqRecv) {
		return ErrNegotiation
	}
	hf, hl := negotiationOption(far, keyOptHMAC)
	if !merge(hf, &n.hmacSend, &n.hmacRecv) {
		return ErrNegotiation
	}
	if n.hmacRecv {
		if hl < MinHMACLength || hl > MaxHMACLength {
			return ErrNegotiation
		}
		n.hmacRecvLen = int(hl)
	}
	return nil
}

func (n *negotiation) appendHMACOption(dst []byte) []byte {
	v := appendVLU([]byte{flags(n.hmacSend, n.hmacRecv)}, uint64(n.hmacSendLen))
	return appendOption(dst, keyOptHMAC, v)
}

func (n *negotiation) appendSSeqOption(dst []byte) []byte {
	return appendOption(dst, keyOptSSeq, []byte{flags(n.sseqSend, n.sseqRecv)})
}

// Initiator is the initiator's half-finished keying: it has produced the
// Session Key Initiator Component and waits for the responder's.
type Initiator struct {
	neg    negotiation
	skic   []byte
	eph    *dhKey // this end's ephemeral key, or nil if it keys with its static one
	static *dhKey
	secret []byte // already known when the responder's certificate is static
	done   bool
}

// NewInitiator starts keying towards the responder whose certificate came in
// its RHello. The SKIC to put in IIKeying is SKIC(). rand may be nil.
//
// A static identity selects the group (option 0x1d) and adds 64 bytes of
// randomness; an ephemeral one sends a fresh public key (option 0x0d). Both
// add the HMAC (0x1a) and session sequence number (0x1e) negotiation options.
func (id *Identity) NewInitiator(rnd io.Reader, responder *Cert, p Policy) (*Initiator, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if !responder.SupportsDHGroup(DHGroup2) {
		return nil, ErrNoCommonGroup
	}
	in := &Initiator{neg: newNegotiation(p), static: id.static}
	var skic []byte
	if id.static != nil {
		skic = appendVLUOption(skic, keyOptDHGroupSelect, DHGroup2)
		var r [extraRandomLen]byte
		if _, err := io.ReadFull(rnd, r[:]); err != nil {
			return nil, err
		}
		skic = appendOption(skic, keyOptExtraRandom, r[:])
	} else {
		k, err := newDHKey(rnd)
		if err != nil {
			return nil, err
		}
		in.eph = k
		skic = appendOption(skic, keyOptDHPublicKey, append(appendVLU(nil, DHGroup2), k.pub...))
	}
	if pub, ok := responder.PublicKey(DHGroup2); ok {
		s, err := in.key().sharedSecret(pub)
		if err != nil {
			return nil, err
		}
		in.secret = s
	}
	skic = in.neg.appendHMACOption(skic)
	skic = in.neg.appendSSeqOption(skic)
	in.skic = skic
	return in, nil
}

func (in *Initiator) key() *dhKey {
	if in.eph != nil {
		return in.eph
	}
	return in.static
}

// SKIC answers the Session Key Initiator Component. The caller must not modify it.
func (in *Initiator) SKIC() []byte { return in.skic }

// Finish consumes the Session Key Responder Component from RIKeying and
// answers the session's crypto. A failed Finish leaves the Initiator as it
// was, so a forged RIKeying does not spoil the handshake; after a successful
// one, the Initiator forgets its secrets and Finish answers ErrFinished.
func (in *Initiator) Finish(skrc []byte) (*SessionCrypto, error) {
	if in.done {
		return nil, ErrFinished
	}
	neg := in.neg
	if err := neg.absorb(skrc); err != nil {
		return nil, err
	}
	secret := in.secret
	if secret == nil {
		pub, err := groupValue(skrc, keyOptDHPublicKey, DHGroup2)
		if err != nil {
			return nil, err
		}
		if secret, err = in.key().sharedSecret(pub); err != nil {
			return nil, err
		}
	}
	sc := newSessionCrypto(neg, secret, in.skic, skrc)
	in.done, in.secret, in.eph = true, nil, nil
	return sc, nil
}

// Respond answers an IIKeying: it checks the initiator's component against
// the initiator's certificate, and answers the Session Key Responder
// Component for RIKeying together with the session's crypto. rand may be nil.
//
// The responder's component carries the sequence number (0x1e) and HMAC
// (0x1a) options, then 64 bytes of randomness if this end is static, else
// its ephemeral public key (0x0d).
func (id *Identity) Respond(rnd io.Reader, initiator *Cert, skic []byte, p Policy) ([]byte, *SessionCrypto, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	neg := newNegotiation(p)
	if err := neg.absorb(skic); err != nil {
		return nil, nil, err
	}
	var skrc []byte
	skrc = neg.appendSSeqOption(skrc)
	skrc = neg.appendHMACOption(skrc)

	var pub []byte
	if initiator.IsStatic() {
		v, ok := findOption(skic, keyOptDHGroupSelect)
		if !ok {
			return nil, nil, ErrBadComponent
		}
		g, _, err := parseVLU(v)
		if err != nil || g > math.MaxInt32 {
			return nil, nil, ErrBadComponent
		}
		if g != DHGroup2 {
			return nil, nil, ErrNoCommonGroup
		}
		if pub, ok = initiator.PublicKey(int(g)); !ok {
			return nil, nil, ErrNoCommonGroup
		}
	} else {
		var err error
		if pub, err = firstGroupValue(skic, keyOptDHPublicKey); err != nil {
			return nil, nil, err
		}
	}

	var secret []byte
	if id.static != nil {
		s, err := id.static.sharedSecret(pub)
		if err != nil {
			return nil, nil, err
		}
		secret = s
		var r [extraRandomLen]byte
		if _, err := io.ReadFull(rnd, r[:]); err != nil {
			return nil, nil, err
		}
		skrc = appendOption(skrc, keyOptExtraRandom, r[:])
	} else {
		k, err := newDHKey(rnd)
		if err != nil {
			return nil, nil, err
		}
		if secret, err = k.sharedSecret(pub); err != nil {
			return nil, nil, err
		}
		skrc = appendOption(skrc, keyOptDHPublicKey, append(appendVLU(nil, DHGroup2), k.pub...))
	}
	return skrc, newSessionCrypto(neg, secret, skrc, skic), nil
}

// firstGroupValue answers the key in the first option of type typ (group VLU
// then key), which must be for a group this end supports.
func firstGroupValue(comp []byte, typ uint64) ([]byte, error) {
	v, ok := findOption(comp, typ)
	if !ok {
		return nil, ErrBadComponent
	}
	g, n, err := parseVLU(v)
	if err != nil || g > math.MaxInt32 {
		return nil, ErrBadComponent
	}
	if g != DHGroup2 {
		return nil, ErrNoCommonGroup
	}
	return v[n:], nil
}

// groupValue answers the key for group in the options of type typ, searching
// past options for other groups.
func groupValue(comp []byte, typ uint64, group uint64) ([]byte, error) {
	for len(comp) > 0 {
		o, n, err := parseOption(comp)
		if err != nil || o.marker {
			break
		}
		comp = comp[n:]
		if o.typ != typ {
			continue
		}
		g, gn, err := parseVLU(o.value)
		if err != nil {
			break
		}
		if g == group {
			return o.value[gn:], nil
		}
	}
	return nil, ErrBadComponent
}

// hmacSHA256 answers HMAC-SHA256(key, msg).
func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// newSessionCrypto derives a session's keys (RFC 7425 §4.6.5). With sknc this
// end's component and skfc the far end's, and S the DH shared secret:
//
//	near nonce  = HMAC(S, sknc)            far nonce = HMAC(S, skfc)
//	encrypt key = HMAC(S, HMAC(skfc, sknc))[:16]
//	decrypt key = HMAC(S, HMAC(sknc, skfc))[:16]
//	send HMAC key = HMAC(S, full 32-byte encrypt key)
//	recv HMAC key = HMAC(S, full 32-byte decrypt key)
//
// so the initiator's encrypt key is HMAC(S, HMAC(SKRC, SKIC)) and equals the
// responder's decrypt key.
func newSessionCrypto(n negotiation, secret, sknc, skfc []byte) *SessionCrypto {
	encKey := hmacSHA256(secret, hmacSHA256(skfc, sknc))
	decKey := hmacSHA256(secret, hmacSHA256(sknc, skfc))
	s := &SessionCrypto{
		p: Params{
			HMACSend: n.hmacSend, HMACRecv: n.hmacRecv,
			SSeqSend: n.sseqSend, SSeqRecv: n.sseqRecv,
		},
		nearNonce: hmacSHA256(secret, sknc),
		farNonce:  hmacSHA256(secret, skfc),
	}
	s.enc.init(encKey[:16], true)
	s.dec.init(decKey[:16], false)
	if n.hmacSend {
		s.p.HMACSendLength = n.hmacSendLen
		s.txMAC = newMAC(hmacSHA256(secret, encKey))
	}
	if n.hmacRecv {
		s.p.HMACRecvLength = n.hmacRecvLen
		s.rxMAC = newMAC(hmacSHA256(secret, decKey))
	}
	clear(secret)
	return s
}
