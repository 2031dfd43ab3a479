package group

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/fec"
	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/overlay"
)

// Errors of Group.
var (
	ErrClosed           = errors.New("group: closed")
	ErrNoMux            = errors.New("group: Config.Mux is required")
	ErrAlreadyJoined    = errors.New("group: group already joined on this mux")
	ErrPostingDisabled  = errors.New("group: the specifier does not allow posting")
	ErrMulticastOff     = errors.New("group: the specifier does not allow multicast")
	ErrNotPublisher     = errors.New("group: Config.PublisherKey does not match the specifier's publisher key")
	ErrAlreadyPublished = errors.New("group: this member already publishes")
	ErrSubscribed       = errors.New("group: already subscribed")
	ErrPostTooBig       = errors.New("group: post too big")
)

// Group is this node's membership of one group: the overlay membership
// under it, a link (a control flow and a data flow each way) to every
// neighbour, posting and the multicast stream.
type Group struct {
	id   [32]byte
	spec Specifier
	cfg  Config
	host *overlay.Host
	og   *overlay.Group
	log  zerolog.Logger
	rbuf []byte // the reader's message buffer (read)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// trace, set by tests only before the group starts, follows pull
	// requests and pulled pieces to their fate in the RTMFP session.
	trace *pullTrace

	mu      sync.Mutex
	closed  bool
	links   map[node.PeerID]*link
	dialing map[node.PeerID]bool
	banned  map[node.PeerID]*banEntry
	rnd     *mrand.Rand
	stats   Stats

	// posting
	seen     map[[postIDSize]byte]struct{}
	seenRing [][postIDSize]byte
	seenNext int
	posts    *fifo[Post]
	readable *fifo[*inFlow] // neighbours' flows with news, for readLoop

	// stream
	st *stream
	// releases are session holds to end (overlay.Host.Hold) once the
	// mutex is released: ending one may close the session.
	releases []func()
}

// Join joins the group named by spec on host: the overlay group with ID
// spec.ID(), so members joined with other options are in other groups.
// Bootstrap the returned Group to meet other members.
func Join(host *overlay.Host, spec Specifier, cfg Config) (*Group, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mux == nil {
		return nil, ErrNoMux
	}
	cfg = cfg.withDefaults()
	params := fec.Params{K: cfg.K, M: cfg.M, FragmentSize: cfg.FragmentSize, MaxDelay: cfg.BlockDelay, ShortParity: cfg.ShortParity}
	if spec.Multicast {
		if err := params.Validate(); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var seed [16]byte
	rand.Read(seed[:])
	g := &Group{
		id: spec.ID(), spec: spec, cfg: cfg, host: host, log: cfg.Logger,
		ctx: ctx, cancel: cancel,
		links:   make(map[node.PeerID]*link),
		dialing: make(map[node.PeerID]bool),
		banned:  make(map[node.PeerID]*banEntry),
		rnd:     mrand.New(mrand.NewPCG(leUint64(seed[:8]), leUint64(seed[8:]))),
		seen:    make(map[[postIDSize]byte]struct{}),
		posts:   newFIFO[Post](cfg.Queue),
		// At most one entry per flow (inFlow.queued): no limit needed.
		readable: newFIFO[*inFlow](math.MaxInt),
	}
	if spec.Multicast {
		st, err := newStream(g, params)
		if err != nil {
			cancel()
			return nil, err
		}
		g.st = st
	}
	if !cfg.Mux.add(g) {
		cancel()
		return nil, ErrAlreadyJoined
	}
	og, err := host.Join(overlay.GroupID(g.id), cfg.Overlay)
	if err != nil {
		cfg.Mux.remove(g)
		cancel()
		return nil, err
	}
	g.og = og
	g.wg.Add(2)
	go g.loop()
	go g.readLoop()
	return g, nil
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// ID is the group ID (the specifier's).
func (g *Group) ID() [32]byte { return g.id }

// Specifier is the group's specifier.
func (g *Group) Specifier() Specifier { return g.spec }

// Overlay is the overlay membership under the group.
func (g *Group) Overlay() *overlay.Group { return g.og }

// Bootstrap meets the group through the given members (see
// overlay.Group.Bootstrap); links to neighbours follow within an
// AvailabilityUpdatePeriod.
func (g *Group) Bootstrap(ctx context.Context, peers ...overlay.Peer) error {
	err := g.og.Bootstrap(ctx, peers...)
	g.mu.Lock()
	g.ensureLinks()
	g.mu.Unlock()
	return err
}

// Close leaves the group: closes the links, the overlay membership and
// every goroutine of the group.
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
		g.releaseHold(l)
	}
	g.mu.Unlock()
	g.cfg.Mux.remove(g)
	g.cancel()
	for _, l := range links {
		l.close()
	}
	err := g.og.Close()
	g.wg.Wait()
	g.mu.Lock()
	g.unlockAndRelease()
	return err
}

// releaseHold queues the end of l's hold on its session, if any. Called
// with g.mu held.
func (g *Group) releaseHold(l *link) {
	if l.hold != nil {
		g.releases = append(g.releases, l.hold)
		l.hold = nil
	}
}

// unlockAndRelease releases g.mu, then ends the queued session holds
// (ending one may close a session, which must not happen under g.mu).
func (g *Group) unlockAndRelease() {
	rel := g.releases
	g.releases = nil
	g.mu.Unlock()
	for _, r := range rel {
		r()
	}
}

// loop runs the group's timers: neighbour links, availability, pushers,
// pulls, the publisher's block deadline and the subscriber's gaps.
func (g *Group) loop() {
	defer g.wg.Done()
	tick := g.cfg.FetchPeriod / 3
	if a := g.cfg.AvailabilityUpdatePeriod / 3; a < tick {
		tick = a
	}
	tick = max(tick, 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	var nextAvail time.Time
	for {
		select {
		case <-g.ctx.Done():
			return
		case now := <-t.C:
			g.mu.Lock()
			if g.closed {
				g.mu.Unlock()
				return
			}
			periodic := !now.Before(nextAvail)
			if periodic {
				nextAvail = now.Add(g.cfg.AvailabilityUpdatePeriod)
				g.ensureLinks()
			}
			if g.st != nil {
				g.st.tick(now, periodic)
			}
			g.unlockAndRelease()
		}
	}
}

// ensureLinks dials the overlay's neighbours this member has no link to.
func (g *Group) ensureLinks() {
	if g.closed {
		return
	}
	for _, c := range g.og.Neighbours() {
		if g.links[c.PeerID] != nil || g.dialing[c.PeerID] || g.isBanned(c.PeerID) {
			continue
		}
		g.dialing[c.PeerID] = true
		g.wg.Add(1)
		go func(c overlay.Contact) {
			defer g.wg.Done()
			ctx, cancel := context.WithTimeout(g.ctx, 3*time.Second)
			s, err := g.host.Node().Dial(ctx, c.Addr, c.PeerID)
			cancel()
			g.mu.Lock()
			defer g.mu.Unlock()
			delete(g.dialing, c.PeerID)
			if err != nil {
				return
			}
			g.linkOn(s)
		}(c)
	}
}

// acceptFlow takes an incoming flow of this group from the Mux.
func (g *Group) acceptFlow(rf *node.RecvFlow, role string) {
	s := rf.Session()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.isBanned(s.PeerID()) {
		rf.Reject(0)
		return
	}
	l := g.linkOn(s)
	if l == nil {
		rf.Reject(0)
		return
	}
	if role != roleControl {
		// Pieces and manifests stand alone (a piece that beats its
		// manifest waits for it): a lost one must not hold up the rest.
		rf.SetUnordered(true)
	}
	in := &inFlow{l: l, rf: rf, role: role}
	rf.Notify(func() {
		if in.queued.CompareAndSwap(false, true) {
			g.readable.push(in)
		}
	})
}

// linkOn returns the link to the peer of s, making it (and its outgoing
// flows) if there is none. Called with g.mu held.
func (g *Group) linkOn(s *node.Session) *link {
	p := s.PeerID()
	if l := g.links[p]; l != nil {
		return l
	}
	if g.closed || g.isBanned(p) {
		return nil
	}
	ctrl, err := s.OpenFlow(flowMetadata(g.id, roleControl), node.PriorityRoutine)
	if err != nil {
		return nil
	}
	var data []*node.SendFlow
	if g.st != nil {
		for i := 0; i <= g.cfg.DataLanes; i++ {
			f, err := s.OpenFlow(flowMetadata(g.id, roleData+strconv.Itoa(i)), node.PriorityData)
			if err != nil {
				ctrl.Close()
				for _, f := range data {
					f.Close()
				}
				return nil
			}
			data = append(data, f)
		}
	}
	l := newLink(p, s, ctrl, data, g.cfg.LinkQueue)
	g.links[p] = l
	g.stats.Neighbours = len(g.links)
	g.wg.Add(1)
	go g.sendLoop(l)
	// The link goes when its session ends; a callback, not a goroutine
	// per link waiting for it.
	l.stopWatch = context.AfterFunc(s.Context(), func() {
		if g.ctx.Err() != nil {
			return
		}
		g.mu.Lock()
		g.dropLink(l)
		g.mu.Unlock()
	})
	if g.st != nil {
		g.st.linkAdded(l)
	}
	return l
}

// dropLink forgets l. Called with g.mu held.
func (g *Group) dropLink(l *link) {
	if g.links[l.peer] != l {
		return
	}
	delete(g.links, l.peer)
	g.stats.Neighbours = len(g.links)
	g.releaseHold(l)
	l.close()
	if g.st != nil {
		g.st.linkRemoved(l)
	}
}

// banEntry is what a member holds against a banned peer.
type banEntry struct {
	until    time.Time // the ban's end; zero: for good
	offences int       // bans so far, each expiring one twice as long
}

// Ban durations. Forged data is proof (relays check every signature
// before they forward, or forward unchecked only what the publisher's own
// node pushed, which is genuine), so it is banned for good. Withholding is judged
// on pieces that did not come, which heavy loss can fake (at 15-20 %
// loss an honest pusher was banned now and then), and garbage or floods
// can be a moment of overload or a version mismatch: those bans expire,
// and each repeat doubles the length, up to maxBan.
const (
	firstBan = 30 * time.Second
	maxBan   = 16 * firstBan
)

// maxBanned bounds the bans remembered before the ones that ended more
// than maxBan ago are forgotten (and with them the count of offences).
const maxBanned = 1024

// pruneBans forgets the bans that ended more than maxBan ago. Called
// with g.mu held.
func (g *Group) pruneBans() {
	old := time.Now().Add(-maxBan)
	for p, b := range g.banned {
		if !b.until.IsZero() && b.until.Before(old) {
			delete(g.banned, p)
		}
	}
}

// isBanned reports whether p is refused now. Called with g.mu held.
func (g *Group) isBanned(p node.PeerID) bool {
	b := g.banned[p]
	return b != nil && (b.until.IsZero() || time.Now().Before(b.until))
}

// ban drops a neighbour that sent forged data and refuses it from now on.
// Called with g.mu held.
func (g *Group) ban(l *link) { g.banFor(l, "sent forged data", true) }

// banFor drops l and refuses its member: for good, or for firstBan
// doubled per earlier ban of the same member. Called with g.mu held.
func (g *Group) banFor(l *link, why string, forGood bool) {
	if g.isBanned(l.peer) {
		return
	}
	b := g.banned[l.peer]
	if b == nil {
		if len(g.banned) >= maxBanned {
			g.pruneBans()
		}
		b = &banEntry{}
		g.banned[l.peer] = b
	}
	b.offences++
	ev := g.log.Warn().Str("peer", fmt.Sprintf("%x", l.peer[:8])).Str("why", why)
	if forGood {
		b.until = time.Time{}
	} else {
		d := min(firstBan<<min(b.offences-1, 8), maxBan)
		b.until = time.Now().Add(d)
		ev = ev.Dur("for", d)
	}
	g.stats.Banned++
	ev.Msg("group: neighbour dropped and banned")
	g.dropLink(l)
}

// maxStrikes is how much misbehaviour short of forgery (garbage, floods)
// a neighbour is forgiven before it is banned. Honest members send none of
// it; the allowance is for a version mismatch or a moment of overload, not
// a pattern.
const maxStrikes = 8

// strike counts one misbehaviour of l, banning its member at maxStrikes.
// Called with g.mu held.
func (g *Group) strike(l *link, why string) {
	l.strikes++
	if l.strikes >= maxStrikes {
		g.banFor(l, why, false)
	}
}

// malformed counts an undecodable or invalid message from l.
func (g *Group) malformed(l *link) {
	g.stats.MalformedDropped++
	g.strike(l, "sends malformed messages")
}

// inFlow is a neighbour's flow to this member.
type inFlow struct {
	l      *link
	rf     *node.RecvFlow
	role   string
	queued atomic.Bool // in Group.readable, or about to be
}

// readBatch is how many messages the reader takes from one flow before
// serving the next ready one.
const readBatch = 32

// readLoop reads every neighbour's flows: the node says when one has data
// (RecvFlow.Notify) and this one goroutine serves them in turn, instead of
// a goroutine blocked in Read per flow (three flows a neighbour). The
// handlers run under g.mu anyway, so nothing ran in parallel before.
func (g *Group) readLoop() {
	defer g.wg.Done()
	for {
		in, err := g.readable.wait(g.ctx, g.ctx.Done(), ErrClosed, nil)
		if err != nil {
			return
		}
		in.queued.Store(false) // news from here on queues it again
		if g.serve(in) {
			if _, more := in.rf.MessageLen(); more && in.queued.CompareAndSwap(false, true) {
				g.readable.push(in)
			}
		}
	}
}

// serve reads up to readBatch messages of in; false means in is done
// with (ended, or its member banned or the group closed).
func (g *Group) serve(in *inFlow) bool {
	for range readBatch {
		msg, ok, err := g.read(in)
		if err != nil {
			g.flowEnded(in)
			return false
		}
		if !ok {
			return true
		}
		if !g.handle(in, msg) {
			in.rf.Notify(nil)
			return false
		}
	}
	return true
}

// read takes in's next message into the reader's buffer, which the next
// read reuses (the node then reuses the buffers the message came in: one
// allocation per datagram received was a ninth of what a 300-member
// simulation allocated). Nothing kept from a message may alias it: pieces
// and manifests are copied when kept, control messages are decoded.
func (g *Group) read(in *inFlow) ([]byte, bool, error) {
	if g.rbuf == nil {
		g.rbuf = make([]byte, 2048)
	}
	for range 2 {
		n, ok, err := in.rf.TryReadInto(g.rbuf)
		if errors.Is(err, node.ErrShortBuffer) {
			size, _ := in.rf.MessageLen()
			g.rbuf = make([]byte, max(size, 2*len(g.rbuf)))
			continue
		}
		if err != nil || !ok {
			return nil, false, err
		}
		return g.rbuf[:n], true, nil
	}
	return nil, false, nil
}

// handle handles one message of in; false means stop reading in.
func (g *Group) handle(in *inFlow, msg []byte) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.isBanned(in.l.peer) {
		return false
	}
	now := time.Now()
	if in.role == roleControl {
		g.handleControl(in.l, msg, now)
	} else {
		g.handleData(in.l, msg, now)
	}
	return true
}

// flowEnded: the neighbour closed its control flow (it left the group or
// dropped us), or the session ended: drop our side.
func (g *Group) flowEnded(in *inFlow) {
	in.rf.Notify(nil)
	if in.role != roleControl || g.ctx.Err() != nil {
		return
	}
	g.mu.Lock()
	g.dropLink(in.l)
	g.mu.Unlock()
}

func (g *Group) handleControl(l *link, msg []byte, now time.Time) {
	g.stats.Received.Control += uint64(len(msg))
	c, err := decodeControl(msg)
	if err != nil {
		g.malformed(l)
		return
	}
	if c.Type == ctlAvail && !l.availAllowed(now, g.cfg.AvailabilityUpdatePeriod) {
		g.stats.FloodDropped++
		g.strike(l, "floods availability maps")
		return
	}
	if c.Type == ctlPost {
		g.handlePost(l, c)
		return
	}
	if g.st == nil {
		return
	}
	g.st.handleControl(l, c, now)
}

func (g *Group) handleData(l *link, msg []byte, now time.Time) {
	if g.st == nil {
		g.stats.Received.Control += uint64(len(msg))
		g.malformed(l)
		return
	}
	if len(msg) > 0 && msg[0] == dataHave {
		g.stats.Received.Control += uint64(len(msg))
		seq, err := decodeHave(msg)
		if err != nil {
			g.malformed(l)
			return
		}
		g.st.handleHave(l, seq)
		return
	}
	if len(msg) > 0 && msg[0] == dataFragment {
		g.stats.Received.Push += uint64(len(msg))
		f, err := decodeFragment(msg)
		if err != nil {
			g.malformed(l)
			return
		}
		g.st.handleFragment(l, f, now)
		return
	}
	sm, p, how, err := decodeData(msg)
	if err != nil {
		g.stats.Received.Control += uint64(len(msg))
		g.malformed(l)
		return
	}
	if sm != nil {
		g.stats.Received.Control += uint64(len(msg))
		g.st.handleManifest(l, sm, now)
		return
	}
	switch {
	case p.IsParity():
		g.stats.Received.Parity += uint64(len(msg))
	case how == viaPull:
		g.stats.Received.Pull += uint64(len(msg))
	default:
		g.stats.Received.Push += uint64(len(msg))
	}
	g.st.handlePiece(l, *p, how == viaPush, now)
}

// sendControl queues a control message to l and reports whether it was
// queued. Called with g.mu held.
func (g *Group) sendControl(l *link, c *control) bool {
	b, err := encodeControl(c)
	if err != nil {
		return false
	}
	m := outMsg{b: b}
	if g.trace != nil {
		m.at = time.Now()
		if c.Type == ctlPull {
			m.trace = traceRequest
		}
	}
	if !l.enqueue(m) {
		g.stats.QueueDropped++
		return false
	}
	g.stats.Sent.Control += uint64(len(b))
	return true
}

// sendData queues a data message to l, to be abandoned at deadline.
// Data messages are always retransmittable until then: with
// node.WriteOptions.NoRetransmit a retransmission timeout abandons every
// message in flight on the session (docs/group.md).
func (g *Group) sendData(l *link, lane int, b []byte, deadline time.Time, t *uint64) {
	g.enqueueData(l, outMsg{data: true, lane: lane, b: b, deadline: deadline}, t)
}

// enqueueData queues a data message m to l, counting its bytes in t.
func (g *Group) enqueueData(l *link, m outMsg, t *uint64) {
	if m.lane >= len(l.data) {
		return
	}
	m.t = t
	if g.trace != nil {
		m.at = time.Now()
	}
	if l.enqueue(m) {
		*t += uint64(len(m.b))
	} else {
		g.stats.QueueDropped++
	}
}

// skipPush reports whether m, a message leaving l's queue, is a pushed
// piece of a block l said it holds whole; if so it is counted as skipped
// and its bytes are taken back from what was counted sent. The group's
// mutex is taken only then: not once per piece sent.
func (g *Group) skipPush(l *link, m outMsg) bool {
	if !m.push {
		return false
	}
	l.wholeMu.Lock()
	skip := l.whole[m.seq]
	l.wholeMu.Unlock()
	if !skip {
		return false
	}
	g.mu.Lock()
	g.stats.PushesSkipped++
	*m.t -= uint64(len(m.b))
	g.mu.Unlock()
	return true
}

func (g *Group) sendLoop(l *link) {
	defer g.wg.Done()
	for {
		m, ok := l.q.pop()
		if !ok {
			select {
			case <-g.ctx.Done():
				return
			case <-l.done:
				return
			case <-l.q.ready:
			}
			continue
		}
		select {
		case <-l.done:
			return
		default:
		}
		f := l.ctrl
		var opt node.WriteOptions
		if m.data {
			f = l.data[m.lane]
			left := time.Until(m.deadline)
			if left <= 0 {
				g.mu.Lock()
				g.stats.StaleDropped++
				g.mu.Unlock()
				continue
			}
			if g.skipPush(l, m) {
				continue
			}
			opt.FinishWithin = left
		}
		// Only the diagnostics' trace reads the receipt: without it the
		// node recycles its bookkeeping.
		opt.NoReceipt = g.trace == nil
		r, err := f.Write(g.ctx, m.b, opt)
		if g.trace != nil {
			g.trace.written(g.ctx, m, m.data && m.lane < len(l.data)-1, r)
		}
		if err != nil {
			if g.ctx.Err() != nil {
				return
			}
			g.mu.Lock()
			g.dropLink(l)
			g.mu.Unlock()
			return
		}
	}
}

// Stats returns the member's counters and measures now.
func (g *Group) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	if g.st != nil {
		g.st.fillStats(&s)
	}
	return s
}

// Post is a message posted to the group.
type Post struct {
	// ID is the post's random ID.
	ID [postIDSize]byte
	// From is the neighbour that passed the post on (not necessarily its
	// author: posts are not signed).
	From node.PeerID
	// Payload is the poster's bytes.
	Payload []byte
}

// Post floods payload to every member of the group, which receives it
// once through ReceivePost. Delivery is best effort: a member that joins
// or loses its links while the post floods may miss it.
func (g *Group) Post(ctx context.Context, payload []byte) error {
	if !g.spec.Posting {
		return ErrPostingDisabled
	}
	if len(payload) > MaxPostSize {
		return ErrPostTooBig
	}
	var id [postIDSize]byte
	rand.Read(id[:])
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	g.remember(id)
	c := &control{Type: ctlPost, ID: id[:], TTL: uint8(g.cfg.PostTTL), Payload: payload}
	for _, l := range g.links {
		g.sendControl(l, c)
	}
	g.stats.PostsSent++
	return ctx.Err()
}

// ReceivePost waits for the next post of another member.
func (g *Group) ReceivePost(ctx context.Context) (Post, error) {
	return g.posts.wait(ctx, g.ctx.Done(), ErrClosed, nil)
}

// remember records a post ID; the oldest is forgotten beyond PostMemory.
// It reports whether the ID is new.
func (g *Group) remember(id [postIDSize]byte) bool {
	if _, ok := g.seen[id]; ok {
		return false
	}
	if len(g.seenRing) < g.cfg.PostMemory {
		g.seenRing = append(g.seenRing, id)
	} else {
		delete(g.seen, g.seenRing[g.seenNext])
		g.seenRing[g.seenNext] = id
		g.seenNext = (g.seenNext + 1) % len(g.seenRing)
	}
	g.seen[id] = struct{}{}
	return true
}

func (g *Group) handlePost(l *link, c *control) {
	if !g.spec.Posting {
		g.malformed(l)
		return
	}
	var id [postIDSize]byte
	copy(id[:], c.ID)
	if !g.remember(id) {
		g.stats.PostDuplicates++
		return
	}
	if g.posts.push(Post{ID: id, From: l.peer, Payload: c.Payload}) {
		g.stats.PostsReceived++
	} else {
		g.stats.PostsDropped++
	}
	if c.TTL <= 1 {
		return
	}
	fwd := &control{Type: ctlPost, ID: c.ID, TTL: c.TTL - 1, Payload: c.Payload}
	for _, o := range g.links {
		if o != l {
			g.sendControl(o, fwd)
		}
	}
}

// stableRank orders candidates pseudo-randomly but stably per (member,
// peer, salt), so members spread their choices and do not flap.
func stableRank(self, peer node.PeerID, salt int) uint64 {
	h := fnv.New64a()
	h.Write(self[:])
	h.Write(peer[:])
	h.Write([]byte{byte(salt)})
	return h.Sum64()
}

// signingBytes is what the publisher signs for a block: a domain, the
// group ID (so a signature cannot be replayed in another group), the
// stamp and the manifest.
func signingBytes(gid [32]byte, stamp int64, manifest []byte) []byte {
	b := make([]byte, 0, 64+len(manifest))
	b = append(b, "strata group block v1\x00"...)
	b = append(b, gid[:]...)
	for i := 7; i >= 0; i-- {
		b = append(b, byte(uint64(stamp)>>(8*i)))
	}
	return append(b, manifest...)
}

// fragmentSigningBytes is what the publisher signs to send a data
// fragment before its block closes: its block, offset, index, stamp and
// data.
func fragmentSigningBytes(gid [32]byte, f *fragment) []byte {
	b := make([]byte, 0, 90+len(f.p.Data))
	b = append(b, "strata group fragment v1\x00"...)
	b = append(b, gid[:]...)
	b = binary.BigEndian.AppendUint64(b, f.p.Block)
	b = binary.BigEndian.AppendUint64(b, f.p.Offset)
	b = append(b, byte(f.p.Index))
	b = binary.BigEndian.AppendUint64(b, uint64(f.stamp))
	return append(b, f.p.Data...)
}

func verifyFragment(spec Specifier, gid [32]byte, f *fragment) bool {
	if len(spec.PublisherKey) == 0 {
		return true
	}
	return len(f.sig) == ed25519.SignatureSize && ed25519.Verify(spec.PublisherKey, fragmentSigningBytes(gid, f), f.sig)
}

// nodeSigningBytes is what the publisher signs to name the node it
// publishes from (peer): pieces that node pushes are the publisher's own.
func nodeSigningBytes(gid [32]byte, peer node.PeerID) []byte {
	b := make([]byte, 0, 64+len(peer))
	b = append(b, "strata group publisher node v1\x00"...)
	b = append(b, gid[:]...)
	return append(b, peer[:]...)
}

// endSigningBytes is what the publisher signs to end the stream.
func endSigningBytes(gid [32]byte, c *control) []byte {
	b := make([]byte, 0, 64+24)
	b = append(b, "strata group end v1\x00"...)
	b = append(b, gid[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Stamp))
	b = binary.BigEndian.AppendUint64(b, c.Count)
	return binary.BigEndian.AppendUint64(b, c.End)
}

func verifyEnd(spec Specifier, gid [32]byte, c *control) bool {
	if len(spec.PublisherKey) == 0 {
		return true
	}
	return len(c.Sig) == ed25519.SignatureSize && ed25519.Verify(spec.PublisherKey, endSigningBytes(gid, c), c.Sig)
}

func verifyManifest(spec Specifier, gid [32]byte, sm *signedManifest) bool {
	if len(spec.PublisherKey) == 0 {
		return true
	}
	return len(sm.Sig) == ed25519.SignatureSize &&
		ed25519.Verify(spec.PublisherKey, signingBytes(gid, sm.Stamp, sm.raw), sm.Sig)
}

// pullTrace counts how long control and pull-lane messages wait in their
// link's queue, and how pull requests and pulled pieces fare in the RTMFP
// sessions: delivered (acknowledged) by time from the write, or abandoned
// (diagnostics, tests only). Times are in waitBucket's buckets.
type pullTrace struct {
	queued    [waitBuckets]atomic.Uint64
	delivered [traceKinds][waitBuckets]atomic.Uint64 // by trace kind
	abandoned [traceKinds]atomic.Uint64
	wg        sync.WaitGroup
}

const (
	traceRequest = 1 // a pull request
	traceAnswer  = 2 // a piece sent for a pull
	traceKinds   = 3
)

// written notes m, just written to its flow (r its receipt, nil on error);
// push is true for the push lanes, whose queue wait is not counted.
func (t *pullTrace) written(ctx context.Context, m outMsg, push bool, r *node.Receipt) {
	if !push {
		t.queued[waitBucket(time.Since(m.at))].Add(1)
	}
	if m.trace == 0 || r == nil {
		return
	}
	t.wg.Add(1)
	start := time.Now()
	go func() {
		defer t.wg.Done()
		if err := r.Wait(ctx); err != nil {
			if ctx.Err() == nil {
				t.abandoned[m.trace].Add(1)
			}
			return
		}
		t.delivered[m.trace][waitBucket(time.Since(start))].Add(1)
	}()
}
