package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/group"
	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
	"github.com/strata-net/strata/overlay"
)

// swarmOptions describe one swarm run.
type swarmOptions struct {
	nodes    int
	link     memnet.Link // impairments of every link once the mesh formed (memnet only)
	rate     int         // stream rate, bytes per second
	duration time.Duration
	udp      bool // real UDP sockets on 127.0.0.1 instead of memnet
	// noRendezvous: members meet through earlier members only, without
	// the swarm's rendezvous node.
	noRendezvous bool
	// shortParity: the publisher gives short blocks (streams under about
	// 524 kbit/s) ceil(M·k'/K) parity pieces (group.Config.ShortParity).
	shortParity bool
	// earlyFragments: group.Config.EarlyFragments, each full fragment
	// sent, signed, as soon as it is written.
	earlyFragments bool
	// backupPushers: group.Config.BackupPushers, at every member.
	backupPushers bool
	// lowLatency: group.Config.LowLatency, at every member.
	lowLatency bool
	seed       uint64
	log        zerolog.Logger
}

// Phases of a swarm run, in order.
const (
	phaseStarting      = "starting"
	phaseBootstrapping = "bootstrapping"
	phaseStreaming     = "streaming"
	phaseDraining      = "draining"
	phaseDone          = "done"
)

// swarmRoutePrefix starts the payload of the routing panel's messages; a
// nonce follows, which finds the request waiting for the delivery.
const swarmRoutePrefix = "strata swarm route "

// swarmLatencySamples bounds each member's sample of latencies (one per
// fragment output).
const swarmLatencySamples = 2048

// swarmMember is one group member of the swarm and the check of its
// stream output against what the publisher sent.
type swarmMember struct {
	idx  int
	n    *node.Node
	h    *overlay.Host
	g    *group.Group
	addr overlay.Address

	mu      sync.Mutex
	next    uint64 // stream offset expected next
	out     uint64 // bytes output that matched the published stream
	bad     uint64 // bytes output that did not, or at the wrong offset
	lost    uint64 // bytes skipped by gap records
	gapOpen bool   // a gap record came and its end is not known yet
	lats    []time.Duration
	latSeen uint64
	rnd     *rand.Rand
	scratch []byte
}

// swarm is a running swarm: N members of one multicast group, member 0
// the publisher.
type swarm struct {
	opt     swarmOptions
	net     *memnet.Network // nil on UDP
	spec    group.Specifier
	pubKey  ed25519.PrivateKey
	rdv     *overlay.Rendezvous // nil with opt.noRendezvous
	rn      *node.Node          // the rendezvous' node
	rdvDone chan error
	members []*swarmMember
	byPeer  map[node.PeerID]int
	start   time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	phase       string
	bootstrapT  time.Duration
	published   uint64
	streamStart time.Time
	// writeStart and chunk place every stream byte's write in time: the
	// byte at offset o is written at writeStart + (o/chunk)·chunk/rate.
	writeStart time.Time
	chunk      uint64
	streamEnd  time.Time
	history    []swarmSample
	routes     map[uint64]chan routeArrival
}

// routeArrival is a routed message's delivery at a member.
type routeArrival struct {
	member int
	d      overlay.Delivery
}

// swarmOverlay has timeouts short enough for a mesh in one process, and
// refreshes buckets at the default period (30 s) rather than LocalConfig's
// 5 s: every member's refresh is about eight lookups of twenty requests,
// new sessions and rendezvous hellos, which cost 40 % of the CPU of 100
// members at 64 kbit/s and slowed 200 members' bootstrap from about 6 s to
// 53 s (docs/swarm.md). The mesh forms by the joins' own lookups; the
// swarm does not use the member-count estimate, which is what leans on
// frequent refreshes.
func swarmOverlay() overlay.Config {
	c := overlay.LocalConfig()
	c.RefreshPeriod = overlay.DefaultRefreshPeriod
	return c
}

// newSwarm starts opt.nodes members. The mesh forms on a near-perfect
// network; the impairments of opt.link start with the stream.
func newSwarm(opt swarmOptions) (*swarm, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &swarm{
		opt:    opt,
		spec:   group.Specifier{Name: "swarm", Multicast: true, PublisherKey: pub},
		pubKey: priv,
		byPeer: make(map[node.PeerID]int),
		start:  time.Now(),
		ctx:    ctx, cancel: cancel,
		phase:  phaseStarting,
		routes: make(map[uint64]chan routeArrival),
	}
	if !opt.udp {
		s.net = memnet.New(memnet.Config{Seed: opt.seed, Link: memnet.Link{Delay: time.Millisecond}})
	}
	if !opt.noRendezvous {
		if err := s.startRendezvous(); err != nil {
			s.close()
			return nil, fmt.Errorf("rendezvous: %w", err)
		}
	}
	for i := 0; i < opt.nodes; i++ {
		if err := s.addMember(i); err != nil {
			s.close()
			return nil, fmt.Errorf("member %d: %w", i, err)
		}
	}
	return s, nil
}

func (s *swarm) addMember(i int) error {
	log := s.opt.log.With().Int("member", i).Logger()
	cfg := node.Config{KeepalivePeriod: time.Second, RetransmitLimit: 5 * time.Second, Logger: log}
	var n *node.Node
	var err error
	if s.net != nil {
		c, lerr := s.net.ListenAuto()
		if lerr != nil {
			return lerr
		}
		n, err = node.New(c, cfg)
	} else {
		n, err = node.Listen("127.0.0.1:0", cfg)
	}
	if err != nil {
		return err
	}
	mux := group.NewMux()
	hc := overlay.HostConfig{OnFlow: mux.HandleFlow, Logger: log}
	if s.rn != nil {
		hc.Rendezvous = []netip.AddrPort{s.rn.AddrPort()}
	}
	h := overlay.NewHost(n, hc)
	gc := group.Config{Mux: mux, Overlay: swarmOverlay(), Logger: log, BackupPushers: s.opt.backupPushers}
	gc.Overlay.Logger = log
	if i == 0 {
		gc.PublisherKey = s.pubKey
		gc.ShortParity = s.opt.shortParity
		gc.EarlyFragments = s.opt.earlyFragments
	}
	if s.opt.lowLatency {
		gc = gc.LowLatency()
	}
	g, err := group.Join(h, s.spec, gc)
	if err != nil {
		h.Close()
		closeNode(n)
		return err
	}
	m := &swarmMember{
		idx: i, n: n, h: h, g: g, addr: g.Overlay().Address(),
		rnd: rand.New(rand.NewPCG(s.opt.seed, uint64(i))),
	}
	s.members = append(s.members, m)
	s.byPeer[n.PeerID()] = i
	s.wg.Add(1)
	go s.receiveRoutes(m)
	return nil
}

// startRendezvous starts the swarm's rendezvous node, through which every
// member registers and is introduced to the members it dials (as members
// behind NATs would need; on one host it only adds the forwarded hellos).
func (s *swarm) startRendezvous() error {
	s.rdv = overlay.NewRendezvous(overlay.RendezvousConfig{Logger: s.opt.log.With().Str("component", "rendezvous").Logger()})
	cfg := node.Config{KeepalivePeriod: time.Second, OnUnmatchedHello: s.rdv.HandleHello, Logger: s.opt.log}
	var err error
	if s.net != nil {
		c, lerr := s.net.ListenAuto()
		if lerr != nil {
			return lerr
		}
		s.rn, err = node.New(c, cfg)
	} else {
		s.rn, err = node.Listen("127.0.0.1:0", cfg)
	}
	if err != nil {
		return err
	}
	s.rdvDone = make(chan error, 1)
	go func() { s.rdvDone <- s.rdv.Serve(s.rn) }()
	return nil
}

// close stops every member and the network.
func (s *swarm) close() {
	s.cancel()
	var wg sync.WaitGroup
	for _, m := range s.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.g.Close()
			m.h.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			m.n.Close(ctx)
			cancel()
		}()
	}
	wg.Wait()
	s.wg.Wait()
	if s.rdv != nil {
		s.rdv.Close()
		if s.rn != nil {
			<-s.rdvDone
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			s.rn.Close(ctx)
			cancel()
		}
	}
	if s.net != nil {
		s.net.Close()
	}
}

func (s *swarm) setPhase(p string) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

// bootstrap joins the members in waves of 8, each through a random member
// of the earlier waves (all through one seed at once overloads its link
// limit, docs/overlay.md) and the rendezvous' recent members, and waits
// until every member has a neighbour link.
func (s *swarm) bootstrap(ctx context.Context) error {
	s.setPhase(phaseBootstrapping)
	t0 := time.Now()
	r := rand.New(rand.NewPCG(s.opt.seed, 3))
	const wave = 8
	errs := make([]error, len(s.members))
	if s.rdv != nil {
		// The first member registers, so the rendezvous knows it.
		if err := s.members[0].g.Bootstrap(ctx); err != nil {
			return fmt.Errorf("member 0 registering with the rendezvous: %w", err)
		}
	}
	for lo := 1; lo < len(s.members); lo += wave {
		hi := min(lo+wave, len(s.members))
		var wg sync.WaitGroup
		for i := lo; i < hi; i++ {
			seed := s.members[r.IntN(lo)].h.Self()
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.members[i].g.Bootstrap(ctx, seed)
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("member %d bootstrap: %w", i, err)
		}
	}
	s.parallel(16, func(m *swarmMember) { m.g.Overlay().Refresh(ctx) })
	deadline := time.Now().Add(5*time.Second + time.Duration(len(s.members))*50*time.Millisecond)
	for {
		alone := -1
		for _, m := range s.members {
			if m.g.Stats().Neighbours == 0 {
				alone = m.idx
				break
			}
		}
		if alone < 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("member %d has no neighbour link %v after bootstrap", alone, time.Since(t0).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.mu.Lock()
	s.bootstrapT = time.Since(t0)
	s.mu.Unlock()
	return nil
}

// parallel runs f for every member, width at a time.
func (s *swarm) parallel(width int, f func(m *swarmMember)) {
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for _, m := range s.members {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(m)
		}()
	}
	wg.Wait()
}

// stream subscribes every member but the publisher, applies the link
// impairments, publishes opt.rate bytes per second for opt.duration and
// waits for the members to output (or give up on) everything, at most
// drain after the last byte.
func (s *swarm) stream(ctx context.Context, drain time.Duration) error {
	for _, m := range s.members[1:] {
		sub, err := m.g.Subscribe()
		if err != nil {
			return fmt.Errorf("member %d: %w", m.idx, err)
		}
		s.wg.Add(1)
		go s.consume(m, sub)
	}
	if s.net != nil {
		s.net.SetDefaultLink(s.opt.link)
	}
	p, err := s.members[0].g.Publish()
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	s.mu.Lock()
	s.phase = phaseStreaming
	s.streamStart = time.Now()
	s.mu.Unlock()
	total := uint64(float64(s.opt.rate) * s.opt.duration.Seconds())
	// Writes of 10 ms worth of stream (at least 100 bytes), paced.
	chunk := uint64(max(s.opt.rate/100, 100))
	buf := make([]byte, chunk)
	start := time.Now()
	s.mu.Lock()
	s.writeStart, s.chunk = start, chunk
	s.mu.Unlock()
	var off uint64
	for off < total {
		n := min(chunk, total-off)
		swarmPattern(s.opt.seed, off, buf[:n])
		if _, err := p.Write(ctx, buf[:n]); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		off += n
		s.mu.Lock()
		s.published = off
		s.mu.Unlock()
		due := start.Add(time.Duration(float64(off) / float64(s.opt.rate) * float64(time.Second)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(due)):
		}
	}
	p.Sync()
	s.mu.Lock()
	s.phase = phaseDraining
	s.streamEnd = time.Now()
	s.mu.Unlock()
	deadline := time.Now().Add(drain)
	for time.Now().Before(deadline) && !s.drained(total) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.setPhase(phaseDone)
	return nil
}

// drained reports whether every subscriber output or gave up on total
// bytes.
func (s *swarm) drained(total uint64) bool {
	for _, m := range s.members[1:] {
		m.mu.Lock()
		n := m.next
		m.mu.Unlock()
		st := m.g.Stats()
		if n < total && st.BytesOut+st.BytesLost < total {
			return false
		}
	}
	return true
}

// consume reads a member's stream output and checks it against the
// published stream.
func (s *swarm) consume(m *swarmMember, sub *group.Subscription) {
	defer s.wg.Done()
	for {
		r, err := sub.Next(s.ctx)
		if err != nil {
			return
		}
		m.record(r, s.opt.seed, s.writtenAt)
	}
}

// writtenAt returns when the publisher wrote the stream byte at offset o.
func (s *swarm) writtenAt(o uint64) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chunk == 0 {
		return time.Time{}
	}
	return s.writeStart.Add(time.Duration(float64(o/s.chunk*s.chunk) / float64(s.opt.rate) * float64(time.Second)))
}

// record checks one output record. A data record must start where the
// previous one ended, or further on after a gap record (the bytes between
// are what the gap lost). Its latency, one sample per fragment, runs from
// the write of the fragment's last byte (writtenAt) to now.
func (m *swarmMember) record(r group.Record, seed uint64, writtenAt func(uint64) time.Time) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.IsGap() {
		m.gapOpen = true
		return
	}
	switch {
	case r.Offset > m.next && m.gapOpen:
		m.lost += r.Offset - m.next
	case r.Offset != m.next:
		m.bad += uint64(len(r.Data))
		return
	}
	m.gapOpen = false
	if cap(m.scratch) < len(r.Data) {
		m.scratch = make([]byte, len(r.Data))
	}
	want := m.scratch[:len(r.Data)]
	swarmPattern(seed, r.Offset, want)
	if bytes.Equal(r.Data, want) {
		m.out += uint64(len(r.Data))
	} else {
		m.bad += uint64(len(r.Data))
	}
	m.next = r.Offset + uint64(len(r.Data))
	// One sample per fragment: a block output in parts weighs what it
	// weighs output whole. Fragments are FragmentSize bytes but for a
	// block's last.
	for j := range max(1, r.Fragments) {
		end := min(r.Offset+uint64(j+1)*group.DefaultFragmentSize, r.Offset+uint64(len(r.Data))) - 1
		at := writtenAt(end)
		if at.IsZero() {
			continue
		}
		lat := now.Sub(at)
		m.latSeen++
		if len(m.lats) < swarmLatencySamples {
			m.lats = append(m.lats, lat)
		} else if k := m.rnd.Uint64N(m.latSeen); k < swarmLatencySamples {
			m.lats[k] = lat
		}
	}
}

// swarmPattern fills b with the published stream's bytes from offset off:
// a pseudo-random function of (seed, offset), so a subscriber checks its
// output without a copy of the stream.
func swarmPattern(seed, off uint64, b []byte) {
	for i := range b {
		o := off + uint64(i)
		w := splitmix64(seed ^ (o/8)*0x9e3779b97f4a7c15)
		b[i] = byte(w >> (8 * (o % 8)))
	}
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// receiveRoutes hands a member's overlay deliveries of the routing panel's
// messages to the request waiting for them. The group layer does not read
// overlay deliveries (it uses its own flows), so this is their only
// reader.
func (s *swarm) receiveRoutes(m *swarmMember) {
	defer s.wg.Done()
	for {
		d, err := m.g.Overlay().Receive(s.ctx)
		if err != nil {
			return
		}
		rest, ok := bytes.CutPrefix(d.Payload, []byte(swarmRoutePrefix))
		if !ok || len(rest) != 8 {
			continue
		}
		nonce := binary.BigEndian.Uint64(rest)
		s.mu.Lock()
		ch := s.routes[nonce]
		s.mu.Unlock()
		if ch != nil {
			select {
			case ch <- routeArrival{member: m.idx, d: d}:
			default:
			}
		}
	}
}

// swarmRoute is the outcome of one routed message.
type swarmRoute struct {
	Target   string  `json:"target"`
	From     int     `json:"from"`
	To       int     `json:"to"`   // the member it was delivered to
	Path     []int   `json:"path"` // members it went through, From first, To last
	Hops     int     `json:"hops"`
	Nearest  int     `json:"nearest"` // the member truly nearest Target
	Correct  bool    `json:"correct"` // To == Nearest
	MS       float64 `json:"ms"`      // from Route to the delivery
	Distance string  `json:"distance"`
}

var errSwarmRouteLost = errors.New("the routed message was not delivered in time")

// route sends a message from member from to the member nearest target and
// reports where it arrived and the path it took.
func (s *swarm) route(ctx context.Context, from int, target overlay.Address) (swarmRoute, error) {
	res := swarmRoute{Target: target.String(), From: from, To: -1, Nearest: s.nearest(target)}
	if from < 0 || from >= len(s.members) {
		return res, fmt.Errorf("no member %d (there are %d)", from, len(s.members))
	}
	var nb [8]byte
	nonce := rand.Uint64()
	binary.BigEndian.PutUint64(nb[:], nonce)
	ch := make(chan routeArrival, 1)
	s.mu.Lock()
	s.routes[nonce] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.routes, nonce)
		s.mu.Unlock()
	}()
	t0 := time.Now()
	if err := s.members[from].g.Overlay().Route(ctx, target, append([]byte(swarmRoutePrefix), nb[:]...)); err != nil {
		return res, fmt.Errorf("route from member %d: %w", from, err)
	}
	select {
	case a := <-ch:
		res.MS = float64(time.Since(t0).Microseconds()) / 1000
		res.To = a.member
		res.Hops = a.d.Hops
		for _, p := range a.d.Path {
			i, ok := s.byPeer[p]
			if !ok {
				i = -1
			}
			res.Path = append(res.Path, i)
		}
		res.Correct = res.To == res.Nearest
		res.Distance = overlay.Xor(s.members[res.To].addr, target).String()
		return res, nil
	case <-ctx.Done():
		return res, errSwarmRouteLost
	}
}

// nearest is the member whose address is nearest target by XOR distance.
func (s *swarm) nearest(target overlay.Address) int {
	best := 0
	for i, m := range s.members {
		if overlay.Closer(m.addr, s.members[best].addr, target) {
			best = i
		}
	}
	return best
}

// swarmPercentile is the q-quantile (0..1) of d by nearest rank (the
// smallest value at least a share q of d does not exceed), which sorts d;
// 0 for none. By nearest rank a pooled p99 never exceeds every member's.
func swarmPercentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[min(max(i, 0), len(d)-1)]
}
