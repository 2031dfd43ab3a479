package core

import (
	"crypto/sha256"
	"math"
	"net/netip"
	"time"

	"github.com/strata-net/strata/node/internal/congestion"
	"github.com/strata-net/strata/node/internal/wire"
)

type role uint8

const (
	roleInitiator = role(wire.ModeInitiator)
	roleResponder = role(wire.ModeResponder)
)

type sessionState int

const (
	stateIHelloSent sessionState = iota + 1
	stateKeyingSent
	stateOpen
	stateNearClose
	stateFarCloseLinger
	stateClosed
)

func (s sessionState) String() string {
	switch s {
	case stateIHelloSent:
		return "ihello-sent"
	case stateKeyingSent:
		return "keying-sent"
	case stateOpen:
		return "open"
	case stateNearClose:
		return "near-close"
	case stateFarCloseLinger:
		return "far-close-linger"
	case stateClosed:
		return "closed"
	}
	return "unknown"
}

type candidate struct {
	next     time.Time
	interval time.Duration
}

// Session is one RTMFP session (RFC 7016 §3.5) with one peer.
type Session struct {
	e      *Endpoint
	role   role
	state  sessionState
	key    SessionKey
	rxID   uint32 // ours: the peer scrambles it into packets it sends us
	txID   uint32 // theirs
	addr   netip.AddrPort
	epd    []byte
	cert   Cert
	queued bool

	// opening (initiator)
	tag              []byte
	candidates       map[netip.AddrPort]*candidate
	openDeadline     time.Time
	cookie           []byte
	cookieChanged    bool
	initiator        Initiator
	iikeying         []byte
	iikeyingNext     time.Time
	iikeyingInterval time.Duration
	early            [][]byte
	waiters          []*SendFlow // flows opened before the session was
	merged           *Session    // see Merged
	deadline         time.Time   // cached nextDeadline (timers.go)
	hidx             int         // index in the endpoint's timer heap, -1 if absent
	dirty            bool        // deadline must be recomputed
	// flowsAt caches the earliest of the flows' timers (persist, linger,
	// expiry) for nextDeadline; flowsStale says it must be recomputed.
	// Every change to a flow's timer, and every flow added or removed,
	// sets flowsStale (flowTimersChanged); so does every session tick.
	flowsAt    time.Time
	flowsStale bool

	// responder
	// skicSum identifies the initiator's keying (an FNV-1a hash of its
	// SKIC) so that a retransmitted IIKeying is recognised; rikeying is
	// kept to answer it until the initiator's first packet in the session
	// shows it has our RIKeying, then dropped (a later IIKeying copy is a
	// stale duplicate).
	skicSum  uint64
	rikeying []byte

	// timestamps (§3.5.2.2)
	tsRx, tsEchoTx     int32 // -1 = none
	tsRxTime           time.Time
	tsTx               int32
	tsEchoRx           int32
	haveTSRx, haveTSTx bool

	// flows
	sendFlows  map[uint64]*SendFlow
	recvFlows  map[uint64]*RecvFlow
	nextFlowID uint64
	readyFlows [numPriorities]flowQueue

	// the session's outstanding (in flight) fragments, in TSN order
	outHead, outTail *sendFrag
	outBytes         int
	nextTSN          uint64
	maxTSNAck        uint64

	// acknowledgement scheduling (§3.6.3.4)
	ackFlows      []*RecvFlow
	ackNow        bool
	delackAt      time.Time
	rxDataPackets int

	control [][]byte // chunks waiting to be sent (pings, close, exceptions…)

	// liveness
	lastKeepaliveTx      time.Time
	keepaliveOutstanding bool
	retransmitEpoch      time.Time // zero: nothing unacknowledged
	lastIdle             time.Time
	timeoutAt            time.Time
	probeAt              time.Time // tail-loss probe (zero: none armed)
	probed               bool      // a probe went out since the last progress
	lingerUntil          time.Time
	nextCloseRTX         time.Time
	mobTxTS, mobRxTS     uint64

	cc congestionState

	// parsing state for Next User Data chunks
	parseFlowID, parseSeq, parseFSN uint64
	seenUserData                    bool
	anyAcks                         bool
	preAckOutstanding               int
	// preAckLone is when the only fragment outstanding before this
	// packet's acks went out (zero: none, several, or a retransmission);
	// its acknowledgement measures the peer's hold (peerAckDelay).
	preAckLone time.Time
	// peerAckDelay estimates how long the peer holds the acknowledgement
	// of a lone packet: RFC 7016's 200 ms until measured, lowered by at
	// most an eighth per measurement, never below a measurement.
	peerAckDelay time.Duration
	closeErr     error
}

// PeerID is the far end's identity (zero before the certificate is known).
func (s *Session) PeerID() [32]byte {
	if s.cert == nil {
		return [32]byte{}
	}
	return s.cert.PeerID()
}

// PeerAuthenticated reports whether the far end's certificate keys the
// session (Cert.KeysSession): then only the holder of the peer ID's
// private key can be at the far end.
func (s *Session) PeerAuthenticated() bool { return s.cert != nil && s.cert.KeysSession() }

// Addr is the far end's current address.
func (s *Session) Addr() netip.AddrPort { return s.addr }

// IsOpen reports whether the handshake finished and the session is usable.
func (s *Session) IsOpen() bool { return s.state == stateOpen }

// Closed reports whether the session has ended (or is ending).
func (s *Session) Closed() bool { return s.state > stateOpen }

// Err is why the session closed (nil while open or if closed orderly).
func (s *Session) Err() error { return s.closeErr }

// State is a human-readable session state.
func (s *Session) State() string { return s.state.String() }

// Initiator reports whether we opened this session.
func (s *Session) Initiator() bool { return s.role == roleInitiator }

// SRTT is the smoothed round-trip time (0 before the first sample).
func (s *Session) SRTT() time.Duration { return s.cc.srtt() }

// EPD is the endpoint discriminator the session was opened to (or the
// canonical one of the peer once known).
func (s *Session) EPD() []byte { return s.epd }

func (s *Session) addCandidate(a netip.AddrPort, fromRedirect bool) {
	if s.state != stateIHelloSent || !a.IsValid() {
		return
	}
	s.e.touch(s)
	if _, dup := s.candidates[a]; dup {
		return
	}
	if fromRedirect && len(s.candidates) >= redirectThreshold {
		return
	}
	s.candidates[a] = &candidate{next: s.e.now}
	s.e.sendIHello(s.epd, s.tag, a)
	s.candidates[a].interval = ihelloInitialRTX
	s.candidates[a].next = s.e.now.Add(ihelloInitialRTX)
}

// AddCandidate adds an address to try while the session is opening.
func (s *Session) AddCandidate(a netip.AddrPort) { s.addCandidate(a, false) }

func (s *Session) isOpeningTo(a netip.AddrPort) bool {
	switch s.state {
	case stateIHelloSent:
		_, ok := s.candidates[a]
		return ok
	case stateKeyingSent:
		return s.addr == a
	}
	return false
}

func (s *Session) buildIIKeying() {
	ik := wire.IIKeying{
		InitiatorSessionID: s.rxID,
		Cookie:             s.cookie,
		Cert:               s.e.profile.Certificate(nil),
		SKIC:               s.initiator.SKIC(),
	}
	body := ik.Append(nil)
	ik.Signature = s.e.profile.Sign(body[3:], s.cert)
	s.iikeying = ik.Append(nil)
}

// mergeInto abandons this opening session in favour of other (an existing or
// concurrently opening session with the same peer); flows waiting on this
// one move over.
func (s *Session) mergeInto(other *Session) {
	for _, f := range s.waiters {
		f.session = other
		if other.state == stateOpen {
			other.bindFlow(f)
		} else {
			other.waiters = append(other.waiters, f)
		}
	}
	s.waiters = nil
	s.state = stateClosed
	s.merged = other
	s.e.sessionDidClose(s, true)
	s.e.emit(Event{Kind: EventSessionMerged, Session: s, Merged: other})
}

// Merged is the session this one was folded into, when two attempts to
// reach the same peer met (an existing session, or a simultaneous open);
// nil otherwise.
func (s *Session) Merged() *Session { return s.merged }

func (s *Session) setOpen(txID uint32) {
	now := s.e.now
	s.state = stateOpen
	s.txID = txID
	s.epd = s.cert.CanonicalEPD()
	s.lastKeepaliveTx = now
	s.lastIdle = now
	// What only the opening needed (the initiator's keying, IIKeying,
	// cookie, tag and addresses tried) goes: a session lives on for its
	// whole life, closing included, and these were about a tenth of it.
	s.initiator = nil
	s.iikeying, s.cookie, s.tag, s.candidates = nil, nil, nil, nil
	s.e.sessionDidOpen(s)
	for _, f := range s.waiters {
		s.bindFlow(f)
	}
	s.waiters = nil
	early := s.early
	s.early = nil
	for _, p := range early {
		s.receive(s.addr, p)
	}
}

func (s *Session) sendRIKeying() {
	if s.state == stateOpen && len(s.rikeying) > 0 {
		s.e.sendStartup(s.addr, s.txID, s.rikeying, nil)
	}
}

// --- receive

func (s *Session) receive(from netip.AddrPort, enc []byte) {
	e := s.e
	switch s.state {
	case stateIHelloSent, stateClosed:
		e.stats.DropUnknownSession++
		return
	case stateKeyingSent:
		// Only RIKeying / cookie change (startup mode, default key) are
		// expected; anything else may be an early session packet that
		// overtook the RIKeying: keep a few to replay once open.
		h, body, ok := e.decodeQuiet(e.defaultKey, enc)
		if !ok {
			if len(s.early) < maxEarlyPackets {
				s.early = append(s.early, clone(enc))
			}
			return
		}
		if h.Mode != wire.ModeStartup {
			e.stats.DropWrongMode++
			return
		}
		s.onKeyingChunks(body, from)
		return
	}
	h, body, ok := e.decode(s.key, enc)
	if !ok {
		return
	}
	mode := role(h.Mode)
	if h.Mode == 0 || mode == s.role || h.Mode == wire.ModeStartup {
		e.stats.DropWrongMode++
		return
	}
	s.rikeying = nil // the initiator has it: it sent this in the session
	s.onHeader(h)
	r := wire.NewChunkReader(body)
	for {
		typ, payload, more, err := r.Next()
		if err != nil {
			e.stats.DropMalformedChunk++
			break
		}
		if !more {
			break
		}
		s.onChunk(typ, payload, from)
	}
	s.afterChunks(from)
}

func (s *Session) onKeyingChunks(body []byte, from netip.AddrPort) {
	r := wire.NewChunkReader(body)
	for {
		typ, payload, more, err := r.Next()
		if err != nil || !more {
			return
		}
		switch typ {
		case wire.ChunkRIKeying:
			c, err := wire.ParseRIKeying(payload)
			if err != nil {
				s.e.stats.DropMalformedChunk++
				continue
			}
			signed := append(clone(payload[:len(payload)-len(c.Signature)]), s.initiator.SKIC()...)
			if !s.cert.CheckSignature(signed, c.Signature) {
				s.e.stats.DropBadCert++
				continue
			}
			key, err := s.initiator.Finish(c.SKRC)
			if err != nil {
				s.e.stats.DropBadCert++
				continue
			}
			s.key = key
			s.setOpen(c.ResponderSessionID)
			return
		case wire.ChunkRHelloCookieChange:
			c, err := wire.ParseRHelloCookieChange(payload)
			if err != nil {
				s.e.stats.DropMalformedChunk++
				continue
			}
			if s.cookieChanged || string(c.OldCookie) != string(s.cookie) {
				continue
			}
			s.cookieChanged = true
			s.cookie = clone(c.NewCookie)
			s.buildIIKeying()
			s.iikeyingNext = s.e.now
			s.iikeyingInterval = 0
		}
	}
}

func (e *Endpoint) decodeQuiet(key SessionKey, enc []byte) (wire.Header, []byte, bool) {
	plain, err := key.Open(e.rxbuf[:0], enc)
	if err != nil {
		return wire.Header{}, nil, false
	}
	h, n, err := wire.ParseHeader(plain)
	if err != nil {
		return wire.Header{}, nil, false
	}
	return h, plain[n:], true
}

func (s *Session) onHeader(h wire.Header) {
	s.seenUserData = false
	s.anyAcks = false
	s.preAckOutstanding = s.outBytes
	s.preAckLone = time.Time{}
	if f := s.outHead; f != nil && f == s.outTail && !f.resent {
		s.preAckLone = f.sentAt
	}
	now := s.e.now
	if h.HasTimestamp && (!s.haveTSRx || int32(h.Timestamp) != s.tsRx) {
		s.haveTSRx = true
		s.tsRx = int32(h.Timestamp)
		s.tsRxTime = now
	}
	if s.state != stateOpen {
		return
	}
	if h.HasTimestampEcho && int32(h.TimestampEcho) != s.tsEchoRx {
		s.tsEchoRx = int32(h.TimestampEcho)
		ticks := s.e.timestamp() - h.TimestampEcho
		if ticks < 32768 {
			s.cc.rtt.OnSample(now, time.Duration(ticks)*4*time.Millisecond)
		}
	}
	if h.TimeCritical {
		s.e.onSessionTC(s)
	}
	if h.TimeCriticalReverse {
		s.cc.ctl.OnTimeCriticalNotified(now)
	}
}

func (s *Session) onChunk(typ wire.ChunkType, p []byte, from netip.AddrPort) {
	e := s.e
	if s.state == stateOpen {
		switch typ {
		case wire.ChunkUserData, wire.ChunkNextUserData:
			s.onUserData(typ, p)
		case wire.ChunkAckRanges, wire.ChunkAckBitmap:
			s.onAck(typ, p)
		case wire.ChunkBufferProbe:
			c, err := wire.ParseBufferProbe(p)
			if err != nil {
				e.stats.DropMalformedChunk++
				return
			}
			if rf := s.recvFlows[c.FlowID]; rf != nil {
				rf.scheduleAck(true)
			}
		case wire.ChunkFlowException:
			c, err := wire.ParseFlowException(p)
			if err != nil {
				e.stats.DropMalformedChunk++
				return
			}
			if sf := s.sendFlows[c.FlowID]; sf != nil {
				sf.onException(c.Code)
			}
		case wire.ChunkPing:
			s.onPing(p)
		case wire.ChunkPingReply:
			s.onPingReply(p, from)
		case wire.ChunkFIHello:
			c, err := wire.ParseFIHello(p)
			if err != nil {
				e.stats.DropMalformedChunk++
				return
			}
			e.onIHello(c.EPD, c.Tag, c.ReplyAddress, false)
		}
	}
	switch typ {
	case wire.ChunkClose:
		switch s.state {
		case stateOpen:
			s.setFarCloseLinger()
			fallthrough
		case stateNearClose, stateFarCloseLinger:
			s.queueControl(closeAckChunk)
		}
	case wire.ChunkCloseAck:
		switch s.state {
		case stateOpen:
			s.queueControl(closeAckChunk)
			s.abort(nil)
		case stateNearClose, stateFarCloseLinger:
			s.abort(nil)
		}
	}
}

var (
	closeChunk    = []byte{byte(wire.ChunkClose), 0, 0}
	closeAckChunk = []byte{byte(wire.ChunkCloseAck), 0, 0}
	pingChunk     = []byte{byte(wire.ChunkPing), 0, 0}
)

const mobilityMarking = 'M'

func (s *Session) onPing(p []byte) {
	if len(p) > MaxSessionPacket-200 {
		return
	}
	s.queueControl(wire.PingReply{Message: p}.Append(nil))
	s.lastKeepaliveTx = s.e.now
}

func (s *Session) onPingReply(p []byte, from netip.AddrPort) {
	s.keepaliveOutstanding = false
	s.retransmitEpoch = time.Time{}
	if len(p) == 0 || p[0] != mobilityMarking {
		return
	}
	ts, _, err := wire.ReadVLU(p[1:])
	if err != nil {
		return
	}
	if ts <= s.mobRxTS || ts+maxMobilityLifetime < s.e.ageSeconds()+1 {
		return
	}
	if string(p) != string(s.mobilityCheck(ts, from)) {
		return
	}
	// Path validated: the peer is reachable at its new address (§3.5.4.2).
	s.mobRxTS = ts
	old := s.addr
	s.addr = from
	if s.e.openByAddr[old] == s {
		delete(s.e.openByAddr, old)
	}
	s.e.openByAddr[from] = s
	s.e.markReady(s)
}

// mobilityCheck is an unforgeable ping payload that ties a timestamp to an
// address: only a peer that receives at that address can echo it.
func (s *Session) mobilityCheck(ts uint64, addr netip.AddrPort) []byte {
	out := wire.AppendVLU([]byte{mobilityMarking}, ts)
	h := sha256.New()
	h.Write(out)
	h.Write(wire.AppendAddress(nil, wire.Address{AddrPort: addr}))
	h.Write(s.e.secret[:])
	return h.Sum(out)
}

func (s *Session) afterChunks(from netip.AddrPort) {
	if s.state != stateOpen {
		return
	}
	if s.seenUserData {
		s.rxDataPackets++
	}
	if s.rxDataPackets >= obligatoryAckAfter {
		s.doAckNow()
	}
	if s.anyAcks {
		s.processAcks()
	}
	// A packet from a new address: check the path before moving (§3.5.4.2).
	if from != s.addr {
		now := s.e.ageSeconds() + 1 // +1: never 0, the "none yet" value
		if now > s.mobTxTS {
			s.mobTxTS = now
			ping := wire.Ping{Message: s.mobilityCheck(now, from)}
			s.e.sendStartup(from, s.txID, ping.Append(nil), s)
		}
	}
}

// processAcks runs after all acks of a packet: negative acknowledgement of
// older outstanding fragments (§3.6.2.4), then the congestion window.
func (s *Session) processAcks() {
	now := s.e.now
	// Three negative acknowledgements make a fragment lost only once it is
	// also older than a round trip plus a reordering allowance (a quarter
	// of it, at least a millisecond), in the spirit of RACK (RFC 8985):
	// reordering alone then costs no retransmission and no window cut.
	//
	// One negative acknowledgement is enough once the fragment is two
	// round trips old (RACK's rule with a wider reordering window): on a
	// session that sends little, three later packets may take longer than
	// the retransmission timeout to come, and a tail-loss probe (probeAt)
	// brings only one.
	srtt := s.cc.srtt()
	reorderGrace := srtt + max(srtt/4, time.Millisecond)
	lateGrace := time.Duration(math.MaxInt64) // no round trip measured yet
	if s.cc.rtt.HasSample() {
		lateGrace = 2*srtt + time.Millisecond
	}
	acked := s.preAckOutstanding - s.outBytes
	lost := 0
	anyLoss, anyNaks := false, false
	for f := s.outHead; f != nil; {
		next := f.outNext
		if f.tsn > s.maxTSNAck {
			break
		}
		f.naks++
		if !f.sentAbandoned {
			anyNaks = true
		}
		age := now.Sub(f.sentAt)
		if f.naks >= naksForLoss && age >= reorderGrace || age >= lateGrace {
			if !f.sentAbandoned {
				anyLoss = true
			}
			s.e.stats.NakLosses++
			lost += f.txSize
			s.removeOutstanding(f)
			f.owner.onLoss(f)
		}
		f = next
	}
	if acked < 0 {
		acked = 0
	}
	if e := s.e; e.tcSender != nil && e.tcSender != s && now.Sub(e.tcSentTime) < timeCriticalTimeout {
		s.cc.ctl.OnTimeCriticalNotified(e.tcSentTime)
	}
	s.cc.onAck(now, congestion.AckEvent{AckedBytes: acked, LostBytes: lost, PriorInFlight: s.preAckOutstanding, InFlight: s.outBytes, Loss: anyLoss, Nack: anyNaks})
	if acked > 0 || lost > 0 {
		s.probed = false // progress: the next tail may be probed again
	}
	if !s.preAckLone.IsZero() && s.outHead == nil && acked > 0 && s.cc.rtt.HasSample() {
		hold := max(now.Sub(s.preAckLone)-srtt, 0)
		s.peerAckDelay = min(max(hold, s.peerAckDelay-s.peerAckDelay/8), congestion.DelayedAckPeriod)
	}
	s.rescheduleTransmission()
	s.rescheduleTimeout()
}

// --- outstanding list

func (s *Session) addOutstanding(f *sendFrag) {
	f.outPrev = s.outTail
	f.outNext = nil
	if s.outTail != nil {
		s.outTail.outNext = f
	} else {
		s.outHead = f
	}
	s.outTail = f
	f.outstanding = true
	s.outBytes += f.txSize
}

func (s *Session) removeOutstanding(f *sendFrag) {
	if !f.outstanding {
		return
	}
	if f.outPrev != nil {
		f.outPrev.outNext = f.outNext
	} else {
		s.outHead = f.outNext
	}
	if f.outNext != nil {
		f.outNext.outPrev = f.outPrev
	} else {
		s.outTail = f.outPrev
	}
	f.outPrev, f.outNext = nil, nil
	f.outstanding = false
	s.outBytes -= f.txSize
}

// --- timers

func (s *Session) rescheduleTimeout() {
	s.e.touch(s)
	now := s.e.now
	s.timeoutAt = now.Add(s.cc.erto())
	if s.retransmitEpoch.IsZero() {
		s.retransmitEpoch = now
	}
	s.probeAt = time.Time{}
	if s.outHead != nil && !s.probed && s.cc.rtt.HasSample() {
		// Tail-loss probe (in the spirit of RFC 8985 §7): two round trips
		// after the newest fragment went out without an acknowledgement
		// since, send it again, so that an acknowledgement (of it, or
		// negative of the older ones) comes without waiting for the
		// timeout and its cut of the window to one packet. A lone
		// fragment's acknowledgement may be held by the receiver
		// (peerAckDelay).
		pto := 2 * s.cc.srtt()
		if s.outHead == s.outTail {
			pto += s.peerAckDelay
		}
		if at := s.outTail.sentAt.Add(max(pto, probeMin)); at.Before(s.timeoutAt) {
			s.probeAt = at
		}
	}
}

// onProbe sends the newest outstanding fragment again: it is taken out of
// flight without a congestion signal (a probe is not a loss) and queued
// for retransmission. One probe per flight: progress re-arms it. A
// fragment of a message written NoRetransmit is not probed: taking it out
// of flight would abandon a message that may well have arrived.
func (s *Session) onProbe() {
	s.probeAt = time.Time{}
	f := s.outTail
	if f == nil || s.probed {
		return
	}
	s.probed = true
	if !f.receipt.retransmit {
		return
	}
	s.e.stats.Probes++
	s.removeOutstanding(f)
	f.owner.onLoss(f)
	s.rescheduleTransmission()
}

// flowTimers is the earliest of the flows' timers (zero: none).
func (s *Session) flowTimers() time.Time {
	var d time.Time
	min := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	for _, f := range s.sendFlows {
		min(f.persistAt)
		min(f.lingerUntil)
		min(f.expireAt)
	}
	for _, f := range s.recvFlows {
		min(f.lingerUntil)
	}
	return d
}

// flowTimersChanged says a flow's timer changed, or a flow came or went.
func (s *Session) flowTimersChanged() {
	if s != nil {
		s.flowsStale = true
	}
}

func (s *Session) nextDeadline() time.Time {
	var d time.Time
	min := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	switch s.state {
	case stateIHelloSent:
		min(s.openDeadline)
		for _, c := range s.candidates {
			min(c.next)
		}
	case stateKeyingSent:
		min(s.openDeadline)
		min(s.iikeyingNext)
	case stateOpen:
		min(s.delackAt)
		min(s.timeoutAt)
		min(s.probeAt)
		min(s.cc.burstAt())
		ka := s.lastKeepaliveTx.Add(s.e.cfg.KeepalivePeriod)
		if s.role == roleResponder {
			ka = ka.Add(s.cc.mrto())
		}
		if !s.keepaliveOutstanding {
			min(ka)
		}
		min(s.lastIdle.Add(s.e.cfg.IdleLimit))
		if s.flowsStale {
			s.flowsStale = false
			s.flowsAt = s.flowTimers()
		}
		min(s.flowsAt)
	case stateNearClose:
		min(s.nextCloseRTX)
		min(s.lingerUntil)
	case stateFarCloseLinger:
		min(s.lingerUntil)
	}
	return d
}

func (s *Session) tick() {
	now := s.e.now
	due := func(t time.Time) bool { return !t.IsZero() && !now.Before(t) }
	switch s.state {
	case stateIHelloSent:
		if due(s.openDeadline) {
			s.abort(ErrOpenTimeout)
			return
		}
		for a, c := range s.candidates {
			if due(c.next) {
				s.e.sendIHello(s.epd, s.tag, a)
				c.interval += ihelloBackoff
				c.next = now.Add(c.interval)
			}
		}
	case stateKeyingSent:
		if due(s.openDeadline) {
			s.abort(ErrOpenTimeout)
			return
		}
		if due(s.iikeyingNext) {
			s.e.sendStartup(s.addr, 0, s.iikeying, nil)
			if s.iikeyingInterval < iikeyingInitialRTX {
				s.iikeyingInterval = iikeyingInitialRTX
			} else {
				s.iikeyingInterval += iikeyingBackoff
			}
			s.iikeyingNext = now.Add(s.iikeyingInterval)
		}
	case stateOpen:
		// The flows' ticks below change their timers.
		s.flowsStale = true
		if due(s.delackAt) {
			s.doAckNow()
		}
		if due(s.probeAt) {
			s.onProbe()
		}
		if due(s.timeoutAt) {
			s.onTimeout()
			if s.state != stateOpen {
				return
			}
		}
		if due(s.cc.burstAt()) {
			s.rescheduleTransmission()
		}
		ka := s.lastKeepaliveTx.Add(s.e.cfg.KeepalivePeriod)
		if s.role == roleResponder {
			ka = ka.Add(s.cc.mrto())
		}
		if !s.keepaliveOutstanding && due(ka) {
			s.sendKeepalive()
		}
		if due(s.lastIdle.Add(s.e.cfg.IdleLimit)) {
			if len(s.sendFlows) == 0 && len(s.recvFlows) == 0 {
				s.Close()
				return
			}
			s.lastIdle = now
		}
		for _, f := range s.sendFlows {
			f.tick(now)
		}
		for id, f := range s.recvFlows {
			if due(f.lingerUntil) {
				f.state = rfClosed
				delete(s.recvFlows, id)
				s.lastIdle = now
			}
		}
	case stateNearClose:
		if due(s.lingerUntil) {
			s.abort(nil)
			return
		}
		if due(s.nextCloseRTX) {
			s.queueControl(closeChunk)
			s.nextCloseRTX = now.Add(nearcloseRTX)
		}
	case stateFarCloseLinger:
		if due(s.lingerUntil) {
			s.abort(nil)
		}
	}
}

func (s *Session) sendKeepalive() {
	s.queueControl(pingChunk)
	s.keepaliveOutstanding = true
	s.lastKeepaliveTx = s.e.now
	s.rescheduleTimeout()
}

func (s *Session) onTimeout() {
	now := s.e.now
	s.timeoutAt, s.probeAt, s.probed = time.Time{}, time.Time{}, false
	outstanding := s.outHead != nil || s.keepaliveOutstanding
	s.cc.onTimeout(now, outstanding)
	if !outstanding {
		s.retransmitEpoch = time.Time{}
		return
	}
	if !s.retransmitEpoch.IsZero() && !now.Before(s.retransmitEpoch.Add(s.e.cfg.RetransmitLimit)) {
		s.abort(ErrPeerDead)
		return
	}
	if s.outHead != nil {
		s.e.stats.Timeouts++
	}
	for f := s.outHead; f != nil; {
		next := f.outNext
		s.removeOutstanding(f)
		f.owner.onLoss(f)
		f = next
	}
	s.rescheduleTransmission()
	if s.keepaliveOutstanding {
		s.sendKeepalive()
	} else {
		s.rescheduleTimeout()
	}
}

// --- acks

func (s *Session) scheduleAck(f *RecvFlow) {
	if s.state != stateOpen {
		return
	}
	s.e.touch(s)
	s.ackFlows = append(s.ackFlows, f)
	if !s.ackNow && s.delackAt.IsZero() {
		s.delackAt = s.e.now.Add(s.e.cfg.AckDelay)
	}
}

func (s *Session) doAckNow() {
	if s.state != stateOpen {
		return
	}
	s.ackNow = true
	s.delackAt = time.Time{}
	s.e.markReady(s)
}

// appendAcks adds acknowledgements to the packet; obligatory means only when
// an immediate ack is due.
func (s *Session) appendAcks(b []byte, limit int, obligatory bool) ([]byte, bool) {
	if obligatory && !s.ackNow {
		return b, false
	}
	did := false
	truncate := obligatory
	done := 0
	for _, f := range s.ackFlows {
		var ok bool
		b, ok = f.appendAck(b, limit, truncate)
		if !ok {
			break
		}
		did = true
		truncate = false
		done++
	}
	rest := copy(s.ackFlows, s.ackFlows[done:])
	clear(s.ackFlows[rest:])
	s.ackFlows = s.ackFlows[:rest]
	if len(s.ackFlows) == 0 {
		s.ackNow = false
		s.rxDataPackets = 0
		s.delackAt = time.Time{}
	}
	return b, did
}

// --- sending

func (s *Session) queueControl(chunk []byte) {
	s.control = append(s.control, chunk)
	s.e.markReady(s)
}

func (s *Session) rescheduleTransmission() {
	for p := range s.readyFlows {
		if s.readyFlows[p].len() > 0 {
			s.e.markReady(s)
			return
		}
	}
}

func (s *Session) timestampEcho() (uint16, bool) {
	if !s.haveTSRx {
		return 0, false
	}
	elapsed := s.e.now.Sub(s.tsRxTime)
	if elapsed > maxTSEchoElapsed {
		s.haveTSRx = false
		return 0, false
	}
	echo := int32(uint16(s.tsRx + int32(elapsed/(4*time.Millisecond))))
	if echo == s.tsEchoTx {
		return 0, false
	}
	return uint16(echo), true
}

// burstPackets is how many packets one session assembles per turn: they are
// sealed together when the key can seal several packets at once.
const burstPackets = 8

// transmitBurst assembles and sends up to burstPackets packets and returns
// how many.
func (s *Session) transmitBurst(write WriteFunc) int {
	e := s.e
	n := 0
	for n < burstPackets {
		p, ok := s.assemble(e.plains[n][:0])
		if !ok {
			break
		}
		e.plains[n] = p
		n++
	}
	if n > 0 {
		e.sealMany(s.key, s.txID, s.addr, e.plains[:n], write)
	}
	return n
}

// assemble builds the next packet of the session into b; false if there is
// nothing to send.
func (s *Session) assemble(b []byte) ([]byte, bool) {
	if s.state != stateOpen && s.state != stateNearClose && s.state != stateFarCloseLinger {
		s.control = nil
		return b, false
	}
	e := s.e
	h := wire.Header{Mode: uint8(s.role)}
	ts := e.timestamp()
	if !s.haveTSTx || int32(ts) != s.tsTx {
		h.HasTimestamp, h.Timestamp = true, ts
	}
	echo, hasEcho := s.timestampEcho()
	h.HasTimestampEcho, h.TimestampEcho = hasEcho, echo
	if e.shouldReportTCR(s) {
		h.TimeCriticalReverse = true
	}
	b = wire.AppendHeader(b, h)
	start := len(b)
	limit := MaxSessionPacket
	for len(s.control) > 0 && len(b)+len(s.control[0]) <= limit {
		b = append(b, s.control[0]...)
		s.control[0] = nil
		s.control = s.control[1:]
	}
	if len(s.control) == 0 {
		s.control = nil
	}
	if s.state == stateOpen {
		var sentAcks bool
		b, sentAcks = s.appendAcks(b, limit, true)
		if !sentAcks && s.cc.canSend(e.now, s.outBytes) {
			b, _ = s.appendFlowData(b, limit)
		}
		if len(b) > start {
			b, _ = s.appendAcks(b, limit, false)
		}
	}
	if len(b) == start {
		return b, false
	}
	if h.HasTimestamp {
		s.tsTx, s.haveTSTx = int32(h.Timestamp), true
	}
	if hasEcho {
		s.tsEchoTx = int32(echo)
	}
	s.lastKeepaliveTx = e.now
	return b, true
}

// appendFlowData adds data from the highest-priority ready flow (flows of
// one priority take turns, one packet each).
func (s *Session) appendFlowData(b []byte, limit int) ([]byte, bool) {
	e := s.e
	for p := numPriorities - 1; p >= 0; p-- {
		q := &s.readyFlows[p]
		for q.len() > 0 {
			f := q.front()
			pre := s.outBytes
			var sent, full bool
			b, sent, full = f.appendData(b, limit, p)
			if !sent {
				if full {
					return b, false // no room left in this packet
				}
				q.pop() // nothing to send: f is no longer ready
				continue
			}
			q.rotate()
			s.nextTSN++
			tc := f.priority > PriorityRoutine
			if tc {
				b[0] |= wire.FlagTimeCritical // in the already-written header
				e.tcSentTime, e.tcSender = e.now, s
			}
			s.cc.dataSent(e.now, s.outBytes-pre, tc)
			return b, true
		}
	}
	return b, false
}

// --- flows

func (s *Session) bindFlow(f *SendFlow) {
	f.id = s.nextFlowID
	s.nextFlowID++
	f.session = s
	s.sendFlows[f.id] = f
	s.flowTimersChanged()
	f.scheduleForTransmission()
}

// OpenFlow opens a new sending flow with the given metadata and priority.
// On a session that is still opening, the flow waits for it.
func (s *Session) OpenFlow(metadata []byte, pri Priority) (*SendFlow, error) {
	return s.openFlow(metadata, pri, nil)
}

func (s *Session) openFlow(metadata []byte, pri Priority, assoc *RecvFlow) (*SendFlow, error) {
	if len(metadata) > maxMetadata {
		return nil, ErrMessageTooBig
	}
	if s.state > stateOpen {
		return nil, ErrSessionClosed
	}
	f := newSendFlow(s, metadata, pri, assoc)
	if s.state == stateOpen {
		s.bindFlow(f)
	} else {
		s.waiters = append(s.waiters, f)
	}
	return f, nil
}

func (s *Session) onUserData(typ wire.ChunkType, p []byte) {
	e := s.e
	var c wire.UserData
	var err error
	if typ == wire.ChunkUserData {
		c, err = wire.ParseUserData(p)
		if err == nil && c.FSNOffset > c.SequenceNumber {
			err = wire.ErrMalformed
		}
	} else {
		if !s.seenUserData {
			e.stats.DropMalformedChunk++
			return
		}
		var n wire.NextUserData
		n, err = wire.ParseNextUserData(p)
		c = wire.UserData{Fragmentation: n.Fragmentation, Abandon: n.Abandon, Final: n.Final, FlowID: s.parseFlowID, SequenceNumber: s.parseSeq + 1, Options: n.Options, Data: n.Data}
		c.FSNOffset = c.SequenceNumber - s.parseFSN
	}
	if err != nil {
		e.stats.DropMalformedChunk++
		return
	}
	fsn := c.SequenceNumber - c.FSNOffset
	var metadata []byte
	hasMeta := false
	var assocID uint64
	hasAssoc := false
	mustReject := false
	if len(c.Options) > 0 {
		_, err := wire.ParseOptionList(c.Options, func(t uint64, v []byte) error {
			switch t {
			case wire.OptionUserMetadata:
				metadata, hasMeta = v, true
			case wire.OptionReturnFlowAssociation:
				id, _, err := wire.ReadVLU(v)
				if err != nil {
					return err
				}
				assocID, hasAssoc = id, true
			default:
				if t < wire.OptionMandatoryLimit {
					mustReject = true
				}
			}
			return nil
		})
		if err != nil {
			e.stats.DropMalformedChunk++
			return
		}
	}
	s.parseFlowID, s.parseSeq, s.parseFSN = c.FlowID, c.SequenceNumber, fsn
	s.seenUserData = true

	f := s.recvFlows[c.FlowID]
	if f == nil {
		var assoc *SendFlow
		if hasAssoc {
			assoc = s.sendFlows[assocID]
			if assoc == nil || assoc.state != sfOpen {
				mustReject = true
			}
		}
		if !hasMeta {
			mustReject = true
		}
		if len(s.recvFlows) >= e.cfg.MaxFlowsPerSession {
			mustReject = true
		}
		f = newRecvFlow(s, c.FlowID, metadata, assoc)
		s.recvFlows[c.FlowID] = f
		s.flowTimersChanged()
		if mustReject {
			f.reject(0)
		} else {
			e.emit(Event{Kind: EventFlowIncoming, Session: s, RecvFlow: f, SendFlow: assoc})
		}
	}
	f.onData(c.Flags(), c.SequenceNumber, fsn, c.Data)
}

func (s *Session) onAck(typ wire.ChunkType, p []byte) {
	var flowID, blocks, cum uint64
	var ranges []byte
	if typ == wire.ChunkAckRanges {
		c, err := wire.ParseAckRanges(p)
		if err != nil {
			s.e.stats.DropMalformedChunk++
			return
		}
		flowID, blocks, cum, ranges = c.FlowID, c.BufferBlocksAvailable, c.CumulativeAck, c.Ranges
	} else {
		c, err := wire.ParseAckBitmap(p)
		if err != nil {
			s.e.stats.DropMalformedChunk++
			return
		}
		flowID, blocks, cum = c.FlowID, c.BufferBlocksAvailable, c.CumulativeAck
	}
	f := s.sendFlows[flowID]
	if f == nil {
		return
	}
	avail := int(blocks) * 1024
	if blocks > 1<<40 {
		avail = 1 << 50
	}
	f.onAck(avail, cum, ranges)
	s.anyAcks = true
	s.keepaliveOutstanding = false
	s.retransmitEpoch = time.Time{}
}

// --- closing

// Close closes the session in an orderly way (RFC 7016 §3.5.5.1): flows are
// aborted, and Close chunks repeat until the peer acknowledges.
func (s *Session) Close() {
	switch s.state {
	case stateIHelloSent, stateKeyingSent:
		s.abort(ErrSessionClosed)
	case stateOpen:
		s.setNearClose()
	}
}

// Abort ends the session at once, telling the peer with a Close Ack
// (RFC 7016 §3.5.5.2, abrupt close).
func (s *Session) Abort() {
	switch s.state {
	case stateOpen, stateNearClose, stateFarCloseLinger:
		s.sendNow(closeAckChunk)
	}
	s.abort(ErrSessionClosed)
}

// sendNow sends one packet with just this chunk, bypassing queues (used
// when the session is about to disappear).
func (s *Session) sendNow(chunk []byte) {
	s.e.sendStartup(s.addr, s.txID, chunk, s)
}

func (s *Session) setNearClose() {
	s.state = stateNearClose
	s.abortFlows(ErrSessionClosed)
	s.lingerUntil = s.e.now.Add(nearclosePeriod)
	s.nextCloseRTX = s.e.now.Add(nearcloseRTX)
	s.queueControl(closeChunk)
	s.e.sessionDidClose(s, false)
	s.emitClosed(nil)
}

func (s *Session) setFarCloseLinger() {
	s.state = stateFarCloseLinger
	s.abortFlows(ErrSessionClosed)
	s.lingerUntil = s.e.now.Add(farcloseLinger)
	s.e.sessionDidClose(s, false)
	s.emitClosed(nil)
}

func (s *Session) emitClosed(err error) {
	if s.closeErr == nil {
		s.closeErr = err
	}
	s.e.stats.SessionsClosed++
	s.e.emit(Event{Kind: EventSessionClosed, Session: s, Err: err})
}

func (s *Session) abort(err error) {
	if s.state == stateClosed {
		return
	}
	wasOpenish := s.state == stateOpen || s.state == stateIHelloSent || s.state == stateKeyingSent
	prev := s.state
	s.state = stateClosed
	s.abortFlows(errOr(err, ErrSessionClosed))
	for _, f := range s.waiters {
		f.fail(errOr(err, ErrSessionClosed))
	}
	s.waiters = nil
	s.control = nil
	s.e.sessionDidClose(s, true)
	if wasOpenish {
		if prev != stateOpen {
			s.closeErr = err
			s.e.emit(Event{Kind: EventSessionClosed, Session: s, Err: err})
		} else {
			s.emitClosed(err)
		}
	}
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

func (s *Session) abortFlows(err error) {
	for _, f := range s.sendFlows {
		f.fail(err)
	}
	for _, f := range s.recvFlows {
		f.abort(err)
	}
	s.sendFlows = map[uint64]*SendFlow{}
	s.recvFlows = map[uint64]*RecvFlow{}
	s.flowTimersChanged()
	s.outHead, s.outTail, s.outBytes = nil, nil, 0
	for p := range s.readyFlows {
		s.readyFlows[p] = flowQueue{}
	}
	s.ackFlows = nil
	s.timeoutAt, s.probeAt = time.Time{}, time.Time{}
	s.delackAt = time.Time{}
}

// Ping sends a ping; its reply updates liveness.
func (s *Session) Ping() {
	if s.state == stateOpen {
		s.sendKeepalive()
	}
}
