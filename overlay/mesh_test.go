package overlay

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
)

type member struct {
	n    *node.Node
	h    *Host
	g    *Group
	ip   netip.Addr
	dead bool

	recv chan timedDelivery
}

// timedDelivery is a delivery and when it came.
type timedDelivery struct {
	Delivery
	at time.Time
}

type mesh struct {
	t        testing.TB
	net      *memnet.Network
	gid      GroupID
	members  []*member
	width    int  // members bootstrapping at once (default 8)
	progress bool // log bootstrap progress (scale runs)
	// spread bootstraps each joiner through a random member that has
	// already joined instead of member 0 (large groups: one seed cannot
	// carry thousands of joins).
	spread bool
	seed   uint64 // for spread's choices
	// noClosingRefresh skips the refresh of every member after the joins
	// (each joiner refreshes as it joins anyway): at 5,000 members it
	// cost as much as the joins.
	noClosingRefresh bool
	// trialWidth is how many lookups or routes of a trial run at once
	// (default 16).
	trialWidth int
}

// logProgress logs what, with the heap and the sessions held per member;
// with STRATA_HEAP_PROFILE set it also writes the heap profile there.
func (m *mesh) logProgress(what string) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	open, closing := 0, 0
	for _, mb := range m.members {
		st := mb.n.Stats()
		open += st.SessionsOpen
		closing += st.SessionsClosing
	}
	n := float64(len(m.members))
	var tv syscall.Timeval
	syscall.Gettimeofday(&tv) // the real clock: time.Now is virtual in the bubble
	m.t.Logf("%s (at %s real): heap %.0f KiB, stacks %.0f KiB, %.1f open and %.1f closing sessions, %.0f goroutines per member",
		what, time.Unix(tv.Unix()).UTC().Format("15:04:05"), float64(ms.HeapAlloc)/n/1024, float64(ms.StackInuse)/n/1024,
		float64(open)/n, float64(closing)/n, float64(runtime.NumGoroutine())/n)
	if path := os.Getenv("STRATA_HEAP_PROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
}

func newMesh(t testing.TB, n int, cfg Config) *mesh {
	return newMeshOn(t, n, cfg, memnet.Link{Delay: time.Millisecond})
}

// newMeshOn is newMesh over links with the given impairments.
func newMeshOn(t testing.TB, n int, cfg Config, link memnet.Link) *mesh {
	t.Helper()
	return newMeshReceiving(t, n, cfg, link, true)
}

// newMeshReceiving is newMeshOn; receive says whether each member's
// deliveries are taken off its queue (into member.recv) as they come.
func newMeshReceiving(t testing.TB, n int, cfg Config, link memnet.Link, receive bool) *mesh {
	t.Helper()
	m := &mesh{t: t, net: memnet.New(memnet.Config{Seed: 1, Link: link}), gid: GroupID{0x5a, 0x17}}
	t.Cleanup(m.close)
	for i := 0; i < n; i++ {
		c, err := m.net.ListenAuto()
		if err != nil {
			t.Fatal(err)
		}
		nd, err := node.New(c, node.Config{KeepalivePeriod: time.Second, RetransmitLimit: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		h := NewHost(nd, HostConfig{})
		g, err := h.Join(m.gid, cfg)
		if err != nil {
			t.Fatal(err)
		}
		mb := &member{n: nd, h: h, g: g, ip: nd.AddrPort().Addr(), recv: make(chan timedDelivery, 1024)}
		m.members = append(m.members, mb)
		if !receive {
			continue
		}
		go func() {
			for {
				d, err := g.Receive(context.Background())
				if err != nil {
					return
				}
				mb.recv <- timedDelivery{d, time.Now()}
			}
		}()
	}
	return m
}

func (m *mesh) close() {
	var wg sync.WaitGroup
	for _, mb := range m.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mb.h.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			mb.n.Close(ctx)
			cancel()
		}()
	}
	wg.Wait()
	m.net.Close()
}

// parallel runs f for every live member, at most width at once.
func (m *mesh) parallel(width int, f func(i int, mb *member)) {
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for i, mb := range m.members {
		if mb.dead {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i, mb)
		}()
	}
	wg.Wait()
}

// bootstrap joins every member through member 0, then refreshes everyone
// once more so the tables converge.
func (m *mesh) bootstrap(ctx context.Context) {
	seed := m.members[0].h.Self()
	width := m.width
	if width == 0 {
		width = 8
	}
	var joined atomic.Int64
	var (
		pickMu sync.Mutex
		done   = []int{0}
		pick   = rand.New(rand.NewPCG(m.seed, 0x5eed))
	)
	start := time.Now()
	m.parallel(width, func(i int, mb *member) {
		if i == 0 {
			return
		}
		via := seed
		if m.spread {
			pickMu.Lock()
			via = m.members[done[pick.IntN(len(done))]].h.Self()
			pickMu.Unlock()
		}
		if err := mb.g.Bootstrap(ctx, via); err != nil {
			m.t.Errorf("member %d bootstrap: %v", i, err)
		}
		if m.spread {
			pickMu.Lock()
			done = append(done, i)
			pickMu.Unlock()
		}
		// Bootstrap fills the far buckets in the background; refreshing
		// here too keeps the joins paced by width (the background refresh
		// skips the buckets this one looked into, and the other way round).
		mb.g.Refresh(ctx)
		if m.progress {
			if j := joined.Add(1); j%int64(max(len(m.members)/10, 1)) == 0 {
				m.logProgress(fmt.Sprintf("%d of %d joined after %v", j, len(m.members)-1, time.Since(start).Round(time.Second)))
			}
		}
	})
	// The closing refresh goes as wide as the joins: at 16 at a time it
	// took 5,000/16 rounds of a member's lookups while every member's
	// background refresh went on (N=5,000 had not finished it after 52
	// minutes of real time).
	if m.noClosingRefresh {
		return
	}
	var refreshed atomic.Int64
	m.parallel(max(width, 16), func(i int, mb *member) {
		mb.g.Refresh(ctx)
		if m.progress {
			if j := refreshed.Add(1); j%int64(max(len(m.members)/10, 1)) == 0 {
				m.logProgress(fmt.Sprintf("closing refresh: %d of %d after %v", j, len(m.members), time.Since(start).Round(time.Second)))
			}
		}
	})
}

// nearest is the live member nearest target, by brute force.
func (m *mesh) nearest(target Address) int {
	best := -1
	for i, mb := range m.members {
		if mb.dead {
			continue
		}
		if best < 0 || Closer(mb.g.Address(), m.members[best].g.Address(), target) {
			best = i
		}
	}
	return best
}

func (m *mesh) live() []int {
	var out []int
	for i, mb := range m.members {
		if !mb.dead {
			out = append(out, i)
		}
	}
	return out
}

type routeResult struct {
	accuracy float64 // delivered to the true nearest
	lost     int
	hops     []int
	latency  []time.Duration // from Route to delivery
}

// routeTrial routes count messages from random live members to random
// addresses and checks who receives them.
func (m *mesh) routeTrial(ctx context.Context, r *rand.Rand, count int) routeResult {
	live := m.live()
	want := make(map[uint64]int, count)
	sent := make(map[uint64]time.Time, count)
	var sentMu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, cmp.Or(m.trialWidth, 16))
	for k := 0; k < count; k++ {
		target := randAddr(r)
		from := m.members[live[r.IntN(len(live))]]
		id := uint64(k + 1)
		want[id] = m.nearest(target)
		payload := binary.BigEndian.AppendUint64(nil, id)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sentMu.Lock()
			sent[id] = time.Now()
			sentMu.Unlock()
			if err := from.g.Route(ctx, target, payload); err != nil {
				m.t.Logf("route %d: %v", id, err)
			}
		}()
	}
	wg.Wait()
	got := make(map[uint64]int, count)
	var res routeResult
	deadline := time.After(5 * time.Second)
collect:
	for len(got) < count {
		progress := false
		for _, i := range live {
			select {
			case td := <-m.members[i].recv:
				d := td.Delivery
				if d.Kind != Routed || len(d.Payload) != 8 {
					continue
				}
				id := binary.BigEndian.Uint64(d.Payload)
				got[id] = i
				res.hops = append(res.hops, d.Hops)
				sentMu.Lock()
				res.latency = append(res.latency, td.at.Sub(sent[id]))
				sentMu.Unlock()
				if d.Path[len(d.Path)-1] != m.members[i].n.PeerID() || len(d.Path) != d.Hops+1 {
					m.t.Errorf("bad path %v hops %d", len(d.Path), d.Hops)
				}
				progress = true
			default:
			}
		}
		if !progress {
			select {
			case <-deadline:
				break collect
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	ok := 0
	for id, w := range want {
		if g, found := got[id]; found && g == w {
			ok++
		} else if !found {
			res.lost++
		}
	}
	res.accuracy = float64(ok) / float64(count)
	return res
}

func median(xs []int) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]int(nil), xs...)
	sort.Ints(s)
	return float64(s[len(s)/2])
}

func (m *mesh) lookupAccuracy(ctx context.Context, r *rand.Rand, count int) float64 {
	acc, _ := m.lookupTrial(ctx, r, count)
	return acc
}

// lookupTrial looks up count random addresses from random live members and
// returns the share that found the true nearest member, and each lookup's
// duration.
func (m *mesh) lookupTrial(ctx context.Context, r *rand.Rand, count int) (float64, []time.Duration) {
	live := m.live()
	var ok atomic.Int64
	var latMu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	sem := make(chan struct{}, cmp.Or(m.trialWidth, 16))
	for k := 0; k < count; k++ {
		target := randAddr(r)
		from := m.members[live[r.IntN(len(live))]]
		want := m.members[m.nearest(target)].n.PeerID()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			start := time.Now()
			res, err := from.g.Lookup(ctx, target)
			latMu.Lock()
			lat = append(lat, time.Since(start))
			latMu.Unlock()
			if err == nil && len(res) > 0 && res[0].PeerID == want {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(ok.Load()) / float64(count), lat
}

func (m *mesh) estimateErrors() (medianErr float64, within25 float64) {
	var errs []float64
	truth := float64(len(m.live()))
	bias := 0.0
	for _, i := range m.live() {
		e := m.members[i].g.EstimateMembers()
		errs = append(errs, math.Abs(e-truth)/truth)
		bias += (e - truth) / truth
	}
	m.t.Logf("estimate mean signed error %.3f", bias/float64(len(errs)))
	sort.Float64s(errs)
	in := 0
	for _, e := range errs {
		if e <= 0.25 {
			in++
		}
	}
	return errs[len(errs)/2], float64(in) / float64(len(errs))
}

// kill cuts a fraction of the members off the network at once (a crash,
// from the others' point of view: nothing more is heard from them).
func (m *mesh) kill(r *rand.Rand, frac float64) {
	var alive, dead []netip.Addr
	perm := r.Perm(len(m.members))
	nd := int(frac * float64(len(m.members)))
	for k, i := range perm {
		if k < nd {
			m.members[i].dead = true
		}
	}
	for _, mb := range m.members {
		if mb.dead {
			dead = append(dead, mb.ip)
		} else {
			alive = append(alive, mb.ip)
		}
	}
	m.net.Partition(alive, dead)
}

// trials is how many random addresses the scenario looks up and routes
// to, before and after the crash.
const trials = 1000

// meshSize is the scenario's member count: the 500 by default, 32
// under the race detector (which makes the run some ten times slower), or
// STRATA_OVERLAY_N.
func meshSize(t *testing.T) int {
	if s := os.Getenv("STRATA_OVERLAY_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			t.Fatalf("STRATA_OVERLAY_N=%q", s)
		}
		return n
	}
	if raceEnabled {
		return 32
	}
	return 500
}

// TestMeshConvergesAndRoutes is the acceptance scenario: N members
// bootstrapped from one seed find the true nearest member of 1,000 random
// addresses by lookup and by routing, in few hops, estimate the group's
// size, and keep routing to the nearest live member one refresh period
// after a fifth of them crash at once.
//
// It runs on a virtual clock (testing/synctest): time moves only when every
// goroutine of the scenario waits, so the figures are those of the
// protocol on a 1 ms network, not of how busy the test machine is, and a
// minute of the scenario takes a few of real time at N=500.
func TestMeshConvergesAndRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("the mesh scenario takes minutes")
	}
	n := meshSize(t)
	wall := time.Now()
	synctest.Test(t, func(t *testing.T) { meshScenario(t, n) })
	t.Logf("N=%d: %v of real time", n, time.Since(wall).Round(time.Millisecond))

}

func meshScenario(t *testing.T, n int) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := LocalConfig()
	m := newMesh(t, n, cfg)
	r := rand.New(rand.NewPCG(42, uint64(n)))
	m.bootstrap(ctx)
	t.Logf("N=%d bootstrapped in %v", n, time.Since(start).Round(time.Millisecond))
	ns := m.net.Stats()
	var failed uint64
	for _, mb := range m.members {
		failed += mb.g.Stats().RequestsFailed
	}
	t.Logf("network: sent %d, dropped buffer %d; failed requests %d", ns.Sent, ns.DroppedBuffer, failed)

	look := m.lookupAccuracy(ctx, r, trials)
	rt := m.routeTrial(ctx, r, trials)
	medErr, within := m.estimateErrors()
	hopLimit := math.Log2(float64(n)) / 2
	t.Logf("N=%d lookup accuracy %.3f, route accuracy %.3f (lost %d), median hops %.1f (limit %.2f), estimate median error %.3f, within 25%% %.2f",
		n, look, rt.accuracy, rt.lost, median(rt.hops), hopLimit, medErr, within)
	if look < 0.99 {
		t.Errorf("lookup accuracy %.3f < 0.99", look)
	}
	if rt.accuracy < 0.99 {
		t.Errorf("route accuracy %.3f < 0.99", rt.accuracy)
	}
	if median(rt.hops) > hopLimit {
		t.Errorf("median hops %.1f > %.2f", median(rt.hops), hopLimit)
	}
	if within < 0.8 {
		t.Errorf("only %.0f%% of members estimate within 25%%", within*100)
	}
	if medErr > 0.25 {
		t.Errorf("estimate median error %.3f > 0.25", medErr)
	}

	m.kill(r, 0.2)
	killed := time.Now()
	time.Sleep(cfg.RefreshPeriod)
	rt = m.routeTrial(ctx, r, trials)
	t.Logf("N=%d after killing 20%%: route accuracy %.3f (lost %d), median hops %.1f, %v after the kill", n, rt.accuracy, rt.lost, median(rt.hops), time.Since(killed))
	if rt.accuracy < 0.99 {
		t.Errorf("after kill: route accuracy %.3f < 0.99", rt.accuracy)
	}
	var st Stats
	for _, i := range m.live() {
		s := m.members[i].g.Stats()
		st.DropMalformed += s.DropMalformed
		st.DropLoop += s.DropLoop
		st.DropTTL += s.DropTTL
		st.DropNoRoute += s.DropNoRoute
		st.DeadEvicted += s.DeadEvicted
		st.Lookups += s.Lookups
		st.RequestsFailed += s.RequestsFailed
		st.Received += s.Received
		st.Sent += s.Sent
	}
	if st.DropMalformed != 0 {
		t.Errorf("%d malformed messages between honest members", st.DropMalformed)
	}
	t.Logf("N=%d totals: %s; run time %v", n, fmt.Sprintf("%+v", st), time.Since(start))
}
