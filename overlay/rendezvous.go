package overlay

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/node"
)

// RendezvousMetadata is the metadata of a member's flow to a rendezvous.
const RendezvousMetadata = "strata/rendezvous/1"

// Defaults of RendezvousConfig.
const (
	DefaultRendezvousGroups    = 1024
	DefaultRendezvousPerGroup  = 256
	DefaultRendezvousAnswer    = 16
	DefaultRendezvousRetention = 3 * DefaultRefreshPeriod
)

// RendezvousConfig tunes a Rendezvous. Zero fields take the defaults.
type RendezvousConfig struct {
	// MaxGroups bounds the groups remembered (default 1024); the group
	// registered to least recently is forgotten first.
	MaxGroups int
	// MaxPerGroup bounds the members remembered per group (default 256);
	// the least recently registered is forgotten first.
	MaxPerGroup int
	// Answer is how many recent members a registration is answered with
	// (default 16).
	Answer int
	// Retention is how long a member is remembered after its last
	// registration (default 3 × DefaultRefreshPeriod); members re-register
	// every RefreshPeriod.
	Retention time.Duration
	// Logger receives structured logs; the zero Logger discards them.
	Logger zerolog.Logger
}

func (c RendezvousConfig) withDefaults() RendezvousConfig {
	if c.MaxGroups <= 0 {
		c.MaxGroups = DefaultRendezvousGroups
	}
	if c.MaxPerGroup <= 0 {
		c.MaxPerGroup = DefaultRendezvousPerGroup
	}
	if c.Answer <= 0 {
		c.Answer = DefaultRendezvousAnswer
	}
	if c.Answer > MaxNodes {
		c.Answer = MaxNodes
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRendezvousRetention
	}
	return c
}

// RendezvousStats counts what a Rendezvous did.
type RendezvousStats struct {
	Groups, Members int    // remembered now
	Registrations   uint64 // registrations answered
	Introductions   uint64 // hellos forwarded to a registered member
	UnknownHellos   uint64 // hellos for an endpoint not registered here
	DropMalformed   uint64 // undecodable or unexpected messages
}

// Rendezvous is a well-known node that remembers the recent members of
// each group and introduces members to each other, so that members behind
// NATs can meet. A member registers over a session it keeps open (the
// session's keepalives hold its NAT mapping open); the rendezvous answers
// with recent members of the group and their addresses as it sees them.
// When a member then dials another, it sends its IHello both to the other's
// address and to the rendezvous, which forwards it to the other member over
// that member's session (RFC 7016 §3.5.1.5); the other member answers the
// initiator directly, and the two hellos open a path through both NATs.
//
// Wire it to its node like this:
//
//	r := overlay.NewRendezvous(overlay.RendezvousConfig{})
//	n, _ := node.Listen(addr, node.Config{OnUnmatchedHello: r.HandleHello})
//	go r.Serve(n)
type Rendezvous struct {
	cfg RendezvousConfig
	log zerolog.Logger

	mu     sync.Mutex
	n      *node.Node
	groups map[GroupID]*rdvGroup
	byEPD  map[string]*rdvMember // EPDForPeerID → latest registration
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	registrations, introductions, unknown, malformed atomic.Uint64
}

type rdvGroup struct {
	members map[node.PeerID]*rdvMember
	used    time.Time
}

type rdvMember struct {
	peer node.PeerID
	sess *node.Session
	addr netip.AddrPort
	seen time.Time
}

// NewRendezvous makes a rendezvous; Serve runs it on a node.
func NewRendezvous(cfg RendezvousConfig) *Rendezvous {
	ctx, cancel := context.WithCancel(context.Background())
	cfg = cfg.withDefaults()
	return &Rendezvous{
		cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel,
		groups: make(map[GroupID]*rdvGroup),
		byEPD:  make(map[string]*rdvMember),
	}
}

// Serve accepts members' sessions on n until Close; n's Config must have
// HandleHello as its OnUnmatchedHello. It returns ErrClosed after Close.
func (r *Rendezvous) Serve(n *node.Node) error {
	r.mu.Lock()
	r.n = n
	r.mu.Unlock()
	for {
		s, err := n.Accept(r.ctx)
		if err != nil {
			if r.ctx.Err() != nil {
				return ErrClosed
			}
			return err
		}
		r.wg.Add(1)
		go r.serveSession(s)
	}
}

// Close stops serving and waits for the rendezvous' goroutines. The node
// stays open.
func (r *Rendezvous) Close() error {
	r.cancel()
	r.wg.Wait()
	return nil
}

// Stats returns the counters.
func (r *Rendezvous) Stats() RendezvousStats {
	r.mu.Lock()
	st := RendezvousStats{Groups: len(r.groups)}
	for _, g := range r.groups {
		st.Members += len(g.members)
	}
	r.mu.Unlock()
	st.Registrations = r.registrations.Load()
	st.Introductions = r.introductions.Load()
	st.UnknownHellos = r.unknown.Load()
	st.DropMalformed = r.malformed.Load()
	return st
}

// HandleHello is the node's OnUnmatchedHello: a hello for a registered
// member is forwarded to it.
func (r *Rendezvous) HandleHello(h node.Hello) {
	r.mu.Lock()
	m := r.byEPD[string(h.EPD)]
	n := r.n
	r.mu.Unlock()
	if m == nil || n == nil {
		r.unknown.Add(1)
		return
	}
	select {
	case <-m.sess.Done():
		r.unknown.Add(1)
		return
	default:
	}
	r.introductions.Add(1)
	n.Introduce(m.sess, h)
}

func (r *Rendezvous) serveSession(s *node.Session) {
	defer r.wg.Done()
	defer r.forgetSession(s)
	for {
		rf, err := s.AcceptFlow(r.ctx)
		if err != nil {
			return
		}
		if string(rf.Metadata()) != RendezvousMetadata {
			rf.Reject(0)
			continue
		}
		r.wg.Add(1)
		go r.serveFlow(s, rf)
	}
}

func (r *Rendezvous) serveFlow(s *node.Session, rf *node.RecvFlow) {
	defer r.wg.Done()
	var reply *node.SendFlow
	defer func() {
		if reply != nil {
			reply.Close()
		}
	}()
	for {
		b, err := rf.Read(r.ctx)
		if err != nil {
			return
		}
		m, err := Decode(b, DefaultMaxMessageSize)
		if err != nil || m.Type != MsgRegister {
			r.malformed.Add(1)
			continue
		}
		var gid GroupID
		copy(gid[:], m.Target)
		near := r.register(gid, s)
		if reply == nil {
			if reply, err = rf.OpenReturnFlow([]byte(RendezvousMetadata), node.PriorityRoutine); err != nil {
				return
			}
		}
		out := &Message{Version: ProtocolVersion, Type: MsgNodes, ReqID: m.ReqID}
		for _, c := range near {
			a, _ := c.addr.MarshalBinary()
			out.Nodes = append(out.Nodes, WireContact{PeerID: append([]byte(nil), c.peer[:]...), Addr: a})
		}
		enc, err := Encode(out, DefaultMaxMessageSize)
		if err != nil {
			continue
		}
		if _, err := reply.Write(r.ctx, enc, node.WriteOptions{}); err != nil {
			return
		}
		r.registrations.Add(1)
	}
}

// register records s's peer as a member of gid and returns up to Answer
// other recent members, most recent first.
func (r *Rendezvous) register(gid GroupID, s *node.Session) []rdvMember {
	now := time.Now()
	p := s.PeerID()
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[gid]
	if g == nil {
		if len(r.groups) >= r.cfg.MaxGroups {
			r.evictGroupLocked()
		}
		g = &rdvGroup{members: make(map[node.PeerID]*rdvMember)}
		r.groups[gid] = g
	}
	g.used = now
	var out []rdvMember
	for q, m := range g.members {
		if now.Sub(m.seen) > r.cfg.Retention {
			delete(g.members, q)
			continue
		}
		if q != p {
			out = append(out, *m)
		}
	}
	sortRecent(out)
	if len(out) > r.cfg.Answer {
		out = out[:r.cfg.Answer]
	}
	m := &rdvMember{peer: p, sess: s, addr: s.RemoteAddr(), seen: now}
	if g.members[p] == nil && len(g.members) >= r.cfg.MaxPerGroup {
		var oldest *rdvMember
		for _, x := range g.members {
			if oldest == nil || x.seen.Before(oldest.seen) {
				oldest = x
			}
		}
		delete(g.members, oldest.peer)
	}
	g.members[p] = m
	r.byEPD[string(node.EPDForPeerID(p))] = m
	return out
}

func sortRecent(ms []rdvMember) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].seen.After(ms[j-1].seen); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

func (r *Rendezvous) evictGroupLocked() {
	var victim GroupID
	var oldest time.Time
	first := true
	for id, g := range r.groups {
		if first || g.used.Before(oldest) {
			victim, oldest, first = id, g.used, false
		}
	}
	delete(r.groups, victim)
}

// forgetSession drops the registrations made over a session that ended.
func (r *Rendezvous) forgetSession(s *node.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.groups {
		for p, m := range g.members {
			if m.sess == s {
				delete(g.members, p)
			}
		}
	}
	for k, m := range r.byEPD {
		if m.sess == s {
			delete(r.byEPD, k)
		}
	}
}

// --- the member's side ---

// ErrRendezvous is returned when no rendezvous answered a registration.
var ErrRendezvous = errors.New("overlay: no rendezvous answered")

// rdvClient is a member's registration with one rendezvous for one group:
// a flow it keeps open (and with it the session the rendezvous introduces
// others over) and the return flow the answers come on.
type rdvClient struct {
	addr netip.AddrPort
	out  *node.SendFlow
	in   *node.RecvFlow
	sess *node.Session
}

// register registers with every configured rendezvous and returns the
// members they know (deduplicated). It fails only if none answers.
func (g *Group) register(ctx context.Context) ([]Contact, error) {
	var out []Contact
	seen := map[node.PeerID]bool{g.self: true}
	answered := 0
	var lastErr error
	for _, a := range g.h.cfg.Rendezvous {
		got, err := g.registerWith(ctx, a)
		if err != nil {
			lastErr = err
			g.log.Debug().Err(err).Str("rendezvous", a.String()).Msg("registration failed")
			continue
		}
		answered++
		for _, c := range got {
			if !seen[c.PeerID] {
				seen[c.PeerID] = true
				out = append(out, c)
			}
		}
	}
	if answered == 0 && len(g.h.cfg.Rendezvous) > 0 {
		return nil, fmt.Errorf("%w: %v", ErrRendezvous, lastErr)
	}
	return out, nil
}

func (g *Group) registerWith(ctx context.Context, a netip.AddrPort) ([]Contact, error) {
	// One registration at a time: the answers share one return flow.
	g.rdvMu.Lock()
	defer g.rdvMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, g.cfg.DialTimeout+g.cfg.RequestTimeout)
	defer cancel()
	g.mu.Lock()
	c := g.rdv[a]
	g.mu.Unlock()
	if c != nil {
		select {
		case <-c.sess.Done():
			c.out.Close()
			c = nil
		default:
		}
	}
	if c == nil {
		s, err := g.h.n.DialAny(ctx, a)
		if err != nil {
			return nil, err
		}
		f, err := s.OpenFlow([]byte(RendezvousMetadata), node.PriorityRoutine)
		if err != nil {
			return nil, err
		}
		c = &rdvClient{addr: a, out: f, sess: s}
		g.mu.Lock()
		if old := g.rdv[a]; old != nil {
			old.out.Close()
		}
		g.rdv[a] = c
		g.mu.Unlock()
	}
	var idb [8]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint64(idb[:])
	b, err := Encode(&Message{Version: ProtocolVersion, Type: MsgRegister, ReqID: id, Target: g.id[:]}, g.cfg.MaxMessageSize)
	if err != nil {
		return nil, err
	}
	if _, err := c.out.Write(ctx, b, node.WriteOptions{}); err != nil {
		return nil, err
	}
	if c.in == nil {
		in, err := c.out.AcceptReturn(ctx)
		if err != nil {
			return nil, fmt.Errorf("no answer: %w", err)
		}
		c.in = in
	}
	for {
		rb, err := c.in.Read(ctx)
		if err != nil {
			return nil, fmt.Errorf("no answer: %w", err)
		}
		m, err := Decode(rb, g.cfg.MaxMessageSize)
		if err != nil || m.Type != MsgNodes {
			g.stats.malformed.Add(1)
			continue
		}
		if m.ReqID != id {
			continue // the answer to an earlier registration that timed out
		}
		return contactsOf(g.id, m.Nodes), nil
	}
}

// closeRendezvous closes the registrations' flows (the rendezvous forgets
// a member whose session ends, or after its retention).
func (g *Group) closeRendezvous() {
	g.mu.Lock()
	cs := g.rdv
	g.rdv = map[netip.AddrPort]*rdvClient{}
	g.mu.Unlock()
	for _, c := range cs {
		c.out.Close()
	}
}
