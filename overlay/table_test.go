package overlay

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"sort"
	"testing"

	"github.com/strata-net/strata/node"
)

func randPeer(r *rand.Rand) node.PeerID {
	var p node.PeerID
	for i := range p {
		p[i] = byte(r.UintN(256))
	}
	return p
}

func randAddr(r *rand.Rand) Address {
	var a Address
	for i := range a {
		a[i] = byte(r.UintN(256))
	}
	return a
}

func TestAddressOfDependsOnGroup(t *testing.T) {
	var g1, g2 GroupID
	g2[0] = 1
	p := node.PeerID{1, 2, 3}
	if AddressOf(g1, p) == AddressOf(g2, p) {
		t.Fatal("same address in two groups")
	}
	if a, b := AddressOf(g1, p), AddressOf(g1, node.PeerID{1, 2, 3}); a != b {
		t.Fatal("not deterministic")
	}
}

func TestXorHelpers(t *testing.T) {
	tests := []struct {
		a, b   Address
		cpl    int
		target Address
		closer bool // a closer to target than b
	}{
		{Address{}, Address{}, 256, Address{}, false},
		{Address{0x80}, Address{}, 0, Address{}, false},
		{Address{0x01}, Address{0x02}, 6, Address{0x03}, false},
		{Address{0x03}, Address{0x02}, 7, Address{0x03}, true},
		{Address{0, 0x10}, Address{}, 11, Address{0, 0x10}, true},
	}
	for i, tt := range tests {
		if got := CommonPrefixLen(tt.a, tt.b); got != tt.cpl {
			t.Errorf("%d: cpl %d, want %d", i, got, tt.cpl)
		}
		if got := Closer(tt.a, tt.b, tt.target); got != tt.closer {
			t.Errorf("%d: closer %v, want %v", i, got, tt.closer)
		}
	}
	if f := fraction(Address{}, Address{0x80}); f != 0.5 {
		t.Errorf("fraction %v", f)
	}
}

func TestParseGroupID(t *testing.T) {
	g := GroupID{0xab, 0xcd}
	got, err := ParseGroupID(g.String())
	if err != nil || got != g {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "zz", "abcd"} {
		if _, err := ParseGroupID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// bruteNearest is the reference: sort everyone by distance.
func bruteNearest(all []Contact, target Address, n int) []Contact {
	cs := append([]Contact(nil), all...)
	SortByDistance(cs, target)
	if len(cs) > n {
		cs = cs[:n]
	}
	return cs
}

func TestRoutingTableKeepsNearestExactly(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	g := GroupID{7}
	self := randPeer(r)
	tab := NewRoutingTable(g, self, 20)
	defer tab.Close()
	var all []Contact
	ap := netip.MustParseAddrPort("10.0.0.1:1")
	for i := 0; i < 500; i++ {
		p := randPeer(r)
		all = append(all, Contact{PeerID: p, Addr: ap, Address: AddressOf(g, p)})
		tab.Add(p, ap, true)
	}
	if tab.Add(self, ap, true) {
		t.Fatal("self added")
	}
	if tab.Size() < 60 || tab.Size() > 500 {
		t.Fatalf("size %d", tab.Size())
	}
	// The k nearest to self always fit (the deepest buckets are not full).
	want := bruteNearest(all, tab.Self(), 20)
	got := tab.Nearest(tab.Self(), 20)
	for i := range want {
		if got[i].PeerID != want[i].PeerID {
			t.Fatalf("nearest[%d] = %x, want %x", i, got[i].Address[:4], want[i].Address[:4])
		}
	}
	// Removing the nearest promotes the next.
	tab.Remove(want[0].PeerID)
	if n := tab.Nearest(tab.Self(), 1); n[0].PeerID != want[1].PeerID {
		t.Fatal("remove did not take effect")
	}
	if _, ok := tab.Get(want[0].PeerID); ok {
		t.Fatal("removed contact still there")
	}
	if len(tab.RefreshTargets()) < 4 {
		t.Fatalf("refresh targets %d", len(tab.RefreshTargets()))
	}
	for cpl, a := range tab.RefreshTargets() {
		if got := CommonPrefixLen(a, tab.Self()); got != cpl {
			t.Errorf("refresh target %d has cpl %d", cpl, got)
		}
	}
}

func TestRoutingTableVerifiedNotReplaced(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	g := GroupID{1}
	tab := NewRoutingTable(g, randPeer(r), 2)
	defer tab.Close()
	ap := netip.MustParseAddrPort("10.0.0.1:1")
	// Fill bucket 0 (addresses differing in the first bit) with verified
	// contacts, then offer unverified newcomers for the same bucket.
	var verified, later []node.PeerID
	for len(verified) < 2 || len(later) < 5 {
		p := randPeer(r)
		if CommonPrefixLen(AddressOf(g, p), tab.Self()) != 0 {
			continue
		}
		if len(verified) < 2 {
			verified = append(verified, p)
		} else {
			later = append(later, p)
		}
	}
	for _, p := range verified {
		tab.Add(p, ap, true)
	}
	// Add something deeper so bucket 0 is not the last (splittable) one.
	for {
		p := randPeer(r)
		if CommonPrefixLen(AddressOf(g, p), tab.Self()) >= 1 {
			tab.Add(p, ap, true)
			break
		}
	}
	for _, p := range later {
		tab.Add(p, ap, false)
	}
	for _, p := range verified {
		if _, ok := tab.Get(p); !ok {
			t.Fatalf("verified contact displaced")
		}
	}
}

func TestEstimateMembers(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{50, 100, 500, 2000} {
		var errs []float64
		bias := 0.0
		for trial := 0; trial < 200; trial++ {
			addrs := make([]Address, n)
			for i := range addrs {
				addrs[i] = randAddr(r)
			}
			center := addrs[0]
			others := append([]Address(nil), addrs[1:]...)
			sort.Slice(others, func(i, j int) bool { return Closer(others[i], others[j], center) })
			est := EstimateMembers(center, others[:20])
			errs = append(errs, math.Abs(est-float64(n))/float64(n))
			bias += (est - float64(n)) / float64(n) / 200
		}
		if math.Abs(bias) > 0.03 {
			t.Errorf("n=%d: mean signed error %.3f: the estimator is biased", n, bias)
		}
		sort.Float64s(errs)
		med := errs[len(errs)/2]
		t.Logf("n=%d median relative error %.3f, p90 %.3f, mean signed %.3f", n, med, errs[len(errs)*9/10], bias)
		if med > 0.25 {
			t.Errorf("n=%d: median error %.2f", n, med)
		}
	}
	if EstimateMembers(Address{}, nil) != 1 {
		t.Error("empty estimate")
	}
}

func TestNextHop(t *testing.T) {
	c := func(b byte) Contact { return Contact{PeerID: node.PeerID{b}, Address: Address{b}} }
	tests := []struct {
		name   string
		self   Address
		target Address
		cands  []Contact
		excl   byte
		want   byte
		ok     bool
	}{
		{"no candidates", Address{0x10}, Address{0x11}, nil, 0, 0, false},
		{"self nearest", Address{0x11}, Address{0x11}, []Contact{c(0x10), c(0x20)}, 0, 0, false},
		{"pick nearest", Address{0x80}, Address{0x11}, []Contact{c(0x40), c(0x10), c(0x20)}, 0, 0x10, true},
		{"skip excluded", Address{0x80}, Address{0x11}, []Contact{c(0x40), c(0x10), c(0x20)}, 0x10, 0x20, true},
		{"only farther", Address{0x12}, Address{0x11}, []Contact{c(0x40), c(0x20)}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, ok := NextHop(tt.self, tt.target, tt.cands, func(x Contact) bool { return tt.excl != 0 && x.PeerID[0] == tt.excl })
			if ok != tt.ok || ok && next.PeerID[0] != tt.want {
				t.Fatalf("got %x %v, want %x %v", next.PeerID[0], ok, tt.want, tt.ok)
			}
		})
	}
}

func TestChooseNeighbours(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	self := randAddr(r)
	var cs []Contact
	for i := 0; i < 100; i++ {
		p := randPeer(r)
		cs = append(cs, Contact{PeerID: p, Address: randAddr(r)})
	}
	tests := []struct{ max, distant, n int }{{12, 4, 100}, {8, 0, 100}, {12, 4, 5}, {6, 3, 100}}
	for _, tt := range tests {
		got := ChooseNeighbours(self, cs[:tt.n], tt.max, tt.distant)
		want := min(tt.max, tt.n)
		if len(got) != want {
			t.Fatalf("%+v: %d neighbours, want %d", tt, len(got), want)
		}
		seen := map[node.PeerID]bool{}
		for _, c := range got {
			if seen[c.PeerID] {
				t.Fatalf("%+v: duplicate", tt)
			}
			seen[c.PeerID] = true
		}
		sorted := bruteNearest(cs[:tt.n], self, tt.n)
		near := min(tt.n, tt.max-tt.distant)
		for i := 0; i < near; i++ {
			if !seen[sorted[i].PeerID] {
				t.Fatalf("%+v: nearest #%d missing", tt, i)
			}
		}
		if tt.n > tt.max && tt.distant > 0 {
			// The farthest bucket (cpl 0) is represented.
			found := false
			for _, c := range got {
				if CommonPrefixLen(c.Address, self) == 0 {
					found = true
				}
			}
			if !found {
				t.Fatalf("%+v: no distant neighbour", tt)
			}
		}
	}
}

// The table keeps its estimate between changes (EstimateMembers): after
// every add, promotion and removal it must equal one computed afresh from
// the table's nearest contacts.
func TestTableEstimateFollowsChanges(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var g GroupID
	tab := NewRoutingTable(g, randPeer(r), 8)
	fresh := func() float64 {
		near := tab.Nearest(tab.Self(), tab.K())
		addrs := make([]Address, len(near))
		for i, c := range near {
			addrs[i] = c.Address
		}
		return EstimateMembers(tab.Self(), addrs)
	}
	addr := netip.MustParseAddrPort("127.0.0.1:1")
	var peers []node.PeerID
	changes := 0
	for step := 0; step < 400; step++ {
		before := tab.EstimateMembers()
		switch {
		case step%5 == 4 && len(peers) > 0:
			i := r.IntN(len(peers))
			tab.Remove(peers[i])
			peers = append(peers[:i], peers[i+1:]...)
		case step%7 == 6 && len(peers) > 0:
			tab.Add(peers[r.IntN(len(peers))], addr, true) // promotion
		default:
			p := randPeer(r)
			if tab.Add(p, addr, r.IntN(2) == 0) {
				peers = append(peers, p)
			}
		}
		got, want := tab.EstimateMembers(), fresh()
		if got != want {
			t.Fatalf("step %d: estimate %v, afresh %v", step, got, want)
		}
		if got != before {
			changes++
		}
	}
	if changes < 20 {
		t.Fatalf("the estimate changed %d times in 400 steps: the test exercises nothing", changes)
	}
}

// A change farther from the member than the K-th contact of the kept
// estimate does not make EstimateMembers compute it again (most changes
// in a large group); TestTableEstimateFollowsChanges checks the result
// stays exact.
func TestTableEstimateKeptForFarChanges(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var g GroupID
	tab := NewRoutingTable(g, randPeer(r), 8)
	addr := netip.MustParseAddrPort("127.0.0.1:1")
	var in []node.PeerID
	for range 2000 {
		if p := randPeer(r); tab.Add(p, addr, true) {
			in = append(in, p)
		}
	}
	tab.EstimateMembers()
	gen := func() uint64 { tab.mu.Lock(); defer tab.mu.Unlock(); return tab.gen }
	before := gen()
	for _, p := range in[:len(in)/2] { // the first in: mostly far buckets
		tab.Remove(p)
		tab.EstimateMembers()
	}
	t.Logf("%d in the table", len(in))
	if bumps, changes := gen()-before, len(in)/2; changes < 20 || bumps > uint64(changes)/4 {
		t.Fatalf("%d of %d removals made the estimate be computed again (want a quarter at most)", bumps, changes)
	}
}
