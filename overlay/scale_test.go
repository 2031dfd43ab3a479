package overlay

import (
	"cmp"
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// TestMeshScale measures lookups and routing in large groups on the
// virtual clock, with the default Config over links of 10-30 ms one way:
// STRATA_OVERLAY_SCALE=1000,5000 go test ./overlay -run MeshScale -v
// -timeout 3h. The figures are the protocol's (hops, virtual latency,
// messages, memory), not timings of this machine, so it is a measurement
// run rather than a testing.B benchmark; docs/benchmarks.md records them.
// Without the variable it is skipped.
func TestMeshScale(t *testing.T) {
	spec := os.Getenv("STRATA_OVERLAY_SCALE")
	if spec == "" {
		t.Skip("set STRATA_OVERLAY_SCALE=1000,5000 to measure large groups")
	}
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			t.Fatalf("STRATA_OVERLAY_SCALE: bad size %q", f)
		}
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			wall := time.Now()
			synctest.Test(t, func(t *testing.T) { scaleRun(t, n) })
			t.Logf("N=%d: %v of real time", n, time.Since(wall).Round(time.Second))
		})
	}
}

func scaleRun(t *testing.T, n int) {
	const lookups, routes = 500, 500
	ctx, cancel := context.WithTimeout(context.Background(), 24*time.Hour)
	defer cancel()
	start := time.Now()
	cfg := Config{}
	if v := os.Getenv("STRATA_OVERLAY_REFRESH"); v != "" {
		// A longer RefreshPeriod than the default 30 s: every member
		// refreshes its buckets each period, work that grows as N² in
		// the run and kept 5,000 members from finishing on 2 CPUs.
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("STRATA_OVERLAY_REFRESH=%q: want a duration", v)
		}
		cfg.RefreshPeriod = d
	}
	m := newMeshOn(t, n, cfg, memnet.Link{Delay: 10 * time.Millisecond, Jitter: 20 * time.Millisecond})
	// Joins go through random members that have joined, n/16 at once
	// (at least 16): through one seed, 16 at a time, the bootstrap of
	// 1,000 members took 4 minutes of virtual time, and every member
	// refreshes every RefreshPeriod meanwhile (the work grows as N²), and
	// the seed's sessions could not carry the joins.
	m.width = max(16, n/16)
	m.spread = true
	m.seed = uint64(n)
	m.progress = true
	// STRATA_OVERLAY_CLOSING=0 skips the closing refresh of every member;
	// STRATA_OVERLAY_TRIAL_WIDTH runs more lookups and routes at once.
	m.noClosingRefresh = os.Getenv("STRATA_OVERLAY_CLOSING") == "0"
	if w, err := strconv.Atoi(os.Getenv("STRATA_OVERLAY_TRIAL_WIDTH")); err == nil && w > 0 {
		m.trialWidth = w
	}
	t.Logf("N=%d: RefreshPeriod %v, closing refresh %v, %d lookups or routes at once", n, cfg.withDefaults().RefreshPeriod, !m.noClosingRefresh, cmp.Or(m.trialWidth, 16))
	m.bootstrap(ctx)
	boot := time.Since(start)
	var runtimeMem runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&runtimeMem)
	if path := os.Getenv("STRATA_HEAP_PROFILE"); path != "" {
		// The heap right after bootstrap, for finding what a member holds.
		if f, err := os.Create(path); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	if path := os.Getenv("STRATA_GOROUTINE_DUMP"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.Lookup("goroutine").WriteTo(f, 1)
			f.Close()
		}
	}
	table, sessions, closing, links := 0, 0, 0, 0
	for _, mb := range m.members {
		table += mb.g.Table().Size()
		st := mb.n.Stats()
		sessions += st.SessionsOpen
		closing += st.SessionsClosing
		mb.g.mu.Lock()
		links += len(mb.g.links)
		mb.g.mu.Unlock()
	}
	t.Logf("N=%d after bootstrap: %.1f open and %.1f closing sessions, %.1f overlay links, %.1f goroutines, heap %.0f KiB, stacks %.0f KiB per member",
		n, float64(sessions)/float64(n), float64(closing)/float64(n), float64(links)/float64(n),
		float64(runtime.NumGoroutine())/float64(n), float64(runtimeMem.HeapAlloc)/float64(n)/1024, float64(runtimeMem.StackInuse)/float64(n)/1024)
	r := rand.New(rand.NewPCG(7, uint64(n)))

	reqBefore, lookBefore := m.requestsAndLookups()
	acc, lat := m.lookupTrial(ctx, r, lookups)
	reqAfter, lookAfter := m.requestsAndLookups()
	// Every lookup of the phase counts, refreshes that fell in it too;
	// each request has one answer.
	perLookup := float64(reqAfter-reqBefore) / float64(max(lookAfter-lookBefore, 1))
	rt := m.routeTrial(ctx, r, routes)
	medErr, within := m.estimateErrors()

	slices.Sort(lat)
	slices.Sort(rt.latency)
	slices.Sort(rt.hops)
	q := func(xs []time.Duration, p float64) time.Duration {
		if len(xs) == 0 {
			return 0
		}
		return xs[int(p*float64(len(xs)-1))].Round(time.Millisecond)
	}
	qi := func(xs []int, p float64) int {
		if len(xs) == 0 {
			return -1
		}
		return xs[int(p*float64(len(xs)-1))]
	}
	t.Logf("| %d | %v | %.3f | %v / %v | %.1f | %.3f | %d / %d (max %d) | %v / %v | %.2f / %.0f %% | %.1f | %.0f KiB |",
		n, boot.Round(time.Second), acc, q(lat, 0.5), q(lat, 0.99), perLookup,
		rt.accuracy, qi(rt.hops, 0.5), qi(rt.hops, 0.9), qi(rt.hops, 1), q(rt.latency, 0.5), q(rt.latency, 0.99),
		medErr, within*100, float64(table)/float64(n), float64(runtimeMem.HeapAlloc)/float64(n)/1024)
}

// requestsAndLookups sums the FindNode requests and lookups of all members.
func (m *mesh) requestsAndLookups() (requests, lookups uint64) {
	for _, mb := range m.members {
		st := mb.g.Stats()
		requests += st.Requests
		lookups += st.Lookups
	}
	return requests, lookups
}
