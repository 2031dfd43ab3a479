package wire

import (
	"encoding/binary"
	"net/netip"
)

// finish closes a chunk started with BeginChunk. Handshake payloads are
// bounded by the startup packet size, far below the 16-bit limit, so an
// oversized payload is a caller bug; rather than panic, the chunk is
// dropped from b (b is returned as it was before the chunk).
func finish(b []byte, start int) []byte {
	out, err := EndChunk(b, start)
	if err != nil {
		return b[:start]
	}
	return out
}

// IHello (0x30, RFC 7016 §2.3.2) opens a session: the Endpoint
// Discriminator says whom the initiator wants; the tag matches the reply.
type IHello struct {
	EPD []byte
	Tag []byte
}

// Append appends the whole IHello chunk. It appends nothing if the payload
// would exceed MaxChunkPayload.
func (c IHello) Append(b []byte) []byte {
	start := len(b)
	b = BeginChunk(b, ChunkIHello)
	b = AppendField(b, c.EPD)
	b = append(b, c.Tag...)
	return finish(b, start)
}

// ParseIHello decodes an IHello payload: epdLength(VLU) EPD tag(rest).
func ParseIHello(p []byte) (IHello, error) {
	d := decoder{b: p, ctx: "IHello"}
	c := IHello{EPD: d.field(), Tag: d.rest()}
	return c, d.err
}

// FIHello (0x0f, §2.3.3) is an IHello forwarded by a third party, with the
// address the responder should answer.
type FIHello struct {
	EPD          []byte
	ReplyAddress netip.AddrPort
	// ReplyOrigin is the origin bits carried with ReplyAddress.
	ReplyOrigin uint8
	Tag         []byte
}

// Append appends the whole FIHello chunk (nothing if oversized).
func (c FIHello) Append(b []byte) []byte {
	start := len(b)
	b = BeginChunk(b, ChunkFIHello)
	b = AppendField(b, c.EPD)
	b = AppendAddress(b, Address{AddrPort: c.ReplyAddress, Origin: c.ReplyOrigin})
	b = append(b, c.Tag...)
	return finish(b, start)
}

// ParseFIHello decodes epdLength(VLU) EPD replyAddress tag(rest).
func ParseFIHello(p []byte) (FIHello, error) {
	d := decoder{b: p, ctx: "FIHello"}
	epd := d.field()
	a := d.address()
	c := FIHello{EPD: epd, ReplyAddress: a.AddrPort, ReplyOrigin: a.Origin, Tag: d.rest()}
	return c, d.err
}

// RHello (0x70, §2.3.4) answers an IHello with a cookie (proof of return
// routability for the next step) and the responder's certificate.
type RHello struct {
	Tag    []byte
	Cookie []byte
	Cert   []byte
}

// Append appends the whole RHello chunk (nothing if oversized).
func (c RHello) Append(b []byte) []byte {
	start := len(b)
	b = BeginChunk(b, ChunkRHello)
	b = AppendField(b, c.Tag)
	b = AppendField(b, c.Cookie)
	b = append(b, c.Cert...)
	return finish(b, start)
}

// ParseRHello decodes tagLength(VLU) tag cookieLength(VLU) cookie cert(rest).
func ParseRHello(p []byte) (RHello, error) {
	d := decoder{b: p, ctx: "RHello"}
	c := RHello{Tag: d.field(), Cookie: d.field()}
	c.Cert = d.rest()
	return c, d.err
}

// Redirect (0x71, §2.3.5) tells an initiator to try other addresses. An
// empty address list means "no addresses to offer"; the reference then
// treats the sender's own observed address as the only candidate.
type Redirect struct {
	Tag       []byte
	Addresses []Address
}

// Append appends the whole Redirect chunk (nothing if oversized).
func (c Redirect) Append(b []byte) []byte {
	start := len(b)
	b = BeginChunk(b, ChunkRedirect)
	b = AppendField(b, c.Tag)
	for _, a := range c.Addresses {
		b = AppendAddress(b, a)
	}
	return finish(b, start)
}

// ParseRedirect decodes tagLength(VLU) tag address*. Addresses are appended
// to dst[:0] so a caller can reuse one slice across packets without
// allocating; pass nil to let it allocate.
func ParseRedirect(p []byte, dst []Address) (Redirect, error) {
	d := decoder{b: p, ctx: "Redirect"}
	c := Redirect{Tag: d.field(), Addresses: dst[:0]}
	for d.err == nil && d.off < len(d.b) {
		a := d.address()
		if d.err == nil {
			c.Addresses = append(c.Addresses, a)
		}
	}
	return c, d.err
}

// RedirectAddresses iterates the addresses of a Redirect payload without
// allocating; it returns the tag and the first error.
func RedirectAddresses(p []byte, fn func(Address) bool) (tag []byte, err error) {
	d := decoder{b: p, ctx: "Redirect"}
	tag = d.field()
	for d.err == nil && d.off < len(d.b) {
		a := d.address()
		if d.err == nil && !fn(a) {
			break
		}
	}
	return tag, d.err
}

// RHelloCookieChange (0x79, §2.3.6) tells an initiator its cookie is stale
// (e.g. its address changed) and gives a fresh one.
type RHelloCookieChange struct {
	OldCookie []byte
	NewCookie []byte
}

// Append appends the whole chunk (nothing if oversized).
func (c RHelloCookieChange) Append(b []byte) []byte {
	start := len(b)
	b = BeginChunk(b, ChunkCookieChange)
	b = AppendField(b, c.OldCookie)
	b = append(b, c.NewCookie...)
	return finish(b, start)
}

// ParseRHelloCookieChange decodes oldCookieLength(VLU) oldCookie newCookie(rest).
func ParseRHelloCookieChange(p []byte) (RHelloCookieChange, error) {
	d := decoder{b: p, ctx: "RHelloCookieChange"}
	c := RHelloCookieChange{OldCookie: d.field()}
	c.NewCookie = d.rest()
	return c, d.err
}

// IIKeying (0x38, §2.3.7) carries the initiator's session ID, the cookie,
// its certificate and session key initiator component, signed.
type IIKeying struct {
	// InitiatorSessionID is the ID the responder must put on packets to the
	// initiator (written big-endian; see ScrambleSessionID).
	InitiatorSessionID uint32
	Cookie             []byte
	Cert               []byte
	SKIC               []byte
	Signature          []byte
	// Signed is set by ParseIIKeying to the exact bytes the signature
	// covers (everything before it). Append ignores it; senders sign the
	// output of AppendSigned.
	Signed []byte
}

// AppendSigned appends the signed part of the payload: session ID and the
// three length-prefixed fields. Sign these bytes, then set Signature.
func (c IIKeying) AppendSigned(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, c.InitiatorSessionID)
	b = AppendField(b, c.Cookie)
	b = AppendField(b, c.Cert)
	return AppendField(b, c.SKIC)
}

// Append appends the whole IIKeying chunk (nothing if oversized).
func (c IIKeying) Append(b []byte) []byte {
	start := len(b)
	b = BeginChunk(b, ChunkIIKeying)
	b = c.AppendSigned(b)
	b = append(b, c.Signature...)
	return finish(b, start)
}

// ParseIIKeying decodes isid(32) cookieLength(VLU) cookie certLength(VLU)
// cert skicLength(VLU) skic signature(rest).
func ParseIIKeying(p []byte) (IIKeying, error) {
	d := decoder{b: p, ctx: "IIKeying"}
	c := IIKeying{InitiatorSessionID: d.u32(), Cookie: d.field(), Cert: d.field(), SKIC: d.field()}
	if d.err == nil {
		c.Signed = p[:d.off:d.off]
	}
	c.Signature = d.rest()
	return c, d.err
}

// RIKeying (0x78, §2.3.8) carries the responder's session ID and session
// key responder component, signed. Per the RFC the signature covers the
// signed part of this payload followed by the initiator's SKIC; assembling
// that is the crypto layer's job.
type RIKeying struct {
	// ResponderSessionID is the ID the initiator must put on packets to the
	// responder (written big-endian).
	ResponderSessionID uint32
	SKRC               []byte
	Signature          []byte
	// Signed is set by ParseRIKeying to the payload bytes before the
	// signature. Append ignores it.
	Signed []byte
}

// AppendSigned appends the signed part of the payload: session ID and SKRC.
func (c RIKeying) AppendSigned(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, c.ResponderSessionID)
	return AppendField(b, c.SKRC)
}

// Append appends the whole RIKeying chunk (nothing if oversized).
func (c RIKeying) Append(b []byte) []byte {
	start := len(b)
	b = BeginChunk(b, ChunkRIKeying)
	b = c.AppendSigned(b)
	b = append(b, c.Signature...)
	return finish(b, start)
}

// ParseRIKeying decodes rsid(32) skrcLength(VLU) skrc signature(rest).
func ParseRIKeying(p []byte) (RIKeying, error) {
	d := decoder{b: p, ctx: "RIKeying"}
	c := RIKeying{ResponderSessionID: d.u32(), SKRC: d.field()}
	if d.err == nil {
		c.Signed = p[:d.off:d.off]
	}
	c.Signature = d.rest()
	return c, d.err
}
