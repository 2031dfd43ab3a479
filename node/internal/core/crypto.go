package core

// This file is the seam between the protocol core and a cryptography profile
// (RFC 7016 §4). The core never looks inside certificates, endpoint
// discriminators or keying components; it only moves them between the
// handshake chunks and asks the profile what they mean.

// Profile is an endpoint's cryptography profile: its identity and the
// operations the handshake needs (RFC 7016 §4.1 "cryptography profile").
type Profile interface {
	// DefaultKey protects startup packets (session ID 0, RHello, IIKeying,
	// RIKeying, cookie change, redirect).
	DefaultKey() SessionKey
	// Certificate is this endpoint's encoded certificate, sent in RHello
	// (in answer to epd) and in IIKeying (epd == nil).
	Certificate(epd []byte) []byte
	// IsSelectedBy reports whether this endpoint is the one an IHello
	// with endpoint discriminator epd is looking for.
	IsSelectedBy(epd []byte) bool
	// DecodeCert decodes a far certificate.
	DecodeCert(cert []byte) (Cert, error)
	// NewInitiator starts keying toward far: it returns the initiator's
	// session key component (SKIC) and the state to finish keying with.
	NewInitiator(far Cert) (Initiator, error)
	// Respond consumes the far initiator's SKIC and returns the session key
	// and the responder's session key component (SKRC).
	Respond(far Cert, skic []byte) (SessionKey, []byte, error)
	// Sign signs handshake parameters for recipient (may be empty for
	// profiles whose certificates are not authenticated).
	Sign(msg []byte, recipient Cert) []byte
	// NearWinsGlare breaks a simultaneous open (RFC 7016 §3.5.1.3).
	NearWinsGlare(far Cert) bool
}

// Cert is a decoded far certificate.
type Cert interface {
	// IsSelectedBy reports whether an endpoint discriminator selects the
	// holder of this certificate.
	IsSelectedBy(epd []byte) bool
	// CanonicalEPD is the discriminator that names exactly this holder.
	CanonicalEPD() []byte
	// PeerID is the holder's identity (for the Flash profile the SHA-256
	// of the certificate).
	PeerID() [32]byte
	// CheckSignature verifies a signature made with Profile.Sign.
	CheckSignature(msg, sig []byte) bool
	// OverridesSession reports whether a new IIKeying carrying this
	// certificate may replace an existing session with old (§3.5.1.3).
	OverridesSession(old Cert) bool
	// KeysSession reports whether the holder's long-term key (bound to its
	// peer ID) keys every session with it, so that only the holder can
	// complete one: the session authenticates the peer ID. (Flash: a
	// static Diffie-Hellman public key in the certificate.)
	KeysSession() bool
}

// Initiator is the initiator's keying state between IIKeying and RIKeying.
type Initiator interface {
	SKIC() []byte
	// Finish combines the responder's SKRC into the session key.
	Finish(skrc []byte) (SessionKey, error)
}

// SessionKey protects the packets of one session in both directions.
type SessionKey interface {
	// Seal appends the encrypted form of the plaintext packet to dst.
	Seal(dst, plain []byte) []byte
	// Open appends the decrypted plaintext packet to dst, or fails when
	// the packet is not authentic.
	Open(dst, packet []byte) ([]byte, error)
}
