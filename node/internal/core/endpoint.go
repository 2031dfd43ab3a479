// Package core is the sans-I/O RTMFP protocol engine (RFC 7016): sessions,
// the handshake, flows, acknowledgements and congestion control of one
// endpoint, driven only by the caller. The caller feeds it received datagrams
// and the time (Receive, Tick), drains the datagrams it wants sent
// (Transmit) and the events it raised (Events), and sleeps until
// NextDeadline. It owns no socket, goroutine or clock, so it runs the same
// over real UDP, over an in-memory network and under a virtual clock.
//
// An Endpoint is not safe for concurrent use; the driver serialises calls.
package core

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io"
	"net/netip"
	"time"

	"github.com/strata-net/strata/node/internal/wire"
)

// Errors reported through events and return values.
var (
	ErrSessionClosed  = errors.New("rtmfp: session closed")
	ErrOpenTimeout    = errors.New("rtmfp: session open timed out")
	ErrFlowRejected   = errors.New("rtmfp: flow rejected by peer")
	ErrFlowClosed     = errors.New("rtmfp: flow closed")
	ErrTooManyFlows   = errors.New("rtmfp: too many flows")
	ErrMessageTooBig  = errors.New("rtmfp: metadata too large")
	ErrPeerDead       = errors.New("rtmfp: peer stopped acknowledging")
	ErrEndpointClosed = errors.New("rtmfp: endpoint closed")
)

// Stats counts what an endpoint did, in particular every datagram it dropped
// and why, so bad input is visible rather than silent.
type Stats struct {
	PacketsIn, PacketsOut uint64
	BytesIn, BytesOut     uint64

	DropShort          uint64 // shorter than a session ID plus one cipher block
	DropUnknownSession uint64 // session ID not ours
	DropDecrypt        uint64 // failed authentication / decryption (bad key, HMAC, checksum, replay)
	DropMalformed      uint64 // decrypted but not a well-formed packet
	DropWrongMode      uint64 // header mode not valid for the session
	DropBadCookie      uint64 // IIKeying with a bad or expired cookie
	DropBadCert        uint64 // undecodable or unselected certificate
	DropBusy           uint64 // session limit reached
	DropMalformedChunk uint64 // a chunk that failed to parse

	SessionsOpened, SessionsClosed uint64
	HandshakesStarted              uint64
	CookieChanges                  uint64 // IIKeying from a new address, answered with a fresh cookie
	Retransmits                    uint64
	Abandoned                      uint64
	// Timeouts counts retransmission timeouts with user data outstanding
	// (every outstanding fragment declared lost, the window cut to one
	// packet); NakLosses counts fragments declared lost by negative
	// acknowledgement; Probes counts tail-loss probes (the newest
	// outstanding fragment sent again two round trips after it went out
	// unacknowledged).
	Timeouts, NakLosses, Probes uint64
}

// EventKind says what happened.
type EventKind int

// Event kinds.
const (
	// EventSessionOpen: a session finished its handshake (either role).
	EventSessionOpen EventKind = iota + 1
	// EventSessionClosed: a session ended; Err says why (nil for orderly).
	EventSessionClosed
	// EventFlowIncoming: a peer opened a new flow to us (RecvFlow set).
	EventFlowIncoming
	// EventFlowReadable: messages are waiting on RecvFlow.
	EventFlowReadable
	// EventFlowWritable: SendFlow has buffer space again.
	EventFlowWritable
	// EventSendFlowClosed: SendFlow ended (Err: rejected, session gone).
	EventSendFlowClosed
	// EventRecvFlowClosed: RecvFlow ended (all data delivered, or error).
	EventRecvFlowClosed
	// EventReceipt: a message's fate is known (Receipt set).
	EventReceipt
	// EventUnmatchedIHello: an IHello whose discriminator does not select
	// us arrived; a rendezvous may forward it (Introduce) or redirect.
	EventUnmatchedIHello
	// EventSessionMerged: an opening Session was folded into Merged (the
	// same peer was reached by another session); its flows moved there.
	EventSessionMerged
)

// Event is one thing the caller may want to react to.
type Event struct {
	Kind     EventKind
	Session  *Session
	SendFlow *SendFlow
	RecvFlow *RecvFlow
	Receipt  *Receipt
	Err      error
	// For EventSessionMerged.
	Merged *Session
	// For EventUnmatchedIHello.
	EPD, Tag []byte
	From     netip.AddrPort
}

// Endpoint is one RTMFP endpoint on one socket.
type Endpoint struct {
	cfg        Config
	profile    Profile
	defaultKey SessionKey
	rand       io.Reader

	epoch   time.Time // instance start: timestamps and cookie clock
	now     time.Time
	secret  [32]byte
	started bool
	closed  bool

	sessions   map[uint32]*Session // by our receive session ID
	opening    []*Session          // initiators not yet open
	openByAddr map[netip.AddrPort]*Session
	openByEPD  map[string]*Session

	pool       fragPool
	timers     sessionHeap // sessions by next deadline (timers.go)
	dirty      []*Session  // sessions whose deadline must be recomputed
	startupOut []startupItem
	ready      []*Session

	events      []Event
	spareEvents []Event
	stats       Stats

	// scratch buffers for the packet path
	plain   []byte
	cipher  []byte
	rxbuf   []byte
	plains  [burstPackets][]byte
	ciphers [burstPackets][]byte

	// time-critical bookkeeping shared by all sessions (§3.5.4)
	tcSessionReporting *Session
	tcTime, tcPrevTime time.Time
	tcSentTime         time.Time
	tcSender           *Session
}

type startupItem struct {
	to        netip.AddrPort
	sessionID uint32
	chunks    []byte
	session   *Session // non-nil: send with this session's key and mode
}

// NewEndpoint makes an endpoint with the given cryptography profile.
// rnd may be nil for crypto/rand.
func NewEndpoint(cfg Config, profile Profile, rnd io.Reader) *Endpoint {
	if rnd == nil {
		rnd = rand.Reader
	}
	e := &Endpoint{
		cfg:        cfg.withDefaults(),
		profile:    profile,
		defaultKey: profile.DefaultKey(),
		rand:       rnd,
		sessions:   make(map[uint32]*Session),
		openByAddr: make(map[netip.AddrPort]*Session),
		openByEPD:  make(map[string]*Session),
		plain:      make([]byte, 0, MaxStartupPacket+64),
		cipher:     make([]byte, 0, MaxStartupPacket+128),
		rxbuf:      make([]byte, 0, 8192),
	}
	for i := range e.plains {
		e.plains[i] = make([]byte, 0, MaxSessionPacket+64)
		e.ciphers[i] = make([]byte, 0, MaxSessionPacket+128)
	}
	_, _ = io.ReadFull(rnd, e.secret[:])
	return e
}

// Config returns the effective configuration.
func (e *Endpoint) Config() Config { return e.cfg }

// Stats returns a copy of the counters.
func (e *Endpoint) Stats() Stats { return e.stats }

// Sessions returns the sessions known to the endpoint (any state).
func (e *Endpoint) Sessions() []*Session {
	out := make([]*Session, 0, len(e.sessions))
	for _, s := range e.sessions {
		out = append(out, s)
	}
	return out
}

func (e *Endpoint) setNow(now time.Time) {
	if !e.started {
		e.started = true
		e.epoch = now
	}
	if now.After(e.now) {
		e.now = now
	}
	e.pool.trim(e.now)
}

// timestamp is the 16-bit, 4 ms-tick packet clock (§2.2.4).
func (e *Endpoint) timestamp() uint16 {
	return uint16(e.now.Sub(e.epoch) / (4 * time.Millisecond))
}

func (e *Endpoint) ageSeconds() uint64 {
	return uint64(e.now.Sub(e.epoch) / time.Second)
}

func (e *Endpoint) emit(ev Event) { e.events = append(e.events, ev) }

// Events returns and clears the pending events. The slice is only valid
// until the next call into the endpoint (its storage is reused).
func (e *Endpoint) Events() []Event {
	ev := e.events
	e.events, e.spareEvents = e.spareEvents[:0], ev
	return ev
}

func (e *Endpoint) randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(e.rand, b)
	return b
}

func (e *Endpoint) newSessionID() uint32 {
	var b [4]byte
	for {
		_, _ = io.ReadFull(e.rand, b[:])
		id := binary.BigEndian.Uint32(b[:])
		if id == 0 {
			continue
		}
		if _, taken := e.sessions[id]; !taken {
			return id
		}
	}
}

// --- receive path

// Receive processes one datagram that arrived from addr at time now.
func (e *Endpoint) Receive(now time.Time, from netip.AddrPort, pkt []byte) {
	e.setNow(now)
	e.stats.PacketsIn++
	e.stats.BytesIn += uint64(len(pkt))
	if len(pkt) < 4+16 {
		e.stats.DropShort++
		return
	}
	enc := pkt[4:]
	sid := wire.DescrambleSessionID(binary.BigEndian.Uint32(pkt[:4]), enc)
	if sid == 0 {
		if !e.closed { // a closing endpoint takes no new sessions
			e.receiveStartup(from, enc)
		}
		return
	}
	s := e.sessions[sid]
	if s == nil {
		e.stats.DropUnknownSession++
		return
	}
	e.touch(s)
	s.receive(from, enc)
}

// decode decrypts enc with key and parses its header; it returns the header
// and the chunk area, or false (counted) when the packet is not good.
func (e *Endpoint) decode(key SessionKey, enc []byte) (wire.Header, []byte, bool) {
	plain, err := key.Open(e.rxbuf[:0], enc)
	if err != nil {
		e.stats.DropDecrypt++
		return wire.Header{}, nil, false
	}
	h, n, err := wire.ParseHeader(plain)
	if err != nil {
		e.stats.DropMalformed++
		return wire.Header{}, nil, false
	}
	return h, plain[n:], true
}

func (e *Endpoint) receiveStartup(from netip.AddrPort, enc []byte) {
	h, body, ok := e.decode(e.defaultKey, enc)
	if !ok {
		return
	}
	if h.Mode != wire.ModeStartup {
		e.stats.DropWrongMode++
		return
	}
	seenIHello := false
	r := wire.NewChunkReader(body)
	for {
		typ, payload, more, err := r.Next()
		if err != nil {
			e.stats.DropMalformedChunk++
			return
		}
		if !more {
			return
		}
		switch typ {
		case wire.ChunkIHello:
			if seenIHello { // one IHello per packet (amplification guard)
				continue
			}
			seenIHello = true
			c, err := wire.ParseIHello(payload)
			if err != nil {
				e.stats.DropMalformedChunk++
				continue
			}
			e.onIHello(c.EPD, c.Tag, from, true)
		case wire.ChunkRHello:
			c, err := wire.ParseRHello(payload)
			if err != nil {
				e.stats.DropMalformedChunk++
				continue
			}
			e.onRHello(c.Tag, c.Cookie, c.Cert, from)
		case wire.ChunkRedirect:
			c, err := wire.ParseRedirect(payload, nil)
			if err != nil {
				e.stats.DropMalformedChunk++
				continue
			}
			e.onRedirect(c, from)
		case wire.ChunkIIKeying:
			c, err := wire.ParseIIKeying(payload)
			if err != nil {
				e.stats.DropMalformedChunk++
				continue
			}
			signed := payload[:len(payload)-len(c.Signature)]
			e.onIIKeying(c, signed, from)
		}
	}
}

// onIHello answers an IHello (or a forwarded one, direct=false) that selects
// us with an RHello carrying a stateless cookie: no per-address state is kept
// before the initiator proves it can receive at its address (§3.5.1.1.2).
func (e *Endpoint) onIHello(epd, tag []byte, from netip.AddrPort, direct bool) {
	if !e.profile.IsSelectedBy(epd) {
		if direct {
			e.emit(Event{Kind: EventUnmatchedIHello, EPD: clone(epd), Tag: clone(tag), From: from})
		}
		return
	}
	rh := wire.RHello{Tag: tag, Cookie: e.makeCookie(from), Cert: e.profile.Certificate(epd)}
	e.sendStartup(from, 0, rh.Append(nil), nil)
}

func (e *Endpoint) makeCookie(addr netip.AddrPort) []byte {
	return e.cookieAt(e.ageSeconds(), addr)
}

// cookieAt: VLU(seconds) || H(secret, seconds) || H(secret, seconds, addr).
// The first hash proves the cookie is ours and fresh; the second that it was
// issued to this address (a mismatch there triggers a cookie change).
func (e *Endpoint) cookieAt(seconds uint64, addr netip.AddrPort) []byte {
	c := wire.AppendVLU(make([]byte, 0, 10+64), seconds)
	h := sha256.New()
	h.Write(e.secret[:])
	h.Write(c)
	c = h.Sum(c)
	h.Write(wire.AppendAddress(nil, wire.Address{AddrPort: addr}))
	return h.Sum(c)
}

type cookieCheck int

const (
	cookieOK cookieCheck = iota
	cookieBad
	cookieMismatch
)

func (e *Endpoint) checkCookie(cookie []byte, addr netip.AddrPort) cookieCheck {
	seconds, n, err := wire.ReadVLU(cookie)
	if err != nil || len(cookie) != n+64 {
		return cookieBad
	}
	age := e.ageSeconds()
	if seconds > age || age-seconds > maxCookieLifetime {
		return cookieBad
	}
	want := e.cookieAt(seconds, addr)
	if string(want[:n+32]) != string(cookie[:n+32]) {
		return cookieBad
	}
	if string(want) != string(cookie) {
		return cookieMismatch
	}
	return cookieOK
}

func (e *Endpoint) onRHello(tag, cookie, certBytes []byte, from netip.AddrPort) {
	var s *Session
	for _, o := range e.opening {
		if o.state == stateIHelloSent && string(o.tag) == string(tag) {
			s = o
			break
		}
	}
	if s == nil {
		return
	}
	cert, err := e.profile.DecodeCert(certBytes)
	if err != nil || !cert.IsSelectedBy(s.epd) {
		e.stats.DropBadCert++
		return
	}
	canon := cert.CanonicalEPD()
	if existing := e.openByEPD[string(canon)]; existing != nil && existing.cert.IsSelectedBy(s.epd) {
		// Already have a session with this peer: hand the waiters over.
		s.mergeInto(existing)
		return
	}
	for _, o := range e.opening {
		if o != s && o.state == stateKeyingSent && (string(o.epd) == string(canon) || (o.cert != nil && o.cert.IsSelectedBy(canon))) {
			s.mergeInto(o)
			return
		}
	}
	init, err := e.profile.NewInitiator(cert)
	if err != nil {
		e.stats.DropBadCert++
		return
	}
	s.state = stateKeyingSent
	s.addr = from
	s.cert = cert
	s.initiator = init
	s.cookie = clone(cookie)
	s.buildIIKeying()
	s.iikeyingNext = e.now
	s.iikeyingInterval = 0
	e.markReady(s)
}

func (e *Endpoint) onRedirect(c wire.Redirect, from netip.AddrPort) {
	for _, s := range e.opening {
		if s.state != stateIHelloSent || string(s.tag) != string(c.Tag) {
			continue
		}
		if len(c.Addresses) == 0 {
			s.addCandidate(from, true)
		}
		for _, a := range c.Addresses {
			s.addCandidate(a.AddrPort, true)
		}
		return
	}
}

func (e *Endpoint) onIIKeying(c wire.IIKeying, signed []byte, from netip.AddrPort) {
	switch e.checkCookie(c.Cookie, from) {
	case cookieBad:
		e.stats.DropBadCookie++
		return
	case cookieMismatch:
		// The initiator's address changed between RHello and IIKeying
		// (e.g. a NAT rebinding): give it a cookie for its new address.
		e.stats.CookieChanges++
		cc := wire.RHelloCookieChange{OldCookie: c.Cookie, NewCookie: e.makeCookie(from)}
		e.sendStartup(from, c.InitiatorSessionID, cc.Append(nil), nil)
		return
	}
	cert, err := e.profile.DecodeCert(c.Cert)
	if err != nil {
		e.stats.DropBadCert++
		return
	}
	// A retransmitted IIKeying for a session we already opened: resend RIKeying.
	if s := e.openByAddr[from]; s != nil && s.role == roleResponder && s.txID == c.InitiatorSessionID && s.skicSum == skicSum(c.SKIC) {
		s.sendRIKeying()
		return
	}
	if !cert.CheckSignature(signed, c.Signature) {
		e.stats.DropBadCert++
		return
	}
	if len(e.sessions) >= e.cfg.MaxSessions {
		e.stats.DropBusy++
		return
	}
	if old := e.openByAddr[from]; old != nil {
		if !cert.OverridesSession(old.cert) {
			return
		}
		old.abort(ErrSessionClosed)
	}
	var glare *Session
	for _, o := range e.opening {
		if o.isOpeningTo(from) {
			glare = o
			break
		}
	}
	abortGlare := false
	if glare != nil {
		if e.profile.NearWinsGlare(cert) {
			return // our own opening session wins; ignore theirs
		}
		if glare.state == stateKeyingSent && cert.OverridesSession(glare.cert) {
			abortGlare = true
		}
	}
	key, skrc, err := e.profile.Respond(cert, c.SKIC)
	if err != nil {
		e.stats.DropBadCert++
		return
	}
	s := e.newSession(roleResponder, key)
	s.skicSum = skicSum(c.SKIC)
	s.addr = from
	s.cert = cert
	s.epd = cert.CanonicalEPD()
	// RIKeying: our session ID, SKRC, signature over (those || SKIC).
	ri := wire.RIKeying{ResponderSessionID: s.rxID, SKRC: skrc}
	body := ri.Append(nil)
	signedRI := append(clone(body[3:]), c.SKIC...)
	ri.Signature = e.profile.Sign(signedRI, cert)
	s.rikeying = ri.Append(nil)
	s.setOpen(c.InitiatorSessionID)
	if abortGlare {
		glare.mergeInto(s)
	}
	s.sendRIKeying()
}

// skicSum is the hash a responder session keeps of its initiator's SKIC
// (FNV-1a, 64 bits): enough to recognise a retransmitted IIKeying, which
// only ever gets the RIKeying sent again.
func skicSum(skic []byte) uint64 {
	h := fnv.New64a()
	h.Write(skic)
	return h.Sum64()
}

// --- sending

func (e *Endpoint) sendStartup(to netip.AddrPort, sessionID uint32, chunks []byte, s *Session) {
	e.startupOut = append(e.startupOut, startupItem{to: to, sessionID: sessionID, chunks: chunks, session: s})
}

func (e *Endpoint) markReady(s *Session) {
	e.touch(s)
	if !s.queued {
		s.queued = true
		e.ready = append(e.ready, s)
	}
}

// WriteFunc sends one datagram. pkt is only valid during the call.
type WriteFunc func(to netip.AddrPort, pkt []byte)

// Transmit sends what is ready, at most budget packets (0 = no limit), and
// reports whether more is waiting.
func (e *Endpoint) Transmit(now time.Time, write WriteFunc, budget int) bool {
	e.setNow(now)
	sent := 0
	for len(e.startupOut) > 0 {
		it := e.startupOut[0]
		e.startupOut = e.startupOut[1:]
		key := e.defaultKey
		mode := uint8(wire.ModeStartup)
		h := wire.Header{Mode: mode, HasTimestamp: true, Timestamp: e.timestamp()}
		if it.session != nil {
			key = it.session.key
			h.Mode = uint8(it.session.role)
			if echo, ok := it.session.timestampEcho(); ok {
				h.HasTimestampEcho, h.TimestampEcho = true, echo
			}
		}
		plain := wire.AppendHeader(e.plain[:0], h)
		plain = append(plain, it.chunks...)
		e.seal(key, it.sessionID, it.to, plain, write)
		sent++
	}
	if len(e.startupOut) == 0 {
		e.startupOut = nil
	}
	// Round-robin over the ready sessions, one packet each per pass, keeping
	// those that still have something to send (compacted in place).
	for len(e.ready) > 0 {
		keep := e.ready[:0]
		for i, s := range e.ready {
			if budget > 0 && sent >= budget {
				keep = append(keep, e.ready[i:]...)
				e.ready = keep
				return true
			}
			e.touch(s)
			if k := s.transmitBurst(write); k > 0 {
				sent += k
				keep = append(keep, s)
			} else {
				s.queued = false
			}
		}
		clear(e.ready[len(keep):])
		e.ready = keep
	}
	return len(e.startupOut) > 0
}

// BatchSealer is a SessionKey that can seal several packets in one call
// (faster where the cipher can interleave them); the result must equal
// sealing them one by one, in order.
type BatchSealer interface {
	SealBatch(dst [][]byte, plain [][]byte)
}

// sealMany seals and sends packets of one session, in order.
func (e *Endpoint) sealMany(key SessionKey, sessionID uint32, to netip.AddrPort, plains [][]byte, write WriteFunc) {
	bs, ok := key.(BatchSealer)
	if !ok || len(plains) == 1 {
		for _, p := range plains {
			e.seal(key, sessionID, to, p, write)
		}
		return
	}
	outs := e.ciphers[:len(plains)]
	for i := range outs {
		outs[i] = append(outs[i][:0], 0, 0, 0, 0)
	}
	bs.SealBatch(outs, plains)
	for i, out := range outs {
		binary.BigEndian.PutUint32(out[:4], wire.ScrambleSessionID(sessionID, out[4:]))
		e.stats.PacketsOut++
		e.stats.BytesOut += uint64(len(out))
		write(to, out)
		outs[i] = out[:0]
	}
}

func (e *Endpoint) seal(key SessionKey, sessionID uint32, to netip.AddrPort, plain []byte, write WriteFunc) {
	out := append(e.cipher[:0], 0, 0, 0, 0)
	out = key.Seal(out, plain)
	binary.BigEndian.PutUint32(out[:4], wire.ScrambleSessionID(sessionID, out[4:]))
	e.cipher = out[:0]
	e.stats.PacketsOut++
	e.stats.BytesOut += uint64(len(out))
	write(to, out)
}

// --- timers

// --- opening sessions

// Open starts a session to the endpoint named by epd at the candidate
// addresses (more may be added later with AddCandidate, or arrive by
// redirect). If a session to that peer is already open or opening, that
// session is returned.
func (e *Endpoint) Open(now time.Time, epd []byte, addrs []netip.AddrPort) *Session {
	e.setNow(now)
	if s := e.openByEPD[string(epd)]; s != nil && s.state == stateOpen {
		return s
	}
	for _, s := range e.opening {
		if string(s.epd) == string(epd) {
			for _, a := range addrs {
				s.addCandidate(a, false)
			}
			return s
		}
	}
	s := e.newSession(roleInitiator, e.defaultKey)
	s.epd = clone(epd)
	s.state = stateIHelloSent
	s.tag = e.randomBytes(tagLength)
	s.openDeadline = e.now.Add(ultimateOpenTimeout)
	e.opening = append(e.opening, s)
	e.stats.HandshakesStarted++
	for _, a := range addrs {
		s.addCandidate(a, false)
	}
	return s
}

func (e *Endpoint) sendIHello(epd, tag []byte, to netip.AddrPort) {
	ih := wire.IHello{EPD: epd, Tag: tag}
	e.sendStartup(to, 0, ih.Append(nil), nil)
}

// Introduce forwards an IHello (received as EventUnmatchedIHello) to the
// peer of session via, so that the peer answers the initiator directly —
// the rendezvous service of RFC 7016 §3.5.1.5, which lets two endpoints
// behind NATs reach each other.
func (e *Endpoint) Introduce(via *Session, epd, tag []byte, initiator netip.AddrPort) {
	if via.state != stateOpen {
		return
	}
	c := wire.FIHello{EPD: epd, ReplyAddress: initiator, Tag: tag}
	via.queueControl(c.Append(nil))
}

// Redirect answers an IHello with a list of addresses to try instead
// (RFC 7016 §3.5.1.4). An empty list tells the initiator to use the address
// we saw it come from.
func (e *Endpoint) Redirect(tag []byte, to netip.AddrPort, addrs []netip.AddrPort) {
	r := wire.Redirect{Tag: tag}
	for _, a := range addrs {
		r.Addresses = append(r.Addresses, wire.Address{AddrPort: a, Origin: wire.OriginRelay})
	}
	e.sendStartup(to, 0, r.Append(nil), nil)
}

// Close closes every session in an orderly way.
func (e *Endpoint) Close(now time.Time) {
	e.setNow(now)
	for _, s := range e.opening {
		s.abort(ErrEndpointClosed)
	}
	for _, s := range e.sessions {
		s.Close()
	}
	e.closed = true
}

// Busy reports whether any session still has work (for graceful shutdown).
func (e *Endpoint) Busy() bool {
	for _, s := range e.sessions {
		if s.state == stateNearClose {
			return true
		}
	}
	return len(e.startupOut) > 0
}

func (e *Endpoint) newSession(r role, key SessionKey) *Session {
	s := &Session{
		e:          e,
		role:       r,
		key:        key,
		rxID:       e.newSessionID(),
		sendFlows:  make(map[uint64]*SendFlow),
		recvFlows:  make(map[uint64]*RecvFlow),
		nextFlowID: 1,
		candidates: make(map[netip.AddrPort]*candidate),
	}
	s.initCongestion()
	s.hidx = -1
	e.sessions[s.rxID] = s
	e.touch(s)
	return s
}

func (e *Endpoint) sessionDidOpen(s *Session) {
	e.removeOpening(s)
	e.openByAddr[s.addr] = s
	e.openByEPD[string(s.epd)] = s
	e.stats.SessionsOpened++
	e.emit(Event{Kind: EventSessionOpen, Session: s})
}

func (e *Endpoint) removeOpening(s *Session) {
	for i, o := range e.opening {
		if o == s {
			e.opening = append(e.opening[:i], e.opening[i+1:]...)
			return
		}
	}
}

func (e *Endpoint) sessionDidClose(s *Session, release bool) {
	e.touch(s)
	e.removeOpening(s)
	if e.openByAddr[s.addr] == s {
		delete(e.openByAddr, s.addr)
	}
	if e.openByEPD[string(s.epd)] == s {
		delete(e.openByEPD, string(s.epd))
	}
	if release && e.sessions[s.rxID] == s {
		delete(e.sessions, s.rxID)
	}
}

func (e *Endpoint) onSessionTC(s *Session) {
	if s != e.tcSessionReporting {
		e.tcPrevTime = e.tcTime
		e.tcSessionReporting = s
	}
	e.tcTime = e.now
}

func (e *Endpoint) shouldReportTCR(s *Session) bool {
	t := e.tcTime
	if s == e.tcSessionReporting {
		t = e.tcPrevTime
	}
	return !t.IsZero() && e.now.Sub(t) < timeCriticalTimeout
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
