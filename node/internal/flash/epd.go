package flash

import "errors"

// Endpoint discriminator option types (RFC 7425 §4.4.2).
const (
	epdOptRequiredHostname = 0x00
	epdOptAncillaryData    = 0x0a
	epdOptFingerprint      = 0x0f
)

// ErrBadEPD is returned for an endpoint discriminator that does not parse or
// names nothing (no fingerprint, hostname or ancillary data option).
var ErrBadEPD = errors.New("flash: malformed endpoint discriminator")

// EPD is a decoded endpoint discriminator. A nil field is an absent option;
// an empty non-nil field is an option present with an empty value.
type EPD struct {
	// Fingerprint selects exactly one peer by peer ID; when present it alone
	// decides selection.
	Fingerprint []byte
	// Hostname must equal the responder's configured hostname.
	Hostname []byte
	// Ancillary is opaque application data (for example part of an rtmfp:
	// URI); only servers accept it.
	Ancillary []byte
}

// ParseEPD decodes an endpoint discriminator. Unknown options are skipped; if
// an option occurs twice, the last occurrence wins, as in the reference.
// The fields alias b.
func ParseEPD(b []byte) (EPD, error) {
	var e EPD
	for len(b) > 0 {
		o, n, err := parseOption(b)
		if err != nil {
			return EPD{}, ErrBadEPD
		}
		b = b[n:]
		if o.marker {
			continue
		}
		switch o.typ {
		case epdOptRequiredHostname:
			e.Hostname = o.value
		case epdOptAncillaryData:
			e.Ancillary = o.value
		case epdOptFingerprint:
			e.Fingerprint = o.value
		}
	}
	if e.Fingerprint == nil && e.Hostname == nil && e.Ancillary == nil {
		return EPD{}, ErrBadEPD
	}
	return e, nil
}

// Encode answers the wire form of e, options in the order fingerprint,
// ancillary data, hostname (the order the reference emits). An EPD with no
// field set is an error.
func (e EPD) Encode() ([]byte, error) {
	if e.Fingerprint == nil && e.Hostname == nil && e.Ancillary == nil {
		return nil, ErrBadEPD
	}
	var b []byte
	if e.Fingerprint != nil {
		b = appendOption(b, epdOptFingerprint, e.Fingerprint)
	}
	if e.Ancillary != nil {
		b = appendOption(b, epdOptAncillaryData, e.Ancillary)
	}
	if e.Hostname != nil {
		b = appendOption(b, epdOptRequiredHostname, e.Hostname)
	}
	return b, nil
}

// EPDForPeerID answers the canonical endpoint discriminator for a peer: a
// single fingerprint option holding its peer ID. This is what a node puts in
// an IHello to reach a known peer.
func EPDForPeerID(id PeerID) []byte {
	return appendOption(make([]byte, 0, 2+PeerIDSize), epdOptFingerprint, id[:])
}
