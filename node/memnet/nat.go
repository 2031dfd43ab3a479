package memnet

import (
	"fmt"
	"net/netip"
	"time"
)

// Filtering is a NAT's inbound filtering behaviour (RFC 4787, section 5):
// which outside sources may send to a mapped address.
type Filtering int

const (
	// FilterAddressAndPort admits a datagram only from an address and port
	// the inside host has sent to through this mapping ("port-restricted
	// cone"). It is the zero value: the common, strict home-router case in
	// which peers can only meet through a rendezvous's introduction.
	FilterAddressAndPort Filtering = iota
	// FilterAddress admits datagrams from any port of an address the inside
	// host has sent to ("restricted cone").
	FilterAddress
	// FilterNone admits datagrams from anyone once the mapping exists
	// ("full cone").
	FilterNone
)

// String returns the RFC 4787 name of the behaviour.
func (f Filtering) String() string {
	switch f {
	case FilterAddressAndPort:
		return "address-and-port-dependent"
	case FilterAddress:
		return "address-dependent"
	case FilterNone:
		return "endpoint-independent"
	}
	return fmt.Sprintf("Filtering(%d)", int(f))
}

// NATConfig configures a NAT.
type NATConfig struct {
	// Public is the NAT's public address. The zero Addr picks the next free
	// address of 198.18.0.0/15, the benchmarking range.
	Public netip.Addr
	// Inside is the private prefix behind the NAT; conns listening on an
	// address in it are behind the NAT. It must not overlap another NAT's.
	// The zero Prefix picks the next free /24 of 172.16.0.0/12.
	Inside netip.Prefix
	// Filtering is the inbound filtering behaviour.
	Filtering Filtering
	// Timeout, when positive, forgets a permission (a remote endpoint the
	// inside host sent to) that has not been refreshed by an outbound
	// datagram for that long, so inbound datagrams from it are filtered
	// again; keepalives must beat it. The mapping's public port is kept.
	Timeout time.Duration
}

// NAT is a network address translator in front of a private prefix, with
// endpoint-independent mapping: each inside address and port gets one public
// port on the NAT's public address, used for every destination. Datagrams
// from inside to outside are rewritten to come from the mapping; datagrams to
// a mapping are filtered (see Filtering) and forwarded to the inside host.
// Hosts inside the same NAT reach each other directly by private address, and
// a host reaching its own NAT's public address is hairpinned.
//
// Impairments, Block and Partition apply between the real hosts (the inside
// address, not the public one).
type NAT struct {
	net       *Network
	public    netip.Addr
	inside    netip.Prefix
	filtering Filtering
	timeout   time.Duration

	// Guarded by net.mu.
	byInside map[netip.AddrPort]*natMapping
	byPort   map[uint16]*natMapping
	nextPort uint16
	nextHost uint32
}

type natMapping struct {
	inside netip.AddrPort
	public netip.AddrPort
	// perms holds the remote endpoints sent to and when last, keyed as the
	// filtering behaviour compares them.
	perms   map[netip.AddrPort]time.Duration
	lastOut time.Duration
}

const (
	natPortFirst = 1024
	natPortCount = 65536 - natPortFirst
	// natPermsSweep is the permission count above which expired ones are
	// swept on insert, bounding the memory of a chatty inside host.
	natPermsSweep = 1024
)

// AddNAT creates a NAT. Conns already listening inside its prefix are
// behind it from now on.
func (n *Network) AddNAT(cfg NATConfig) (*NAT, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrNetworkClosed
	}
	inside := cfg.Inside.Masked()
	if !cfg.Inside.IsValid() {
		p, ok := n.nextNATPrefixLocked()
		if !ok {
			return nil, fmt.Errorf("%w: 172.16.0.0/12 is full", ErrExhausted)
		}
		inside = p
	}
	for _, t := range n.nats {
		if t.inside.Overlaps(inside) {
			return nil, fmt.Errorf("%w: NAT inside %v overlaps %v", ErrBadAddr, inside, t.inside)
		}
	}
	public := cfg.Public.Unmap()
	if !cfg.Public.IsValid() {
		unused := func(ip netip.Addr) bool { return n.hosts[ip] == 0 && !inside.Contains(ip) }
		ip, ok := n.nextHostLocked(netip.AddrFrom4([4]byte{198, 18, 0, 0}), 17, &n.nextNATPub, nil, unused)
		if !ok {
			return nil, fmt.Errorf("%w: 198.18.0.0/15 is full", ErrExhausted)
		}
		public = ip
	}
	if public.IsUnspecified() || inside.Contains(public) || n.natForLocked(public) != nil {
		return nil, fmt.Errorf("%w: NAT public address %v", ErrBadAddr, public)
	}
	if _, ok := n.natByPublic[public]; ok || n.hosts[public] > 0 {
		return nil, fmt.Errorf("%w: NAT public address %v", ErrAddrInUse, public)
	}
	t := &NAT{
		net:       n,
		public:    public,
		inside:    inside,
		filtering: cfg.Filtering,
		timeout:   cfg.Timeout,
		byInside:  make(map[netip.AddrPort]*natMapping),
		byPort:    make(map[uint16]*natMapping),
		nextPort:  natPortFirst,
	}
	n.nats = append(n.nats, t)
	n.natByPublic[public] = t
	n.natByPrefix[inside] = t
	n.addNATBitsLocked(inside.Bits())
	return t, nil
}

func (n *Network) nextNATPrefixLocked() (netip.Prefix, bool) {
	for n.nextNATNet < 1<<12 {
		k := n.nextNATNet
		n.nextNATNet++
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(16 + k>>8), byte(k), 0}), 24)
		free := true
		for _, t := range n.nats {
			if t.inside.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// Public returns the NAT's public address.
func (t *NAT) Public() netip.Addr { return t.public }

// Inside returns the private prefix behind the NAT.
func (t *NAT) Inside() netip.Prefix { return t.inside }

// Filtering returns the NAT's filtering behaviour.
func (t *NAT) Filtering() Filtering { return t.filtering }

// Mapping returns the public address and port mapped to an inside address,
// if it has sent anything out yet. Peers learn it the real way, from the
// source of what they receive; Mapping is for tests and tracing.
func (t *NAT) Mapping(inside netip.AddrPort) (netip.AddrPort, bool) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	m := t.byInside[inside]
	if m == nil {
		return netip.AddrPort{}, false
	}
	return m.public, true
}

// ListenAuto binds a Conn to the next free address of the inside prefix,
// port AutoPort.
func (t *NAT) ListenAuto() (*Conn, error) {
	n := t.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrNetworkClosed
	}
	if !t.inside.Addr().Is4() || t.inside.Bits() > 30 {
		return nil, fmt.Errorf("%w: NAT inside %v has no automatic addresses", ErrBadAddr, t.inside)
	}
	ip, ok := n.nextHostLocked(t.inside.Addr(), 32-t.inside.Bits(), &t.nextHost, t, n.autoPortFree)
	if !ok {
		return nil, fmt.Errorf("%w: NAT inside %v is full", ErrExhausted, t.inside)
	}
	return n.bindLocked(netip.AddrPortFrom(ip, AutoPort)), nil
}

// permKey is how the filtering behaviour identifies a remote endpoint.
func (t *NAT) permKey(remote netip.AddrPort) netip.AddrPort {
	if t.filtering == FilterAddress {
		return netip.AddrPortFrom(remote.Addr(), 0)
	}
	return remote
}

// outbound translates a datagram from inside to remote, creating the
// mapping if needed and recording the permission. It fails only when the
// NAT's ports are exhausted. Called with net.mu held.
func (t *NAT) outbound(inside, remote netip.AddrPort, now time.Duration) (netip.AddrPort, bool) {
	m := t.byInside[inside]
	if m == nil {
		port, ok := t.freePort()
		if !ok {
			return netip.AddrPort{}, false
		}
		m = &natMapping{
			inside: inside,
			public: netip.AddrPortFrom(t.public, port),
			perms:  make(map[netip.AddrPort]time.Duration),
		}
		t.byInside[inside] = m
		t.byPort[port] = m
	}
	m.lastOut = now
	if t.filtering != FilterNone {
		key := t.permKey(remote)
		if _, ok := m.perms[key]; !ok && t.timeout > 0 && len(m.perms) >= natPermsSweep {
			for k, last := range m.perms {
				if now-last > t.timeout {
					delete(m.perms, k)
				}
			}
		}
		m.perms[key] = now
	}
	return m.public, true
}

// inbound finds the inside endpoint for a datagram from remote to the
// NAT's public port, applying filtering. Called with net.mu held.
func (t *NAT) inbound(port uint16, remote netip.AddrPort, now time.Duration) (netip.AddrPort, bool) {
	m := t.byPort[port]
	if m == nil {
		return netip.AddrPort{}, false
	}
	last := m.lastOut
	if t.filtering != FilterNone {
		var ok bool
		if last, ok = m.perms[t.permKey(remote)]; !ok {
			return netip.AddrPort{}, false
		}
	}
	if t.timeout > 0 && now-last > t.timeout {
		return netip.AddrPort{}, false
	}
	return m.inside, true
}

func (t *NAT) freePort() (uint16, bool) {
	for range natPortCount {
		p := t.nextPort
		t.nextPort++
		if t.nextPort == 0 {
			t.nextPort = natPortFirst
		}
		if _, used := t.byPort[p]; !used {
			return p, true
		}
	}
	return 0, false
}
