package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"github.com/strata-net/strata/node/internal/flash"
)

// PeerID identifies a node: the SHA-256 of its certificate (RFC 7425 §4.3).
type PeerID = flash.PeerID

// ParsePeerID parses a peer ID written as 64 hex digits.
func ParsePeerID(s string) (PeerID, error) { return flash.ParsePeerID(s) }

// Identity is a node's Diffie-Hellman key pair and the certificate built
// from it; its peer ID follows from the certificate.
type Identity struct {
	fid *flash.Identity
}

// NewIdentity makes a fresh identity. Its certificate carries a static
// Diffie-Hellman public key, as the Flash profile expects of a peer that
// others connect to (RFC 7425 §4.3.3), and so its peer ID is stable for as
// long as the identity is kept (SaveIdentity / LoadIdentity).
func NewIdentity() (*Identity, error) {
	fid, err := flash.NewIdentityDH(rand.Reader, true, false, "")
	if err != nil {
		return nil, fmt.Errorf("node: new identity: %w", err)
	}
	return &Identity{fid: fid}, nil
}

// PeerID is the identity's peer ID.
func (id *Identity) PeerID() PeerID { return id.fid.PeerID() }

// Certificate is the encoded certificate.
func (id *Identity) Certificate() []byte { return id.fid.Cert() }

// MarshalBinary encodes the identity including its private key (secret).
func (id *Identity) MarshalBinary() ([]byte, error) { return id.fid.MarshalBinary() }

// UnmarshalIdentity decodes an identity made by MarshalBinary.
func UnmarshalIdentity(b []byte) (*Identity, error) {
	fid := new(flash.Identity)
	if err := fid.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("node: identity: %w", err)
	}
	return &Identity{fid: fid}, nil
}

// SaveIdentity writes the identity to path (mode 0600).
func SaveIdentity(path string, id *Identity) error {
	b, err := id.MarshalBinary()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// LoadIdentity reads an identity from path.
func LoadIdentity(path string) (*Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node: load identity: %w", err)
	}
	return UnmarshalIdentity(b)
}

// LoadOrCreateIdentity loads the identity at path, or makes and saves a new
// one if the file does not exist.
func LoadOrCreateIdentity(path string) (*Identity, error) {
	id, err := LoadIdentity(path)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	id, err = NewIdentity()
	if err != nil {
		return nil, err
	}
	if err := SaveIdentity(path, id); err != nil {
		return nil, err
	}
	return id, nil
}

// EPDForPeerID is the endpoint discriminator that selects exactly the node
// with this peer ID.
func EPDForPeerID(p PeerID) []byte { return flash.EPDForPeerID(p) }

// AnyEPD is an endpoint discriminator that any server-mode Flash endpoint
// answers (it carries only empty ancillary data); use it to reach a node
// whose peer ID you do not know, such as an echo server or a rendezvous.
func AnyEPD() []byte {
	b, _ := flash.EPD{Ancillary: []byte{}}.Encode()
	return b
}
