package group

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// A member that alters the pieces it relays (and pushes them to every
// neighbour, asked or not, that does not advertise the piece) is dropped
// by every neighbour but the publisher, which holds every piece and may
// get nothing from it, and nothing it altered is output anywhere.
func TestForgedPiecesAreDropped(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"fragments with their blocks", Config{}},
		{"early fragments", Config{EarlyFragments: true}}, // forged fragments fail their signature
	} {
		t.Run(tc.name, func(t *testing.T) { testForgedPiecesAreDropped(t, tc.cfg) })
	}
}

func testForgedPiecesAreDropped(t *testing.T, cfg Config) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	spec := Specifier{Name: "forged", Multicast: true, PublisherKey: pub}
	m := newMesh(t, 12, memnet.Link{Delay: 5 * time.Millisecond, Jitter: 5 * time.Millisecond}, spec, cfg, priv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m.bootstrap(ctx)
	const evil = 5
	bad := m.members[evil]
	badID := bad.n.PeerID()
	forgedTo := make(map[[32]byte]int) // forged pieces sent, by neighbour; under bad.g.mu
	bad.g.mu.Lock()
	bad.g.st.tamper = func(to *link, msg []byte) []byte {
		forgedTo[to.peer]++
		out := append([]byte(nil), msg...)
		out[len(out)-1] ^= 0x5a // last payload byte
		return out
	}
	bad.g.mu.Unlock()
	data := streamData(300_000)
	m.subscribe(ctx, data)
	p, err := m.members[0].g.Publish()
	if err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, p, data, 150_000, 1000)
	res := m.collect(data, 6*time.Second, evil)
	if res.missing > 0.001 {
		t.Errorf("honest members miss %.3f%% of the stream", res.missing*100)
		m.diagLost(t) // (seen once under -race with the whole suite: block 1 at three members)
	}
	banned, forgedAt := 0, 0
	for i, mb := range m.members {
		if i == evil {
			continue
		}
		st := mb.g.Stats()
		bad.g.mu.Lock()
		sent := forgedTo[mb.n.PeerID()]
		bad.g.mu.Unlock()
		mb.g.mu.Lock()
		// A neighbour that holds every piece before the forger does (the
		// publisher always; others served early by their trees) is sent
		// nothing to catch: only those it forged to must drop it.
		if mb.g.links[badID] != nil && sent > 0 {
			t.Errorf("member %d still has a link to the forger after %d forged pieces (forged pieces dropped: %d)", i, sent, st.ForgedDropped)
		}
		if sent > 0 {
			forgedAt++
		}
		if b := mb.g.banned[badID]; b != nil && b.until.IsZero() { // for good
			banned++
			if st.ForgedDropped == 0 {
				t.Errorf("member %d banned the forger without counting forged data", i)
			}
		}
		mb.g.mu.Unlock()
	}
	if banned < 2 {
		t.Errorf("only %d members dropped the forger", banned)
	}
	if forgedAt < 2 {
		t.Errorf("the forger sent forged pieces to %d members: the test needs it to forge", forgedAt)
	}
	t.Logf("%d members dropped the forger; it forged to %d", banned, forgedAt)
}

func TestManifestSignature(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	spec := Specifier{Name: "signed", Multicast: true, PublisherKey: pub}
	gid := spec.ID()
	mb, _ := testManifestMsg(t)
	sm, _, _, err := decodeData(mb)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(k ed25519.PrivateKey, stamp int64) *signedManifest {
		c := *sm
		c.Stamp = stamp
		c.Sig = ed25519.Sign(k, signingBytes(gid, stamp, c.raw))
		return &c
	}
	good := sign(priv, 7)
	otherGroup := Specifier{Name: "signed2", Multicast: true, PublisherKey: pub}
	tests := []struct {
		name string
		spec Specifier
		gid  [32]byte
		sm   *signedManifest
		ok   bool
	}{
		{"publisher's signature", spec, gid, good, true},
		{"another key", spec, gid, sign(other, 7), false},
		{"stamp changed", spec, gid, func() *signedManifest { c := *good; c.Stamp = 8; return &c }(), false},
		{"manifest changed", spec, gid, func() *signedManifest {
			c := *good
			c.raw = append([]byte(nil), c.raw...)
			c.raw[len(c.raw)-1] ^= 1
			return &c
		}(), false},
		{"no signature", spec, gid, func() *signedManifest { c := *good; c.Sig = nil; return &c }(), false},
		{"replayed in another group", otherGroup, otherGroup.ID(), good, false},
		{"group without publisher key", Specifier{Name: "open", Multicast: true}, gid, func() *signedManifest { c := *good; c.Sig = nil; return &c }(), true},
	}
	for _, tt := range tests {
		if got := verifyManifest(tt.spec, tt.gid, tt.sm); got != tt.ok {
			t.Errorf("%s: verify = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

func TestPublishNeedsKey(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	_, wrong, _ := ed25519.GenerateKey(nil)
	spec := Specifier{Name: "keyed", Multicast: true, PublisherKey: pub}
	for _, tt := range []struct {
		name string
		key  ed25519.PrivateKey
	}{
		{"another key", wrong},
		{"no key", nil},
		{"a 10-byte key", make(ed25519.PrivateKey, 10)}, // Public() would panic
		{"a 40-byte key", wrong[:40]},
	} {
		m := newMesh(t, 1, memnet.Link{}, spec, Config{}, tt.key)
		if _, err := m.members[0].g.Publish(); err != ErrNotPublisher {
			t.Errorf("%s: got %v, want ErrNotPublisher", tt.name, err)
		}
		m.members[0].g.mu.Lock()
		if m.members[0].g.st.rooted {
			t.Errorf("%s: the member is the push trees' root", tt.name)
		}
		m.members[0].g.mu.Unlock()
	}
	m2 := newMesh(t, 1, memnet.Link{}, Specifier{Name: "posting only", Posting: true}, Config{}, nil)
	if _, err := m2.members[0].g.Publish(); err != ErrMulticastOff {
		t.Fatalf("got %v, want ErrMulticastOff", err)
	}
	if _, err := m2.members[0].g.Subscribe(); err != ErrMulticastOff {
		t.Fatalf("got %v, want ErrMulticastOff", err)
	}
}
