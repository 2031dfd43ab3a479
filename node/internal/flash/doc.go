// Package flash implements the cryptography profile of RFC 7425 §4 ("Adobe's
// RTMFP Profile for Flash Communication") for RTMFP (RFC 7016), the profile
// Flash Player, Adobe Media Server and zenomt/rtmfp-cpp speak. It is pure:
// no I/O, no goroutines, randomness from a caller-supplied io.Reader.
//
// # Identities and certificates (§4.2, §4.3)
//
// An Identity is this end's certificate, a list of RFC 7016 §2.1.3 options:
// an optional hostname (0x00); "accepts ancillary data" (0x0a) for servers;
// then either the supported DH groups (0x15) plus 64 bytes of extra randomness
// (0x0e) when keying uses ephemeral Diffie-Hellman keys, or a static DH public
// key per group (0x1d). As in the reference, servers default to ephemeral
// keys and clients and peers to a static key. The peer ID is the SHA-256 of
// the canonical certificate: the options before the first marker (§4.3.1).
// Identity.MarshalBinary keeps the certificate and private key so a node keeps
// its peer ID across restarts. Only DH group 2 (RFC 2409 §6.2, 1024-bit MODP)
// is implemented; it is mandatory for every Flash profile endpoint.
//
// # Endpoint discriminators (§4.4)
//
// An EPD names whom an IHello is for: a fingerprint (0x0f, the peer ID)
// selects exactly one end and decides alone; a required hostname (0x00) must
// match the responder's; ancillary data (0x0a) selects only servers.
//
// # Session keying (§4.6)
//
// The initiator builds a Session Key Initiator Component (Identity.NewInitiator)
// from the responder's certificate; the responder answers with a Session Key
// Responder Component (Identity.Respond); the initiator completes with
// Initiator.Finish. A static end selects the group (SKIC 0x1d) and adds extra
// randomness (0x0e), its public key being in its certificate; an ephemeral end
// sends a public key (0x0d). Both components carry HMAC (0x1a) and session
// sequence number (0x1e) negotiation flags: SND (always sends), SOR (sends on
// request, always offered) and REQ (requires). Keys are HMAC-SHA256 of the DH
// shared secret over HMAC-SHA256 of the two components, in opposite orders for
// the two directions (§4.6.5); the session nonces are HMAC-SHA256 of the
// secret over each component.
//
// # Packet protection (§4.1, §4.5, §4.6.4, §4.6.5)
//
// SessionCrypto seals packets with AES-128-CBC under a zero IV, preceded inside
// the encryption by an optional session sequence number and, unless an HMAC
// is negotiated, the 16-bit Internet checksum (RFC 1071) of the rest; 0xff
// bytes pad to the block size; a truncated HMAC-SHA256 of the ciphertext
// follows when negotiated. Startup packets and a session's packets before
// keying completes use the well-known default key "Adobe Systems 02"
// (NewDefaultCrypto). By default, as in the reference, neither HMACs nor
// sequence numbers are used: only checksums.
//
// The behaviour, option order and defaults follow the reference
// implementation zenomt/rtmfp-cpp so that the two interoperate.
package flash
