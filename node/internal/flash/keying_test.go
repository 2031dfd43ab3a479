package flash

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// testRand answers a deterministic random stream for a test.
func testRand(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

func mustIdentity(t testing.TB, seed uint64, server, ephemeral bool, host string) *Identity {
	t.Helper()
	id, err := NewIdentityDH(testRand(seed), server, ephemeral, host)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustCert(t testing.TB, id *Identity) *Cert {
	t.Helper()
	c, err := DecodeCert(id.Cert())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keying runs a whole RFC 7425 §4.6 exchange and answers both ends' crypto.
func keying(t testing.TB, ini, resp *Identity, pi, pr Policy) (*SessionCrypto, *SessionCrypto, []byte, []byte, error) {
	t.Helper()
	in, err := ini.NewInitiator(testRand(100), mustCert(t, resp), pi)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	skrc, rc, err := resp.Respond(testRand(101), mustCert(t, ini), in.SKIC(), pr)
	if err != nil {
		return nil, nil, in.SKIC(), nil, err
	}
	ic, err := in.Finish(skrc)
	return ic, rc, in.SKIC(), skrc, err
}

func TestSection4_6FullKeying(t *testing.T) {
	tests := []struct {
		name       string
		iEph, rEph bool
		skicHas    []uint64
		skrcHas    []uint64
		rServer    bool
	}{
		{name: "peer to peer (both static)", skicHas: []uint64{keyOptDHGroupSelect, keyOptExtraRandom}, skrcHas: []uint64{keyOptExtraRandom}},
		{name: "client to server (static to ephemeral)", rEph: true, rServer: true, skicHas: []uint64{keyOptDHGroupSelect, keyOptExtraRandom}, skrcHas: []uint64{keyOptDHPublicKey}},
		{name: "ephemeral to static", iEph: true, skicHas: []uint64{keyOptDHPublicKey}, skrcHas: []uint64{keyOptExtraRandom}},
		{name: "both ephemeral", iEph: true, rEph: true, skicHas: []uint64{keyOptDHPublicKey}, skrcHas: []uint64{keyOptDHPublicKey}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ini := mustIdentity(t, uint64(10*i+1), false, tt.iEph, "")
			resp := mustIdentity(t, uint64(10*i+2), tt.rServer, tt.rEph, "")
			ic, rc, skic, skrc, err := keying(t, ini, resp, Policy{}, Policy{})
			if err != nil {
				t.Fatal(err)
			}
			for _, typ := range append(tt.skicHas, keyOptHMAC, keyOptSSeq) {
				if _, ok := findOption(skic, typ); !ok {
					t.Errorf("SKIC lacks option %#x", typ)
				}
			}
			for _, typ := range append(tt.skrcHas, keyOptHMAC, keyOptSSeq) {
				if _, ok := findOption(skrc, typ); !ok {
					t.Errorf("SKRC lacks option %#x", typ)
				}
			}
			if !bytes.Equal(ic.NearNonce(), rc.FarNonce()) || !bytes.Equal(ic.FarNonce(), rc.NearNonce()) {
				t.Fatal("nonces do not pair up")
			}
			if bytes.Equal(ic.NearNonce(), ic.FarNonce()) {
				t.Fatal("near and far nonces equal")
			}
			if ic.Params() != (Params{}) || rc.Params() != (Params{}) {
				t.Fatalf("default params %+v %+v, want checksums only", ic.Params(), rc.Params())
			}
			for _, dir := range []struct {
				name   string
				tx, rx *SessionCrypto
			}{{"initiator to responder", ic, rc}, {"responder to initiator", rc, ic}} {
				msg := []byte(dir.name)
				got, err := dir.rx.Open(nil, dir.tx.Seal(nil, msg))
				if err != nil || !bytes.HasPrefix(got, msg) {
					t.Fatalf("%s: %q, %v", dir.name, got, err)
				}
				// Nor is the session key the default key.
				if _, err := NewDefaultCrypto().Open(nil, dir.tx.Seal(nil, msg)); err == nil {
					t.Fatalf("%s: default key opened a session packet", dir.name)
				}
			}
		})
	}
}

func TestKeyingComponentOrder(t *testing.T) {
	ini := mustIdentity(t, 1, false, false, "")
	resp := mustIdentity(t, 2, true, true, "")
	_, _, skic, skrc, err := keying(t, ini, resp, Policy{}, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	types := func(b []byte) (ts []uint64) {
		for len(b) > 0 {
			o, n, err := parseOption(b)
			if err != nil {
				t.Fatal(err)
			}
			ts = append(ts, o.typ)
			b = b[n:]
		}
		return ts
	}
	wantI := []uint64{keyOptDHGroupSelect, keyOptExtraRandom, keyOptHMAC, keyOptSSeq}
	wantR := []uint64{keyOptSSeq, keyOptHMAC, keyOptDHPublicKey}
	if got := types(skic); !equalU64(got, wantI) {
		t.Errorf("SKIC option order %x, want %x", got, wantI)
	}
	if got := types(skrc); !equalU64(got, wantR) {
		t.Errorf("SKRC option order %x, want %x", got, wantR)
	}
	// Default negotiation values: "send on request" only, HMAC length 16.
	if v, _ := findOption(skic, keyOptHMAC); !bytes.Equal(v, []byte{flagSOR, 16}) {
		t.Errorf("SKIC HMAC option %x", v)
	}
	if v, _ := findOption(skic, keyOptSSeq); !bytes.Equal(v, []byte{flagSOR}) {
		t.Errorf("SKIC SSEQ option %x", v)
	}
	if v, _ := findOption(skic, keyOptDHGroupSelect); !bytes.Equal(v, []byte{DHGroup2}) {
		t.Errorf("SKIC group select %x", v)
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// RFC 7425 §4.6.4 and §4.6.5 negotiation outcomes.
func TestSection4_6_4Negotiation(t *testing.T) {
	ini := mustIdentity(t, 3, false, false, "")
	resp := mustIdentity(t, 4, false, false, "")
	tests := []struct {
		name   string
		pi, pr Policy
		wantI  Params
		wantR  Params
	}{
		{name: "both off", wantI: Params{}, wantR: Params{}},
		{
			name: "initiator requires HMAC",
			pi:   Policy{HMACRecvRequired: true},
			// The responder, asked, sends; the initiator answers in kind
			// because the responder's SND makes it require, not send.
			wantI: Params{HMACRecv: true, HMACRecvLength: 16},
			wantR: Params{HMACSend: true, HMACSendLength: 16},
		},
		{
			name:  "responder sends HMAC always",
			pr:    Policy{HMACSendAlways: true, HMACLength: 8},
			wantI: Params{HMACRecv: true, HMACRecvLength: 8},
			wantR: Params{HMACSend: true, HMACSendLength: 8},
		},
		{
			name:  "both send and require HMAC",
			pi:    Policy{HMACSendAlways: true, HMACRecvRequired: true, HMACLength: 32},
			pr:    Policy{HMACSendAlways: true, HMACRecvRequired: true, HMACLength: 1},
			wantI: Params{HMACSend: true, HMACSendLength: 32, HMACRecv: true, HMACRecvLength: 4},
			wantR: Params{HMACSend: true, HMACSendLength: 4, HMACRecv: true, HMACRecvLength: 32},
		},
		{
			name:  "initiator sends sequence numbers (SND)",
			pi:    Policy{SSeqSendAlways: true},
			wantI: Params{SSeqSend: true},
			wantR: Params{SSeqRecv: true},
		},
		{
			name:  "responder requires sequence numbers (REQ honoured on request)",
			pr:    Policy{SSeqRecvRequired: true},
			wantI: Params{SSeqSend: true},
			wantR: Params{SSeqRecv: true},
		},
		{
			name:  "default initiator, strict responder (like the reference echoserver)",
			pr:    StrictPolicy(),
			wantI: Params{SSeqSend: true, SSeqRecv: true, HMACSend: true, HMACSendLength: 16, HMACRecv: true, HMACRecvLength: 16},
			wantR: Params{SSeqSend: true, SSeqRecv: true, HMACSend: true, HMACSendLength: 16, HMACRecv: true, HMACRecvLength: 16},
		},
		{
			name:  "strict initiator, default responder",
			pi:    StrictPolicy(),
			wantI: Params{SSeqSend: true, SSeqRecv: true, HMACSend: true, HMACSendLength: 16, HMACRecv: true, HMACRecvLength: 16},
			wantR: Params{SSeqSend: true, SSeqRecv: true, HMACSend: true, HMACSendLength: 16, HMACRecv: true, HMACRecvLength: 16},
		},
		{
			name:  "everything",
			pi:    Policy{SSeqSendAlways: true, SSeqRecvRequired: true, HMACSendAlways: true, HMACRecvRequired: true},
			wantI: Params{SSeqSend: true, SSeqRecv: true, HMACSend: true, HMACSendLength: 16, HMACRecv: true, HMACRecvLength: 16},
			wantR: Params{SSeqSend: true, SSeqRecv: true, HMACSend: true, HMACSendLength: 16, HMACRecv: true, HMACRecvLength: 16},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ic, rc, _, _, err := keying(t, ini, resp, tt.pi, tt.pr)
			if err != nil {
				t.Fatal(err)
			}
			if ic.Params() != tt.wantI {
				t.Errorf("initiator %+v, want %+v", ic.Params(), tt.wantI)
			}
			if rc.Params() != tt.wantR {
				t.Errorf("responder %+v, want %+v", rc.Params(), tt.wantR)
			}
			for i := 0; i < 3; i++ {
				for _, d := range [][2]*SessionCrypto{{ic, rc}, {rc, ic}} {
					if _, err := d[1].Open(nil, d[0].Seal(nil, []byte{0x89, byte(i)})); err != nil {
						t.Fatalf("packet %d: %v", i, err)
					}
				}
			}
		})
	}
}

// A far end that requires what this end will never send aborts keying. The
// reference always offers "send on request", so this only bites against
// components without the option (for example from other implementations).
func TestNegotiationMismatchRejects(t *testing.T) {
	ini := mustIdentity(t, 5, false, false, "")
	resp := mustIdentity(t, 6, false, false, "")
	in, err := ini.NewInitiator(testRand(1), mustCert(t, resp), Policy{})
	if err != nil {
		t.Fatal(err)
	}
	strip := func(comp []byte, typ uint64) []byte {
		var out []byte
		for len(comp) > 0 {
			o, n, _ := parseOption(comp)
			if o.typ != typ {
				out = append(out, comp[:n]...)
			}
			comp = comp[n:]
		}
		return out
	}
	setFlags := func(comp []byte, typ uint64, v []byte) []byte {
		return appendOption(strip(comp, typ), typ, v)
	}
	tests := []struct {
		name string
		skic []byte
		pr   Policy
		want error
	}{
		{"responder requires SSEQ, none offered", strip(in.SKIC(), keyOptSSeq), Policy{SSeqRecvRequired: true}, ErrNegotiation},
		{"responder requires HMAC, none offered", strip(in.SKIC(), keyOptHMAC), Policy{HMACRecvRequired: true}, ErrNegotiation},
		{"responder requires HMAC, REQ only", setFlags(in.SKIC(), keyOptHMAC, []byte{flagREQ, 16}), Policy{HMACRecvRequired: true}, ErrNegotiation},
		{"initiator sends HMAC of length 3", setFlags(in.SKIC(), keyOptHMAC, []byte{flagSND, 3}), Policy{}, ErrNegotiation},
		{"initiator sends HMAC of length 33", setFlags(in.SKIC(), keyOptHMAC, []byte{flagSND, 33}), Policy{}, ErrNegotiation},
		{"no group select from static initiator", strip(in.SKIC(), keyOptDHGroupSelect), Policy{}, ErrBadComponent},
		{"unknown group", setFlags(in.SKIC(), keyOptDHGroupSelect, []byte{14}), Policy{}, ErrNoCommonGroup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := resp.Respond(testRand(2), mustCert(t, ini), tt.skic, tt.pr); !errors.Is(err, tt.want) {
				t.Fatalf("Respond: %v, want %v", err, tt.want)
			}
		})
	}

	// The initiator side: a responder that will not send what it requires.
	strict, err := ini.NewInitiator(testRand(3), mustCert(t, resp), Policy{SSeqRecvRequired: true})
	if err != nil {
		t.Fatal(err)
	}
	skrc, _, err := resp.Respond(testRand(4), mustCert(t, ini), strict.SKIC(), Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Finish(strip(skrc, keyOptSSeq)); !errors.Is(err, ErrNegotiation) {
		t.Fatalf("Finish without SSEQ option: %v", err)
	}
	// A failed Finish does not spoil the keying.
	if _, err := strict.Finish(skrc); err != nil {
		t.Fatalf("Finish after a bad SKRC: %v", err)
	}
	if _, err := strict.Finish(skrc); !errors.Is(err, ErrFinished) {
		t.Fatalf("second Finish: %v", err)
	}
}

func TestEphemeralResponderComponentErrors(t *testing.T) {
	ini := mustIdentity(t, 7, false, true, "")
	resp := mustIdentity(t, 8, true, true, "")
	in, err := ini.NewInitiator(testRand(1), mustCert(t, resp), Policy{})
	if err != nil {
		t.Fatal(err)
	}
	skrc, _, err := resp.Respond(testRand(2), mustCert(t, ini), in.SKIC(), Policy{})
	if err != nil {
		t.Fatal(err)
	}
	tooSmall := appendOption(nil, keyOptDHPublicKey, []byte{DHGroup2, 1, 2, 3})
	if _, err := in.Finish(tooSmall); !errors.Is(err, ErrBadPublicKey) {
		t.Fatalf("tiny public key: %v", err)
	}
	if _, err := in.Finish(appendOption(nil, keyOptExtraRandom, []byte{1})); !errors.Is(err, ErrBadComponent) {
		t.Fatalf("no public key: %v", err)
	}
	if _, _, err := resp.Respond(testRand(3), mustCert(t, ini), nil, Policy{}); !errors.Is(err, ErrBadComponent) {
		t.Fatalf("empty SKIC: %v", err)
	}
	if _, err := in.Finish(skrc); err != nil {
		t.Fatal(err)
	}
}

func TestNoCommonGroup(t *testing.T) {
	ini := mustIdentity(t, 9, false, false, "")
	cert := appendVLUOption(nil, certOptSupportedGroup, 14)
	c, err := DecodeCert(cert)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ini.NewInitiator(testRand(1), c, Policy{}); !errors.Is(err, ErrNoCommonGroup) {
		t.Fatalf("NewInitiator: %v", err)
	}
}

func TestPublicKeyValidation(t *testing.T) {
	k, err := newDHKey(testRand(1))
	if err != nil {
		t.Fatal(err)
	}
	pMinus := group2Prime.Bytes()
	tests := []struct {
		name string
		key  []byte
		ok   bool
	}{
		{"own public key", k.pub, true},
		{"empty", nil, false},
		{"one", []byte{1}, false},
		{"below 2^24", []byte{0xff, 0xff, 0xff}, false},
		{"the modulus", pMinus, false},
		{"too few zero bits", bytes.Repeat([]byte{0xff}, 8), false},
		{"too few one bits", append([]byte{1}, make([]byte, 20)...), false},
	}
	for _, tt := range tests {
		if got := validPublicKey(tt.key); got != tt.ok {
			t.Errorf("%s: valid = %v", tt.name, got)
		}
	}
}

func BenchmarkKeying(b *testing.B) {
	ini := mustIdentity(b, 1, false, false, "")
	resp := mustIdentity(b, 2, false, false, "")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, _, _, err := keying(b, ini, resp, Policy{}, Policy{}); err != nil {
			b.Fatal(err)
		}
	}
}

// The reference's OpenSSL build supports groups 16, 14 and 2 and lists them
// in that order; its static certificates carry a key for each. We must pick
// group 2 against it in both roles.
func TestReferenceShapedMultiGroupCerts(t *testing.T) {
	junk := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i)
		}
		return b
	}
	// A server certificate as the reference echoserver sends it (83 bytes).
	var server []byte
	server = appendOption(server, certOptHostname, []byte("echo"))
	server = appendOption(server, certOptAcceptsAncData, nil)
	for _, g := range []uint64{16, 14, 2} {
		server = appendVLUOption(server, certOptSupportedGroup, g)
	}
	server = appendOption(server, certOptExtraRandom, junk(64, 1))
	if len(server) != 83 {
		t.Fatalf("reference-shaped server certificate is %d bytes, want 83", len(server))
	}
	sc, err := DecodeCert(server)
	if err != nil {
		t.Fatal(err)
	}
	if g := sc.DHGroups(); len(g) != 3 || g[0] != 16 || g[2] != 2 {
		t.Fatalf("groups %v", g)
	}
	peer := mustIdentity(t, 1, false, false, "")
	in, err := peer.NewInitiator(testRand(2), sc, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := findOption(in.SKIC(), keyOptDHGroupSelect); !bytes.Equal(v, []byte{DHGroup2}) {
		t.Fatalf("group select %x, want group 2", v)
	}

	// A static client certificate with keys for 16, 14 and 2, initiating to us.
	k2, err := newDHKey(testRand(3))
	if err != nil {
		t.Fatal(err)
	}
	var client []byte
	client = appendOption(client, certOptStaticPubKey, append([]byte{16}, junk(512, 7)...))
	client = appendOption(client, certOptStaticPubKey, append([]byte{14}, junk(256, 9)...))
	client = appendOption(client, certOptStaticPubKey, append([]byte{2}, k2.pub...))
	refClient := &Identity{cert: client, id: sha256.Sum256(client), static: k2}
	ic, rc, _, _, err := keying(t, refClient, peer, StrictPolicy(), Policy{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := rc.Open(nil, ic.Seal(nil, []byte{0x89, 1, 2}))
	if err != nil || !bytes.HasPrefix(got, []byte{0x89, 1, 2}) {
		t.Fatalf("Open = %x, %v", got, err)
	}
}
