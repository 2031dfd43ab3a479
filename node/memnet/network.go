package memnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Errors returned by Network methods.
var (
	// ErrNetworkClosed is returned by Listen and AddNAT after Close.
	ErrNetworkClosed = errors.New("memnet: network closed")
	// ErrAddrInUse is returned by Listen for an address already bound.
	ErrAddrInUse = errors.New("memnet: address already in use")
	// ErrBadAddr is returned for an address that cannot be bound or used.
	ErrBadAddr = errors.New("memnet: invalid address")
	// ErrExhausted is returned when automatic address or port allocation
	// has run out.
	ErrExhausted = errors.New("memnet: no free address")
)

// AutoPort is the UDP port ListenAuto binds: RTMFP's registered port.
const AutoPort = 1935

// DefaultRecvQueue is the default receive queue length of a Conn, in
// datagrams.
const DefaultRecvQueue = 1024

// Config configures a Network. The zero Config is a perfect network on the
// wall clock.
type Config struct {
	// Seed seeds the random source behind every random impairment. Two
	// networks with the same Seed, Links and sequence of operations drop,
	// delay, duplicate and reorder the same datagrams. (Concurrent writers
	// make the sequence itself nondeterministic; a simulation that wants
	// reproducibility drives its conns from one goroutine on a ManualClock.)
	Seed uint64
	// Clock is the time source. Nil means RealClock.
	Clock Clock
	// Link is the default Link between any two hosts; SetLink overrides it
	// per directed pair.
	Link Link
	// RecvQueue is the receive queue length of every Conn, in datagrams;
	// further datagrams are dropped until the application reads. Zero means
	// DefaultRecvQueue.
	RecvQueue int
	// Tick, if positive, rounds every delivery time up to the next
	// multiple of Tick since the network was made. A simulation on a
	// virtual clock (testing/synctest) advances its clock once per
	// distinct instant at which something is due; with thousands of
	// members sending, delays drawn to the nanosecond make nearly every
	// datagram an instant of its own. On a grid of Tick the datagrams due
	// in one tick are delivered together, and the members' work on them
	// runs in parallel. Each datagram is delayed by less than Tick more
	// than its link says; the order of a path's datagrams is kept.
	Tick time.Duration
}

// Network is an in-memory datagram network. Conns bound to it with Listen
// exchange datagrams through links with configurable impairments, NATs and
// partitions. Hosts are IP addresses; a Conn is a host and port.
//
// Deliveries are kept in one min-heap per Network and driven by a single
// Clock timer armed for the earliest one, so the cost of a datagram does not
// depend on the number of conns and no goroutine is created per datagram.
//
// All methods are safe for concurrent use.
type Network struct {
	clock     Clock
	base      time.Time // times are kept as offsets from base
	recvQueue int
	tick      time.Duration

	mu          sync.Mutex
	closed      bool
	rng         *rand.Rand
	defLink     Link
	links       map[hostPair]Link
	state       map[hostPair]*linkState
	blocked     map[hostPair]struct{}
	group       map[netip.Addr]int // partition group; absent means 0
	conns       map[netip.AddrPort]*Conn
	hosts       map[netip.Addr]int // conns per host
	nats        []*NAT
	natByPublic map[netip.Addr]*NAT
	natByPrefix map[netip.Prefix]*NAT
	natBits     []int // distinct prefix lengths in natByPrefix
	nextAuto    uint32
	nextNATNet  uint32
	nextNATPub  uint32
	nextEphem   uint16

	pending  deliveryHeap
	seq      uint64
	timer    Timer
	armed    bool
	armedAt  time.Duration
	inflight sync.WaitGroup // one count per armed timer callback

	stats counters
}

// New returns a Network configured by cfg.
func New(cfg Config) *Network {
	clk := cfg.Clock
	if clk == nil {
		clk = RealClock{}
	}
	rq := cfg.RecvQueue
	if rq <= 0 {
		rq = DefaultRecvQueue
	}
	return &Network{
		clock:       clk,
		base:        clk.Now(),
		recvQueue:   rq,
		tick:        max(cfg.Tick, 0),
		rng:         rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		defLink:     cfg.Link.clone(),
		links:       make(map[hostPair]Link),
		state:       make(map[hostPair]*linkState),
		blocked:     make(map[hostPair]struct{}),
		group:       make(map[netip.Addr]int),
		conns:       make(map[netip.AddrPort]*Conn),
		hosts:       make(map[netip.Addr]int),
		natByPublic: make(map[netip.Addr]*NAT),
		natByPrefix: make(map[netip.Prefix]*NAT),
		nextEphem:   ephemeralFirst,
	}
}

// Clock returns the Network's clock.
func (n *Network) Clock() Clock { return n.clock }

const (
	ephemeralFirst = 49152
	ephemeralCount = 65536 - ephemeralFirst
)

// Listen binds a Conn to addr. A zero port picks a free ephemeral port. The
// address must be a specific unicast address: there is no wildcard bind. An
// address inside a NAT's Inside prefix is behind that NAT.
func (n *Network) Listen(addr netip.AddrPort) (*Conn, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	ip := addr.Addr()
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() {
		return nil, fmt.Errorf("%w: listen %v", ErrBadAddr, addr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrNetworkClosed
	}
	if _, ok := n.natByPublic[ip]; ok {
		return nil, fmt.Errorf("%w: listen %v: address is a NAT's public address", ErrBadAddr, addr)
	}
	if addr.Port() == 0 {
		p, ok := n.ephemeralLocked(ip)
		if !ok {
			return nil, fmt.Errorf("%w: listen %v: no free port", ErrExhausted, addr)
		}
		addr = netip.AddrPortFrom(ip, p)
	} else if _, ok := n.conns[addr]; ok {
		return nil, fmt.Errorf("%w: %v", ErrAddrInUse, addr)
	}
	return n.bindLocked(addr), nil
}

// ListenAuto binds a Conn to a fresh address 10.x.y.z:1935 (AutoPort), the
// next free one in order, so that every node of a simulation gets its own
// host without bookkeeping.
func (n *Network) ListenAuto() (*Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrNetworkClosed
	}
	base := netip.AddrFrom4([4]byte{10, 0, 0, 0})
	ip, ok := n.nextHostLocked(base, 24, &n.nextAuto, nil, n.autoPortFree)
	if !ok {
		return nil, fmt.Errorf("%w: 10.0.0.0/8 is full", ErrExhausted)
	}
	return n.bindLocked(netip.AddrPortFrom(ip, AutoPort)), nil
}

// nextHostLocked returns the next address of base/(32-bits), bits <= 24,
// that is no NAT's public address, is behind the NAT behind (nil: none) and
// satisfies ok, skipping .0 and .255 so addresses look ordinary. *next keeps
// the position between calls.
func (n *Network) nextHostLocked(base netip.Addr, bits int, next *uint32, behind *NAT, ok func(netip.Addr) bool) (netip.Addr, bool) {
	if bits < 2 || bits > 24 {
		return netip.Addr{}, false
	}
	b := base.As4()
	start := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	size := uint32(1) << bits
	// Offsets run 1..size-2 and wrap, so addresses freed by Close are
	// reused once the range has been gone through.
	for range size {
		*next++
		if *next >= size-1 {
			*next = 1
		}
		v := start + *next
		if v&0xff == 0 || v&0xff == 0xff {
			continue
		}
		ip := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if _, isNAT := n.natByPublic[ip]; isNAT || n.natForLocked(ip) != behind || !ok(ip) {
			continue
		}
		return ip, true
	}
	return netip.Addr{}, false
}

// autoPortFree reports whether ip:AutoPort is unbound.
func (n *Network) autoPortFree(ip netip.Addr) bool {
	_, used := n.conns[netip.AddrPortFrom(ip, AutoPort)]
	return !used
}

func (n *Network) ephemeralLocked(ip netip.Addr) (uint16, bool) {
	for range ephemeralCount {
		p := n.nextEphem
		n.nextEphem++
		if n.nextEphem == 0 {
			n.nextEphem = ephemeralFirst
		}
		if _, ok := n.conns[netip.AddrPortFrom(ip, p)]; !ok {
			return p, true
		}
	}
	return 0, false
}

func (n *Network) bindLocked(addr netip.AddrPort) *Conn {
	c := newConn(n, addr)
	n.conns[addr] = c
	n.hosts[addr.Addr()]++
	return c
}

func (n *Network) unbind(c *Conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns[c.addr] == c {
		delete(n.conns, c.addr)
		ip := c.addr.Addr()
		if n.hosts[ip]--; n.hosts[ip] <= 0 {
			delete(n.hosts, ip)
		}
	}
}

// SetDefaultLink replaces the Link used between hosts that have no
// override. Datagrams already in flight keep their schedule.
func (n *Network) SetDefaultLink(l Link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.defLink = l.clone()
}

// SetLink overrides the Link from host from to host to (one direction).
func (n *Network) SetLink(from, to netip.Addr, l Link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.links[hostPair{from.Unmap(), to.Unmap()}] = l.clone()
}

// SetLinkBoth overrides the Link between hosts a and b in both directions.
func (n *Network) SetLinkBoth(a, b netip.Addr, l Link) {
	n.SetLink(a, b, l)
	n.SetLink(b, a, l)
}

// ClearLink removes the override from host from to host to, which reverts to
// the default Link.
func (n *Network) ClearLink(from, to netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.links, hostPair{from.Unmap(), to.Unmap()})
}

// Block drops every datagram from host from to host to (one direction), to
// model an unreachable peer or a one-way failure.
func (n *Network) Block(from, to netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.blocked[hostPair{from.Unmap(), to.Unmap()}] = struct{}{}
}

// Unblock undoes Block(from, to).
func (n *Network) Unblock(from, to netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.blocked, hostPair{from.Unmap(), to.Unmap()})
}

// Partition splits the network: the hosts of each group can only reach
// hosts of the same group, and hosts in no group form one more group
// together. It replaces any earlier partition and costs O(hosts listed), so
// it suits thousands of hosts where Block per pair would not.
func (n *Network) Partition(groups ...[]netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.group)
	for i, g := range groups {
		for _, ip := range g {
			n.group[ip.Unmap()] = i + 1
		}
	}
}

// Heal removes the partition and every Block.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.group)
	clear(n.blocked)
}

// Stats returns the network-wide counters.
func (n *Network) Stats() Stats {
	s := n.stats.snapshot()
	n.mu.Lock()
	s.InFlight = uint64(len(n.pending))
	n.mu.Unlock()
	return s
}

// Close closes every Conn, discards datagrams in flight and stops the
// Network's timer, waiting for a callback under way to finish. It is
// idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	if n.armed && n.timer.Stop() {
		n.armed = false
		n.inflight.Done()
	}
	for _, p := range n.pending {
		putPacket(p)
	}
	n.pending = nil
	conns := make([]*Conn, 0, len(n.conns))
	for _, c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	n.inflight.Wait()
	return nil
}

func (n *Network) now() time.Duration { return n.clock.Now().Sub(n.base) }

func (n *Network) count(from *Conn, k counter) {
	n.stats.add(k, 1)
	from.stats.add(k, 1)
}

// send carries one datagram written by c to dst, the address the
// application gave. Routing, NAT and impairments are all decided here, at
// send time; only the receiving conn is looked up at delivery.
func (n *Network) send(c *Conn, b []byte, dst netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	now := n.now()
	n.stats.add(cSent, 1)
	n.stats.add(cSentBytes, uint64(len(b)))
	c.stats.add(cSent, 1)
	c.stats.add(cSentBytes, uint64(len(b)))

	src := c.addr
	seen := src // source address as the receiver sees it
	natS := n.natForLocked(src.Addr())
	if natS != nil && !natS.inside.Contains(dst.Addr()) {
		pub, ok := natS.outbound(src, dst, now)
		if !ok {
			n.count(c, cNAT)
			return
		}
		seen = pub
	}
	to := dst // receiving conn's own address
	if natD := n.natByPublic[dst.Addr()]; natD != nil {
		inner, ok := natD.inbound(dst.Port(), seen, now)
		if !ok {
			n.count(c, cNAT)
			return
		}
		to = inner
	} else if natD := n.natForLocked(dst.Addr()); natD != nil && natD != natS {
		// A private address is not routable from outside its NAT.
		n.count(c, cNAT)
		return
	}

	pair := hostPair{src.Addr(), to.Addr()}
	if n.isBlockedLocked(pair) {
		n.count(c, cBlocked)
		return
	}
	l, ok := n.links[pair]
	if !ok {
		l = n.defLink
	}
	wire := wireSize(len(b), to.Addr())
	if l.MTU > 0 && wire > l.MTU {
		n.count(c, cMTU)
		return
	}
	var st *linkState
	if l.stateful() {
		st = n.state[pair]
		if st == nil {
			st = &linkState{}
			n.state[pair] = st
		}
	}
	at := now
	if l.Bandwidth > 0 {
		start := max(now, st.busyUntil)
		backlog := int64(float64(start-now) * float64(l.Bandwidth) / 1e9)
		if limit := l.queueLimit(); limit >= 0 && backlog > 0 && backlog+int64(wire) > limit {
			n.count(c, cQueue)
			return
		}
		tx := time.Duration(float64(wire) * 1e9 / float64(l.Bandwidth))
		st.busyUntil = start + tx
		at = st.busyUntil
	}
	if l.lost(st, n.rng) {
		n.count(c, cLoss)
		return
	}
	at += l.Delay
	if l.Jitter > 0 {
		at += time.Duration(n.rng.Int64N(int64(l.Jitter) + 1))
	}
	if l.Reorder > 0 && n.rng.Float64() < l.Reorder {
		n.count(c, cReordered)
		at += l.reorderGap()
	} else if st != nil {
		at = max(at, st.lastArrival)
		st.lastArrival = at
	}
	dup := l.Duplicate > 0 && n.rng.Float64() < l.Duplicate

	if n.tick > 0 {
		at = (at + n.tick - 1) / n.tick * n.tick
	}
	p := getPacket(b)
	p.src, p.dst, p.from = seen, to, c
	n.scheduleLocked(p, at, now)
	if dup {
		n.count(c, cDuplicated)
		q := getPacket(b)
		q.src, q.dst, q.from = seen, to, c
		n.scheduleLocked(q, at, now)
	}
}

func (n *Network) isBlockedLocked(pair hostPair) bool {
	if _, ok := n.blocked[pair]; ok {
		return true
	}
	if len(n.group) == 0 {
		return false
	}
	return n.group[pair.from] != n.group[pair.to]
}

// scheduleLocked delivers p at time at: now if it is due and nothing due is
// still queued ahead of it, otherwise through the heap and the timer.
func (n *Network) scheduleLocked(p *packet, at, now time.Duration) {
	if at <= now {
		n.flushLocked(now) // keep anything overdue ahead of p
		n.deliverLocked(p)
		return
	}
	n.seq++
	p.at, p.seq = at, n.seq
	n.pending.push(p)
	n.armLocked(now)
}

// armLocked makes sure the timer fires no later than the earliest pending
// delivery.
func (n *Network) armLocked(now time.Duration) {
	if len(n.pending) == 0 {
		return
	}
	at := n.pending[0].at
	if n.armed {
		if at >= n.armedAt {
			return
		}
		if !n.timer.Stop() {
			// The callback is already on its way; it re-arms for the
			// earliest delivery, which includes this one.
			return
		}
		n.armed = false
		n.inflight.Done()
	}
	d := at - now
	n.inflight.Add(1)
	n.armed, n.armedAt = true, at
	if n.timer == nil {
		n.timer = n.clock.AfterFunc(d, n.fire)
	} else {
		n.timer.Reset(d)
	}
}

// fire is the timer callback: deliver what is due, re-arm for the rest.
func (n *Network) fire() {
	defer n.inflight.Done()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.armed = false
	if n.closed {
		return
	}
	now := n.now()
	n.flushLocked(now)
	n.armLocked(now)
}

func (n *Network) flushLocked(now time.Duration) {
	for len(n.pending) > 0 && n.pending[0].at <= now {
		n.deliverLocked(n.pending.pop())
	}
}

func (n *Network) deliverLocked(p *packet) {
	c := n.conns[p.dst]
	if c == nil {
		n.count(p.from, cNoListener)
		putPacket(p)
		return
	}
	size := uint64(len(p.data))
	switch c.enqueue(p) {
	case enqueued:
		n.stats.add(cReceived, 1)
		n.stats.add(cReceivedBytes, size)
		c.stats.add(cReceived, 1)
		c.stats.add(cReceivedBytes, size)
	case queueFull:
		n.stats.add(cBuffer, 1)
		c.stats.add(cBuffer, 1)
		putPacket(p)
	default: // closed
		n.count(p.from, cNoListener)
		putPacket(p)
	}
}

// natForLocked returns the NAT whose inside prefix holds ip, if any. It
// looks up one map entry per distinct prefix length, so it stays cheap
// with thousands of NATs.
func (n *Network) natForLocked(ip netip.Addr) *NAT {
	for _, bits := range n.natBits {
		p, err := ip.Prefix(bits)
		if err != nil {
			continue
		}
		if t := n.natByPrefix[p]; t != nil {
			return t
		}
	}
	return nil
}

func (n *Network) addNATBitsLocked(bits int) {
	if !slices.Contains(n.natBits, bits) {
		n.natBits = append(n.natBits, bits)
		slices.Sort(n.natBits)
	}
}
