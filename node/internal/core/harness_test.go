package core_test

import (
	"container/heap"
	"crypto/rand"
	mrand "math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/strata-net/strata/node/internal/core"
	"github.com/strata-net/strata/node/internal/flash"
	"github.com/strata-net/strata/node/internal/profile"
)

// simNet drives several sans-I/O endpoints on a virtual clock, with a
// per-packet delay, jitter (which reorders), loss and duplication. It is the
// core's own deterministic test bed: nothing runs unless step is called.
type simNet struct {
	t      testing.TB
	now    time.Time
	eps    map[netip.AddrPort]*core.Endpoint
	order  []netip.AddrPort
	q      pktHeap
	seq    int
	rng    *mrand.Rand
	delay  time.Duration
	jitter time.Duration
	loss   float64
	dup    float64
	filter func(from, to netip.AddrPort, pkt []byte) bool // false drops
	// rewrite, if set, may change a packet's source address (a NAT
	// rebinding, or a host that moved); deliveries to the new address
	// reach whichever endpoint is registered there.
	rewrite func(from, to netip.AddrPort) netip.AddrPort
	events  map[netip.AddrPort][]core.Event
	ids     map[*core.Endpoint][32]byte
	sent    int
	dropped int
	// ephemeral names the addresses whose endpoint (added after) gets an
	// ephemeral identity (no static Diffie-Hellman key).
	ephemeral map[string]bool
}

type simPkt struct {
	at       time.Time
	seq      int
	from, to netip.AddrPort
	data     []byte
}

type pktHeap []simPkt

func (h pktHeap) Len() int { return len(h) }
func (h pktHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h pktHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pktHeap) Push(x any)   { *h = append(*h, x.(simPkt)) }
func (h *pktHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newSimNet(t testing.TB, seed uint64) *simNet {
	return &simNet{
		t:      t,
		now:    time.Unix(1_700_000_000, 0),
		eps:    map[netip.AddrPort]*core.Endpoint{},
		rng:    mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		delay:  10 * time.Millisecond,
		events: map[netip.AddrPort][]core.Event{},
		ids:    map[*core.Endpoint][32]byte{},
	}
}

func newIdentity(t testing.TB) *flash.Identity {
	t.Helper()
	id, err := flash.NewIdentityDH(rand.Reader, true, false, "")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (n *simNet) add(addr string, cfg core.Config) (*core.Endpoint, *flash.Identity) {
	id := newIdentity(n.t)
	if n.ephemeral[addr] {
		var err error
		if id, err = flash.NewIdentityDH(rand.Reader, true, true, ""); err != nil {
			n.t.Fatal(err)
		}
	}
	ep := core.NewEndpoint(cfg, profile.Flash(id, flash.Policy{}), nil)
	ap := netip.MustParseAddrPort(addr)
	n.eps[ap] = ep
	n.ids[ep] = id.PeerID()
	n.order = append(n.order, ap)
	return ep, id
}

func (n *simNet) addrOf(ep *core.Endpoint) netip.AddrPort {
	for a, e := range n.eps {
		if e == ep {
			return a
		}
	}
	n.t.Fatal("unknown endpoint")
	return netip.AddrPort{}
}

// flush makes every endpoint transmit what it has.
func (n *simNet) flush() {
	for _, a := range n.order {
		ep := n.eps[a]
		from := a
		ep.Transmit(n.now, func(to netip.AddrPort, pkt []byte) {
			n.sent++
			from := from
			if n.rewrite != nil {
				from = n.rewrite(from, to)
			}
			if n.filter != nil && !n.filter(from, to, pkt) {
				n.dropped++
				return
			}
			if n.loss > 0 && n.rng.Float64() < n.loss {
				n.dropped++
				return
			}
			copies := 1
			if n.dup > 0 && n.rng.Float64() < n.dup {
				copies = 2
			}
			for i := 0; i < copies; i++ {
				d := n.delay
				if n.jitter > 0 {
					d += time.Duration(n.rng.Int64N(int64(n.jitter)))
				}
				n.seq++
				heap.Push(&n.q, simPkt{at: n.now.Add(d), seq: n.seq, from: from, to: to, data: append([]byte(nil), pkt...)})
			}
		}, 0)
		n.events[a] = append(n.events[a], ep.Events()...)
	}
}

// next transmits what the endpoints have and says when the next packet
// arrives or timer is due (zero: nothing pending).
func (n *simNet) next() time.Time {
	n.flush()
	next := time.Time{}
	if n.q.Len() > 0 {
		next = n.q[0].at
	}
	for _, ep := range n.eps {
		if d := ep.NextDeadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next
}

// step advances to the next packet or timer, and processes it.
func (n *simNet) step() bool {
	next := n.next()
	if next.IsZero() {
		return false
	}
	if next.After(n.now) {
		n.now = next
	}
	for n.q.Len() > 0 && !n.q[0].at.After(n.now) {
		p := heap.Pop(&n.q).(simPkt)
		if ep := n.eps[p.to]; ep != nil {
			ep.Receive(n.now, p.from, p.data)
		}
	}
	for _, ep := range n.eps {
		if d := ep.NextDeadline(); !d.IsZero() && !d.After(n.now) {
			ep.Tick(n.now)
		}
	}
	n.flush()
	for _, ep := range n.eps {
		if err := ep.CheckTimers(); err != nil {
			n.t.Fatal(err)
		}
	}
	return true
}

// runUntil steps until cond holds or the virtual deadline passes.
func (n *simNet) runUntil(limit time.Duration, cond func() bool) bool {
	end := n.now.Add(limit)
	stuck, last := 0, n.now
	for n.now.Before(end) {
		if cond() {
			return true
		}
		if !n.step() {
			return cond()
		}
		// A timer that stays due without advancing would spin a real
		// driver at 100 % CPU: fail loudly instead.
		if n.now.Equal(last) {
			if stuck++; stuck > 100000 {
				n.t.Fatalf("livelock: no progress of the clock at %v", n.now)
			}
		} else {
			stuck, last = 0, n.now
		}
	}
	return cond()
}

// runFor steps through everything due within d and leaves the clock at
// exactly d from now (runUntil's clock may jump past its limit to the
// next event).
func (n *simNet) runFor(d time.Duration, each func()) {
	end := n.now.Add(d)
	for {
		if next := n.next(); next.IsZero() || next.After(end) {
			n.now = end
			return
		}
		n.step()
		each()
	}
}

func (n *simNet) takeEvents(a netip.AddrPort) []core.Event {
	ev := n.events[a]
	n.events[a] = nil
	return ev
}
