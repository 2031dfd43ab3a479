package overlay

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/node"
)

// MetadataPrefix starts the metadata of every overlay flow; the group ID in
// hex follows it. Flows of other protocols on the same sessions differ in
// metadata, so a Host can tell them apart.
const MetadataPrefix = "strata/overlay/1 "

// Errors of Host and Group.
var (
	ErrClosed        = errors.New("overlay: closed")
	ErrAlreadyJoined = errors.New("overlay: group already joined")
	ErrNoBootstrap   = errors.New("overlay: no bootstrap peer answered")
	ErrNoRoute       = errors.New("overlay: no route")
	ErrNotNeighbour  = errors.New("overlay: not a neighbour")
	ErrTTLExceeded   = errors.New("overlay: ttl exceeded")

	errUnreachable = errors.New("overlay: member unreachable")
	errLinkDropped = errors.New("overlay: link dropped")
)

// HostConfig configures a Host.
type HostConfig struct {
	// OnFlow, if set, receives incoming flows that are not overlay flows
	// (their metadata lacks MetadataPrefix) and flows for groups this host
	// has not joined. Without it such flows are rejected.
	OnFlow func(*node.RecvFlow)
	// Rendezvous are the addresses of rendezvous nodes (see Rendezvous).
	// Bootstrap registers with them and meets the members they know, and
	// every dial to a member also asks them to introduce this node, so
	// members behind NATs can connect.
	Rendezvous []netip.AddrPort
	// Logger receives structured logs; the zero Logger discards them.
	Logger zerolog.Logger
}

// Host runs the overlay on one node: it accepts the node's sessions and
// hands every incoming overlay flow to the group it names. A node should
// have exactly one Host, which owns node.Accept; other protocols get their
// flows through HostConfig.OnFlow.
type Host struct {
	n      *node.Node
	cfg    HostConfig
	log    zerolog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	groups   map[GroupID]*Group
	sessions map[*node.Session]int // overlay links using the session
	// held counts the holds on a session (Hold); unwanted marks a held
	// session whose last overlay link went: it closes with its last hold.
	held     map[*node.Session]int
	unwanted map[*node.Session]bool
}

// NewHost starts the overlay on n. Close stops it (the node stays open).
func NewHost(n *node.Node, cfg HostConfig) *Host {
	ctx, cancel := context.WithCancel(context.Background())
	h := &Host{
		n: n, cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel,
		groups:   make(map[GroupID]*Group),
		sessions: make(map[*node.Session]int),
		held:     make(map[*node.Session]int),
		unwanted: make(map[*node.Session]bool),
	}
	h.wg.Add(2)
	go h.acceptLoop()
	go h.flowLoop()
	return h
}

// Node is the host's node.
func (h *Host) Node() *node.Node { return h.n }

// Self is this host's contact information (for others to bootstrap from).
func (h *Host) Self() Peer { return Peer{PeerID: h.n.PeerID(), Addr: h.n.AddrPort()} }

// Join becomes a member of group g. Bootstrap the returned Group to meet the
// others.
func (h *Host) Join(g GroupID, cfg Config) (*Group, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.groups[g] != nil {
		return nil, fmt.Errorf("%w: %s", ErrAlreadyJoined, g)
	}
	grp := newGroup(h, g, cfg)
	h.groups[g] = grp
	return grp, nil
}

func (h *Host) leave(grp *Group) {
	h.mu.Lock()
	if h.groups[grp.id] == grp {
		delete(h.groups, grp.id)
	}
	h.mu.Unlock()
}

// Close leaves every group and stops accepting. The node stays open.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	groups := make([]*Group, 0, len(h.groups))
	for _, g := range h.groups {
		groups = append(groups, g)
	}
	h.mu.Unlock()
	for _, g := range groups {
		g.Close()
	}
	h.cancel()
	h.wg.Wait()
	return nil
}

func (h *Host) acceptLoop() {
	defer h.wg.Done()
	for {
		s, err := h.n.Accept(h.ctx)
		if err != nil {
			return
		}
		h.track(s)
	}
}

// track counts s among the host's sessions until it ends.
func (h *Host) track(s *node.Session) {
	h.mu.Lock()
	if _, ok := h.sessions[s]; ok || h.closed {
		h.mu.Unlock()
		return
	}
	h.sessions[s] = 0
	h.mu.Unlock()
	context.AfterFunc(s.Context(), func() {
		h.mu.Lock()
		delete(h.sessions, s)
		delete(h.held, s)
		delete(h.unwanted, s)
		h.mu.Unlock()
	})
}

// flowLoop hands the flows peers open, on any session, to their groups:
// one goroutine for the node rather than one per session.
func (h *Host) flowLoop() {
	defer h.wg.Done()
	for {
		rf, err := h.n.AcceptFlow(h.ctx)
		if err != nil {
			return
		}
		h.track(rf.Session())
		h.dispatch(rf)
	}
}

func (h *Host) dispatch(rf *node.RecvFlow) {
	meta := string(rf.Metadata())
	var grp *Group
	if rest, ok := strings.CutPrefix(meta, MetadataPrefix); ok {
		if gid, err := ParseGroupID(rest); err == nil {
			h.mu.Lock()
			grp = h.groups[gid]
			h.mu.Unlock()
		}
	}
	switch {
	case grp != nil:
		grp.acceptFlow(rf)
	case h.cfg.OnFlow != nil:
		h.cfg.OnFlow(rf)
	default:
		h.log.Debug().Str("metadata", meta).Msg("overlay: rejecting flow")
		rf.Reject(0)
	}
}

// dial opens (or reuses) a session to p; a zero PeerID accepts whoever
// answers at the address.
func (h *Host) dial(ctx context.Context, p Peer) (*node.Session, error) {
	var s *node.Session
	var err error
	switch {
	case p.PeerID == (node.PeerID{}):
		s, err = h.n.DialAny(ctx, p.Addr)
	case len(h.cfg.Rendezvous) > 0:
		// The hello to p's address opens this side's NAT to p; the one
		// to the rendezvous is forwarded to p, whose answer comes through.
		addrs := append([]netip.AddrPort{p.Addr}, h.cfg.Rendezvous...)
		s, err = h.n.DialEPD(ctx, node.EPDForPeerID(p.PeerID), addrs...)
	default:
		s, err = h.n.Dial(ctx, p.Addr, p.PeerID)
	}
	if err != nil {
		return nil, err
	}
	h.track(s)
	return s, nil
}

// acquire and release count the overlay links on a session; the last
// release closes it, so sessions do not outlive their use: in an orderly
// way (RFC 7016 §3.5.5.1), or if abrupt at once (§3.5.5.2: one Close
// Acknowledgement, after which neither end keeps anything of it). An
// orderly close keeps the session's whole state at both ends until the
// close is acknowledged, and at the far end for the 19 s it lingers to
// acknowledge it again; the links enforceLimit evicts when idle close
// abruptly, as nothing is in flight on them (at 5,000 members the
// bootstrap's lookups left 144 sessions per member lingering;
// docs/benchmarks.md §9).
func (h *Host) acquire(s *node.Session) {
	h.mu.Lock()
	if _, ok := h.sessions[s]; ok {
		h.sessions[s]++
		delete(h.unwanted, s)
	}
	h.mu.Unlock()
}

func (h *Host) release(s *node.Session, abrupt bool) {
	h.mu.Lock()
	n, ok := h.sessions[s]
	if ok && n > 0 {
		n--
		h.sessions[s] = n
	}
	closeNow := ok && n == 0
	if closeNow && h.held[s] > 0 {
		h.unwanted[s], closeNow = true, false
	}
	h.mu.Unlock()
	switch {
	case closeNow && abrupt:
		s.Abort()
	case closeNow:
		s.Close()
	}
}

// Hold keeps s open for the caller while the overlay has no more use for
// it: the overlay closes a session when its last link on it goes (a
// neighbour replaced, a least recently used link evicted), which would
// take down whatever else the session carries. The returned function ends
// the hold (once; further calls do nothing) and closes s if the overlay
// let go of it meanwhile and nothing else holds it: a session the overlay
// still uses, or never used (a peer's links on it, not ours), stays as it
// would have without the hold. A session the host does not track (one it
// neither dialled nor accepted a flow on) is never closed by the overlay:
// holding it does nothing.
func (h *Host) Hold(s *node.Session) (release func()) {
	h.mu.Lock()
	_, ok := h.sessions[s]
	if ok {
		h.held[s]++
	}
	h.mu.Unlock()
	if !ok {
		return func() {}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			closeNow := false
			if n, ok := h.held[s]; ok {
				if n > 1 {
					h.held[s] = n - 1
				} else {
					closeNow = h.unwanted[s]
					delete(h.held, s)
					delete(h.unwanted, s)
				}
			}
			h.mu.Unlock()
			if closeNow {
				s.Close()
			}
		})
	}
}

// Peer is a node to contact: its peer ID (zero if unknown: whoever answers)
// and address.
type Peer struct {
	PeerID node.PeerID
	Addr   netip.AddrPort
}

func metadataFor(g GroupID) []byte {
	return []byte(MetadataPrefix + hex.EncodeToString(g[:]))
}
