// Package profile adapts the Flash cryptography profile (RFC 7425, package
// flash) to the protocol core's Profile seam.
//
// It lives apart from both so that neither depends on the other: flash is
// pure cryptography, core is pure protocol.
package profile

import (
	"crypto/rand"

	"github.com/strata-net/strata/node/internal/core"
	"github.com/strata-net/strata/node/internal/flash"
)

// flashProfile implements core.Profile with a Flash identity.
type flashProfile struct {
	id     *flash.Identity
	policy flash.Policy
	def    *flash.SessionCrypto
}

// Flash returns the Flash profile for an identity with the given
// HMAC / session sequence number policy.
func Flash(id *flash.Identity, policy flash.Policy) core.Profile {
	return &flashProfile{id: id, policy: policy, def: flash.NewDefaultCrypto()}
}

func (p *flashProfile) DefaultKey() core.SessionKey  { return p.def }
func (p *flashProfile) Certificate([]byte) []byte    { return p.id.Cert() }
func (p *flashProfile) IsSelectedBy(epd []byte) bool { return p.id.IsSelectedBy(epd) }

func (p *flashProfile) DecodeCert(b []byte) (core.Cert, error) {
	c, err := flash.DecodeCert(b)
	if err != nil {
		return nil, err
	}
	return flashCert{c}, nil
}

func (p *flashProfile) NewInitiator(far core.Cert) (core.Initiator, error) {
	in, err := p.id.NewInitiator(rand.Reader, far.(flashCert).c, p.policy)
	if err != nil {
		return nil, err
	}
	return flashInitiator{in}, nil
}

func (p *flashProfile) Respond(far core.Cert, skic []byte) (core.SessionKey, []byte, error) {
	skrc, key, err := p.id.Respond(rand.Reader, far.(flashCert).c, skic, p.policy)
	if err != nil {
		return nil, nil, err
	}
	return key, skrc, nil
}

// Sign: the Flash profile does not sign handshakes (RFC 7425 §4.3.5); like
// the reference implementation we send a one-byte placeholder.
func (p *flashProfile) Sign([]byte, core.Cert) []byte { return []byte{'X'} }

func (p *flashProfile) NearWinsGlare(far core.Cert) bool {
	return p.id.NearWinsGlare(far.(flashCert).c)
}

type flashCert struct{ c *flash.Cert }

func (c flashCert) IsSelectedBy(epd []byte) bool        { return c.c.IsSelectedBy(epd) }
func (c flashCert) CanonicalEPD() []byte                { return c.c.CanonicalEPD() }
func (c flashCert) PeerID() [32]byte                    { return c.c.PeerID() }
func (c flashCert) CheckSignature(msg, sig []byte) bool { return true }
func (c flashCert) KeysSession() bool                   { return c.c.IsStatic() }
func (c flashCert) OverridesSession(old core.Cert) bool {
	o, ok := old.(flashCert)
	return ok && c.c.Overrides(o.c)
}

type flashInitiator struct{ in *flash.Initiator }

func (i flashInitiator) SKIC() []byte { return i.in.SKIC() }
func (i flashInitiator) Finish(skrc []byte) (core.SessionKey, error) {
	k, err := i.in.Finish(skrc)
	if err != nil {
		return nil, err
	}
	return k, nil
}
