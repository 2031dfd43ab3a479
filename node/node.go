// Package node is an RTMFP endpoint (RFC 7016) with the Flash cryptography
// profile (RFC 7425) on one datagram socket: it opens and accepts sessions
// with peers and carries flows of messages inside them.
//
// The protocol itself lives in a sans-I/O core (node/internal/core); this
// package is the thin driver around it: it owns the socket (anything shaped
// like net.PacketConn, so the in-memory network of node/memnet works as well
// as UDP), a reader goroutine and a timer, and turns the core's events into
// the blocking, context-aware calls below.
package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/node/internal/core"
	"github.com/strata-net/strata/node/internal/flash"
	"github.com/strata-net/strata/node/internal/profile"
)

// Errors returned by this package (wrapping lets errors.Is match them).
var (
	ErrClosed        = errors.New("node: closed")
	ErrSessionClosed = core.ErrSessionClosed
	ErrOpenTimeout   = core.ErrOpenTimeout
	ErrFlowRejected  = core.ErrFlowRejected
	ErrFlowClosed    = core.ErrFlowClosed
	ErrPeerDead      = core.ErrPeerDead
	ErrMetadataSize  = core.ErrMessageTooBig
	ErrAbandoned     = errors.New("node: message abandoned before delivery")
	ErrShortBuffer   = core.ErrShortBuffer
)

// Priority of a flow; 4 and above are time critical.
type Priority = core.Priority

// Flow priorities (RFC 7016 §3.6.2.1 leaves the scheme to the implementation;
// these follow the reference implementation).
const (
	PriorityBackground = core.PriorityBackground
	PriorityBulk       = core.PriorityBulk
	PriorityData       = core.PriorityData
	PriorityRoutine    = core.PriorityRoutine
	PriorityHigh       = core.PriorityPriority
	PriorityImmediate  = core.PriorityImmediate
	PriorityFlash      = core.PriorityFlash
	PriorityOverride   = core.PriorityFlashOverride
)

// Config configures a Node. The zero value is usable.
type Config struct {
	// Identity is the node's key pair and certificate; nil makes a fresh one.
	Identity *Identity
	// Protocol tunables (zero fields take defaults; see core.DefaultConfig).
	MaxSessions        int
	KeepalivePeriod    time.Duration
	RetransmitLimit    time.Duration
	IdleLimit          time.Duration
	RecvBuffer         int
	SendBuffer         int
	MaxFlowsPerSession int
	// AcceptBacklog bounds sessions and flows waiting to be accepted; more
	// are refused (sessions closed, flows rejected) and counted.
	AcceptBacklog int
	// StrictIntegrity makes every session require and send a packet HMAC
	// and session sequence numbers (replay protection), as the reference
	// implementation's sample programs do (RFC 7425 §4.6.4-5). Without it
	// the node uses checksums unless the peer asks for more, which it
	// always grants.
	StrictIntegrity bool
	// Logger receives structured logs; the zero Logger discards them.
	Logger zerolog.Logger
	// OnUnmatchedHello, if set, is called for an IHello looking for some
	// other endpoint; a rendezvous uses it to introduce peers (Introduce).
	OnUnmatchedHello func(h Hello)
}

// Hello is an IHello addressed to another endpoint.
type Hello struct {
	EPD  []byte
	Tag  []byte
	From netip.AddrPort
}

// Stats are the node's counters: the protocol's (drops by reason, packets,
// sessions…) and the driver's.
type Stats struct {
	core.Stats
	// HellosDropped counts unmatched IHellos not given to
	// Config.OnUnmatchedHello because its queue was full.
	HellosDropped uint64
	// FlowsRejected counts incoming flows refused because their session's
	// queue of flows waiting to be accepted was full.
	FlowsRejected uint64
	// SessionsOpen and SessionsClosing count the sessions the node holds
	// now: open ones, and ones closing (waiting for the peer's close
	// acknowledgement, or lingering to acknowledge the peer's close, RFC
	// 7016 §3.5.5). Both count against Config.MaxSessions.
	SessionsOpen, SessionsClosing int
}

// Node is one RTMFP endpoint.
type Node struct {
	conn net.PacketConn
	io   *datagramIO
	id   *Identity
	log  zerolog.Logger
	cfg  Config

	mu         sync.Mutex
	ep         *core.Endpoint
	timer      *time.Timer
	timerAt    time.Time
	closed     bool
	done       chan struct{}
	readerDone chan struct{}

	sessions map[*core.Session]*Session
	accepts  chan *Session
	waitOpen map[*core.Session][]chan struct{}

	flowSignal chan struct{} // an incoming flow was queued on some session
	// flowQueued lists the sessions a flow was queued on, once per flow,
	// in order, for Node.AcceptFlow (Session.AcceptFlow may have taken
	// the flow since). Guarded by mu.
	flowQueued    []*Session
	flowsRejected uint64
	unmatched     func(Hello)
	hellos        chan Hello
	hellosDropped uint64
}

// Listen opens a UDP socket on addr ("127.0.0.1:0", ":1935") and starts a node.
func Listen(addr string, cfg Config) (*Node, error) {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("node: listen %s: %w", addr, err)
	}
	n, err := New(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return n, nil
}

// New starts a node on an existing packet socket, which it then owns.
func New(conn net.PacketConn, cfg Config) (*Node, error) {
	id := cfg.Identity
	if id == nil {
		var err error
		id, err = NewIdentity()
		if err != nil {
			return nil, err
		}
	}
	backlog := cfg.AcceptBacklog
	if backlog <= 0 {
		backlog = 128
	}
	n := &Node{
		conn:       conn,
		id:         id,
		log:        cfg.Logger,
		cfg:        cfg,
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		sessions:   make(map[*core.Session]*Session),
		accepts:    make(chan *Session, backlog),
		waitOpen:   make(map[*core.Session][]chan struct{}),
		flowSignal: make(chan struct{}, 1),
		unmatched:  cfg.OnUnmatchedHello,
	}
	policy := flash.Policy{}
	if cfg.StrictIntegrity {
		policy = flash.StrictPolicy()
	}
	n.io = newDatagramIO(conn, func(err error) { n.log.Debug().Err(err).Msg("write") })
	n.ep = core.NewEndpoint(core.Config{
		MaxSessions:        cfg.MaxSessions,
		KeepalivePeriod:    cfg.KeepalivePeriod,
		RetransmitLimit:    cfg.RetransmitLimit,
		IdleLimit:          cfg.IdleLimit,
		RecvBuffer:         cfg.RecvBuffer,
		SendBuffer:         cfg.SendBuffer,
		MaxFlowsPerSession: cfg.MaxFlowsPerSession,
	}, profile.Flash(id.fid, policy), nil)
	if n.unmatched != nil {
		n.hellos = make(chan Hello, 256)
		go n.serveHellos()
	}
	n.timer = time.AfterFunc(time.Hour, n.onTimer)
	n.timer.Stop()
	go n.readLoop()
	n.log.Info().Str("addr", conn.LocalAddr().String()).Str("peer_id", id.PeerID().String()).Msg("rtmfp node listening")
	return n, nil
}

// PeerID is this node's identity (SHA-256 of its certificate).
func (n *Node) PeerID() PeerID { return n.id.PeerID() }

// Identity is this node's identity.
func (n *Node) Identity() *Identity { return n.id }

// LocalAddr is the socket's address.
func (n *Node) LocalAddr() net.Addr { return n.conn.LocalAddr() }

// AddrPort is the socket's address as a netip.AddrPort.
func (n *Node) AddrPort() netip.AddrPort { return addrPortOf(n.conn.LocalAddr()) }

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.unlock()
	st := Stats{Stats: n.ep.Stats(), HellosDropped: n.hellosDropped, FlowsRejected: n.flowsRejected}
	for _, cs := range n.ep.Sessions() {
		switch {
		case cs.IsOpen():
			st.SessionsOpen++
		case cs.Closed():
			st.SessionsClosing++
		}
	}
	return st
}

func (n *Node) serveHellos() {
	for {
		select {
		case h := <-n.hellos:
			n.unmatched(h)
		case <-n.done:
			return
		}
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.UDPAddr:
		ap := v.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case interface{ AddrPort() netip.AddrPort }:
		return v.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func (n *Node) readLoop() {
	defer close(n.readerDone)
	for {
		count, err := n.io.read()
		if err != nil {
			if n.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			n.log.Warn().Err(err).Msg("read")
			time.Sleep(10 * time.Millisecond)
			continue
		}
		n.mu.Lock()
		now := time.Now()
		for i := 0; i < count; i++ {
			from, pkt := n.io.datagram(i)
			n.ep.Receive(now, from, pkt)
		}
		n.service()
		n.unlock()
	}
}

// unlock releases the node's mutex and then sends the datagrams the
// critical section produced, so the system calls do not hold up other
// goroutines' protocol work. Every section that may have called service
// ends with it.
func (n *Node) unlock() {
	n.mu.Unlock()
	n.io.flush()
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.unlock()
	return n.closed
}

func (n *Node) onTimer() {
	n.mu.Lock()
	defer n.unlock()
	n.timerAt = time.Time{}
	n.ep.Tick(time.Now())
	n.service()
}

// service runs after every core call, with mu held: send what is ready,
// dispatch events, re-arm the timer.
func (n *Node) service() {
	now := time.Now()
	for i := 0; i < 64; i++ {
		more := n.ep.Transmit(now, n.io.write, 256)
		n.dispatch()
		if !more {
			break
		}
	}
	n.dispatch()
	n.io.commit()
	d := n.ep.NextDeadline()
	if d.IsZero() {
		if !n.timerAt.IsZero() {
			n.timer.Stop()
			n.timerAt = time.Time{}
		}
		return
	}
	if n.timerAt.IsZero() || d.Before(n.timerAt) || n.timerAt.Sub(d) > time.Millisecond {
		n.timerAt = d
		wait := time.Until(d)
		if wait < 0 {
			wait = 0
		}
		n.timer.Reset(wait)
	}
}

func (n *Node) dispatch() {
	for _, ev := range n.ep.Events() {
		switch ev.Kind {
		case core.EventSessionOpen:
			s := n.wrapSession(ev.Session)
			n.log.Debug().Str("peer_id", s.PeerID().String()).Str("addr", ev.Session.Addr().String()).Bool("initiator", ev.Session.Initiator()).Msg("session open")
			for _, ch := range n.waitOpen[ev.Session] {
				close(ch)
			}
			delete(n.waitOpen, ev.Session)
			if !ev.Session.Initiator() {
				select {
				case n.accepts <- s:
				default:
					n.log.Warn().Msg("accept backlog full: closing session")
					ev.Session.Close()
				}
			}
		case core.EventSessionClosed:
			if s := n.sessions[ev.Session]; s != nil {
				s.markClosed(ev.Err)
				delete(n.sessions, ev.Session)
			}
			for _, ch := range n.waitOpen[ev.Session] {
				close(ch)
			}
			delete(n.waitOpen, ev.Session)
		case core.EventSessionMerged:
			// Waiters for the folded session wait for its successor now.
			to := ev.Merged
			for to.Merged() != nil {
				to = to.Merged()
			}
			if to.IsOpen() || to.Closed() {
				for _, ch := range n.waitOpen[ev.Session] {
					close(ch)
				}
			} else {
				n.waitOpen[to] = append(n.waitOpen[to], n.waitOpen[ev.Session]...)
			}
			delete(n.waitOpen, ev.Session)
		case core.EventFlowIncoming:
			s := n.wrapSession(ev.Session)
			rf := newRecvFlow(n, s, ev.RecvFlow)
			if ev.SendFlow != nil {
				if sf, ok := ev.SendFlow.Tag.(*SendFlow); ok {
					select {
					case sf.returns <- rf:
						continue
					default:
					}
				}
			}
			select {
			case s.flows <- rf:
				n.noteFlowQueued(s)
				select {
				case n.flowSignal <- struct{}{}:
				default:
				}
			default:
				n.flowsRejected++
				ev.RecvFlow.Reject(0)
			}
		case core.EventFlowReadable, core.EventRecvFlowClosed:
			if rf, ok := ev.RecvFlow.Tag.(*RecvFlow); ok {
				rf.signal()
			}
		case core.EventFlowWritable, core.EventSendFlowClosed:
			if sf, ok := ev.SendFlow.Tag.(*SendFlow); ok {
				sf.signal()
			}
		case core.EventReceipt:
			if r, ok := ev.Receipt.Tag.(*Receipt); ok {
				r.finish()
			}
		case core.EventUnmatchedIHello:
			if n.unmatched != nil {
				// One goroutine serves the handler from a bounded queue: a
				// flood of hellos costs a counted drop, not a goroutine each.
				select {
				case n.hellos <- Hello{EPD: ev.EPD, Tag: ev.Tag, From: ev.From}:
				default:
					n.hellosDropped++
				}
			}
		}
	}
}

func (n *Node) wrapSession(cs *core.Session) *Session {
	if s := n.sessions[cs]; s != nil {
		return s
	}
	s := newSession(n, cs)
	n.sessions[cs] = s
	return s
}

// Accept waits for a peer to open a session to us.
func (n *Node) Accept(ctx context.Context) (*Session, error) {
	select {
	case s := <-n.accepts:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.done:
		return nil, ErrClosed
	}
}

// AcceptFlow waits for a peer to open a flow to us on any session, whether
// the peer or we opened the session (as the reference implementation's
// node-wide flow callback does). It competes with Session.AcceptFlow: each
// flow goes to exactly one caller. Flows opened in return to one of ours
// arrive on SendFlow.AcceptReturn instead.
func (n *Node) AcceptFlow(ctx context.Context) (*RecvFlow, error) {
	for {
		n.mu.Lock()
		for len(n.flowQueued) > 0 {
			s := n.flowQueued[0]
			n.flowQueued[0] = nil
			n.flowQueued = n.flowQueued[1:]
			if n.sessions[s.cs] != s {
				continue // closed: its flows are not offered (as before)
			}
			select {
			case f := <-s.flows:
				n.mu.Unlock()
				return f, nil
			default: // Session.AcceptFlow took it
			}
		}
		n.flowQueued = nil
		n.mu.Unlock()
		select {
		case <-n.flowSignal:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-n.done:
			return nil, ErrClosed
		}
	}
}

// noteFlowQueued records that a flow was queued on s (n.mu held). Flows
// Session.AcceptFlow takes leave their entries behind: when the list
// outgrows the flows that can be queued at once, entries of sessions
// with nothing queued are dropped, so an application that accepts only
// per session does not make it grow without bound.
func (n *Node) noteFlowQueued(s *Session) {
	n.flowQueued = append(n.flowQueued, s)
	if len(n.flowQueued) <= 2*sessionFlowBacklog*max(len(n.sessions), 1) {
		return
	}
	seen := make(map[*Session]int)
	kept := n.flowQueued[:0]
	for _, q := range n.flowQueued {
		if n.sessions[q.cs] == q && seen[q] < len(q.flows) {
			seen[q]++
			kept = append(kept, q)
		}
	}
	clear(n.flowQueued[len(kept):])
	n.flowQueued = kept
}

// Dial opens a session to the node with the given peer ID at addr.
func (n *Node) Dial(ctx context.Context, addr netip.AddrPort, peer PeerID) (*Session, error) {
	return n.DialEPD(ctx, EPDForPeerID(peer), addr)
}

// DialAny opens a session to whichever node answers at addr (an EPD that
// any Flash-profile responder accepts: ancillary data only).
func (n *Node) DialAny(ctx context.Context, addr netip.AddrPort) (*Session, error) {
	return n.DialEPD(ctx, AnyEPD(), addr)
}

// DialEPD opens a session to the endpoint named by the discriminator epd,
// trying the given addresses (a rendezvous may redirect or introduce us).
func (n *Node) DialEPD(ctx context.Context, epd []byte, addrs ...netip.AddrPort) (*Session, error) {
	n.mu.Lock()
	if n.closed {
		n.unlock()
		return nil, ErrClosed
	}
	cs := n.ep.Open(time.Now(), epd, addrs)
	if cs.IsOpen() {
		s := n.wrapSession(cs)
		n.unlock()
		return s, nil
	}
	ch := make(chan struct{})
	n.waitOpen[cs] = append(n.waitOpen[cs], ch)
	n.service()
	n.unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		n.mu.Lock()
		if !cs.IsOpen() && len(n.waitOpen[cs]) <= 1 {
			cs.Close()
			n.service()
		}
		n.unlock()
		return nil, ctx.Err()
	case <-n.done:
		return nil, ErrClosed
	}
	n.mu.Lock()
	defer n.unlock()
	// The opening session may have been folded into another session with
	// the same peer (one already open, or a simultaneous open).
	for cs.Merged() != nil {
		cs = cs.Merged()
	}
	if !cs.IsOpen() {
		if err := cs.Err(); err != nil {
			return nil, fmt.Errorf("node: dial: %w", err)
		}
		return nil, fmt.Errorf("node: dial: %w", ErrSessionClosed)
	}
	return n.wrapSession(cs), nil
}

// Introduce forwards a Hello to the peer of via (RFC 7016 §3.5.1.5), which
// then answers the initiator directly: NAT traversal through a rendezvous.
func (n *Node) Introduce(via *Session, h Hello) {
	n.mu.Lock()
	defer n.unlock()
	n.ep.Introduce(via.cs, h.EPD, h.Tag, h.From)
	n.service()
}

// Redirect tells the initiator of h to try addrs instead (RFC 7016 §3.5.1.4).
func (n *Node) Redirect(h Hello, addrs []netip.AddrPort) {
	n.mu.Lock()
	defer n.unlock()
	n.ep.Redirect(h.Tag, h.From, addrs)
	n.service()
}

// Sessions returns the open sessions.
func (n *Node) Sessions() []*Session {
	n.mu.Lock()
	defer n.unlock()
	out := make([]*Session, 0, len(n.sessions))
	for cs, s := range n.sessions {
		if cs.IsOpen() {
			out = append(out, s)
		}
	}
	return out
}

// Close closes every session in an orderly way, waiting (bounded by ctx) for
// peers to acknowledge, then closes the socket.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.unlock()
		return nil
	}
	n.ep.Close(time.Now())
	n.closed = true
	n.service()
	n.unlock()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		n.mu.Lock()
		busy := n.ep.Busy()
		n.unlock()
		if !busy {
			break
		}
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	close(n.done)
	n.mu.Lock()
	n.timer.Stop()
	n.unlock()
	err := n.conn.Close()
	<-n.readerDone
	n.log.Info().Msg("rtmfp node closed")
	return err
}
