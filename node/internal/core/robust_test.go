package core_test

// Robustness tests: whatever arrives on the socket (garbage, truncations,
// replays, forgeries, floods), the endpoint drops it, counts it under a
// Drop* counter, never panics, keeps no state for it, and the sessions it
// already has keep working.

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-net/strata/node/internal/core"
	"github.com/strata-net/strata/node/internal/flash"
	"github.com/strata-net/strata/node/internal/profile"
	"github.com/strata-net/strata/node/internal/wire"
)

// keyTap wraps a profile and records the session keys its handshakes make,
// so a test can build correctly encrypted packets of its own.
type keyTap struct {
	core.Profile
	keys []core.SessionKey
}

type tapInitiator struct {
	core.Initiator
	tap *keyTap
}

func (p *keyTap) NewInitiator(far core.Cert) (core.Initiator, error) {
	in, err := p.Profile.NewInitiator(far)
	if err != nil {
		return nil, err
	}
	return &tapInitiator{Initiator: in, tap: p}, nil
}

func (p *keyTap) Respond(far core.Cert, skic []byte) (core.SessionKey, []byte, error) {
	k, skrc, err := p.Profile.Respond(far, skic)
	if err == nil {
		p.keys = append(p.keys, k)
	}
	return k, skrc, err
}

func (i *tapInitiator) Finish(skrc []byte) (core.SessionKey, error) {
	k, err := i.Initiator.Finish(skrc)
	if err == nil {
		i.tap.keys = append(i.tap.keys, k)
	}
	return k, err
}

// Identities are slow to make under -race; the robustness tests share a few.
var (
	rbIDOnce sync.Once
	rbIDs    [3]*flash.Identity
)

func rbIdentities(t testing.TB) [3]*flash.Identity {
	rbIDOnce.Do(func() {
		for i := range rbIDs {
			id, err := flash.NewIdentityDH(rand.Reader, true, false, "")
			if err != nil {
				panic(err)
			}
			rbIDs[i] = id
		}
	})
	return rbIDs
}

type rbPacket struct {
	from, to netip.AddrPort
	data     []byte
}

// rbRig is two endpoints with an open session, A (initiator) to B, on a
// simNet whose every datagram it can capture.
type rbRig struct {
	t            testing.TB
	n            *simNet
	a, b         *core.Endpoint
	aAddr, bAddr netip.AddrPort
	idA, idB     *flash.Identity
	tapA, tapB   *keyTap
	sa, sb       *core.Session
	toB, toA     uint32 // session IDs on packets to B and to A

	capture  bool
	captured []rbPacket
	holdB    bool // B's application does not read

	fAB, fBA       *core.SendFlow
	flowsA, flowsB []*core.RecvFlow
	gotA, gotB     [][]byte
	closedA        []core.Event // session-closed events seen at A
	closedB        []core.Event
	seq            int
}

func rbAddEndpoint(n *simNet, addr netip.AddrPort, id *flash.Identity, policy flash.Policy, cfg core.Config) (*core.Endpoint, *keyTap) {
	tap := &keyTap{Profile: profile.Flash(id, policy)}
	ep := core.NewEndpoint(cfg, tap, nil)
	n.eps[addr] = ep
	n.order = append(n.order, addr)
	return ep, tap
}

func newRBRig(t testing.TB, seed uint64, policy flash.Policy) *rbRig {
	t.Helper()
	return newRBRigWith(t, seed, policy, core.Config{})
}

// newRBRigWith is newRBRig with a configuration for B.
func newRBRigWith(t testing.TB, seed uint64, policy flash.Policy, cfgB core.Config) *rbRig {
	t.Helper()
	ids := rbIdentities(t)
	r := &rbRig{
		t:     t,
		n:     newSimNet(t, seed),
		aAddr: netip.MustParseAddrPort("10.0.0.1:1000"),
		bAddr: netip.MustParseAddrPort("10.0.0.2:2000"),
		idA:   ids[0],
		idB:   ids[1],
	}
	r.a, r.tapA = rbAddEndpoint(r.n, r.aAddr, r.idA, policy, core.Config{})
	r.b, r.tapB = rbAddEndpoint(r.n, r.bAddr, r.idB, policy, cfgB)
	r.n.filter = func(from, to netip.AddrPort, pkt []byte) bool {
		if r.capture {
			r.captured = append(r.captured, rbPacket{from, to, append([]byte(nil), pkt...)})
		}
		return true
	}
	r.capture = true
	r.sa = r.a.Open(r.n.now, flash.EPDForPeerID(r.idB.PeerID()), []netip.AddrPort{r.bAddr})
	if !r.run(10*time.Second, func() bool { return r.sa.IsOpen() && r.sb != nil }) {
		t.Fatalf("session did not open: a=%+v b=%+v", r.a.Stats(), r.b.Stats())
	}
	// One message each way, so both session IDs appear on the wire.
	r.deliverAB("first")
	r.deliverBA("first back")
	r.capture = false
	for _, p := range r.captured {
		sid, _, err := wire.SplitPacket(p.data)
		if err != nil || sid == 0 {
			continue
		}
		if p.to == r.bAddr && r.toB == 0 {
			r.toB = sid
		}
		if p.to == r.aAddr && r.toA == 0 {
			r.toA = sid
		}
	}
	if r.toA == 0 || r.toB == 0 || len(r.tapA.keys) != 1 || len(r.tapB.keys) != 1 {
		t.Fatalf("rig: session IDs %x/%x, keys %d/%d", r.toA, r.toB, len(r.tapA.keys), len(r.tapB.keys))
	}
	return r
}

// pump collects events and reads every message that arrived.
func (r *rbRig) pump() {
	for _, ev := range r.n.takeEvents(r.aAddr) {
		switch ev.Kind {
		case core.EventFlowIncoming:
			r.flowsA = append(r.flowsA, ev.RecvFlow)
		case core.EventSessionClosed:
			r.closedA = append(r.closedA, ev)
		}
	}
	for _, ev := range r.n.takeEvents(r.bAddr) {
		switch ev.Kind {
		case core.EventSessionOpen:
			r.sb = ev.Session
		case core.EventFlowIncoming:
			r.flowsB = append(r.flowsB, ev.RecvFlow)
		case core.EventSessionClosed:
			r.closedB = append(r.closedB, ev)
		}
	}
	read := func(flows []*core.RecvFlow, got *[][]byte) {
		for _, f := range flows {
			for {
				m, ok := f.Read()
				if !ok {
					break
				}
				*got = append(*got, m.Data)
			}
		}
	}
	read(r.flowsA, &r.gotA)
	if !r.holdB {
		read(r.flowsB, &r.gotB)
	}
}

func (r *rbRig) run(limit time.Duration, cond func() bool) bool {
	return r.n.runUntil(limit, func() bool {
		r.pump()
		return cond()
	})
}

// settle runs the network for a while of virtual time.
func (r *rbRig) settle(d time.Duration) {
	r.run(d, func() bool { return false })
}

func (r *rbRig) deliverAB(text string) {
	r.t.Helper()
	if r.fAB == nil {
		f, err := r.sa.OpenFlow([]byte("rb a->b"), core.PriorityRoutine)
		if err != nil {
			r.t.Fatal(err)
		}
		r.fAB = f
	}
	r.deliver(r.fAB, text, &r.gotB)
}

func (r *rbRig) deliverBA(text string) {
	r.t.Helper()
	if r.fBA == nil {
		f, err := r.sb.OpenFlow([]byte("rb b->a"), core.PriorityRoutine)
		if err != nil {
			r.t.Fatal(err)
		}
		r.fBA = f
	}
	r.deliver(r.fBA, text, &r.gotA)
}

func (r *rbRig) deliver(f *core.SendFlow, text string, got *[][]byte) {
	r.t.Helper()
	r.seq++
	msg := []byte(fmt.Sprintf("%s #%d", text, r.seq))
	if _, err := f.Write(msg, core.WriteOptions{}); err != nil {
		r.t.Fatalf("write %q: %v", msg, err)
	}
	if !r.run(120*time.Second, func() bool {
		return len(*got) > 0 && bytes.Equal((*got)[len(*got)-1], msg)
	}) {
		r.t.Fatalf("message %q not delivered (have %d): a=%+v b=%+v", msg, len(*got), r.a.Stats(), r.b.Stats())
	}
}

// usable asserts the session still carries data both ways and never closed.
func (r *rbRig) usable() {
	r.t.Helper()
	r.deliverAB("still usable")
	r.deliverBA("still usable")
	if !r.sa.IsOpen() || !r.sb.IsOpen() || len(r.closedA)+len(r.closedB) > 0 {
		r.t.Fatalf("session disturbed: a=%s b=%s closed events %d/%d", r.sa.State(), r.sb.State(), len(r.closedA), len(r.closedB))
	}
}

func (r *rbRig) keyA() core.SessionKey { return r.tapA.keys[0] }
func (r *rbRig) keyB() core.SessionKey { return r.tapB.keys[0] }

// rbSeal builds a datagram: the plaintext packet (header and chunks) sealed
// with key, preceded by the scrambled session ID.
func rbSeal(key core.SessionKey, sid uint32, plain []byte) []byte {
	enc := key.Seal(nil, plain)
	return append(wire.AppendSessionID(nil, sid, enc), enc...)
}

func rbStartup(chunks ...[]byte) []byte {
	plain := wire.AppendHeader(nil, wire.Header{Mode: wire.ModeStartup, HasTimestamp: true, Timestamp: 1})
	for _, c := range chunks {
		plain = append(plain, c...)
	}
	return rbSeal(flash.NewDefaultCrypto(), 0, plain)
}

type rbChunk struct {
	typ     wire.ChunkType
	payload []byte
}

// rbOpenStartup decrypts a startup-key datagram into its chunks.
func rbOpenStartup(pkt []byte) (uint32, []rbChunk, bool) {
	sid, enc, err := wire.SplitPacket(pkt)
	if err != nil {
		return 0, nil, false
	}
	plain, err := flash.NewDefaultCrypto().Open(nil, enc)
	if err != nil {
		return 0, nil, false
	}
	h, n, err := wire.ParseHeader(plain)
	if err != nil || h.Mode != wire.ModeStartup {
		return 0, nil, false
	}
	var out []rbChunk
	cr := wire.NewChunkReader(plain[n:])
	for {
		typ, p, ok, err := cr.Next()
		if err != nil {
			return 0, nil, false
		}
		if !ok {
			return sid, out, true
		}
		out = append(out, rbChunk{typ, append([]byte(nil), p...)})
	}
}

// sessionPacket is a header in the initiator's mode followed by chunks.
func sessionPacket(mode uint8, chunks ...[]byte) []byte {
	b := wire.AppendHeader(nil, wire.Header{Mode: mode})
	for _, c := range chunks {
		b = append(b, c...)
	}
	return b
}

func rbDrops(s core.Stats) uint64 {
	return s.DropShort + s.DropUnknownSession + s.DropDecrypt + s.DropMalformed + s.DropWrongMode +
		s.DropBadCookie + s.DropBadCert + s.DropBusy + s.DropMalformedChunk
}

// injectOne delivers one datagram to ep and reports how its drop counters moved.
func rbInjectOne(n *simNet, ep *core.Endpoint, from netip.AddrPort, pkt []byte) (before, after core.Stats) {
	before = ep.Stats()
	func() {
		defer func() {
			if v := recover(); v != nil {
				n.t.Fatalf("panic on a %d-byte datagram %x: %v", len(pkt), pkt, v)
			}
		}()
		ep.Receive(n.now, from, append([]byte(nil), pkt...))
	}()
	return before, ep.Stats()
}

// --- 1. bad input

func TestRobustRandomDatagramsAreDroppedAndCounted(t *testing.T) {
	r := newRBRig(t, 11, flash.StrictPolicy())
	rng := mrand.New(mrand.NewPCG(1, 2))
	evil := netip.MustParseAddrPort("10.66.0.1:666")
	sizes := []int{}
	for l := 0; l <= 64; l++ {
		sizes = append(sizes, l)
	}
	sizes = append(sizes, 100, 1200, 1500, 4096, 8192, 65507)
	var short, unknown, decrypt, total int
	for _, target := range []*core.Endpoint{r.a, r.b} {
		sidOfTarget := r.toB
		if target == r.a {
			sidOfTarget = r.toA
		}
		for _, l := range sizes {
			for variant := 0; variant < 3; variant++ {
				pkt := make([]byte, l)
				for i := range pkt {
					pkt[i] = byte(rng.Uint32())
				}
				want := "unknown"
				if l >= 4 {
					switch variant {
					case 1: // the target's real session ID, random ciphertext
						binary.BigEndian.PutUint32(pkt, wire.ScrambleSessionID(sidOfTarget, pkt[4:]))
						want = "decrypt"
					case 2: // the startup session
						binary.BigEndian.PutUint32(pkt, wire.ScrambleSessionID(0, pkt[4:]))
						want = "decrypt"
					}
				}
				if l < 20 {
					want = "short"
				}
				before, after := rbInjectOne(r.n, target, evil, pkt)
				total++
				if d := rbDrops(after) - rbDrops(before); d != 1 {
					t.Fatalf("len %d variant %d: drop counters moved by %d, want 1 (%+v)", l, variant, d, after)
				}
				var got uint64
				switch want {
				case "short":
					got = after.DropShort - before.DropShort
					short++
				case "unknown":
					got = after.DropUnknownSession - before.DropUnknownSession
					unknown++
				case "decrypt":
					got = after.DropDecrypt - before.DropDecrypt
					decrypt++
				}
				if got != 1 {
					t.Fatalf("len %d variant %d: not counted as %s: %+v", l, variant, want, after)
				}
			}
		}
	}
	r.n.flush()
	for _, p := range r.n.q {
		if p.to == evil {
			t.Fatalf("answered garbage with a %d-byte datagram", len(p.data))
		}
	}
	if got := len(r.b.Sessions()); got != 1 {
		t.Fatalf("responder has %d sessions after garbage, want 1", got)
	}
	r.usable()
	t.Logf("%d datagrams: %d short, %d unknown session, %d failed decryption; B drops %+v", total, short, unknown, decrypt, r.b.Stats())
}

func TestRobustTruncatedPacketsAreDropped(t *testing.T) {
	r := newRBRig(t, 12, flash.StrictPolicy())
	type kind struct {
		name string
		pkt  rbPacket
	}
	// The handshake and the first exchange: IHello, RHello, IIKeying,
	// RIKeying, data, acks.
	var kinds []kind
	seen := map[string]bool{}
	for _, p := range r.captured {
		name := "session"
		if sid, chunks, ok := rbOpenStartup(p.data); ok && len(chunks) > 0 {
			name = chunks[0].typ.String()
			_ = sid
		} else if p.to == r.bAddr {
			name = "session a->b"
		} else {
			name = "session b->a"
		}
		key := fmt.Sprintf("%s/%d", name, len(p.data)/200)
		if seen[key] {
			continue
		}
		seen[key] = true
		kinds = append(kinds, kind{name, p})
	}
	if len(kinds) < 6 {
		t.Fatalf("captured only %d kinds of packet", len(kinds))
	}
	gotA, gotB := len(r.gotA), len(r.gotB)
	cuts := 0
	for _, k := range kinds {
		target := r.n.eps[k.pkt.to]
		for l := 0; l < len(k.pkt.data); l++ {
			before, after := rbInjectOne(r.n, target, k.pkt.from, k.pkt.data[:l])
			cuts++
			if d := rbDrops(after) - rbDrops(before); d != 1 {
				t.Fatalf("%s cut to %d of %d bytes: drop counters moved by %d, want 1 (%+v)", k.name, l, len(k.pkt.data), d, after)
			}
		}
		t.Logf("%-14s %4d bytes: every truncation dropped", k.name, len(k.pkt.data))
	}
	r.settle(5 * time.Second)
	if len(r.gotA) != gotA || len(r.gotB) != gotB {
		t.Fatalf("truncated packets delivered messages: A %d->%d, B %d->%d", gotA, len(r.gotA), gotB, len(r.gotB))
	}
	if r.a.Stats().SessionsOpened != 1 || r.b.Stats().SessionsOpened != 1 || len(r.b.Sessions()) != 1 {
		t.Fatalf("truncated handshake packets opened sessions: a=%+v b=%+v", r.a.Stats(), r.b.Stats())
	}
	r.usable()
	t.Logf("%d truncations; A drops %+v; B drops %+v", cuts, r.a.Stats(), r.b.Stats())
}

// capturedTo returns the session packets (non-zero session ID) captured on
// their way to addr.
func (r *rbRig) capturedTo(addr netip.AddrPort) [][]byte {
	var out [][]byte
	for _, p := range r.captured {
		if sid, _, err := wire.SplitPacket(p.data); err == nil && sid != 0 && p.to == addr {
			out = append(out, p.data)
		}
	}
	return out
}

// recordAB captures the datagrams of one delivered A-to-B message.
func (r *rbRig) recordAB(text string) [][]byte {
	r.t.Helper()
	r.captured = nil
	r.capture = true
	r.deliverAB(text)
	r.settle(2 * time.Second) // let the acks go too
	r.capture = false
	pkts := r.capturedTo(r.bAddr)
	if len(pkts) == 0 {
		r.t.Fatal("captured no A->B session packet")
	}
	return pkts
}

func TestRobustReplayedPackets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy flash.Policy
		strict bool
	}{
		{"strict", flash.StrictPolicy(), true},
		{"checksum", flash.Policy{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRBRig(t, 21, tc.policy)
			pkts := r.recordAB("replay me")
			got := len(r.gotB)
			before := r.b.Stats()
			const rounds = 5
			for i := 0; i < rounds; i++ {
				for _, p := range pkts {
					rbInjectOne(r.n, r.b, r.aAddr, p)
				}
				r.settle(time.Second)
			}
			after := r.b.Stats()
			replays := uint64(rounds * len(pkts))
			if tc.strict {
				if d := after.DropDecrypt - before.DropDecrypt; d != replays {
					t.Fatalf("strict: %d of %d replays counted as decrypt/replay drops", d, replays)
				}
			} else if after.DropDecrypt != before.DropDecrypt {
				t.Fatalf("checksum mode: replays failed decryption (%d), they should decrypt", after.DropDecrypt-before.DropDecrypt)
			}
			if len(r.gotB) != got {
				t.Fatalf("replayed data delivered again: %d messages, want %d (last %q)", len(r.gotB), got, r.gotB[len(r.gotB)-1])
			}
			r.usable()
			t.Logf("%d replays of %d packets: B drops decrypt %d, delivered once", replays, len(pkts), after.DropDecrypt-before.DropDecrypt)

			// Once the flow is over and B has forgotten it (after the
			// 120 s linger), a replay of its first packet would open it
			// anew. Session sequence numbers stop that; checksums cannot.
			r.fAB.Close()
			r.fAB = nil
			r.settle(150 * time.Second)
			got = len(r.gotB)
			before = r.b.Stats()
			for _, p := range pkts {
				rbInjectOne(r.n, r.b, r.aAddr, p)
			}
			r.settle(time.Second)
			after = r.b.Stats()
			if tc.strict {
				if len(r.gotB) != got || after.DropDecrypt-before.DropDecrypt != uint64(len(pkts)) {
					t.Fatalf("strict: replay after the flow ended delivered %d messages, %d drops", len(r.gotB)-got, after.DropDecrypt-before.DropDecrypt)
				}
			} else {
				t.Logf("checksum mode: replaying a finished flow's packets after its linger delivered %d message(s) again (a mid-flow packet carries no metadata, so the flow it reopens is rejected)", len(r.gotB)-got)
			}
		})
	}
}

// A replayed handshake neither makes a second session nor displaces the
// first; once the cookie has expired it is dropped as a bad cookie.
func TestRobustReplayedHandshake(t *testing.T) {
	r := newRBRig(t, 22, flash.Policy{})
	var iikeying []byte
	for _, p := range r.captured {
		if _, chunks, ok := rbOpenStartup(p.data); ok && len(chunks) > 0 && chunks[0].typ == wire.ChunkIIKeying {
			iikeying = p.data
		}
	}
	if iikeying == nil {
		t.Fatal("no IIKeying captured")
	}
	// Replayed from the initiator's own address once the session has
	// carried packets from it: the initiator has the RIKeying, so the copy
	// is stale and gets nothing (a retransmission while the RIKeying may
	// have been lost gets it again: TestRIKeyingResentWhileNeeded).
	r.captured, r.capture = nil, true
	_, after := rbInjectOne(r.n, r.b, r.aAddr, iikeying)
	r.n.flush()
	r.capture = false
	rikeyings := 0
	for _, p := range r.captured {
		if _, chunks, ok := rbOpenStartup(p.data); ok && len(chunks) == 1 && chunks[0].typ == wire.ChunkRIKeying && p.to == r.aAddr {
			rikeyings++
		}
	}
	if rikeyings != 0 || after.SessionsOpened != 1 || len(r.b.Sessions()) != 1 {
		t.Fatalf("replayed IIKeying: %d RIKeying resent, sessions opened %d, sessions %d", rikeyings, after.SessionsOpened, len(r.b.Sessions()))
	}
	// Replayed by a third party from its own address: the cookie was not
	// issued to it, so it only gets a cookie change and no session.
	evil := netip.MustParseAddrPort("10.66.0.2:666")
	r.captured, r.capture = nil, true
	rbInjectOne(r.n, r.b, evil, iikeying)
	r.n.flush()
	r.capture = false
	for _, p := range r.captured {
		if p.to != evil {
			continue
		}
		if _, chunks, ok := rbOpenStartup(p.data); !ok || len(chunks) != 1 || chunks[0].typ != wire.ChunkCookieChange {
			t.Fatalf("third-party replay answered with something other than a cookie change")
		}
	}
	if s := r.b.Stats(); s.SessionsOpened != 1 || len(r.b.Sessions()) != 1 {
		t.Fatalf("third-party replay opened a session: %+v", s)
	}
	// After the cookie lifetime (95 s) it is a bad cookie.
	r.settle(100 * time.Second)
	before, after := rbInjectOne(r.n, r.b, r.aAddr, iikeying)
	if after.DropBadCookie != before.DropBadCookie+1 {
		t.Fatalf("stale IIKeying not counted as bad cookie: %+v", after)
	}
	r.usable()
}

// foreignKey makes a real session key between a stranger and B that B never
// agreed to: a packet sealed with it is authentic-looking but not B's.
func foreignKey(t *testing.T, r *rbRig, policy flash.Policy) core.SessionKey {
	t.Helper()
	stranger := rbIdentities(t)[2]
	certB, err := flash.DecodeCert(r.idB.Cert())
	if err != nil {
		t.Fatal(err)
	}
	certX, err := flash.DecodeCert(stranger.Cert())
	if err != nil {
		t.Fatal(err)
	}
	in, err := stranger.NewInitiator(rand.Reader, certB, policy)
	if err != nil {
		t.Fatal(err)
	}
	skrc, _, err := r.idB.Respond(rand.Reader, certX, in.SKIC(), policy)
	if err != nil {
		t.Fatal(err)
	}
	k, err := in.Finish(skrc)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRobustForgedPackets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy flash.Policy
		strict bool
	}{
		{"strict", flash.StrictPolicy(), true},
		{"checksum", flash.Policy{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRBRig(t, 31, tc.policy)
			ping := sessionPacket(wire.ModeInitiator, wire.Ping{Message: []byte("forged")}.Append(nil))
			type forged struct {
				name    string
				pkt     []byte
				counter func(core.Stats) uint64
			}
			decrypt := func(s core.Stats) uint64 { return s.DropDecrypt }
			unknown := func(s core.Stats) uint64 { return s.DropUnknownSession }
			wrongMode := func(s core.Stats) uint64 { return s.DropWrongMode }
			cases := []forged{
				{"default key on a session ID", rbSeal(flash.NewDefaultCrypto(), r.toB, ping), decrypt},
				{"another session's key", rbSeal(foreignKey(t, r, tc.policy), r.toB, ping), decrypt},
				{"B's own sending key", rbSeal(r.keyB(), r.toB, ping), decrypt},
				{"unknown session ID", rbSeal(r.keyA(), r.toB^0x5a5a5a5a, ping), unknown},
				{"session ID of the other direction", rbSeal(r.keyA(), r.toA, ping), unknown},
				{"startup mode inside the session", rbSeal(r.keyA(), r.toB, sessionPacket(wire.ModeStartup, wire.Ping{}.Append(nil))), wrongMode},
				{"B's own mode", rbSeal(r.keyA(), r.toB, sessionPacket(wire.ModeResponder, wire.Ping{}.Append(nil))), wrongMode},
			}
			for _, c := range cases {
				r.n.flush()
				queued := r.n.q.Len()
				before, after := rbInjectOne(r.n, r.b, r.aAddr, c.pkt)
				if c.counter(after) != c.counter(before)+1 || rbDrops(after) != rbDrops(before)+1 {
					t.Fatalf("%s: not counted (before %+v after %+v)", c.name, before, after)
				}
				r.n.flush()
				if r.n.q.Len() != queued {
					t.Fatalf("%s: B answered a forged packet", c.name)
				}
			}
			// Every single-bit flip of a real data packet.
			pkts := r.recordAB("flip me")
			victim := pkts[0]
			got := len(r.gotB)
			var flips, dropped uint64
			for i := 0; i < len(victim)*8; i++ {
				p := append([]byte(nil), victim...)
				p[i/8] ^= 1 << (i % 8)
				before, after := rbInjectOne(r.n, r.b, r.aAddr, p)
				flips++
				d := rbDrops(after) - rbDrops(before)
				dropped += d
				if tc.strict && d != 1 {
					t.Fatalf("bit %d flipped: drop counters moved by %d, want 1", i, d)
				}
				if i%64 == 0 {
					r.n.step()
				}
			}
			r.settle(5 * time.Second)
			if !tc.strict && dropped+2 < flips {
				t.Fatalf("checksum mode: only %d of %d bit-flipped packets dropped", dropped, flips)
			}
			if len(r.gotB) != got {
				t.Fatalf("bit-flipped packets delivered %d messages", len(r.gotB)-got)
			}
			r.usable()
			t.Logf("%d bit flips of a %d-byte packet: %d dropped; B %+v", flips, len(victim), dropped, r.b.Stats())
		})
	}
}

// iikeyingFrom builds an IIKeying startup datagram from identity id toward
// the holder of certificate far, with the given cookie.
func iikeyingFrom(t *testing.T, id *flash.Identity, far []byte, cookie []byte) []byte {
	t.Helper()
	cert, err := flash.DecodeCert(far)
	if err != nil {
		t.Fatal(err)
	}
	in, err := id.NewInitiator(rand.Reader, cert, flash.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	ik := wire.IIKeying{InitiatorSessionID: 0x01020304, Cookie: cookie, Cert: id.Cert(), SKIC: in.SKIC(), Signature: []byte{'X'}}
	return rbStartup(ik.Append(nil))
}

// hello asks ep for an RHello from addr and returns its cookie and cert.
func (r *rbRig) hello(ep *core.Endpoint, epd []byte, from netip.AddrPort) (cookie, cert []byte) {
	r.t.Helper()
	r.captured, r.capture = nil, true
	rbInjectOne(r.n, ep, from, rbStartup(wire.IHello{EPD: epd, Tag: []byte("0123456789abcdef")}.Append(nil)))
	r.n.flush()
	r.capture = false
	for _, p := range r.captured {
		if p.to != from {
			continue
		}
		if _, chunks, ok := rbOpenStartup(p.data); ok && len(chunks) == 1 && chunks[0].typ == wire.ChunkRHello {
			rh, err := wire.ParseRHello(chunks[0].payload)
			if err != nil {
				r.t.Fatal(err)
			}
			if string(rh.Tag) != "0123456789abcdef" {
				r.t.Fatalf("RHello tag %q", rh.Tag)
			}
			return rh.Cookie, rh.Cert
		}
	}
	r.t.Fatal("no RHello")
	return nil, nil
}

func TestRobustBadCookie(t *testing.T) {
	r := newRBRig(t, 41, flash.Policy{})
	x := netip.MustParseAddrPort("10.0.0.9:9000")
	y := netip.MustParseAddrPort("10.0.0.10:9000")
	stranger := rbIdentities(t)[2]
	cookie, cert := r.hello(r.b, flash.EPDForPeerID(r.idB.PeerID()), x)
	if !bytes.Equal(cert, r.idB.Cert()) || len(cookie) < 65 {
		t.Fatalf("RHello: cert matches %v, cookie %d bytes", bytes.Equal(cert, r.idB.Cert()), len(cookie))
	}
	mutate := func(f func(c []byte) []byte) []byte { return f(append([]byte(nil), cookie...)) }
	future := wire.AppendVLU(nil, 1_000_000)
	future = append(future, cookie[wire.VLULen(0):]...)
	cases := []struct {
		name   string
		cookie []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"random", bytes.Repeat([]byte{0x5a}, len(cookie))},
		{"truncated", cookie[:len(cookie)-1]},
		{"extended", append(append([]byte(nil), cookie...), 0)},
		{"freshness hash flipped", mutate(func(c []byte) []byte { c[5] ^= 1; return c })},
		{"address hash flipped", mutate(func(c []byte) []byte { c[len(c)-1] ^= 1; return c })},
		{"time from the future", future},
		{"overlong time VLU", append(bytes.Repeat([]byte{0xff}, 11), cookie[1:]...)},
	}
	for _, c := range cases {
		r.n.flush()
		queued := r.n.q.Len()
		before, after := rbInjectOne(r.n, r.b, x, iikeyingFrom(t, stranger, cert, c.cookie))
		// A flipped address hash is a cookie for another address: answered
		// with a cookie change, not dropped.
		if c.name == "address hash flipped" {
			if after.DropBadCookie != before.DropBadCookie {
				t.Fatalf("%s: counted as bad cookie", c.name)
			}
			continue
		}
		if after.DropBadCookie != before.DropBadCookie+1 || rbDrops(after) != rbDrops(before)+1 {
			t.Fatalf("%s: not counted as a bad cookie (%+v)", c.name, after)
		}
		r.n.flush()
		if r.n.q.Len() != queued {
			t.Fatalf("%s: B answered an IIKeying with a bad cookie", c.name)
		}
	}
	if len(r.b.Sessions()) != 1 || r.b.Stats().SessionsOpened != 1 {
		t.Fatalf("bad cookies made sessions: %d", len(r.b.Sessions()))
	}
	// A good cookie used from another address: a cookie change, no session.
	r.captured, r.capture = nil, true
	rbInjectOne(r.n, r.b, y, iikeyingFrom(t, stranger, cert, cookie))
	r.n.flush()
	r.capture = false
	changes := 0
	for _, p := range r.captured {
		if _, chunks, ok := rbOpenStartup(p.data); ok && p.to == y && len(chunks) == 1 && chunks[0].typ == wire.ChunkCookieChange {
			changes++
		}
	}
	if changes != 1 || len(r.b.Sessions()) != 1 {
		t.Fatalf("cookie from another address: %d cookie changes, %d sessions", changes, len(r.b.Sessions()))
	}
	// The control: the same IIKeying with the good cookie opens a session,
	// so the rejections above were about the cookie alone.
	before, after := rbInjectOne(r.n, r.b, x, iikeyingFrom(t, stranger, cert, cookie))
	if after.SessionsOpened != before.SessionsOpened+1 || len(r.b.Sessions()) != 2 {
		t.Fatalf("good cookie did not open a session: %+v", after)
	}
	// An expired cookie.
	cookie2, _ := r.hello(r.b, flash.EPDForPeerID(r.idB.PeerID()), y)
	r.settle(100 * time.Second)
	before, after = rbInjectOne(r.n, r.b, y, iikeyingFrom(t, stranger, cert, cookie2))
	if after.DropBadCookie != before.DropBadCookie+1 {
		t.Fatalf("expired cookie accepted: %+v", after)
	}
	t.Logf("B: %+v", r.b.Stats())
}

// chunk builds a raw chunk with any payload.
func chunk(typ wire.ChunkType, payload []byte) []byte {
	return append(wire.AppendChunkHeader(nil, typ, len(payload)), payload...)
}

func vlus(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = wire.AppendVLU(b, v)
	}
	return b
}

// Correctly encrypted packets from the real peer whose chunks are garbage:
// each bad chunk is counted, nothing is delivered, the session survives.
func TestRobustGarbageChunksInAuthenticPackets(t *testing.T) {
	const maxU = ^uint64(0)
	overlong := bytes.Repeat([]byte{0xff}, 11)
	meta := wire.AppendOptionMarker(wire.AppendUserMetadataOption(nil, []byte("evil")))
	cases := []struct {
		name      string
		chunks    [][]byte
		malformed uint64 // DropMalformedChunk increase
		malHeader uint64 // DropMalformed increase
		delivers  int    // messages the authentic part legitimately delivers
	}{
		{"no chunks", nil, 0, 0, 0},
		{"chunk header cut", [][]byte{{byte(wire.ChunkPing), 0}}, 1, 0, 0},
		{"chunk length past the end", [][]byte{{byte(wire.ChunkPing), 0x10, 0x00, 1, 2, 3}}, 1, 0, 0},
		{"empty UserData", [][]byte{chunk(wire.ChunkUserData, nil)}, 1, 0, 0},
		{"UserData flags only", [][]byte{chunk(wire.ChunkUserData, []byte{0})}, 1, 0, 0},
		{"UserData overlong VLU", [][]byte{chunk(wire.ChunkUserData, append([]byte{0}, overlong...))}, 1, 0, 0},
		{"UserData FSN offset above sequence", [][]byte{chunk(wire.ChunkUserData, append([]byte{0}, vlus(99, 5, 6)...))}, 1, 0, 0},
		{"UserData options without marker", [][]byte{chunk(wire.ChunkUserData, append([]byte{wire.UserDataFlagOptions}, append(vlus(99, 1, 0), 3, 0, 'a', 'b')...))}, 1, 0, 0},
		{"UserData option length past the end", [][]byte{chunk(wire.ChunkUserData, append([]byte{wire.UserDataFlagOptions}, append(vlus(99, 1, 0), 0x40, 0)...))}, 1, 0, 0},
		{"UserData bad return association", [][]byte{chunk(wire.ChunkUserData, append([]byte{wire.UserDataFlagOptions}, append(vlus(98, 1, 0), append(wire.AppendOption(nil, wire.OptionReturnFlowAssociation, overlong), 0)...)...))}, 1, 0, 0},
		{"NextUserData first in the packet", [][]byte{chunk(wire.ChunkNextUserData, []byte{0, 'x'})}, 1, 0, 0},
		{"NextUserData empty after UserData", [][]byte{
			wire.UserData{FlowID: 97, SequenceNumber: 1, Options: meta, Data: []byte("x")}.Append(nil),
			chunk(wire.ChunkNextUserData, nil)}, 1, 0, 1},
		{"UserData at the largest sequence number", [][]byte{
			wire.UserData{FlowID: 96, SequenceNumber: maxU, FSNOffset: maxU, Options: meta, Data: []byte("x")}.Append(nil),
			wire.NextUserData{Data: []byte("wraps")}.Append(nil)}, 0, 0, 0},
		{"UserData forward sequence number at the top", [][]byte{
			wire.UserData{FlowID: 95, SequenceNumber: maxU, FSNOffset: 0, Options: meta, Data: []byte("x")}.Append(nil)}, 0, 0, 1},
		{"UserData flow ID at the top", [][]byte{
			wire.UserData{FlowID: maxU, SequenceNumber: 1, Options: meta, Final: true, Data: []byte("x")}.Append(nil)}, 0, 0, 1},
		{"UserData without metadata", [][]byte{
			wire.UserData{FlowID: 94, SequenceNumber: 3, FSNOffset: 1, Data: []byte("x")}.Append(nil)}, 0, 0, 0},
		{"UserData unknown mandatory option", [][]byte{
			wire.UserData{FlowID: 93, SequenceNumber: 1, Options: wire.AppendOptionMarker(wire.AppendOption(append([]byte(nil), meta[:len(meta)-1]...), 0x07, nil)), Data: []byte("x")}.Append(nil)}, 0, 0, 0},
		{"UserData abandoned fragments only", [][]byte{
			wire.UserData{FlowID: 92, SequenceNumber: 5, FSNOffset: 5, Abandon: true, Options: meta}.Append(nil)}, 0, 0, 0},
		{"empty AckRanges", [][]byte{chunk(wire.ChunkAckRanges, nil)}, 1, 0, 0},
		{"AckRanges overlong VLU", [][]byte{chunk(wire.ChunkAckRanges, overlong)}, 1, 0, 0},
		{"AckRanges for an unknown flow", [][]byte{chunk(wire.ChunkAckRanges, vlus(12345, 10, 1000, 0, 0))}, 0, 0, 0},
		{"AckRanges absurd window for a real flow", [][]byte{chunk(wire.ChunkAckRanges, vlus(1, maxU, 0))}, 0, 0, 0},
		{"AckBitmap garbage", [][]byte{chunk(wire.ChunkAckBitmap, overlong)}, 1, 0, 0},
		{"empty BufferProbe", [][]byte{chunk(wire.ChunkBufferProbe, nil)}, 1, 0, 0},
		{"BufferProbe unknown flow", [][]byte{chunk(wire.ChunkBufferProbe, vlus(777))}, 0, 0, 0},
		{"empty FlowException", [][]byte{chunk(wire.ChunkFlowException, nil)}, 1, 0, 0},
		{"FIHello garbage", [][]byte{chunk(wire.ChunkFIHello, overlong)}, 1, 0, 0},
		{"handshake chunks in a session", [][]byte{
			wire.IHello{EPD: []byte{1}, Tag: []byte("t")}.Append(nil),
			chunk(wire.ChunkIIKeying, []byte{1, 2}),
			chunk(wire.ChunkRIKeying, nil),
			chunk(wire.ChunkRHello, nil)}, 0, 0, 0},
		{"unknown chunk types", [][]byte{chunk(0x7e, []byte("?")), chunk(0x22, nil), chunk(0xfe, bytes.Repeat([]byte{1}, 300))}, 0, 0, 0},
		{"Ping too large to answer", [][]byte{chunk(wire.ChunkPing, bytes.Repeat([]byte{7}, 1100))}, 0, 0, 0},
		{"PingReply garbage mobility check", [][]byte{chunk(wire.ChunkPingReply, append([]byte{'M'}, overlong...))}, 0, 0, 0},
		{"good chunk then garbage", [][]byte{wire.Ping{Message: []byte("p")}.Append(nil), {byte(wire.ChunkUserData), 0xff, 0xff, 1}}, 1, 0, 0},
	}
	r := newRBRig(t, 51, flash.Policy{})
	got := len(r.gotB)
	// Header problems are whole-packet drops.
	for _, h := range []struct {
		name  string
		plain []byte
		count func(core.Stats) uint64
	}{
		{"mode 0", []byte{0x00, 0x01, 0x00, 0x00}, func(s core.Stats) uint64 { return s.DropMalformed }},
		{"empty plaintext", nil, func(s core.Stats) uint64 { return s.DropWrongMode + s.DropMalformed }},
	} {
		before, after := rbInjectOne(r.n, r.b, r.aAddr, rbSeal(r.keyA(), r.toB, h.plain))
		if h.count(after) != h.count(before)+1 || rbDrops(after) != rbDrops(before)+1 {
			t.Fatalf("header %s: not counted (%+v)", h.name, after)
		}
	}
	for _, c := range cases {
		before, after := rbInjectOne(r.n, r.b, r.aAddr, rbSeal(r.keyA(), r.toB, sessionPacket(wire.ModeInitiator, c.chunks...)))
		if d := after.DropMalformedChunk - before.DropMalformedChunk; d != c.malformed {
			t.Errorf("%s: DropMalformedChunk +%d, want +%d", c.name, d, c.malformed)
		}
		if d := after.DropMalformed - before.DropMalformed; d != c.malHeader {
			t.Errorf("%s: DropMalformed +%d, want +%d", c.name, d, c.malHeader)
		}
		if after.DropDecrypt != before.DropDecrypt || after.DropWrongMode != before.DropWrongMode {
			t.Errorf("%s: the packet itself was refused: %+v", c.name, after)
		}
		r.n.step()
		r.pump()
		if d := len(r.gotB) - got; d != c.delivers {
			t.Errorf("%s: delivered %d messages (%q), want %d", c.name, d, r.gotB[got:], c.delivers)
		}
		got = len(r.gotB)
	}
	r.settle(5 * time.Second)
	for _, m := range r.gotB[got:] {
		t.Errorf("garbage delivered a message %q", m)
	}
	r.usable()
	t.Logf("B after %d garbage packets: %+v", len(cases)+3, r.b.Stats())
}

// --- 2. handshake flood

// IHellos from 10,000 addresses: each is answered with an RHello carrying a
// stateless cookie, and the responder keeps nothing per address (no session,
// no timer, no memory), so a real client still gets in afterwards.
func TestRobustHandshakeFloodKeepsNoState(t *testing.T) {
	const hellos = 10_000
	ids := rbIdentities(t)
	n := newSimNet(t, 61)
	bAddr := netip.MustParseAddrPort("10.0.0.2:2000")
	b, _ := rbAddEndpoint(n, bAddr, ids[1], flash.Policy{}, core.Config{})
	epds := [][]byte{flash.EPDForPeerID(ids[1].PeerID())}
	if anyEPD, err := (flash.EPD{Ancillary: []byte{}}).Encode(); err == nil {
		epds = append(epds, anyEPD)
	} else {
		t.Fatal(err)
	}
	addrOf := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 16 + byte(i>>16), byte(i >> 8), byte(i)}), uint16(1024+i%60000))
	}
	indexOf := func(a netip.AddrPort) int {
		b4 := a.Addr().As4()
		if b4[0] != 172 {
			return -1
		}
		return int(b4[1]-16)<<16 | int(b4[2])<<8 | int(b4[3])
	}
	answered := make([]int, hellos)
	var bad int
	var outBytes, inBytes int
	n.filter = func(from, to netip.AddrPort, pkt []byte) bool {
		i := indexOf(to)
		if i < 0 {
			return true
		}
		outBytes += len(pkt)
		sid, chunks, ok := rbOpenStartup(pkt)
		if !ok || sid != 0 || len(chunks) != 1 || chunks[0].typ != wire.ChunkRHello {
			bad++
			return false
		}
		rh, err := wire.ParseRHello(chunks[0].payload)
		if err != nil || binary.BigEndian.Uint32(rh.Tag) != uint32(i) || !bytes.Equal(rh.Cert, ids[1].Cert()) {
			bad++
			return false
		}
		answered[i]++
		return false
	}
	tag := make([]byte, 16)
	send := func(i int) {
		binary.BigEndian.PutUint32(tag, uint32(i))
		pkt := rbStartup(wire.IHello{EPD: epds[i%len(epds)], Tag: tag}.Append(nil))
		inBytes += len(pkt)
		b.Receive(n.now, addrOf(i), pkt)
		if i%64 == 0 {
			n.flush()
		}
	}
	// Warm up, then measure the heap over the flood.
	for i := 0; i < 100; i++ {
		send(i)
	}
	n.flush()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for i := 100; i < hellos; i++ {
		send(i)
		if i%1000 == 0 {
			n.now = n.now.Add(100 * time.Millisecond)
		}
	}
	n.flush()
	elapsed := time.Since(start)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	growth := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	for i, c := range answered {
		if c != 1 {
			t.Fatalf("IHello %d from %s got %d RHellos", i, addrOf(i), c)
		}
	}
	if bad != 0 {
		t.Fatalf("%d bad answers", bad)
	}
	if s := len(b.Sessions()); s != 0 {
		t.Fatalf("responder made %d sessions for IHellos", s)
	}
	if d := b.NextDeadline(); !d.IsZero() {
		t.Fatalf("responder armed a timer at %v for IHellos", d)
	}
	// Per-address state of even 16 bytes would be 160 kB here.
	if growth > 64<<10 {
		t.Fatalf("heap grew by %d bytes over %d IHellos (%d bytes each)", growth, hellos, growth/hellos)
	}
	t.Logf("%d IHellos in %v: heap growth %d bytes; %d bytes in, %d bytes of RHello out (amplification %.1fx)",
		hellos, elapsed, growth, inBytes, outBytes, float64(outBytes)/float64(inBytes))

	// A real client still connects.
	a, _ := rbAddEndpoint(n, netip.MustParseAddrPort("10.0.0.1:1000"), ids[0], flash.Policy{}, core.Config{})
	sa := a.Open(n.now, flash.EPDForPeerID(ids[1].PeerID()), []netip.AddrPort{bAddr})
	if !n.runUntil(10*time.Second, sa.IsOpen) {
		t.Fatalf("client could not connect after the flood: %s", sa.State())
	}
	if len(b.Sessions()) != 1 {
		t.Fatalf("responder has %d sessions, want 1", len(b.Sessions()))
	}
}

// --- 3. fuzzing the whole endpoint

// fuzzRecord kinds: where a fuzzed datagram goes and how it is wrapped.
const (
	fzRawToB            = iota // raw bytes to the responder
	fzRawToA                   // raw bytes to the initiator
	fzStartupToB               // startup chunks (default key) to the responder
	fzStartupToA               // startup chunks to the initiator
	fzChunksToB                // chunks after a valid header, sealed with the session key
	fzPlainToB                 // a whole plaintext packet, sealed with the session key
	fzRawWithSessionToB        // random ciphertext behind B's real session ID
	fzKinds
)

// closesSession reports whether an authentic plaintext carries a Close or
// Close Ack chunk the core would act on: a peer that holds the key may end
// the session, so such inputs cannot be expected to leave it usable.
func closesSession(plain []byte) bool {
	// The receiver reads the packet with the cipher's padding (0xff bytes
	// after the 2-byte checksum and the plaintext, to a whole AES block):
	// a chunk cut short here can be whole there (a fuzzed close chunk of
	// length 1 took a padding byte as its payload).
	pad := (16 - (2+len(plain))%16) % 16
	plain = append(slices.Clone(plain), bytes.Repeat([]byte{0xff}, pad)...)
	h, n, err := wire.ParseHeader(plain)
	if err != nil || h.Mode == wire.ModeStartup {
		return false
	}
	cr := wire.NewChunkReader(plain[n:])
	for {
		typ, _, ok, err := cr.Next()
		if err != nil || !ok {
			return false
		}
		if typ == wire.ChunkClose || typ == wire.ChunkCloseAck {
			return true
		}
	}
}

func fuzzRecord(kind byte, body []byte) []byte {
	return append([]byte{kind, byte(len(body) >> 8), byte(len(body))}, body...)
}

// FuzzEndpointReceive feeds datagrams (raw, startup, and authentic session
// packets with fuzzed chunks) to both ends of an open session, then checks
// that nothing panicked, no session appeared, and the session still carries
// a new message.
func FuzzEndpointReceive(f *testing.F) {
	meta := wire.AppendOptionMarker(wire.AppendUserMetadataOption(nil, []byte("f")))
	f.Add(fuzzRecord(fzRawToB, []byte("garbage that is long enough to decrypt")))
	f.Add(fuzzRecord(fzRawToA, bytes.Repeat([]byte{0}, 36)))
	f.Add(fuzzRecord(fzStartupToB, wire.IHello{EPD: []byte{0x15, 0x0f}, Tag: []byte("tag")}.Append(nil)))
	f.Add(fuzzRecord(fzStartupToA, wire.RHello{Tag: []byte("tag"), Cookie: []byte("c"), Cert: []byte{1}}.Append(nil)))
	f.Add(fuzzRecord(fzStartupToB, wire.IIKeying{InitiatorSessionID: 7, Cookie: []byte{0}, Cert: []byte{1}, SKIC: []byte{2}}.Append(nil)))
	f.Add(fuzzRecord(fzChunksToB, wire.Ping{Message: []byte("ping")}.Append(nil)))
	f.Add(fuzzRecord(fzChunksToB, append(
		wire.UserData{FlowID: 5, SequenceNumber: 2, FSNOffset: 1, Fragmentation: wire.FragBegin, Options: meta, Data: []byte("a")}.Append(nil),
		wire.NextUserData{Fragmentation: wire.FragEnd, Final: true, Data: []byte("b")}.Append(nil)...)))
	f.Add(fuzzRecord(fzChunksToB, append(chunk(wire.ChunkAckRanges, vlus(1, 64, 0, 0, 3)), chunk(wire.ChunkFlowException, vlus(1, 9))...)))
	f.Add(fuzzRecord(fzChunksToB, wire.FIHello{EPD: []byte{1}, ReplyAddress: netip.MustParseAddrPort("10.1.2.3:4"), Tag: []byte("t")}.Append(nil)))
	f.Add(fuzzRecord(fzPlainToB, sessionPacket(wire.ModeInitiator|wire.FlagTimestamp|wire.FlagTimestampEcho, []byte{0xff, 0xff, 0x00, 0x01})))
	f.Add(fuzzRecord(fzRawWithSessionToB, bytes.Repeat([]byte{0xa5}, 48)))
	f.Add(append(fuzzRecord(fzChunksToB, chunk(wire.ChunkBufferProbe, vlus(1))), fuzzRecord(fzRawToA, []byte{1, 2, 3})...))

	f.Fuzz(func(t *testing.T, data []byte) {
		r := newRBRig(t, 71, flash.Policy{})
		strangers := []netip.AddrPort{r.aAddr, netip.MustParseAddrPort("10.9.9.9:9")}
		for k := 0; len(data) >= 3 && k < 64; k++ {
			kind, l := data[0]%fzKinds, int(data[1])<<8|int(data[2])
			data = data[3:]
			if l > len(data) {
				l = len(data)
			}
			body := data[:l]
			data = data[l:]
			from := strangers[k%2]
			switch kind {
			case fzRawToB:
				r.b.Receive(r.n.now, from, append([]byte(nil), body...))
			case fzRawToA:
				r.a.Receive(r.n.now, r.bAddr, append([]byte(nil), body...))
			case fzStartupToB:
				r.b.Receive(r.n.now, from, rbStartup(body))
			case fzStartupToA:
				r.a.Receive(r.n.now, r.bAddr, rbStartup(body))
			case fzChunksToB, fzPlainToB:
				plain := body
				if kind == fzChunksToB {
					plain = sessionPacket(wire.ModeInitiator, body)
				}
				if closesSession(plain) {
					continue
				}
				r.b.Receive(r.n.now, r.aAddr, rbSeal(r.keyA(), r.toB, plain))
			case fzRawWithSessionToB:
				p := append([]byte{0, 0, 0, 0}, body...)
				binary.BigEndian.PutUint32(p, wire.ScrambleSessionID(r.toB, p[4:]))
				r.b.Receive(r.n.now, r.aAddr, p)
			}
			r.n.step()
		}
		r.settle(2 * time.Second)
		if s := r.b.Stats(); s.SessionsOpened != 1 || len(r.b.Sessions()) != 1 {
			t.Fatalf("responder sessions: opened %d, now %d", s.SessionsOpened, len(r.b.Sessions()))
		}
		if !r.sa.IsOpen() || !r.sb.IsOpen() {
			t.Fatalf("session closed by fuzzed input: a=%s (%v) b=%s (%v)", r.sa.State(), r.sa.Err(), r.sb.State(), r.sb.Err())
		}
		// A new flow from B (the fuzzed side cannot have touched it).
		f, err := r.sb.OpenFlow([]byte("after fuzz"), core.PriorityRoutine)
		if err != nil {
			t.Fatal(err)
		}
		want := []byte("still works after fuzzing")
		if _, err := f.Write(want, core.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if !r.run(10*time.Minute, func() bool { return len(r.gotA) > 0 && bytes.Equal(r.gotA[len(r.gotA)-1], want) }) {
			t.Fatalf("session no longer carries messages: a=%+v b=%+v", r.a.Stats(), r.b.Stats())
		}
	})
}

// --- receive buffer accounting

// Empty messages must cost receive buffer too (RFC 7016 §3.6.3.5 leaves the
// accounting to the receiver; the reference charges every fragment a 64-byte
// bias). Otherwise a receiver whose application stops reading holds any
// number of them, and a peer can pile up unbounded state with empty
// fragments.
func TestRobustEmptyFragmentsAreChargedToTheReceiveBuffer(t *testing.T) {
	const recvBuffer = 16 << 10
	const bias = 64 // the reference's FRAGMENT_SIZE_BIAS
	limit := recvBuffer/bias + 128

	t.Run("stalled reader", func(t *testing.T) {
		r := newRBRigWith(t, 81, flash.Policy{}, core.Config{RecvBuffer: recvBuffer})
		r.holdB = true
		base := len(r.gotB)
		f, err := r.sa.OpenFlow([]byte("empties"), core.PriorityRoutine)
		if err != nil {
			t.Fatal(err)
		}
		const sent = 3000
		for i := 0; i < sent; i++ {
			if _, err := f.Write(nil, core.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		r.settle(60 * time.Second)
		held := 0
		for _, rf := range r.flowsB {
			for {
				if _, ok := rf.Read(); !ok {
					break
				}
				held++
			}
		}
		if held > limit {
			t.Errorf("receiver with a %d-byte buffer holds %d unread empty messages (at most %d expected)", recvBuffer, held, limit)
		}
		// Once the application reads, the rest arrives.
		r.holdB = false
		if !r.run(5*time.Minute, func() bool { return held+len(r.gotB)-base >= sent }) {
			t.Fatalf("after reading: %d of %d empty messages", held+len(r.gotB)-base, sent)
		}
	})

	t.Run("peer sends empty messages behind a hole", func(t *testing.T) {
		r := newRBRigWith(t, 82, flash.Policy{}, core.Config{RecvBuffer: recvBuffer})
		meta := wire.AppendOptionMarker(wire.AppendUserMetadataOption(nil, []byte("hole")))
		const flowID, empties = 50, 4000
		got := len(r.gotB)
		// Sequence number 1 is missing: every empty message after it must
		// wait, and only as many as the buffer holds may be kept.
		for seq := uint64(2); seq <= empties+1; {
			var chunks [][]byte
			for k := 0; k < 100 && seq <= empties+1; k++ {
				c := wire.UserData{FlowID: flowID, SequenceNumber: seq, FSNOffset: seq}
				if seq == 2 {
					c.Options = meta
				}
				chunks = append(chunks, c.Append(nil))
				seq++
			}
			r.b.Receive(r.n.now, r.aAddr, rbSeal(r.keyA(), r.toB, sessionPacket(wire.ModeInitiator, chunks...)))
			r.n.step()
		}
		r.settle(time.Second)
		if len(r.gotB) != got {
			t.Fatalf("messages behind a hole were delivered: %d", len(r.gotB)-got)
		}
		// Fill the hole: what was kept is delivered now.
		hole := wire.UserData{FlowID: flowID, SequenceNumber: 1, FSNOffset: 1, Data: []byte("hole")}
		r.b.Receive(r.n.now, r.aAddr, rbSeal(r.keyA(), r.toB, sessionPacket(wire.ModeInitiator, hole.Append(nil))))
		r.settle(time.Second)
		held := len(r.gotB) - got - 1
		if len(r.gotB) == got || string(r.gotB[got]) != "hole" {
			t.Fatalf("the hole's message was not delivered first")
		}
		if held > limit {
			t.Errorf("receiver with a %d-byte buffer kept %d empty messages behind a hole (at most %d expected)", recvBuffer, held, limit)
		}
		t.Logf("kept %d of %d empty messages behind a hole", held, empties)
		r.usable()
	})
}

// A lost RIKeying is sent again when the initiator retransmits its
// IIKeying, and the session opens; once the initiator has sent a packet in
// the session the responder no longer keeps its RIKeying, and a later copy
// of the IIKeying gets nothing (TestRobustReplayedHandshake).
func TestRIKeyingResentWhileNeeded(t *testing.T) {
	n := newSimNet(t, 1)
	rikeyings, dropped := 0, false
	n.filter = func(from, to netip.AddrPort, pkt []byte) bool {
		if _, chunks, ok := rbOpenStartup(pkt); ok && len(chunks) == 1 && chunks[0].typ == wire.ChunkRIKeying {
			rikeyings++
			if !dropped {
				dropped = true
				return false
			}
		}
		return true
	}
	_, _, sa, sb := pair(t, n, core.Config{})
	if !sa.IsOpen() || !sb.IsOpen() || rikeyings != 2 {
		t.Fatalf("after a lost RIKeying: initiator %s, responder %s, %d RIKeying sent (want 2)", sa.State(), sb.State(), rikeyings)
	}
	// The initiator dropped its handshake state on opening; the responder
	// keeps its RIKeying until a packet of the initiator's comes in the
	// session.
	if got := sa.HandshakeBytes(); got != 0 {
		t.Fatalf("open initiator still holds %d bytes of handshake state", got)
	}
	kept := sb.HandshakeBytes()
	if kept == 0 {
		t.Fatal("the responder dropped its RIKeying before the initiator had sent anything")
	}
	f, err := sa.OpenFlow([]byte("m"), core.PriorityRoutine)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x"), core.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	n.runUntil(time.Second, func() bool { return sb.HandshakeBytes() == 0 })
	if got := sb.HandshakeBytes(); got != 0 {
		t.Fatalf("responder still holds %d bytes of handshake state after the initiator's packets", got)
	}
	t.Logf("responder held %d bytes of handshake state until the initiator's first packet", kept)
}
