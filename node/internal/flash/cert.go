package flash

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
)

// Certificate option types (RFC 7425 §4.2).
const (
	certOptHostname       = 0x00
	certOptAcceptsAncData = 0x0a
	certOptExtraRandom    = 0x0e
	certOptSupportedGroup = 0x15
	certOptStaticPubKey   = 0x1d
)

// PeerIDSize is the length of a peer ID: a SHA-256 digest.
const PeerIDSize = sha256.Size

// PeerID identifies an endpoint in the Flash profile: the SHA-256 of the
// canonical part of its certificate (RFC 7425 §4.3.1). Overlay addresses and
// endpoint discriminators are derived from it.
type PeerID [PeerIDSize]byte

// String renders the peer ID as lower-case hex, the form Flash applications show.
func (p PeerID) String() string { return hex.EncodeToString(p[:]) }

// ParsePeerID decodes a 64-digit hex peer ID.
func ParsePeerID(s string) (PeerID, error) {
	var p PeerID
	if hex.DecodedLen(len(s)) != PeerIDSize {
		return p, ErrBadPeerID
	}
	if _, err := hex.Decode(p[:], []byte(s)); err != nil {
		return p, ErrBadPeerID
	}
	return p, nil
}

// ErrBadPeerID is returned by ParsePeerID for text that is not 64 hex digits.
var ErrBadPeerID = errors.New("flash: malformed peer ID")

// ErrBadCert is returned for a certificate that does not parse, or that does
// not have exactly one of "supported DH group" and "static DH public key"
// options in its canonical part.
var ErrBadCert = errors.New("flash: malformed certificate")

// Cert is a decoded far-end certificate. It is immutable.
type Cert struct {
	raw            []byte
	id             PeerID
	hostname       []byte
	hasHostname    bool
	acceptsAncData bool
	static         bool
	groups         []int    // in certificate order
	keys           [][]byte // static public key per entry of groups; nil when ephemeral
}

// DecodeCert parses a far end's certificate. Options after the first marker
// are parsed for well-formedness but, as RFC 7425 §4.2 says, are not part of
// the canonical certificate: they neither count for the peer ID nor for the
// properties reported.
func DecodeCert(b []byte) (*Cert, error) {
	c := &Cert{raw: bytes.Clone(b)}
	if c.raw == nil {
		c.raw = []byte{}
	}
	ephemeral := false
	canonical := 0
	marker := false
	rest := c.raw
	for len(rest) > 0 {
		o, n, err := parseOption(rest)
		if err != nil {
			return nil, ErrBadCert
		}
		rest = rest[n:]
		if marker {
			continue
		}
		canonical += n
		if o.marker {
			marker = true
			canonical -= n
			continue
		}
		switch o.typ {
		case certOptHostname:
			if !c.hasHostname {
				c.hostname, c.hasHostname = o.value, true
			}
		case certOptAcceptsAncData:
			c.acceptsAncData = true
		case certOptSupportedGroup:
			ephemeral = true
			if g, _, err := parseVLU(o.value); err == nil && g <= math.MaxInt32 {
				c.groups = append(c.groups, int(g))
			}
		case certOptStaticPubKey:
			c.static = true
			if g, gn, err := parseVLU(o.value); err == nil && g <= math.MaxInt32 {
				c.groups = append(c.groups, int(g))
				c.keys = append(c.keys, o.value[gn:])
			}
		}
	}
	if c.static == ephemeral {
		return nil, ErrBadCert
	}
	c.id = sha256.Sum256(c.raw[:canonical])
	return c, nil
}

// Raw answers the certificate as received. The caller must not modify it.
func (c *Cert) Raw() []byte { return c.raw }

// PeerID answers the far end's peer ID.
func (c *Cert) PeerID() PeerID { return c.id }

// IsStatic reports whether the certificate carries static DH public keys
// (typical of Flash clients and peers) rather than a list of groups for
// ephemeral keying (typical of servers).
func (c *Cert) IsStatic() bool { return c.static }

// AcceptsAncillaryData reports whether the far end accepts endpoint
// discriminators with ancillary data, which the reference sets for servers.
func (c *Cert) AcceptsAncillaryData() bool { return c.acceptsAncData }

// Hostname answers the hostname option, if present.
func (c *Cert) Hostname() (string, bool) { return string(c.hostname), c.hasHostname }

// DHGroups answers the Diffie-Hellman groups the far end supports, in
// certificate order.
func (c *Cert) DHGroups() []int { return append([]int(nil), c.groups...) }

// SupportsDHGroup reports whether the far end supports group g.
func (c *Cert) SupportsDHGroup(g int) bool {
	for _, each := range c.groups {
		if each == g {
			return true
		}
	}
	return false
}

// PublicKey answers the far end's static public key in group g, if it has one.
func (c *Cert) PublicKey(g int) ([]byte, bool) {
	if !c.static {
		return nil, false
	}
	for i, each := range c.groups {
		if each == g {
			return c.keys[i], true
		}
	}
	return nil, false
}

// CanonicalEPD answers the endpoint discriminator that names exactly this
// far end: its fingerprint option (RFC 7425 §4.4.2.3). Sessions are indexed
// by it.
func (c *Cert) CanonicalEPD() []byte { return EPDForPeerID(c.id) }

// IsSelectedBy reports whether this certificate satisfies epd, as an initiator
// checks the certificate in an RHello against the EPD it sent in its IHello
// (RFC 7016 §3.5.1.1.2). A fingerprint option decides alone; otherwise a
// required hostname must match the hostname option and ancillary data needs
// the accepts-ancillary-data option.
func (c *Cert) IsSelectedBy(epd []byte) bool {
	e, err := ParseEPD(epd)
	if err != nil {
		return false
	}
	if e.Fingerprint != nil {
		return bytes.Equal(e.Fingerprint, c.id[:])
	}
	if e.Hostname != nil && (!c.hasHostname || !bytes.Equal(e.Hostname, c.hostname)) {
		return false
	}
	if e.Ancillary != nil && !c.acceptsAncData {
		return false
	}
	return true
}

// Overrides reports whether c, arriving in a new IIKeying, replaces a session
// opened with other: per RFC 7425 §4.3.7 that is when the two certificates are
// byte for byte the same.
func (c *Cert) Overrides(other *Cert) bool {
	return other != nil && bytes.Equal(c.raw, other.raw)
}
