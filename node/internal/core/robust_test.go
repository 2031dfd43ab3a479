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
	_ "runtime"
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
	r.b, r.tapB = rbAddEndpoint(r.n, r.bAddr, r.idB, policy, core.Config{})
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
	read(r.flowsB, &r.gotB)
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
