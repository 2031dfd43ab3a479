package overlay

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/strata-net/strata/node"
)

// Contact is a member of a group as a routing table knows it.
type Contact struct {
	PeerID  node.PeerID
	Addr    netip.AddrPort
	Address Address
}

// RoutingTable is one member's k-bucket table of the other members of a
// group, ordered by XOR distance from the member's own address. It wraps a
// go-libp2p-kbucket table and remembers each contact's network address.
//
// The kbucket table keys a peer by SHA-256 of its ID; the wrapper gives it
// the ID groupID||peerID, so that key is exactly the member's group address
// (AddressOf) and the table's buckets and distances are the group's.
//
// Contacts heard of from others are replaceable: a newcomer takes the place
// of one in a full bucket. A contact proven alive (a session, an answer) is
// not, which is the Kademlia preference for long-lived members.
//
// A RoutingTable is safe for concurrent use.
type RoutingTable struct {
	group GroupID
	self  Address
	k     int
	rt    *kb.RoutingTable

	mu       sync.Mutex
	contacts map[node.PeerID]*entry

	// gen counts the changes to the table's peers that can move
	// EstimateMembers' result, which it keeps for a generation (every
	// link a member opens reports it). Only the K contacts nearest the
	// member count: a change farther than the K-th of the last result
	// leaves it as it is (most changes: 2.7 % of a 2,000-member
	// simulation's CPU recomputed it for them).
	gen      uint64  // under mu
	estGen   uint64  // under mu: the generation est was computed for (0: none)
	estimate float64 // under mu
	estKth   Address // under mu: the K-th nearest of that result
	estFull  bool    // under mu: the result had K contacts (estKth is set)
	estBusy  int     // under mu: estimates being computed
}

type entry struct {
	c        Contact
	verified bool
}

// noMetrics satisfies the kbucket table's latency hook: latency plays no
// part in our admission (every peer measures zero).
type noMetrics struct{}

func (noMetrics) RecordLatency(peer.ID, time.Duration) {}
func (noMetrics) LatencyEWMA(peer.ID) time.Duration    { return 0 }
func (noMetrics) RemovePeer(peer.ID)                   {}

// NewRoutingTable makes an empty table for the member with peer ID self in
// group g, with buckets of k contacts.
func NewRoutingTable(g GroupID, self node.PeerID, k int) *RoutingTable {
	if k <= 0 {
		k = DefaultK
	}
	addr := AddressOf(g, self)
	rt, _ := kb.NewRoutingTable(k, kb.ID(addr[:]), time.Hour, noMetrics{}, 0, nil)
	t := &RoutingTable{group: g, self: addr, k: k, rt: rt, contacts: make(map[node.PeerID]*entry)}
	rt.PeerRemoved = t.removed
	rt.PeerAdded = func(peer.ID) {}
	return t
}

func (t *RoutingTable) kid(p node.PeerID) peer.ID {
	b := make([]byte, 0, 64)
	b = append(b, t.group[:]...)
	b = append(b, p[:]...)
	return peer.ID(b)
}

func (t *RoutingTable) pid(id peer.ID) (p node.PeerID) {
	copy(p[:], id[len(t.group):])
	return p
}

// removed is the kbucket table's eviction callback (called with its lock
// held, never with ours: we never call into it while holding t.mu).
func (t *RoutingTable) removed(id peer.ID) {
	if len(id) != 64 {
		return
	}
	p := t.pid(id)
	t.changed(AddressOf(t.group, p))
	t.mu.Lock()
	delete(t.contacts, p)
	t.mu.Unlock()
}

// changed records that the contact at address a came, went or changed,
// after the kbucket table has the change: a generation passes if a is
// among the K nearest the member (or as near as the K-th) of the kept
// estimate, or one is being computed.
func (t *RoutingTable) changed(a Address) {
	t.mu.Lock()
	if t.estBusy > 0 || t.estGen == 0 || !t.estFull || !Closer(t.estKth, a, t.self) {
		t.gen++
		t.estGen = 0
	}
	t.mu.Unlock()
}

// Self is the member's own address.
func (t *RoutingTable) Self() Address { return t.self }

// Group is the table's group.
func (t *RoutingTable) Group() GroupID { return t.group }

// K is the bucket size.
func (t *RoutingTable) K() int { return t.k }

// Add offers a contact to the table. verified says the contact was seen
// alive just now; such contacts are not displaced by newcomers. It reports
// whether the contact is in the table afterwards. The member itself is never
// added.
func (t *RoutingTable) Add(p node.PeerID, addr netip.AddrPort, verified bool) bool {
	c := Contact{PeerID: p, Addr: addr, Address: AddressOf(t.group, p)}
	if c.Address == t.self {
		return false
	}
	id := t.kid(p)
	t.mu.Lock()
	e := t.contacts[p]
	if e != nil {
		if addr.IsValid() {
			e.c.Addr = addr
		}
		promote := verified && !e.verified
		if promote {
			e.verified = true
		}
		t.mu.Unlock()
		if promote {
			// kbucket cannot change a peer's replaceable flag: re-add.
			t.rt.RemovePeer(id)
			t.mu.Lock()
			t.contacts[p] = e
			t.mu.Unlock()
			_, err := t.rt.TryAddPeer(id, true, false)
			t.changed(c.Address)
			if err != nil {
				t.mu.Lock()
				delete(t.contacts, p)
				t.mu.Unlock()
				return false
			}
		}
		return true
	}
	if !addr.IsValid() {
		t.mu.Unlock()
		return false
	}
	e = &entry{c: c, verified: verified}
	t.contacts[p] = e
	t.mu.Unlock()
	added, err := t.rt.TryAddPeer(id, verified, !verified)
	t.changed(c.Address)
	if err != nil || !added {
		t.mu.Lock()
		if t.contacts[p] == e {
			delete(t.contacts, p)
		}
		t.mu.Unlock()
		return false
	}
	return true
}

// Remove forgets a contact (it left, or proved dead).
func (t *RoutingTable) Remove(p node.PeerID) {
	t.rt.RemovePeer(t.kid(p))
	t.changed(AddressOf(t.group, p))
	t.mu.Lock()
	delete(t.contacts, p)
	t.mu.Unlock()
}

// Get returns the contact with peer ID p, if the table has it.
func (t *RoutingTable) Get(p node.PeerID) (Contact, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.contacts[p]; e != nil {
		return e.c, true
	}
	return Contact{}, false
}

// Size is the number of contacts.
func (t *RoutingTable) Size() int { return t.rt.Size() }

// Nearest returns up to n contacts nearest target, nearest first.
func (t *RoutingTable) Nearest(target Address, n int) []Contact {
	ids := t.rt.NearestPeers(kb.ID(target[:]), n)
	out := make([]Contact, 0, len(ids))
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		if len(id) != 64 {
			continue
		}
		if e := t.contacts[t.pid(id)]; e != nil {
			out = append(out, e.c)
		}
	}
	return out
}

// Contacts returns every contact, nearest to the member first.
func (t *RoutingTable) Contacts() []Contact {
	t.mu.Lock()
	out := make([]Contact, 0, len(t.contacts))
	for _, e := range t.contacts {
		out = append(out, e.c)
	}
	t.mu.Unlock()
	SortByDistance(out, t.self)
	return out
}

// RefreshTargets returns one random address for every bucket the table has
// unfolded (common prefix lengths 0..deepest), the targets of a full
// refresh: looking each up repopulates its bucket.
func (t *RoutingTable) RefreshTargets() []Address {
	cpls := t.rt.GetTrackedCplsForRefresh()
	out := make([]Address, 0, len(cpls))
	for cpl := range cpls {
		id, err := t.rt.GenRandomKey(uint(cpl))
		if err != nil || len(id) != 32 {
			continue
		}
		var a Address
		copy(a[:], id)
		out = append(out, a)
	}
	return out
}

// EstimateMembers estimates the group's member count (the member included)
// from how densely the contacts nearest the member fill the key space.
func (t *RoutingTable) EstimateMembers() float64 {
	t.mu.Lock()
	gen := t.gen + 1 // +1: estGen 0 means none
	if t.estGen == gen {
		e := t.estimate
		t.mu.Unlock()
		return e
	}
	t.estBusy++
	t.mu.Unlock()
	near := t.Nearest(t.self, t.k)
	addrs := make([]Address, len(near))
	for i, c := range near {
		addrs[i] = c.Address
	}
	e := EstimateMembers(t.self, addrs)
	t.mu.Lock()
	t.estBusy--
	if t.gen+1 == gen {
		t.estGen, t.estimate = gen, e
		t.estFull = len(near) == t.k
		if t.estFull {
			t.estKth = near[len(near)-1].Address
		}
	}
	t.mu.Unlock()
	return e
}

// Close releases the table.
func (t *RoutingTable) Close() error { return t.rt.Close() }

// SortByDistance sorts contacts by XOR distance to target, nearest first.
func SortByDistance(cs []Contact, target Address) {
	sort.Slice(cs, func(i, j int) bool { return Closer(cs[i].Address, cs[j].Address, target) })
}

// EstimateMembers estimates how many members a group has from the
// addresses of the members nearest an address center that is itself a
// member's (nearest must be the nearest members, in any order, center
// excluded). With N members spread uniformly, the i-th nearest of the N-1
// others lies at a fraction about i/N of the key space; the least-squares
// fit of those fractions d_i to i/N gives N = Σi² / Σ i·d_i, scaled by
// (n-1)/n for n samples to remove its bias. It returns 1
// (the member alone) when nearest is empty.
func EstimateMembers(center Address, nearest []Address) float64 {
	if len(nearest) == 0 {
		return 1
	}
	d := make([]float64, len(nearest))
	for i, a := range nearest {
		d[i] = fraction(center, a)
	}
	sort.Float64s(d)
	var num, den float64
	for i, x := range d {
		r := float64(i + 1)
		num += r * r
		den += r * x
	}
	if den <= 0 {
		return float64(len(nearest) + 1)
	}
	// num/den is 1/x̄ for a mean x̄ of noisy ratios, biased high by
	// about 1/len (Jensen); measured 4-6 % for 20 samples.
	n := num / den
	if len(d) > 1 {
		n *= float64(len(d)-1) / float64(len(d))
	}
	if min := float64(len(nearest) + 1); n < min {
		n = min
	}
	return n
}
