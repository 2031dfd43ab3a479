package group

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-net/strata/node"
)

// TestTreeDelays measures where a member's latency goes, against the
// links it has: the shortest one-way delay from the publisher over the
// group's links (what a flood would reach it in), the delay of each push
// class's path down the trees as they stand at the end (with backups,
// the earlier of the two copies), the slowest class, and the latency the
// member measured; 10 s of stream on 20-60 ms links per pair, seed 1.
// Measure only (docs/benchmarks.md §6, "Where the latency goes"):
//
//	STRATA_TREEDIAG=50:0 [STRATA_TREEDIAG_CFG=eb] [STRATA_TREEDIAG_COPIES=4] \
//	  [STRATA_TREEDIAG_P=5] go test -count 1 ./group -run TreeDelays -v
//
// (CFG: e EarlyFragments, b BackupPushers; COPIES SourcePushCopies; P
// PushNeighbourLimit.)
func TestTreeDelays(t *testing.T) {
	spec := os.Getenv("STRATA_TREEDIAG")
	if spec == "" {
		t.Skip("set STRATA_TREEDIAG=members:loss")
	}
	f := strings.Split(spec, ":")
	n, err1 := strconv.Atoi(f[0])
	loss, err2 := 0.0, error(nil)
	if len(f) > 1 {
		loss, err2 = strconv.ParseFloat(f[1], 64)
	}
	if err1 != nil || err2 != nil || len(f) > 2 || n < 3 || loss < 0 || loss >= 1 {
		t.Fatalf("STRATA_TREEDIAG=%q: want members (at least 3)[:loss (0 to 1)]", spec)
	}
	var cfg Config
	for _, c := range os.Getenv("STRATA_TREEDIAG_CFG") {
		switch c {
		case 'e':
			cfg.EarlyFragments = true
		case 'b':
			cfg.BackupPushers = true
		default:
			t.Fatalf("STRATA_TREEDIAG_CFG: %q is not e (EarlyFragments) or b (BackupPushers)", c)
		}
	}
	for _, o := range []struct {
		env string
		v   *int
	}{{"STRATA_TREEDIAG_P", &cfg.PushNeighbourLimit}, {"STRATA_TREEDIAG_COPIES", &cfg.SourcePushCopies}} {
		if s := os.Getenv(o.env); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 {
				t.Fatalf("%s=%q: want a count above 0", o.env, s)
			}
			*o.v = v
		}
	}
	runVirtual(t, func(t *testing.T) {
		sc := sweepScenario(n, loss, 10, cfg)
		sc.perPair, sc.settle, sc.seed = true, 2*time.Second, 1
		sc.check = func(t *testing.T, m *mesh, res result) { treeDelays(t, m, uint64(sc.members)^sc.seed<<32) }
		sc.run(t)
	})
}

func treeDelays(t *testing.T, m *mesh, pairSeed uint64) {
	n := len(m.members)
	d := m.pairDelays(pairSeed)
	idx := map[node.PeerID]int{}
	for i, mb := range m.members {
		idx[mb.n.PeerID()] = i
	}
	// Shortest paths from the publisher over the group's links.
	adj := make([][]int, n)
	var degree int
	for i, mb := range m.members {
		mb.g.mu.Lock()
		for p := range mb.g.links {
			if j, ok := idx[p]; ok {
				adj[i] = append(adj[i], j)
			}
		}
		mb.g.mu.Unlock()
		degree += len(adj[i])
	}
	const inf = time.Hour // no path
	const noHops = 99     // (the hops of a class with no path)
	sp := make([]time.Duration, n)
	for i := range sp {
		sp[i] = inf
	}
	sp[0] = 0
	done := make([]bool, n)
	for range n {
		u := -1
		for i := range n {
			if !done[i] && (u < 0 || sp[i] < sp[u]) {
				u = i
			}
		}
		if u < 0 || sp[u] == inf {
			break
		}
		done[u] = true
		for _, v := range adj[u] {
			sp[v] = min(sp[v], sp[u]+d[u][v])
		}
	}
	// Each class's path delay down the trees, the earlier of pusher and
	// backup, relaxed until it holds (the trees are not known to be
	// loop-free, so a bounded number of rounds).
	P := m.members[1].g.st.P
	par := make([][]int, n)
	bak := make([][]int, n)
	for i, mb := range m.members {
		par[i], bak[i] = make([]int, P), make([]int, P)
		mb.g.mu.Lock()
		s := mb.g.st
		for c := range P {
			par[i][c], bak[i][c] = -1, -1
			if s == nil || i == 0 {
				continue
			}
			if p := s.parents[c]; p != nil {
				if j, ok := idx[p.peer]; ok {
					par[i][c] = j
				}
			}
			if c < len(s.backup) && s.backup[c] != nil {
				if j, ok := idx[s.backup[c].peer]; ok {
					bak[i][c] = j
				}
			}
		}
		mb.g.mu.Unlock()
	}
	tree := make([][]time.Duration, n)
	hops := make([][]int, n)
	for i := range n {
		tree[i] = make([]time.Duration, P)
		hops[i] = make([]int, P)
		for c := range P {
			if i != 0 {
				tree[i][c], hops[i][c] = inf, noHops
			}
		}
	}
	for range n {
		moved := false
		for i := 1; i < n; i++ {
			for c := range P {
				for _, j := range []int{par[i][c], bak[i][c]} {
					if j >= 0 && tree[j][c] < inf && tree[j][c]+d[j][i] < tree[i][c] {
						tree[i][c], hops[i][c] = tree[j][c]+d[j][i], hops[j][c]+1
						moved = true
					}
				}
			}
		}
		if !moved {
			break
		}
	}
	ms := func(v time.Duration) float64 { return float64(v) / float64(time.Millisecond) }
	var spS, meanS, maxS, obsS, gapTree, gapObs []float64
	var hopS, bestMeanS, bestMaxS, rootS []float64
	for c := range P {
		for i := 1; i < n; i++ {
			if hops[i][c] == 1 {
				rootS = append(rootS, ms(d[0][i]))
			}
		}
	}
	var pubNear []float64
	for _, j := range adj[0] {
		pubNear = append(pubNear, ms(d[0][j]))
	}
	for i := 1; i < n; i++ {
		// The nearest the trees as they stand could make each class,
		// were any neighbour free to push any number of classes.
		var bsum, bmax time.Duration
		for c := range P {
			b := inf
			for _, j := range adj[i] {
				if (j != 0 || par[i][c] == 0) && tree[j][c] < inf && par[j][c] != i {
					b = min(b, tree[j][c]+d[j][i])
				}
			}
			bsum += b
			bmax = max(bmax, b)
		}
		bestMeanS = append(bestMeanS, ms(bsum/time.Duration(P)))
		bestMaxS = append(bestMaxS, ms(bmax))
	}
	for i := 1; i < n; i++ {
		var sum, mx time.Duration
		var h int
		for c := range P {
			sum += tree[i][c]
			mx = max(mx, tree[i][c])
			h += hops[i][c]
		}
		obs := m.members[i].g.Stats().LatencyP50
		spS = append(spS, ms(sp[i]))
		meanS = append(meanS, ms(sum/time.Duration(P)))
		maxS = append(maxS, ms(mx))
		obsS = append(obsS, ms(obs))
		gapTree = append(gapTree, ms(mx-sp[i]))
		gapObs = append(gapObs, ms(obs-mx))
		hopS = append(hopS, float64(h)/float64(P))
	}
	qp := func(v []float64, prec int) string {
		s := slices.Clone(v)
		slices.Sort(s)
		qs := quantiles(s)
		f := func(x float64) string { return strconv.FormatFloat(x, 'f', prec, 64) }
		return f(qs[10]) + " / " + f(qs[50]) + " / " + f(qs[90])
	}
	q := func(v []float64) string { return qp(v, 0) }
	t.Logf("links per member %.1f; per member p10 / p50 / p90 over members (ms):", float64(degree)/float64(n))
	t.Logf("  shortest path from the publisher  %s", q(spS))
	t.Logf("  class path, mean over classes      %s", q(meanS))
	t.Logf("  class path, slowest class          %s", q(maxS))
	t.Logf("  member's own p50 latency           %s", q(obsS))
	t.Logf("  slowest class - shortest path      %s", q(gapTree))
	t.Logf("  own p50 - slowest class            %s", q(gapObs))
	t.Logf("  best neighbour per class, mean     %s", q(bestMeanS))
	t.Logf("  best neighbour per class, slowest  %s", q(bestMaxS))
	t.Logf("  publisher's children's delay       %s (its links: %s)", q(rootS), q(pubNear))
	t.Logf("  hops per class (mean)              %s", qp(hopS, 1))
}
