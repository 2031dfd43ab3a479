package flash

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// RFC 7425 §4.2: what a certificate carries for each role, in the
// reference's order.
func TestSection4_2CertificateFormat(t *testing.T) {
	type opt struct {
		typ uint64
		n   int // value length, -1 to skip the check
	}
	tests := []struct {
		name      string
		server    bool
		ephemeral bool
		host      string
		want      []opt
	}{
		{"peer", false, false, "", []opt{{certOptStaticPubKey, -1}}},
		{"server", true, true, "", []opt{{certOptAcceptsAncData, 0}, {certOptSupportedGroup, 1}, {certOptExtraRandom, 64}}},
		{"server with hostname", true, true, "example", []opt{{certOptHostname, 7}, {certOptAcceptsAncData, 0}, {certOptSupportedGroup, 1}, {certOptExtraRandom, 64}}},
		{"static server", true, false, "h", []opt{{certOptHostname, 1}, {certOptAcceptsAncData, 0}, {certOptStaticPubKey, -1}}},
		{"ephemeral peer", false, true, "", []opt{{certOptSupportedGroup, 1}, {certOptExtraRandom, 64}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := mustIdentity(t, uint64(i+1), tt.server, tt.ephemeral, tt.host)
			b := id.Cert()
			var got []opt
			for len(b) > 0 {
				o, n, err := parseOption(b)
				if err != nil || o.marker {
					t.Fatalf("bad option in %x", id.Cert())
				}
				got = append(got, opt{o.typ, len(o.value)})
				if o.typ == certOptStaticPubKey {
					g, gn, _ := parseVLU(o.value)
					if g != DHGroup2 || !validPublicKey(o.value[gn:]) || len(o.value[gn:]) > 128 {
						t.Fatalf("static key option %x", o.value)
					}
				}
				b = b[n:]
			}
			if len(got) != len(tt.want) {
				t.Fatalf("options %v, want %v", got, tt.want)
			}
			for j := range got {
				if got[j].typ != tt.want[j].typ || (tt.want[j].n >= 0 && got[j].n != tt.want[j].n) {
					t.Fatalf("options %v, want %v", got, tt.want)
				}
			}
			if id.PeerID() != sha256.Sum256(id.Cert()) {
				t.Fatal("peer ID is not SHA-256 of the certificate")
			}
			if id.IsStatic() == tt.ephemeral || id.IsServer() != tt.server {
				t.Fatal("role accessors disagree")
			}
			c := mustCert(t, id)
			if c.PeerID() != id.PeerID() || c.IsStatic() != !tt.ephemeral || c.AcceptsAncillaryData() != tt.server {
				t.Fatalf("decoded cert %+v", c)
			}
			if h, ok := c.Hostname(); ok != (tt.host != "") || h != tt.host {
				t.Fatalf("hostname %q %v", h, ok)
			}
			if g := c.DHGroups(); len(g) != 1 || g[0] != DHGroup2 {
				t.Fatalf("groups %v", g)
			}
			if _, ok := c.PublicKey(DHGroup2); ok != !tt.ephemeral {
				t.Fatal("PublicKey presence wrong")
			}
			if !bytes.Equal(c.CanonicalEPD(), id.CanonicalEPD()) {
				t.Fatal("canonical EPDs differ")
			}
		})
	}
}

func TestNewIdentityDefaults(t *testing.T) {
	peer, err := NewIdentity(nil, false, "")
	if err != nil {
		t.Fatal(err)
	}
	server, err := NewIdentity(nil, true, "")
	if err != nil {
		t.Fatal(err)
	}
	if !peer.IsStatic() || server.IsStatic() {
		t.Fatal("reference defaults: peers static, servers ephemeral")
	}
	other, _ := NewIdentity(nil, false, "")
	if other.PeerID() == peer.PeerID() {
		t.Fatal("two fresh identities share a peer ID")
	}
}

func TestDecodeCert(t *testing.T) {
	key := mustIdentity(t, 1, false, false, "").Cert()
	tests := []struct {
		name     string
		cert     []byte
		ok       bool
		static   bool
		canonLen int
	}{
		{"static", key, true, true, len(key)},
		{"ephemeral", appendVLUOption(nil, certOptSupportedGroup, 2), true, false, 3},
		{"both kinds", appendVLUOption(bytes.Clone(key), certOptSupportedGroup, 2), false, false, 0},
		{"neither", appendOption(nil, certOptHostname, []byte("x")), false, false, 0},
		{"empty", nil, false, false, 0},
		{"truncated", key[:len(key)-1], false, false, 0},
		{"options after marker ignored", append(append(bytes.Clone(key), 0), appendVLUOption(nil, certOptSupportedGroup, 2)...), true, true, len(key)},
		{"malformed after marker", append(append(bytes.Clone(key), 0), 0x05), false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCert(tt.cert)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if !errors.Is(err, ErrBadCert) {
					t.Fatalf("err = %v, want ErrBadCert", err)
				}
				return
			}
			if c.IsStatic() != tt.static {
				t.Fatal("static flag")
			}
			if c.PeerID() != sha256.Sum256(tt.cert[:tt.canonLen]) {
				t.Fatal("peer ID does not cover exactly the canonical part")
			}
			if !bytes.Equal(c.Raw(), tt.cert) {
				t.Fatal("raw differs")
			}
		})
	}
}

// RFC 7425 §4.4: which endpoint discriminators select which ends.
func TestSection4_4EPDSelection(t *testing.T) {
	peer := mustIdentity(t, 1, false, false, "")
	server := mustIdentity(t, 2, true, true, "media.example")
	other := mustIdentity(t, 3, false, false, "")
	epd := func(e EPD) []byte {
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pid, sid := peer.PeerID(), server.PeerID()
	tests := []struct {
		name       string
		epd        []byte
		peer, serv bool
	}{
		{"peer's canonical EPD", peer.CanonicalEPD(), true, false},
		{"server's canonical EPD", EPDForPeerID(sid), false, true},
		{"other's canonical EPD", other.CanonicalEPD(), false, false},
		{"fingerprint decides alone", epd(EPD{Fingerprint: pid[:], Hostname: []byte("nope")}), true, false},
		{"short fingerprint", epd(EPD{Fingerprint: pid[:31]}), false, false},
		{"matching hostname", epd(EPD{Hostname: []byte("media.example")}), false, true},
		{"wrong hostname", epd(EPD{Hostname: []byte("media.example.")}), false, false},
		{"ancillary data selects servers", epd(EPD{Ancillary: []byte("rtmfp://media.example/app")}), false, true},
		{"ancillary with hostname", epd(EPD{Ancillary: []byte("app"), Hostname: []byte("media.example")}), false, true},
		{"empty ancillary data", epd(EPD{Ancillary: []byte{}}), false, true},
		{"malformed", []byte{0x05, 0x0f}, false, false},
		{"no selecting option", appendOption(nil, 0x33, []byte{1}), false, false},
		{"empty", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := peer.IsSelectedBy(tt.epd); got != tt.peer {
				t.Errorf("peer selected = %v", got)
			}
			if got := server.IsSelectedBy(tt.epd); got != tt.serv {
				t.Errorf("server selected = %v", got)
			}
			// A certificate answers like its owner.
			if got := mustCert(t, peer).IsSelectedBy(tt.epd); got != tt.peer {
				t.Errorf("peer cert selected = %v", got)
			}
			if got := mustCert(t, server).IsSelectedBy(tt.epd); got != tt.serv {
				t.Errorf("server cert selected = %v", got)
			}
		})
	}
	anc := epd(EPD{Ancillary: []byte("app")})
	if server.SelectedBy(anc, func(b []byte) bool { return string(b) == "other" }) {
		t.Error("ancillary hook refused but server selected")
	}
	if !server.SelectedBy(anc, func(b []byte) bool { return string(b) == "app" }) {
		t.Error("ancillary hook accepted but server not selected")
	}
}

func TestEPDEncoding(t *testing.T) {
	var id PeerID
	for i := range id {
		id[i] = byte(i)
	}
	got := EPDForPeerID(id)
	want := append([]byte{0x21, 0x0f}, id[:]...)
	if !bytes.Equal(got, want) {
		t.Fatalf("EPDForPeerID = %x", got)
	}
	full, err := EPD{Fingerprint: id[:2], Ancillary: []byte("a"), Hostname: []byte("h")}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := mustDecode("030f0001" + "020a61" + "020068"); !bytes.Equal(full, want) {
		t.Fatalf("Encode = %x, want %x", full, want)
	}
	e, err := ParseEPD(full)
	if err != nil || !bytes.Equal(e.Fingerprint, id[:2]) || string(e.Ancillary) != "a" || string(e.Hostname) != "h" {
		t.Fatalf("ParseEPD = %+v, %v", e, err)
	}
	if _, err := (EPD{}).Encode(); !errors.Is(err, ErrBadEPD) {
		t.Fatalf("empty EPD: %v", err)
	}
	p, err := ParsePeerID(id.String())
	if err != nil || p != id {
		t.Fatalf("ParsePeerID round trip: %v", err)
	}
	for _, s := range []string{"", "00", id.String() + "00", "zz" + id.String()[2:]} {
		if _, err := ParsePeerID(s); !errors.Is(err, ErrBadPeerID) {
			t.Errorf("ParsePeerID(%q) = %v", s, err)
		}
	}
}

// RFC 7016 §3.5.1.3 / RFC 7425 §4.3.6: the end whose certificate sorts first
// loses; exactly one of two different ends wins.
func TestSection4_3_6Glare(t *testing.T) {
	for seed := uint64(1); seed < 20; seed += 2 {
		a := mustIdentity(t, seed, false, false, "")
		b := mustIdentity(t, seed+1, false, seed%4 == 1, "")
		aw, bw := a.NearWinsGlare(mustCert(t, b)), b.NearWinsGlare(mustCert(t, a))
		if aw == bw {
			t.Fatalf("seed %d: both ends answer %v", seed, aw)
		}
		if aw != (bytes.Compare(a.Cert(), b.Cert()) < 0) {
			t.Fatalf("seed %d: the lexicographically smaller certificate must win", seed)
		}
	}
	a := mustIdentity(t, 1, false, false, "")
	if !a.NearWinsGlare(mustCert(t, a)) {
		t.Fatal("identical certificates: near wins")
	}
	c := mustCert(t, a)
	if !c.Overrides(mustCert(t, a)) || c.Overrides(mustCert(t, mustIdentity(t, 2, false, false, ""))) || c.Overrides(nil) {
		t.Fatal("Overrides is byte equality of certificates")
	}
}

func TestIdentityMarshalRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		server    bool
		ephemeral bool
		host      string
	}{
		{"peer", false, false, ""},
		{"server", true, true, "media.example"},
		{"static server", true, false, "h"},
		{"ephemeral peer", false, true, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := mustIdentity(t, uint64(i+40), tt.server, tt.ephemeral, tt.host)
			b, err := id.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var back Identity
			if err := back.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if back.PeerID() != id.PeerID() || !bytes.Equal(back.Cert(), id.Cert()) ||
				back.IsServer() != id.IsServer() || back.IsStatic() != id.IsStatic() {
				t.Fatal("round trip changed the identity")
			}
			if h, ok := back.Hostname(); h != tt.host || ok != (tt.host != "") {
				t.Fatalf("hostname %q", h)
			}
			// The restored identity still keys with a peer that knows the old one.
			far := mustIdentity(t, 99, false, false, "")
			if _, _, _, _, err := keying(t, far, &back, Policy{}, Policy{}); err != nil {
				t.Fatalf("keying with restored identity as responder: %v", err)
			}
			if _, _, _, _, err := keying(t, &back, far, Policy{}, Policy{}); err != nil {
				t.Fatalf("keying with restored identity as initiator: %v", err)
			}
		})
	}
}

func TestIdentityUnmarshalRejects(t *testing.T) {
	id := mustIdentity(t, 1, false, false, "")
	good, _ := id.MarshalBinary()
	other := mustIdentity(t, 2, false, false, "")
	otherBytes, _ := other.MarshalBinary()
	// Swap in the other identity's private key: it no longer matches.
	wrongKey := append([]byte{}, good[:len(good)-len(id.static.priv.Bytes())-1]...)
	wrongKey = append(appendVLU(wrongKey, uint64(len(other.static.priv.Bytes()))), other.static.priv.Bytes()...)
	serverFlag := bytes.Clone(good)
	serverFlag[1] = 1
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version", append([]byte{9}, good[1:]...)},
		{"unknown flag", append([]byte{1, 2}, good[2:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(bytes.Clone(good), 0)},
		{"wrong private key", wrongKey},
		{"server flag without ancillary option", serverFlag},
		{"no private key", append(bytes.Clone(otherBytes[:len(otherBytes)-len(other.static.priv.Bytes())-1]), 0)},
	}
	for _, tt := range tests {
		var back Identity
		if err := back.UnmarshalBinary(tt.b); !errors.Is(err, ErrBadIdentity) {
			t.Errorf("%s: %v, want ErrBadIdentity", tt.name, err)
		}
	}
}
