package memnet

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

// natWorld is a rendezvous R on the open network and members A and B, each
// behind its own NAT.
type natWorld struct {
	n       *Network
	clk     *ManualClock
	r, a, b *Conn
	natA    *NAT
	natB    *NAT
	aPublic netip.AddrPort // A's mapping, as R learns it
	bPublic netip.AddrPort
}

func newNATWorld(t *testing.T, f Filtering, timeout time.Duration) *natWorld {
	t.Helper()
	n, clk := newManual(t, Config{})
	w := &natWorld{n: n, clk: clk}
	var err error
	if w.natA, err = n.AddNAT(NATConfig{Public: ip("203.0.113.1"), Inside: netip.MustParsePrefix("192.168.1.0/24"), Filtering: f, Timeout: timeout}); err != nil {
		t.Fatal(err)
	}
	if w.natB, err = n.AddNAT(NATConfig{Filtering: f, Timeout: timeout}); err != nil {
		t.Fatal(err)
	}
	w.r = listen(t, n, "198.51.100.1:1935")
	w.a = listen(t, n, "192.168.1.10:5000")
	if w.b, err = w.natB.ListenAuto(); err != nil {
		t.Fatal(err)
	}
	// Both register with the rendezvous, which learns their mappings from
	// the source addresses.
	w.aPublic = w.deliver(t, w.a, w.r, w.r.LocalAddrPort())
	w.bPublic = w.deliver(t, w.b, w.r, w.r.LocalAddrPort())
	return w
}

// try sends from one conn to addr and returns whether to received it.
func (w *natWorld) try(t *testing.T, from, to *Conn, addr netip.AddrPort) bool {
	t.Helper()
	send(t, from, addr, []byte("x"))
	_, srcs := drain(t, to)
	return len(srcs) == 1
}

// deliver is try that must succeed; it returns the source seen.
func (w *natWorld) deliver(t *testing.T, from, to *Conn, addr netip.AddrPort) netip.AddrPort {
	t.Helper()
	send(t, from, addr, []byte("x"))
	_, srcs := drain(t, to)
	if len(srcs) != 1 {
		t.Fatalf("%v -> %v (%v) was not delivered", from.LocalAddrPort(), to.LocalAddrPort(), addr)
	}
	return srcs[0]
}

func TestNATMappingAndRendezvous(t *testing.T) {
	w := newNATWorld(t, FilterAddressAndPort, 0)
	if w.aPublic.Addr() != ip("203.0.113.1") {
		t.Fatalf("A seen from %v, want its NAT's public address", w.aPublic)
	}
	if got, ok := w.natA.Mapping(w.a.LocalAddrPort()); !ok || got != w.aPublic {
		t.Fatalf("Mapping = %v %v, want %v", got, ok, w.aPublic)
	}
	if !w.natB.Public().IsValid() || !w.natB.Inside().Contains(w.b.LocalAddrPort().Addr()) {
		t.Fatalf("auto NAT %v %v, B at %v", w.natB.Public(), w.natB.Inside(), w.b.LocalAddrPort())
	}
	// Endpoint-independent mapping: the same public port for every
	// destination.
	other := listen(t, w.n, "198.51.100.2:1")
	if got := w.deliver(t, w.a, other, other.LocalAddrPort()); got != w.aPublic {
		t.Fatalf("A seen by another host as %v, want %v", got, w.aPublic)
	}
	// The rendezvous can answer through the mappings.
	if got := w.deliver(t, w.r, w.a, w.aPublic); got != w.r.LocalAddrPort() {
		t.Fatalf("A saw R as %v", got)
	}
	w.deliver(t, w.r, w.b, w.bPublic)
	// Members cannot reach each other directly until they punch through:
	// A's first datagram to B is filtered by B's NAT...
	if w.try(t, w.a, w.b, w.bPublic) {
		t.Fatal("A reached B unsolicited")
	}
	// ...but it opened A's NAT to B's mapping, so B gets through, which in
	// turn opens B's NAT to A.
	if got := w.deliver(t, w.b, w.a, w.aPublic); got != w.bPublic {
		t.Fatalf("A saw B as %v, want %v", got, w.bPublic)
	}
	w.deliver(t, w.a, w.b, w.bPublic)
	// A third member C, behind A's NAT kind, is still filtered by both.
	natC, err := w.n.AddNAT(NATConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := natC.ListenAuto()
	if err != nil {
		t.Fatal(err)
	}
	if w.try(t, c, w.a, w.aPublic) || w.try(t, c, w.b, w.bPublic) {
		t.Fatal("C reached a member unsolicited")
	}
	// Private addresses are not routable from outside.
	if w.try(t, w.r, w.a, w.a.LocalAddrPort()) || w.try(t, w.b, w.a, w.a.LocalAddrPort()) {
		t.Fatal("a private address was reached from outside")
	}
	// A port of the NAT without a mapping leads nowhere.
	if w.try(t, w.r, w.a, netip.AddrPortFrom(w.aPublic.Addr(), w.aPublic.Port()+100)) {
		t.Fatal("an unmapped NAT port delivered")
	}
	if s := w.n.Stats(); s.DroppedNAT != 6 {
		t.Fatalf("NAT drops %d, want 6", s.DroppedNAT)
	}
}

func TestNATFiltering(t *testing.T) {
	tests := []struct {
		filtering   Filtering
		samePortOK  bool // R's address and port, after A sent to R
		otherPortOK bool // R's address, another port
		otherHostOK bool // another address
	}{
		{FilterAddressAndPort, true, false, false},
		{FilterAddress, true, true, false},
		{FilterNone, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.filtering.String(), func(t *testing.T) {
			w := newNATWorld(t, tt.filtering, 0)
			rOtherPort := listen(t, w.n, "198.51.100.1:9999")
			otherHost := listen(t, w.n, "198.51.100.7:1935")
			if got := w.try(t, w.r, w.a, w.aPublic); got != tt.samePortOK {
				t.Errorf("same address and port: %v", got)
			}
			if got := w.try(t, rOtherPort, w.a, w.aPublic); got != tt.otherPortOK {
				t.Errorf("same address, other port: %v", got)
			}
			if got := w.try(t, otherHost, w.a, w.aPublic); got != tt.otherHostOK {
				t.Errorf("other address: %v", got)
			}
		})
	}
}

func TestNATTimeout(t *testing.T) {
	const timeout = 30 * time.Second
	for _, f := range []Filtering{FilterAddressAndPort, FilterNone} {
		t.Run(f.String(), func(t *testing.T) {
			w := newNATWorld(t, f, timeout)
			w.clk.Advance(timeout)
			w.deliver(t, w.r, w.a, w.aPublic) // exactly at the timeout: still open
			w.clk.Advance(time.Nanosecond)
			if w.try(t, w.r, w.a, w.aPublic) {
				t.Fatal("expired permission still admits")
			}
			// A keepalive refreshes it; the mapping keeps its port.
			if got := w.deliver(t, w.a, w.r, w.r.LocalAddrPort()); got != w.aPublic {
				t.Fatalf("mapping changed to %v", got)
			}
			w.deliver(t, w.r, w.a, w.aPublic)
		})
	}
}

func TestNATSameSiteAndHairpin(t *testing.T) {
	w := newNATWorld(t, FilterAddressAndPort, 0)
	a2 := listen(t, w.n, "192.168.1.11:5000")
	// Same NAT: private addresses work directly, without translation.
	if got := w.deliver(t, w.a, a2, a2.LocalAddrPort()); got != w.a.LocalAddrPort() {
		t.Fatalf("LAN peer saw %v", got)
	}
	// Hairpin: a2 sends to A's public mapping after A opened it to a2's.
	a2Public := w.deliver(t, a2, w.r, w.r.LocalAddrPort())
	send(t, w.a, a2Public, []byte("punch"))
	drain(t, a2)
	if got := w.deliver(t, a2, w.a, w.aPublic); got != a2Public {
		t.Fatalf("hairpinned datagram came from %v, want %v", got, a2Public)
	}
}

func TestNATConfigErrors(t *testing.T) {
	n, _ := newManual(t, Config{})
	if _, err := n.AddNAT(NATConfig{Public: ip("203.0.113.1"), Inside: netip.MustParsePrefix("192.168.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	listen(t, n, "198.51.100.1:1")
	tests := []struct {
		name string
		cfg  NATConfig
		want error
	}{
		{"overlapping inside", NATConfig{Public: ip("203.0.113.2"), Inside: netip.MustParsePrefix("192.168.5.0/24")}, ErrBadAddr},
		{"public reused", NATConfig{Public: ip("203.0.113.1"), Inside: netip.MustParsePrefix("172.31.0.0/24")}, ErrAddrInUse},
		{"public is a host", NATConfig{Public: ip("198.51.100.1"), Inside: netip.MustParsePrefix("172.31.0.0/24")}, ErrAddrInUse},
		{"public inside", NATConfig{Public: ip("172.31.0.9"), Inside: netip.MustParsePrefix("172.31.0.0/24")}, ErrBadAddr},
		{"public behind another NAT", NATConfig{Public: ip("192.168.9.9"), Inside: netip.MustParsePrefix("172.31.0.0/24")}, ErrBadAddr},
	}
	for _, tt := range tests {
		if _, err := n.AddNAT(tt.cfg); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := n.Listen(ap("203.0.113.1:1")); !errors.Is(err, ErrBadAddr) {
		t.Errorf("Listen on a NAT's public address: %v", err)
	}
	// Auto-allocated NATs never collide.
	seen := map[netip.Prefix]bool{}
	for range 20 {
		nat, err := n.AddNAT(NATConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if seen[nat.Inside()] {
			t.Fatalf("inside %v allocated twice", nat.Inside())
		}
		seen[nat.Inside()] = true
		c, err := nat.ListenAuto()
		if err != nil || !nat.Inside().Contains(c.LocalAddrPort().Addr()) {
			t.Fatalf("NAT ListenAuto = %v, %v", c, err)
		}
	}
}

// TestNATListenAutoReusesAddresses checks that a /24 behind a NAT does not
// run out when members come and go.
func TestNATListenAutoReusesAddresses(t *testing.T) {
	n, _ := newManual(t, Config{})
	nat, err := n.AddNAT(NATConfig{Inside: netip.MustParsePrefix("192.168.7.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	live := map[netip.AddrPort]bool{}
	for i := range 1000 {
		c, err := nat.ListenAuto()
		if err != nil {
			t.Fatalf("ListenAuto %d: %v", i, err)
		}
		if live[c.LocalAddrPort()] {
			t.Fatalf("address %v handed out twice", c.LocalAddrPort())
		}
		if i%2 == 0 {
			c.Close()
		} else {
			live[c.LocalAddrPort()] = true
		}
		if len(live) == 254 {
			break
		}
	}
	if _, err := nat.ListenAuto(); !errors.Is(err, ErrExhausted) {
		t.Fatalf("ListenAuto on a full /24: %v", err)
	}
}
