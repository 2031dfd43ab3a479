package flash

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"math/big"
)

// extraRandomLen is the size of the extra randomness options in certificates
// and keying components: one SHA-256 block, as the reference sends.
const extraRandomLen = 64

// ErrBadIdentity is returned by UnmarshalBinary for bytes that are not a
// consistent marshalled Identity.
var ErrBadIdentity = errors.New("flash: malformed identity")

// identityVersion tags the marshalled form so it can evolve.
const identityVersion = 1

// Identity is this end's Flash profile identity: its certificate (hence its
// peer ID) and, if its certificate carries a static Diffie-Hellman key, the
// private half of that key. It is immutable and safe for concurrent use.
type Identity struct {
	server      bool
	hostname    []byte
	hasHostname bool
	cert        []byte
	id          PeerID
	static      *dhKey // nil when keying uses ephemeral keys
}

// NewIdentity creates a fresh identity with the reference's defaults for its
// role (RFC 7425 §7): a server gets an ephemeral-DH certificate that accepts
// ancillary data; a client or peer gets a certificate with a static DH public
// key, so its peer ID is bound to a key. hostname may be empty for none.
// rand may be nil for crypto/rand.
func NewIdentity(rand io.Reader, isServer bool, hostname string) (*Identity, error) {
	return NewIdentityDH(rand, isServer, isServer, hostname)
}

// NewIdentityDH is NewIdentity with the Diffie-Hellman mode chosen explicitly.
func NewIdentityDH(rnd io.Reader, isServer, ephemeralDH bool, hostname string) (*Identity, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	id := &Identity{server: isServer}
	var cert []byte
	if hostname != "" {
		id.hostname, id.hasHostname = []byte(hostname), true
		cert = appendOption(cert, certOptHostname, id.hostname)
	}
	if isServer {
		cert = appendOption(cert, certOptAcceptsAncData, nil)
	}
	if ephemeralDH {
		cert = appendVLUOption(cert, certOptSupportedGroup, DHGroup2)
		var r [extraRandomLen]byte
		if _, err := io.ReadFull(rnd, r[:]); err != nil {
			return nil, err
		}
		cert = appendOption(cert, certOptExtraRandom, r[:])
	} else {
		k, err := newDHKey(rnd)
		if err != nil {
			return nil, err
		}
		id.static = k
		cert = appendOption(cert, certOptStaticPubKey, append(appendVLU(nil, DHGroup2), k.pub...))
	}
	id.cert = cert
	id.id = sha256.Sum256(cert)
	return id, nil
}

// Cert answers the encoded certificate this end sends in RHello and IIKeying.
// The caller must not modify it.
func (id *Identity) Cert() []byte { return id.cert }

// PeerID answers this end's peer ID, the SHA-256 of its certificate.
func (id *Identity) PeerID() PeerID { return id.id }

// CanonicalEPD answers the endpoint discriminator that selects exactly this end.
func (id *Identity) CanonicalEPD() []byte { return EPDForPeerID(id.id) }

// IsServer reports whether this identity was made for a server.
func (id *Identity) IsServer() bool { return id.server }

// IsStatic reports whether the certificate carries a static DH public key.
func (id *Identity) IsStatic() bool { return id.static != nil }

// Hostname answers the configured hostname, if any.
func (id *Identity) Hostname() (string, bool) { return string(id.hostname), id.hasHostname }

// IsSelectedBy reports whether an IHello's endpoint discriminator selects this
// end, deciding whether to answer with an RHello (RFC 7016 §3.5.1.1.1).
// Ancillary data selects only servers.
func (id *Identity) IsSelectedBy(epd []byte) bool {
	return id.SelectedBy(epd, nil)
}

// SelectedBy is IsSelectedBy with an application hook: when the EPD carries
// ancillary data and this end is a server, acceptAncillary (if not nil) has
// the final word, for example to match the path of an rtmfp: URI.
func (id *Identity) SelectedBy(epd []byte, acceptAncillary func([]byte) bool) bool {
	e, err := ParseEPD(epd)
	if err != nil {
		return false
	}
	if e.Fingerprint != nil {
		return bytes.Equal(e.Fingerprint, id.id[:])
	}
	if e.Hostname != nil && (!id.hasHostname || !bytes.Equal(e.Hostname, id.hostname)) {
		return false
	}
	if e.Ancillary != nil {
		if !id.server {
			return false
		}
		if acceptAncillary != nil && !acceptAncillary(e.Ancillary) {
			return false
		}
	}
	return true
}

// NearWinsGlare breaks the tie when this end and far open sessions to each
// other at once (RFC 7016 §3.5.1.3, RFC 7425 §4.3.6): this end wins, and so
// ignores far's IIKeying, unless far's certificate sorts lexicographically
// before its own. Equal certificates count as a near win on both ends.
func (id *Identity) NearWinsGlare(far *Cert) bool {
	return bytes.Compare(far.raw, id.cert) >= 0
}

// MarshalBinary encodes the identity, private key included, so that a node
// keeps its peer ID across restarts. The result is secret.
func (id *Identity) MarshalBinary() ([]byte, error) {
	b := []byte{identityVersion, 0}
	if id.server {
		b[1] |= 1
	}
	b = appendVLU(b, uint64(len(id.cert)))
	b = append(b, id.cert...)
	var priv []byte
	if id.static != nil {
		priv = id.static.priv.Bytes()
	}
	b = appendVLU(b, uint64(len(priv)))
	return append(b, priv...), nil
}

// UnmarshalBinary restores an identity written by MarshalBinary, checking that
// the private key matches the certificate.
func (id *Identity) UnmarshalBinary(b []byte) error {
	if len(b) < 2 || b[0] != identityVersion || b[1]&^1 != 0 {
		return ErrBadIdentity
	}
	server := b[1]&1 != 0
	rest := b[2:]
	cert, rest, err := cutField(rest)
	if err != nil || len(cert) > 64<<10 {
		return ErrBadIdentity
	}
	priv, rest, err := cutField(rest)
	if err != nil || len(rest) != 0 || len(priv) > len(group2Prime.Bytes()) {
		return ErrBadIdentity
	}
	c, err := DecodeCert(cert)
	if err != nil || c.acceptsAncData != server {
		return ErrBadIdentity
	}
	if sha256.Sum256(cert) != c.id { // our own certificate has no marker
		return ErrBadIdentity
	}
	n := Identity{server: server, cert: c.raw, id: c.id}
	if c.hasHostname {
		n.hostname, n.hasHostname = bytes.Clone(c.hostname), true
	}
	if c.static {
		pub, ok := c.PublicKey(DHGroup2)
		if !ok || len(priv) == 0 {
			return ErrBadIdentity
		}
		k, err := dhKeyFromPrivate(new(big.Int).SetBytes(priv))
		if err != nil || !bytes.Equal(k.pub, pub) {
			return ErrBadIdentity
		}
		n.static = k
	} else if len(priv) != 0 || !c.SupportsDHGroup(DHGroup2) {
		return ErrBadIdentity
	}
	*id = n
	return nil
}

// cutField splits a VLU-length-prefixed field off the front of b.
func cutField(b []byte) (field, rest []byte, err error) {
	l, n, err := parseVLU(b)
	if err != nil || l > uint64(len(b)-n) {
		return nil, nil, errTruncated
	}
	return b[n : n+int(l)], b[n+int(l):], nil
}
