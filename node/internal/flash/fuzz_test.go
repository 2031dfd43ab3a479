package flash

import (
	"bytes"
	"testing"
)

func FuzzDecodeCert(f *testing.F) {
	f.Add(mustIdentity(f, 1, false, false, "").Cert())
	f.Add(mustIdentity(f, 2, true, true, "host").Cert())
	f.Add([]byte{0x02, 0x15, 0x02, 0x00, 0x03, 0x1d, 0x02, 0x01})
	f.Add([]byte{0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCert(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Raw(), b) {
			t.Fatal("Raw differs from input")
		}
		if !c.IsSelectedBy(c.CanonicalEPD()) {
			t.Fatal("certificate not selected by its own canonical EPD")
		}
		for _, g := range c.DHGroups() {
			if !c.SupportsDHGroup(g) {
				t.Fatal("listed group not supported")
			}
		}
		c.Overrides(c)
	})
}

func FuzzParseEPD(f *testing.F) {
	f.Add(EPDForPeerID(PeerID{1, 2, 3}))
	f.Add(mustDecode("030f0001020a61020068"))
	f.Add([]byte{0x00, 0x01, 0x0a})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEPD(b)
		if err != nil {
			return
		}
		enc, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		e2, err := ParseEPD(enc)
		if err != nil || !bytes.Equal(e.Fingerprint, e2.Fingerprint) || !bytes.Equal(e.Hostname, e2.Hostname) || !bytes.Equal(e.Ancillary, e2.Ancillary) {
			t.Fatalf("re-encoding changed the EPD: %+v vs %+v", e, e2)
		}
		id := mustIdentity(t, 5, true, true, "h")
		id.IsSelectedBy(b)
	})
}

func FuzzRespond(f *testing.F) {
	ini := mustIdentity(f, 1, false, false, "")
	iniEph := mustIdentity(f, 2, false, true, "")
	resp := mustIdentity(f, 3, false, false, "")
	for _, id := range []*Identity{ini, iniEph} {
		in, err := id.NewInitiator(testRand(4), mustCert(f, resp), Policy{})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(in.SKIC(), id == iniEph)
	}
	f.Add([]byte{0x02, 0x1d, 0x02}, false)
	iniCert, ephCert := mustCert(f, ini), mustCert(f, iniEph)
	f.Fuzz(func(t *testing.T, skic []byte, eph bool) {
		c := iniCert
		if eph {
			c = ephCert
		}
		skrc, sc, err := resp.Respond(testRand(5), c, skic, Policy{})
		if err != nil {
			return
		}
		if len(skrc) == 0 || sc == nil {
			t.Fatal("success without a component")
		}
	})
}

func FuzzFinish(f *testing.F) {
	ini := mustIdentity(f, 1, false, true, "")
	resp := mustIdentity(f, 2, true, true, "")
	in, err := ini.NewInitiator(testRand(3), mustCert(f, resp), Policy{})
	if err != nil {
		f.Fatal(err)
	}
	skrc, _, err := resp.Respond(testRand(4), mustCert(f, ini), in.SKIC(), Policy{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(skrc)
	f.Add([]byte{0x02, 0x1e, 0x04})
	f.Fuzz(func(t *testing.T, b []byte) {
		each := *in // Finish marks its receiver done
		if sc, err := each.Finish(b); err == nil && sc == nil {
			t.Fatal("success without crypto")
		}
	})
}

func FuzzOpen(f *testing.F) {
	def := NewDefaultCrypto()
	f.Add(def.Seal(nil, []byte("hello")), uint8(0))
	for i, m := range protectionModes {
		a, _ := sessionPair(m.a, m.b)
		f.Add(a.Seal(nil, []byte("hello")), uint8(i+1))
	}
	f.Add([]byte{}, uint8(2))
	f.Fuzz(func(t *testing.T, pkt []byte, mode uint8) {
		var s *SessionCrypto
		if m := int(mode) % (len(protectionModes) + 1); m == 0 {
			s = NewDefaultCrypto()
		} else {
			_, s = sessionPair(protectionModes[m-1].a, protectionModes[m-1].b)
		}
		out, err := s.Open([]byte{1}, pkt)
		if err != nil {
			if len(out) != 1 {
				t.Fatal("failed Open changed dst length")
			}
			return
		}
		if len(out) > 1+len(pkt) {
			t.Fatal("plaintext longer than packet")
		}
		// In place gives the same answer on a fresh state.
		if m := int(mode) % (len(protectionModes) + 1); m != 0 {
			_, s = sessionPair(protectionModes[m-1].a, protectionModes[m-1].b)
		}
		in, err := s.Open(nil, bytes.Clone(pkt))
		if err != nil || !bytes.Equal(in, out[1:]) {
			t.Fatalf("second Open: %v", err)
		}
	})
}

func FuzzUnmarshalIdentity(f *testing.F) {
	for i, id := range []*Identity{mustIdentity(f, 1, false, false, ""), mustIdentity(f, 2, true, true, "h")} {
		b, err := id.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:i+3])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var id Identity
		if err := id.UnmarshalBinary(b); err != nil {
			return
		}
		again, err := id.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Identity
		if err := back.UnmarshalBinary(again); err != nil || back.PeerID() != id.PeerID() {
			t.Fatalf("re-marshal failed: %v", err)
		}
	})
}

func FuzzOption(f *testing.F) {
	f.Add([]byte{0x03, 0x0f, 0x01, 0x02})
	f.Add([]byte{0x00})
	f.Add([]byte{0x81, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, n, err := parseOption(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		if !o.marker {
			re := appendOption(nil, o.typ, o.value)
			o2, _, err := parseOption(re)
			if err != nil || o2.typ != o.typ || !bytes.Equal(o2.value, o.value) {
				t.Fatal("option re-encoding differs")
			}
		}
	})
}
