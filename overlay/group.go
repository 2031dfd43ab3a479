package overlay

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/node"
)

// DeliveryKind says how a message reached its receiver.
type DeliveryKind uint8

// Kinds of delivery.
const (
	// Routed: sent with Route to the member nearest an address.
	Routed DeliveryKind = iota + 1
	// Direct: sent with SendTo or SendToNeighbours by a neighbour.
	Direct
)

// Delivery is a message handed to the application.
type Delivery struct {
	Kind DeliveryKind
	// From is the member that sent the message (the origin of a routed
	// one).
	From node.PeerID
	// Target is the address a routed message was sent to.
	Target Address
	// Path lists the members a routed message went through, origin first
	// and this member last; Hops is len(Path)-1, the number of hops.
	Path []node.PeerID
	Hops int
	// Payload is the application's bytes.
	Payload []byte
}

// Group is this node's membership of one group: its routing table, its
// links to other members, and the routing of messages between them.
type Group struct {
	h     *Host
	id    GroupID
	self  node.PeerID
	addr  Address
	cfg   Config
	log   zerolog.Logger
	table *RoutingTable
	meta  []byte
	stats counters

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	deliveries *queue[Delivery]
	forwards   chan struct{}   // semaphore of forwarding goroutines
	kick       chan struct{}   // wakes the neighbour maintenance
	readable   *queue[*inFlow] // links' incoming flows with news (each at most once)

	mu        sync.Mutex
	closed    bool
	links     map[node.PeerID]*link
	pending   map[uint64]*request
	estimates map[node.PeerID]estimate
	rdv       map[netip.AddrPort]*rdvClient
	rdvMu     sync.Mutex // serializes registrations
	samples   []estimate // member-count samples from recent lookups (a ring)
	sampleAt  int
	looked    map[int]time.Time // last lookup per bucket (common prefix length)
	dedup     map[uint64]struct{}
	dedupRing []uint64
	dedupNext int
}

// inFlow is a link's incoming flow, queued for readLoop when it may have
// messages (at most once at a time: queued).
type inFlow struct {
	l      *link
	rf     *node.RecvFlow
	queued atomic.Bool
}

// link is this member's flow to another member of the group over an RTMFP
// session, and the other's flow back, which carry the control messages.
type link struct {
	peer      node.PeerID
	ready     chan struct{} // closed once dialled (or failed)
	up        atomic.Bool   // dialled: set before ready closes on success
	err       error
	s         *node.Session
	out       *node.SendFlow
	in        *node.RecvFlow
	lastUsed  time.Time
	neighbour bool // we keep it as a neighbour
	offered   bool // the peer keeps us as a neighbour
	gone      bool
	dropped   chan struct{} // closed by dropLink
	stopWatch func() bool   // unregisters the session-end callback
}

// estimate is a neighbour's member-count estimate and when it came.
type estimate struct {
	n  float64
	at time.Time
}

type request struct {
	peer node.PeerID
	ch   chan *Message
}

func newGroup(h *Host, id GroupID, cfg Config) *Group {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(h.ctx)
	self := h.n.PeerID()
	g := &Group{
		h: h, id: id, self: self, addr: AddressOf(id, self), cfg: cfg,
		table:      NewRoutingTable(id, self, cfg.K),
		meta:       metadataFor(id),
		ctx:        ctx,
		cancel:     cancel,
		deliveries: newQueue[Delivery](cfg.DeliveryQueue),
		readable:   newQueue[*inFlow](math.MaxInt),
		forwards:   make(chan struct{}, cfg.MaxForwards),
		kick:       make(chan struct{}, 1),
		links:      make(map[node.PeerID]*link),
		pending:    make(map[uint64]*request),
		estimates:  make(map[node.PeerID]estimate),
		rdv:        make(map[netip.AddrPort]*rdvClient),
		looked:     make(map[int]time.Time),
		dedup:      make(map[uint64]struct{}),
	}
	g.log = cfg.Logger.With().Str("group", id.String()[:8]).Str("member", g.addr.String()[:8]).Logger()
	g.wg.Add(3)
	go g.maintainLoop()
	go g.refreshLoop()
	go g.readLoop()
	return g
}

// ID is the group's ID.
func (g *Group) ID() GroupID { return g.id }

// Address is this member's address in the group.
func (g *Group) Address() Address { return g.addr }

// Table is the group's routing table.
func (g *Group) Table() *RoutingTable { return g.table }

// Stats returns the group's counters.
func (g *Group) Stats() Stats {
	st := g.stats.snapshot()
	g.mu.Lock()
	st.Links = len(g.links)
	g.mu.Unlock()
	return st
}

// Close leaves the group: tells the links (Bye), closes them and stops the
// group's goroutines. Messages not yet received are discarded.
func (g *Group) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	links := make([]*link, 0, len(g.links))
	for _, l := range g.links {
		links = append(links, l)
	}
	g.mu.Unlock()
	bye, _ := Encode(&Message{Version: ProtocolVersion, Type: MsgBye}, g.cfg.MaxMessageSize)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	var receipts []*node.Receipt
	for _, l := range links {
		if l.up.Load() {
			if r, err := l.out.Write(ctx, bye, node.WriteOptions{}); err == nil {
				receipts = append(receipts, r)
			}
		}
	}
	// Closing the links closes their sessions, which would drop a Bye
	// still in flight; the others would then keep this member in their
	// tables (and bootstrap through it) until it fails to answer.
	for _, r := range receipts {
		r.Wait(ctx)
	}
	cancel()
	g.cancel()
	for _, l := range links {
		g.dropLink(l)
	}
	g.closeRendezvous()
	g.wg.Wait()
	g.h.leave(g)
	return g.table.Close()
}

func (l *link) isReady() bool {
	select {
	case <-l.ready:
		return true
	default:
		return false
	}
}

// Bootstrap meets the group through the given members (a zero PeerID
// accepts whoever answers at the address) and, if the Host has rendezvous
// addresses, through the recent members the rendezvous know (registering
// this member with them); then it looks up this member's own address and
// refreshes every bucket, which fills the table. It fails only if no
// bootstrap peer answers; the first member a rendezvous hears of succeeds
// alone.
func (g *Group) Bootstrap(ctx context.Context, peers ...Peer) error {
	var met []Peer
	var lastErr error
	if len(g.h.cfg.Rendezvous) > 0 {
		got, err := g.register(ctx)
		if err != nil && len(peers) == 0 {
			return fmt.Errorf("%w: %w", ErrNoBootstrap, err)
		}
		for _, c := range got {
			peers = append(peers, Peer{PeerID: c.PeerID, Addr: c.Addr})
		}
		if len(got) == 0 && len(peers) == 0 {
			// The first member the rendezvous has heard of: nobody to
			// meet yet; the others will find this one.
			g.kickMaintain()
			return nil
		}
	}
	for _, p := range peers {
		if p.PeerID == g.self {
			continue
		}
		if len(met) >= bootstrapMeet {
			break
		}
		dctx, cancel := context.WithTimeout(ctx, g.cfg.DialTimeout)
		s, err := g.h.dial(dctx, p)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		if _, err := g.linkOn(s); err != nil {
			lastErr = err
			continue
		}
		g.table.Add(s.PeerID(), s.RemoteAddr(), true)
		met = append(met, Peer{PeerID: s.PeerID(), Addr: s.RemoteAddr()})
	}
	if len(met) == 0 && len(peers) > 0 {
		return fmt.Errorf("%w: %v", ErrNoBootstrap, lastErr)
	}
	// A busy bootstrap member may fail to answer the first lookup (it is
	// closing links beyond its session limit while hundreds join); the
	// joiner tries again rather than end up alone with an empty table.
	wait := g.cfg.RequestTimeout / 4
	for attempt := 0; len(met) > 0; attempt++ {
		if g.lookupSelf(ctx) {
			break
		}
		if attempt == bootstrapAttempts-1 {
			return fmt.Errorf("%w: no lookup answered", ErrNoBootstrap)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
		for _, p := range met {
			g.table.Add(p.PeerID, p.Addr, true)
		}
	}
	g.kickMaintain()
	// The member is in the group once the members nearest it know it;
	// the other buckets fill in the background (a joiner waited seconds
	// for them while members crashed around it).
	g.mu.Lock()
	if !g.closed {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.refreshBuckets(g.ctx)
		}()
	}
	g.mu.Unlock()
	return nil
}

// bootstrapAttempts bounds Bootstrap's lookups of its own address.
const bootstrapAttempts = 5

// bootstrapMeet is how many of the given members Bootstrap meets; the
// lookups that follow find the rest.
const bootstrapMeet = 4

// Refresh looks up this member's own address and a random address in every
// bucket not looked into during the last half RefreshPeriod, repopulating
// the table, and tells the neighbours this member's
// estimate of the group size. The refresh loop calls it every
// RefreshPeriod.
func (g *Group) Refresh(ctx context.Context) { g.refresh(ctx) }

// refresh is Refresh, reporting whether any other member answered the
// lookup of this member's own address.
func (g *Group) refresh(ctx context.Context) bool {
	answered := g.lookupSelf(ctx)
	g.refreshBuckets(ctx)
	return answered
}

// lookupSelf looks up this member's own address, reporting whether any
// other member answered.
func (g *Group) lookupSelf(ctx context.Context) bool {
	near, err := g.Lookup(ctx, g.addr)
	if err != nil {
		return false
	}
	for _, c := range near {
		if c.PeerID != g.self {
			return true
		}
	}
	return false
}

// refreshBuckets looks up a random address in every bucket not looked
// into during the last half RefreshPeriod, then tells the neighbours this
// member's estimate of the group size.
func (g *Group) refreshBuckets(ctx context.Context) {
	// One lookup at a time: lookups in parallel touch more members than
	// MaxSessions, and the links they evict from each other are dialled
	// again (at N=500 the CI scenario took four times the CPU).
	recent := time.Now().Add(-g.cfg.RefreshPeriod / 2)
	for cpl, t := range g.table.RefreshTargets() {
		if ctx.Err() != nil {
			return
		}
		g.mu.Lock()
		skip := g.looked[cpl].After(recent)
		g.mu.Unlock()
		if !skip {
			g.Lookup(ctx, t)
		}
	}
	est := g.ownEstimate()
	for _, l := range g.neighbourLinks() {
		g.send(ctx, l, &Message{Type: MsgHello, Neighbour: true, Estimate: uint32(est)})
	}
}

func (g *Group) refreshLoop() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.RefreshPeriod)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
			if len(g.h.cfg.Rendezvous) > 0 {
				// Stay among the rendezvous' recent members, with a
				// session it can introduce others over.
				g.register(g.ctx)
			}
			g.Refresh(g.ctx)
		}
	}
}

// --- links ---

// linkTo returns an open link to c, dialling it if needed.
func (g *Group) linkTo(ctx context.Context, c Contact) (*link, error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	if l := g.links[c.PeerID]; l != nil {
		g.mu.Unlock()
		select {
		case <-l.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if l.err != nil {
			return nil, l.err
		}
		return l, nil
	}
	l := &link{peer: c.PeerID, ready: make(chan struct{}), dropped: make(chan struct{}), lastUsed: time.Now()}
	g.links[c.PeerID] = l
	g.mu.Unlock()

	dctx, cancel := context.WithTimeout(ctx, g.cfg.DialTimeout)
	s, err := g.h.dial(dctx, Peer{PeerID: c.PeerID, Addr: c.Addr})
	cancel()
	if err != nil {
		err = fmt.Errorf("%w: %w", errUnreachable, err)
	}
	if err == nil {
		err = g.open(l, s)
	}
	if err != nil {
		l.err = err
		g.mu.Lock()
		if g.links[c.PeerID] == l {
			delete(g.links, c.PeerID)
		}
		g.mu.Unlock()
		close(l.ready)
		return nil, err
	}
	l.up.Store(true)
	close(l.ready)
	g.enforceLimit()
	return l, nil
}

// linkOn returns the link to the peer of s, opening it on s if there is
// none.
func (g *Group) linkOn(s *node.Session) (*link, error) {
	p := s.PeerID()
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	if l := g.links[p]; l != nil {
		g.mu.Unlock()
		<-l.ready
		if l.err != nil {
			return nil, l.err
		}
		return l, nil
	}
	l := &link{peer: p, ready: make(chan struct{}), dropped: make(chan struct{}), lastUsed: time.Now()}
	g.links[p] = l
	g.mu.Unlock()
	err := g.open(l, s)
	if err != nil {
		l.err = err
		g.mu.Lock()
		if g.links[p] == l {
			delete(g.links, p)
		}
		g.mu.Unlock()
		close(l.ready)
		return nil, err
	}
	l.up.Store(true)
	close(l.ready)
	g.enforceLimit()
	return l, nil
}

// open opens the group's flow on s for l and says hello.
func (g *Group) open(l *link, s *node.Session) error {
	f, err := s.OpenFlow(g.meta, node.PriorityRoutine)
	if err != nil {
		return err
	}
	b, err := Encode(&Message{Version: ProtocolVersion, Type: MsgHello, Estimate: uint32(g.ownEstimate())}, g.cfg.MaxMessageSize)
	if err != nil {
		f.Close()
		return err
	}
	ctx, cancel := context.WithTimeout(g.ctx, g.cfg.DialTimeout)
	_, err = f.Write(ctx, b, node.WriteOptions{})
	cancel()
	if err != nil {
		f.Close()
		return err
	}
	g.stats.sent.Add(1)
	l.s, l.out = s, f
	g.h.acquire(s)
	// No goroutine waits for every link's session to end: a member keeps
	// dozens of links, and a simulated swarm thousands of members.
	l.stopWatch = context.AfterFunc(s.Context(), func() { g.sessionEnded(l) })
	return nil
}

// sessionEnded drops l when its session ends; a peer that died is also
// forgotten.
func (g *Group) sessionEnded(l *link) {
	if g.ctx.Err() != nil {
		return // the group is closing and drops its links itself
	}
	if errors.Is(l.s.Err(), node.ErrPeerDead) {
		g.evictDead(l.peer)
	}
	g.dropLink(l)
}

// dropLink closes l and forgets it.
func (g *Group) dropLink(l *link) { g.drop(l, false) }

// drop closes l and forgets it; if idle (nothing sent or received on it
// lately), its session, unless used otherwise, closes abruptly
// (Host.release).
func (g *Group) drop(l *link, idle bool) {
	g.mu.Lock()
	if l.gone {
		g.mu.Unlock()
		return
	}
	l.gone = true
	close(l.dropped)
	in := l.in
	if g.links[l.peer] == l {
		delete(g.links, l.peer)
	}
	delete(g.estimates, l.peer)
	wasNeighbour := l.neighbour
	g.mu.Unlock()
	if in != nil {
		// The peer's requests on this link could no longer be answered:
		// make its side fail now rather than time out.
		in.Reject(0)
	}
	if l.out != nil {
		l.stopWatch()
		l.out.Close()
		g.h.release(l.s, idle)
	}
	if wasNeighbour {
		g.kickMaintain()
	}
}

func (g *Group) evictDead(p node.PeerID) {
	if _, ok := g.table.Get(p); ok {
		g.table.Remove(p)
		g.stats.deadEvicted.Add(1)
	}
}

// enforceLimit closes the least recently used links beyond MaxSessions,
// sparing neighbours while it can, and links used within the last
// RequestTimeout (a request or its answer may be on the way) until there
// are twice MaxSessions: a burst of joiners then makes a busy member
// briefly exceed its limit instead of breaking the exchanges under way.
func (g *Group) enforceLimit() {
	for i := 0; i < 8; i++ {
		g.mu.Lock()
		if len(g.links) <= g.cfg.MaxSessions {
			g.mu.Unlock()
			return
		}
		busy := time.Now().Add(-g.cfg.RequestTimeout)
		hard := len(g.links) > 2*g.cfg.MaxSessions
		// One scan: the least recently used link that is neither a
		// neighbour nor offered, else the least recently used one that
		// is not a neighbour, else any (a scan per choice, three at
		// most, was 5 % of a 2,000-member simulation's CPU).
		var least [3]*link
		for _, l := range g.links {
			if !l.up.Load() {
				continue
			}
			if !hard && l.lastUsed.After(busy) {
				continue
			}
			rank := 0
			switch {
			case l.neighbour:
				rank = 2
			case l.offered:
				rank = 1
			}
			for r := rank; r < len(least); r++ {
				if least[r] == nil || l.lastUsed.Before(least[r].lastUsed) {
					least[r] = l
				}
			}
		}
		var victim *link
		for _, l := range least {
			if l != nil {
				victim = l
				break
			}
		}
		if victim == nil {
			g.mu.Unlock()
			return
		}
		idle := !victim.lastUsed.After(busy)
		g.mu.Unlock()
		g.drop(victim, idle)
	}
}

// acceptFlow takes a peer's flow to this group (from the Host).
func (g *Group) acceptFlow(rf *node.RecvFlow) {
	s := rf.Session()
	l, err := g.linkOn(s)
	if err != nil {
		g.log.Debug().Err(err).Msg("cannot link: rejecting flow")
		rf.Reject(0)
		return
	}
	g.table.Add(s.PeerID(), s.RemoteAddr(), true)
	g.mu.Lock()
	l.in = rf
	g.mu.Unlock()
	in := &inFlow{l: l, rf: rf}
	rf.Notify(func() {
		if in.queued.CompareAndSwap(false, true) {
			g.readable.push(in)
		}
	})
}

// readLoop reads the links' incoming flows as they have news (one
// goroutine for the group rather than one blocked per link: at a hundred
// links per member those were three quarters of a simulated member's
// goroutines). Nothing it calls waits on the network: replies that find
// their link's send buffer full are dropped (trySend), forwarding runs on
// its own goroutines.
func (g *Group) readLoop() {
	defer g.wg.Done()
	for {
		in, ok := g.readable.pop()
		if !ok {
			select {
			case <-g.readable.ready:
				continue
			case <-g.ctx.Done():
				return
			}
		}
		in.queued.Store(false)
		if g.drain(in) {
			// Its turn is over with messages left: to the back of the
			// queue, so one busy link cannot hold up the others.
			if in.queued.CompareAndSwap(false, true) {
				g.readable.push(in)
			}
		}
	}
}

// readBudget is how many messages readLoop takes from one flow per turn.
const readBudget = 32

// drain handles up to readBudget of in's messages, reporting whether it
// stopped with more perhaps waiting.
func (g *Group) drain(in *inFlow) bool {
	l, rf := in.l, in.rf
	for range readBudget {
		b, ok, err := rf.TryRead()
		if err != nil {
			if errors.Is(err, io.EOF) {
				// The peer closed its side: close ours too.
				g.mu.Lock()
				mine := l.in == rf
				g.mu.Unlock()
				if mine {
					g.dropLink(l)
				}
			}
			rf.Notify(nil)
			return false
		}
		if !ok {
			return false
		}
		g.stats.received.Add(1)
		m, err := Decode(b, g.cfg.MaxMessageSize)
		if err != nil {
			if errors.Is(err, ErrMessageTooBig) {
				g.stats.tooBig.Add(1)
			} else {
				g.stats.malformed.Add(1)
			}
			g.log.Debug().Err(err).Msg("dropping message")
			continue
		}
		g.mu.Lock()
		l.lastUsed = time.Now()
		g.mu.Unlock()
		g.handle(l, m)
	}
	return true
}

func (g *Group) handle(l *link, m *Message) {
	switch m.Type {
	case MsgHello:
		g.mu.Lock()
		// Only neighbours' estimates count: they are refreshed every
		// RefreshPeriod, while a first hello may come from a member
		// that has barely joined.
		if m.Estimate > 0 && m.Neighbour {
			g.estimates[l.peer] = estimate{float64(m.Estimate), time.Now()}
		}
		l.offered = m.Neighbour
		g.mu.Unlock()
	case MsgFindNode:
		var target Address
		copy(target[:], m.Target)
		near := g.table.Nearest(target, min(g.cfg.K, MaxNodes))
		reply := &Message{Type: MsgNodes, ReqID: m.ReqID, Nodes: make([]WireContact, len(near))}
		// One buffer holds every address (room for an IPv6 address and
		// port each; a zone grows it), and the IDs are near's own (a
		// loop variable's ID escaped: one copy per contact).
		addrs := make([]byte, 0, len(near)*(16+2))
		for i := range near {
			at := len(addrs)
			addrs, _ = near[i].Addr.AppendBinary(addrs)
			reply.Nodes[i] = WireContact{PeerID: near[i].PeerID[:], Addr: addrs[at:len(addrs):len(addrs)]}
		}
		g.trySend(l, reply)
	case MsgNodes:
		g.mu.Lock()
		r := g.pending[m.ReqID]
		if r != nil && r.peer == l.peer {
			delete(g.pending, m.ReqID)
		} else {
			r = nil
		}
		g.mu.Unlock()
		if r != nil {
			r.ch <- m
		}
	case MsgRoute:
		g.receiveRouted(m)
	case MsgData:
		g.deliver(Delivery{Kind: Direct, From: l.peer, Payload: m.Payload})
	case MsgBye:
		g.table.Remove(l.peer)
		g.dropLink(l)
	}
}

// send encodes m and writes it on l without waiting for delivery.
func (g *Group) send(ctx context.Context, l *link, m *Message) (*node.Receipt, error) {
	m.Version = ProtocolVersion
	b, err := Encode(m, g.cfg.MaxMessageSize)
	if err != nil {
		return nil, err
	}
	r, err := l.out.Write(ctx, b, node.WriteOptions{})
	if err != nil {
		return nil, err
	}
	g.stats.sent.Add(1)
	g.mu.Lock()
	l.lastUsed = time.Now()
	g.mu.Unlock()
	return r, nil
}

// trySend is send without waiting: if l's send buffer is full (its peer
// does not acknowledge what it is sent) m is dropped and counted
// (DropQueueFull), so that readLoop never waits on one peer.
func (g *Group) trySend(l *link, m *Message) {
	if _, err := g.send(doneCtx, l, m); errors.Is(err, context.Canceled) {
		g.stats.queueFull.Add(1)
	}
}

// doneCtx is a context already cancelled: SendFlow.Write given it queues
// the message if the flow has room and fails at once otherwise (its
// documented behaviour; node's TestWriteWithDoneContext).
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// --- lookups ---

// findNode asks c for the members it knows nearest target, trying a second
// time over a fresh link if the first attempt fails: a link can break
// without the member being dead (its flow rejected, its session closing
// under it).
func (g *Group) findNode(ctx context.Context, c Contact, target Address) ([]Contact, error) {
	got, err := g.findNodeOnce(ctx, c, target)
	if err == nil || ctx.Err() != nil || errors.Is(err, errUnreachable) || errors.Is(err, context.DeadlineExceeded) {
		// A member that could not be dialled, or did not answer in
		// RequestTimeout, will not a moment later: the retry is for
		// links that broke. (A crashed member's session stays open
		// until its retransmissions time out; retrying on it cost every
		// lookup that met it a second timeout.)
		return got, err
	}
	g.mu.Lock()
	l := g.links[c.PeerID]
	g.mu.Unlock()
	if l != nil && l.isReady() {
		g.dropLink(l)
	}
	return g.findNodeOnce(ctx, c, target)
}

func (g *Group) findNodeOnce(ctx context.Context, c Contact, target Address) ([]Contact, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
	defer cancel()
	l, err := g.linkTo(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	var idb [8]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint64(idb[:])
	r := &request{peer: c.PeerID, ch: make(chan *Message, 1)}
	g.mu.Lock()
	g.pending[id] = r
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.pending, id)
		g.mu.Unlock()
	}()
	rc, err := g.send(ctx, l, &Message{Type: MsgFindNode, ReqID: id, Target: target[:]})
	if err != nil {
		return nil, err
	}
	g.stats.requests.Add(1)
	delivered := rc.Done()
	for {
		select {
		case <-delivered:
			if err := rc.Wait(ctx); err != nil {
				return nil, fmt.Errorf("request not delivered: %w", err)
			}
			delivered = nil
			continue
		case <-l.dropped:
			return nil, errLinkDropped
		case m := <-r.ch:
			return contactsOf(g.id, m.Nodes), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Lookup finds the K members nearest target (this member included, if it
// is among them), nearest first, by asking Alpha members at a time for the
// members they know nearer, until the K nearest heard of have all answered
// or failed. Members that fail to answer are removed from the table; those
// that answer are added. Lookups also count as the refresh of the bucket
// target falls in.
func (g *Group) Lookup(ctx context.Context, target Address) ([]Contact, error) {
	g.stats.lookups.Add(1)
	g.mu.Lock()
	g.looked[CommonPrefixLen(target, g.addr)] = time.Now()
	g.mu.Unlock()
	type state uint8
	const (
		fresh state = iota
		asked
		answered
		failed
	)
	self := Contact{PeerID: g.self, Addr: g.h.n.AddrPort(), Address: g.addr}
	seen := map[node.PeerID]state{g.self: answered}
	short := []Contact{self}
	for _, c := range g.table.Nearest(target, g.cfg.K) {
		if _, ok := seen[c.PeerID]; !ok {
			seen[c.PeerID] = fresh
			short = append(short, c)
		}
	}
	// Alpha requests are in flight at a time, and each answer starts the
	// next request at once: a member that does not answer holds up one
	// slot for its timeout, not a whole round of the lookup.
	type result struct {
		c   Contact
		got []Contact
		err error
	}
	results := make(chan result, g.cfg.Alpha) // never more in flight
	inflight, sent := 0, 0
	maxRequests := DefaultMaxLookupRounds * g.cfg.Alpha
	for {
		SortByDistance(short, target)
		live := 0
		for _, c := range short {
			if live >= g.cfg.K || inflight >= g.cfg.Alpha || sent >= maxRequests || ctx.Err() != nil {
				break
			}
			switch seen[c.PeerID] {
			case failed:
				continue
			case fresh:
				seen[c.PeerID] = asked
				inflight++
				sent++
				go func(c Contact) {
					got, err := g.findNode(ctx, c, target)
					results <- result{c, got, err}
				}(c)
			}
			live++
		}
		if inflight == 0 {
			break
		}
		r := <-results
		inflight--
		if r.err != nil {
			seen[r.c.PeerID] = failed
			g.log.Debug().Err(r.err).Str("peer", r.c.PeerID.String()[:8]).Msg("find_node failed")
			g.stats.requestsFailed.Add(1)
			// Only a member that cannot be reached is taken for dead: a
			// slow or dropped request on a live session is not death
			// (the session's own liveness check evicts a member that
			// stops answering altogether).
			if errors.Is(r.err, errUnreachable) && ctx.Err() == nil && g.ctx.Err() == nil {
				g.evictDead(r.c.PeerID)
			}
			continue
		}
		seen[r.c.PeerID] = answered
		g.table.Add(r.c.PeerID, r.c.Addr, true)
		for _, c := range r.got {
			if _, ok := seen[c.PeerID]; ok {
				continue
			}
			// Contacts heard of enter the table only once they answer: a
			// dead member others still list must not spread from table
			// to table.
			seen[c.PeerID] = fresh
			short = append(short, c)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	SortByDistance(short, target)
	out := make([]Contact, 0, g.cfg.K)
	for _, c := range short {
		if seen[c.PeerID] == answered {
			out = append(out, c)
			if len(out) == g.cfg.K {
				break
			}
		}
	}
	if len(out) == g.cfg.K && target != g.addr {
		g.sample(target, out)
	}
	return out, nil
}

// estimateSamples is how many lookup results EstimateMembers averages.
const estimateSamples = 32

// sample records the member-count estimate a complete lookup result gives:
// the K members nearest a random address are as good a sample of the
// key space's density as the members nearest this one, and refreshes look
// up one per bucket, so averaging them cuts the estimate's spread several
// times over what one table alone gives.
func (g *Group) sample(target Address, nearest []Contact) {
	addrs := make([]Address, len(nearest))
	for i, c := range nearest {
		addrs[i] = c.Address
	}
	// EstimateMembers counts the center as a member; target is not one.
	x := estimate{EstimateMembers(target, addrs) - 1, time.Now()}
	g.mu.Lock()
	if len(g.samples) < estimateSamples {
		g.samples = append(g.samples, x)
	} else {
		g.samples[g.sampleAt] = x
		g.sampleAt = (g.sampleAt + 1) % estimateSamples
	}
	g.mu.Unlock()
}

// ownEstimate is this member's estimate from its own table and the
// lookups of the last RefreshPeriod (older ones may predate joins and
// departures), without its neighbours' reports.
func (g *Group) ownEstimate() float64 {
	sum, n := g.ownEstimateSum()
	return sum / n
}

// ownEstimateSum is the sum of the samples ownEstimate averages, and how
// many there are.
func (g *Group) ownEstimateSum() (sum, n float64) {
	sum = g.table.EstimateMembers()
	n = 1.0
	fresh := time.Now().Add(-g.cfg.RefreshPeriod)
	g.mu.Lock()
	for _, x := range g.samples {
		if x.at.After(fresh) {
			sum += x.n
			n++
		}
	}
	g.mu.Unlock()
	return sum, n
}

// EstimateMembers estimates how many members the group has: the mean of
// the samples of this member's own estimate (the density of its table, and
// of each complete lookup result of the last RefreshPeriod, at most 32)
// and of the own estimates its neighbours reported within the last
// RefreshPeriod, each counted as one sample. A member that has barely
// joined so leans on its neighbours, and an established one on its
// lookups.
func (g *Group) EstimateMembers() float64 {
	sum, n := g.ownEstimateSum()
	fresh := time.Now().Add(-g.cfg.RefreshPeriod)
	g.mu.Lock()
	for p, e := range g.estimates {
		if e.at.Before(fresh) {
			delete(g.estimates, p)
			continue
		}
		sum += e.n
		n++
	}
	g.mu.Unlock()
	return sum / n
}

// --- neighbours ---

// ChooseNeighbours picks the neighbour set from a table's contacts: the
// max-distant nearest to self, which make greedy routing exact, and distant
// ones, one per bucket from the farthest (lowest common prefix), which keep
// the mesh connected across the key space. Contacts need not be sorted.
func ChooseNeighbours(self Address, contacts []Contact, max, distant int) []Contact {
	cs := append([]Contact(nil), contacts...)
	SortByDistance(cs, self)
	if len(cs) <= max {
		return cs
	}
	nearN := max - distant
	out := append([]Contact(nil), cs[:nearN]...)
	taken := make(map[node.PeerID]bool, max)
	for _, c := range out {
		taken[c.PeerID] = true
	}
	// Walk the farthest first: the end of the sorted list has the lowest
	// common prefix lengths.
	lastCPL := -1
	for i := len(cs) - 1; i >= nearN && len(out) < max; i-- {
		cpl := CommonPrefixLen(self, cs[i].Address)
		if cpl == lastCPL || taken[cs[i].PeerID] {
			continue
		}
		lastCPL = cpl
		taken[cs[i].PeerID] = true
		out = append(out, cs[i])
	}
	for i := nearN; i < len(cs) && len(out) < max; i++ {
		if !taken[cs[i].PeerID] {
			taken[cs[i].PeerID] = true
			out = append(out, cs[i])
		}
	}
	return out
}

// Neighbours returns the members this member keeps as neighbours now.
func (g *Group) Neighbours() []Contact {
	var out []Contact
	for _, l := range g.neighbourLinks() {
		if c, ok := g.table.Get(l.peer); ok {
			out = append(out, c)
		} else {
			out = append(out, Contact{PeerID: l.peer, Address: AddressOf(g.id, l.peer)})
		}
	}
	return out
}

func (g *Group) neighbourLinks() []*link {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*link
	for _, l := range g.links {
		if l.neighbour && l.up.Load() {
			out = append(out, l)
		}
	}
	return out
}

func (g *Group) kickMaintain() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

func (g *Group) maintainLoop() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.MaintainPeriod)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		case <-g.kick:
		}
		g.maintain(g.ctx)
		// Links opened while a burst kept the others busy (up to twice
		// MaxSessions) go once they are idle, not only when the next
		// link comes.
		g.enforceLimit()
	}
}

// maintain brings the neighbour links in line with ChooseNeighbours.
func (g *Group) maintain(ctx context.Context) {
	want := ChooseNeighbours(g.addr, g.table.Contacts(), g.cfg.MaxNeighbours, g.cfg.Distant)
	wanted := make(map[node.PeerID]bool, len(want))
	for _, c := range want {
		wanted[c.PeerID] = true
	}
	g.mu.Lock()
	for p, l := range g.links {
		if l.neighbour && !wanted[p] {
			l.neighbour = false
		}
	}
	g.mu.Unlock()
	est := uint32(g.ownEstimate())
	var wg sync.WaitGroup
	for _, c := range want {
		g.mu.Lock()
		l := g.links[c.PeerID]
		have := l != nil && l.neighbour
		g.mu.Unlock()
		if have {
			continue
		}
		wg.Add(1)
		go func(c Contact) {
			defer wg.Done()
			l, err := g.linkTo(ctx, c)
			if err != nil {
				if ctx.Err() == nil {
					g.evictDead(c.PeerID)
				}
				return
			}
			g.mu.Lock()
			l.neighbour = true
			g.mu.Unlock()
			g.send(ctx, l, &Message{Type: MsgHello, Neighbour: true, Estimate: est})
		}(c)
	}
	wg.Wait()
}

// --- direct messages ---

// SendTo sends payload to one member over its link, dialling it if the
// table knows it and there is no link.
func (g *Group) SendTo(ctx context.Context, p node.PeerID, payload []byte) error {
	c, ok := g.table.Get(p)
	if !ok {
		g.mu.Lock()
		l := g.links[p]
		g.mu.Unlock()
		if l == nil {
			return fmt.Errorf("%w: %s", ErrNotNeighbour, p)
		}
		c = Contact{PeerID: p}
	}
	l, err := g.linkTo(ctx, c)
	if err != nil {
		return err
	}
	_, err = g.send(ctx, l, &Message{Type: MsgData, Payload: payload})
	return err
}

// SendToNeighbours sends payload to every neighbour and reports how many it
// was handed to.
func (g *Group) SendToNeighbours(ctx context.Context, payload []byte) (int, error) {
	n := 0
	var firstErr error
	for _, l := range g.neighbourLinks() {
		if _, err := g.send(ctx, l, &Message{Type: MsgData, Payload: payload}); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		n++
	}
	return n, firstErr
}

// Receive waits for the next message delivered to this member.
func (g *Group) Receive(ctx context.Context) (Delivery, error) {
	for {
		if d, ok := g.deliveries.pop(); ok {
			return d, nil
		}
		select {
		case <-g.deliveries.ready:
		case <-ctx.Done():
			return Delivery{}, ctx.Err()
		case <-g.ctx.Done():
			return Delivery{}, ErrClosed
		}
	}
}

func (g *Group) deliver(d Delivery) {
	if g.deliveries.push(d) {
		g.stats.delivered.Add(1)
	} else {
		g.stats.queueFull.Add(1)
	}
}

// --- routing ---

// Route sends payload to the member nearest target, hop by hop: every
// member passes it to the member nearest target in its table that is
// nearer than itself and not already on the path, until none is. It
// returns once the first hop has acknowledged the message (or this member
// is the nearest and delivered it to itself); later hops are not reported
// back.
func (g *Group) Route(ctx context.Context, target Address, payload []byte) error {
	var idb [8]byte
	rand.Read(idb[:])
	m := &Message{
		Version: ProtocolVersion,
		Type:    MsgRoute,
		Target:  append([]byte(nil), target[:]...),
		MsgID:   binary.BigEndian.Uint64(idb[:]),
		TTL:     uint8(g.cfg.TTL),
		Path:    [][]byte{append([]byte(nil), g.self[:]...)},
		Payload: payload,
	}
	if b, err := Encode(m, g.cfg.MaxMessageSize); err != nil {
		return err
	} else if len(b)+32*g.cfg.TTL > g.cfg.MaxMessageSize {
		return fmt.Errorf("%w: no room for the path", ErrMessageTooBig)
	}
	return g.forward(ctx, m)
}

// receiveRouted handles a routing envelope from a link.
func (g *Group) receiveRouted(m *Message) {
	for _, p := range m.Path {
		if node.PeerID(p) == g.self {
			g.stats.loop.Add(1)
			return
		}
	}
	m.Path = append(m.Path, append([]byte(nil), g.self[:]...))
	select {
	case g.forwards <- struct{}{}:
	default:
		g.stats.queueFull.Add(1)
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() { <-g.forwards }()
		ctx, cancel := context.WithTimeout(g.ctx, 4*(g.cfg.HopTimeout+g.cfg.DialTimeout))
		defer cancel()
		g.forward(ctx, m)
	}()
}

// forward passes m (whose path ends with this member) to the best next
// hop, trying the next best when a hop fails to acknowledge, or delivers it
// here when this member is the nearest it knows.
func (g *Group) forward(ctx context.Context, m *Message) error {
	var target Address
	copy(target[:], m.Target)
	onPath := make(map[node.PeerID]bool, len(m.Path))
	for _, p := range m.Path {
		onPath[node.PeerID(p)] = true
	}
	failed := map[node.PeerID]int{}
	excluded := func(c Contact) bool { return onPath[c.PeerID] || failed[c.PeerID] >= 2 }
	for attempt := 0; attempt < 4*g.cfg.Alpha; attempt++ {
		next, ok := NextHop(g.addr, target, g.table.Nearest(target, g.cfg.K), excluded)
		if !ok {
			g.deliverRouted(m, target)
			return nil
		}
		if m.TTL == 0 {
			g.stats.ttl.Add(1)
			return ErrTTLExceeded
		}
		out := *m
		out.TTL--
		if err := g.sendAcked(ctx, next, &out); err != nil {
			if ctx.Err() != nil {
				g.stats.noRoute.Add(1)
				return err
			}
			g.log.Debug().Err(err).Str("hop", next.PeerID.String()[:8]).Msg("next hop failed")
			// One more try over a fresh link (sendAcked dropped the
			// old one) before the hop is taken for dead.
			failed[next.PeerID]++
			if failed[next.PeerID] >= 2 {
				g.evictDead(next.PeerID)
			}
			continue
		}
		g.stats.forwarded.Add(1)
		return nil
	}
	g.stats.noRoute.Add(1)
	return ErrNoRoute
}

// sendAcked writes m to c and waits for the RTMFP acknowledgement, so a
// dead hop is detected within HopTimeout and routed around.
func (g *Group) sendAcked(ctx context.Context, c Contact, m *Message) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.HopTimeout+g.cfg.DialTimeout)
	defer cancel()
	l, err := g.linkTo(ctx, c)
	if err != nil {
		return err
	}
	r, err := g.send(ctx, l, m)
	if err != nil {
		g.dropLink(l)
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, g.cfg.HopTimeout)
	defer wcancel()
	if err := r.Wait(wctx); err != nil {
		// The peer is not acknowledging: whatever the session thinks, it
		// is no use for routing now.
		g.dropLink(l)
		return err
	}
	return nil
}

func (g *Group) deliverRouted(m *Message, target Address) {
	g.mu.Lock()
	if _, dup := g.dedup[m.MsgID]; dup {
		g.mu.Unlock()
		g.stats.dup.Add(1)
		return
	}
	if len(g.dedupRing) < g.cfg.DedupWindow {
		// The ring grows to DedupWindow as messages come (most members
		// route few).
		g.dedupRing = append(g.dedupRing, m.MsgID)
	} else {
		delete(g.dedup, g.dedupRing[g.dedupNext])
		g.dedupRing[g.dedupNext] = m.MsgID
		g.dedupNext = (g.dedupNext + 1) % len(g.dedupRing)
	}
	g.dedup[m.MsgID] = struct{}{}
	g.mu.Unlock()
	path := make([]node.PeerID, len(m.Path))
	for i, p := range m.Path {
		path[i] = node.PeerID(p)
	}
	g.deliver(Delivery{Kind: Routed, From: path[0], Target: target, Path: path, Hops: len(path) - 1, Payload: m.Payload})
}

// contactsOf converts the contacts of a Nodes message (validated by
// Decode) of group gid.
func contactsOf(gid GroupID, nodes []WireContact) []Contact {
	out := make([]Contact, 0, len(nodes))
	for _, w := range nodes {
		var c Contact
		copy(c.PeerID[:], w.PeerID)
		if c.Addr.UnmarshalBinary(w.Addr) != nil {
			continue
		}
		c.Address = AddressOf(gid, c.PeerID)
		out = append(out, c)
	}
	return out
}
