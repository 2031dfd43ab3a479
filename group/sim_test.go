package group

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSimReport runs stream scenarios on the virtual clock and writes the
// simulation report: a results table and SVG plots (delivery and overhead
// against loss, latency CDFs, publisher upload, the distribution of load
// over the members).
//
//	STRATA_SIM=100:0,100:0.01,100:0.05,100:0.1 [STRATA_SIM_SECONDS=10] \
//	  [STRATA_SIM_OUT=../docs/sim] go test ./group -run SimReport -v -timeout 4h
//
// Entries are members:loss. Results accumulate in results.json in the
// output directory (an entry replaces an earlier one of the same
// scenario), so sizes can be run separately; the table and the plots are
// rebuilt from all of them (STRATA_SIM=rebuild only rebuilds them).
// Without STRATA_SIM it is skipped.
func TestSimReport(t *testing.T) {
	spec := os.Getenv("STRATA_SIM")
	if spec == "" {
		t.Skip("set STRATA_SIM (see the doc comment) to write the simulation report")
	}
	secs := 10
	if v, err := strconv.Atoi(os.Getenv("STRATA_SIM_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	// The network delivers on a 1 ms grid unless STRATA_SIM_TICK says
	// otherwise (0: exact times): see sweepScenario.
	tick := simTick
	if v := os.Getenv("STRATA_SIM_TICK"); v != "" {
		var err error
		if tick, err = time.ParseDuration(v); err != nil || tick < 0 {
			t.Fatalf("STRATA_SIM_TICK=%q: want a duration (0 for exact delivery times)", v)
		}
	}
	seed, repeat := uint64(1), 1
	if v := os.Getenv("STRATA_SIM_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil || seed == 0 {
			t.Fatalf("STRATA_SIM_SEED=%q: want a number above 0", v)
		}
	}
	if v := os.Getenv("STRATA_SIM_REPEAT"); v != "" {
		var err error
		if repeat, err = strconv.Atoi(v); err != nil || repeat < 1 {
			t.Fatalf("STRATA_SIM_REPEAT=%q: want a number above 0", v)
		}
	}
	dir := os.Getenv("STRATA_SIM_OUT")
	if dir == "" {
		dir = filepath.Join("..", "docs", "sim")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "results.json")
	if spec == "rebuild" {
		// Only rebuild results.md and the plots from results.json.
		writeSimReport(t, dir, path, loadSimResults(t, path))
		return
	}
	var entries []simEntry
	for _, e := range strings.Split(spec, ",") {
		f := strings.Split(strings.TrimSpace(e), ":")
		if len(f) != 2 {
			t.Fatalf("STRATA_SIM entry %q: want members:loss", e)
		}
		n, err1 := strconv.Atoi(f[0])
		loss, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil || n < 2 || loss < 0 || loss >= 1 {
			t.Fatalf("STRATA_SIM entry %q: want members (at least 2):loss (0 to 1)", e)
		}
		e := simEntry{Members: n, Loss: loss, Seconds: secs, Seed: seed}
		if tick > 0 {
			e.Tick = tick.String()
		}
		entries = append(entries, e)
	}
	for _, e := range entries {
		t.Run(fmt.Sprintf("%d:%g", e.Members, e.Loss), func(t *testing.T) {
			sc := sweepScenario(e.Members, e.Loss, e.Seconds, Config{})
			sc.seed, sc.tick = e.Seed, tick
			// Every repeat runs the same seed; the first is kept, the
			// others show how far the figures move between runs of one
			// seed (goroutine scheduling is not seeded).
			var runs []simEntry
			for range repeat {
				wall := time.Now()
				var res result
				runVirtual(t, func(t *testing.T) { res = sc.run(t) })
				r := e
				r.fill(res, time.Since(wall))
				t.Logf("%s", r.row())
				runs = append(runs, r)
			}
			e = runs[0]
			if repeat > 1 {
				logSpread(t, runs)
			}
			all := loadSimResults(t, path)
			all = slices.DeleteFunc(all, func(o simEntry) bool { return o.key() == e.key() })
			all = append(all, e)
			slices.SortFunc(all, func(a, b simEntry) int {
				return cmp.Or(cmp.Compare(a.Members, b.Members), cmp.Compare(a.Loss, b.Loss), cmp.Compare(a.Seconds, b.Seconds))
			})
			writeSimReport(t, dir, path, all)
			t.Logf("%s", e.row())
		})
	}
}

// simEntry is one scenario's figures, as kept in results.json.
type simEntry struct {
	Members int     `json:"members"`
	Loss    float64 `json:"loss"`
	Seconds int     `json:"seconds"`
	Seed    uint64  `json:"seed,omitempty"`
	// Tick is the network's delivery grid (memnet.Config.Tick), "" for
	// exact delivery times (runs before 2026-11-27).
	Tick string `json:"tick,omitempty"`

	Missing         float64   `json:"missing"`      // worst member's fraction not output
	Delivery        float64   `json:"delivery"`     // mean fraction output
	Overhead        float64   `json:"overhead"`     // mean bytes received per useful byte
	OverheadMax     float64   `json:"overhead_max"` // worst member's
	PerPurpose      string    `json:"per_purpose"`  // push / pull / parity / control per useful byte
	Upload          float64   `json:"upload"`       // publisher bytes sent per stream byte
	P50             float64   `json:"p50_ms"`       // pooled latency, ms
	P90             float64   `json:"p90_ms"`
	P99             float64   `json:"p99_ms"`
	LatencyQuantile []float64 `json:"latency_quantiles_ms"`
	SentQuantile    []float64 `json:"sent_quantiles"` // subscribers' bytes sent per stream byte, 0th..100th percentile
	RecvQuantile    []float64 `json:"recv_quantiles"`
	Banned          uint64    `json:"banned"` // honest members banned by others (false accusations)
	HeapPerMemberKB float64   `json:"heap_per_member_kib"`
	RealSeconds     float64   `json:"real_seconds"`
}

func (e simEntry) key() string { return fmt.Sprintf("%d:%g:%d", e.Members, e.Loss, e.Seconds) }

// label names e's series in the plots: its size, and its stream's length
// when that is not the default 10 s.
func (e simEntry) label() string {
	if e.Seconds == 10 {
		return fmt.Sprintf("%d members", e.Members)
	}
	return fmt.Sprintf("%d members, %d s stream", e.Members, e.Seconds)
}

// quantiles returns the 0th, 1st, ..., 100th percentiles of sorted xs.
func quantiles(xs []float64) []float64 {
	if len(xs) == 0 {
		return nil
	}
	out := make([]float64, 101)
	for i := range out {
		out[i] = xs[int(math.Round(float64(i)/100*float64(len(xs)-1)))]
	}
	return out
}

func (e *simEntry) fill(res result, wall time.Duration) {
	e.Missing = res.missing
	var sum float64
	for _, d := range res.delivered {
		sum += d
	}
	e.Delivery = sum / float64(max(len(res.delivered), 1))
	e.Overhead, e.OverheadMax, e.PerPurpose = res.meanOverhead, res.overhead, res.perPurpose
	e.Upload = res.upload
	lat := make([]float64, len(res.lats))
	for i, l := range res.lats {
		lat[i] = float64(l.Microseconds()) / 1000
	}
	e.LatencyQuantile = quantiles(lat) // res.lats is sorted
	if q := e.LatencyQuantile; q != nil {
		e.P50, e.P90, e.P99 = q[50], q[90], q[99]
	}
	sent, recv := slices.Clone(res.sentBy), slices.Clone(res.recvBy)
	slices.Sort(sent)
	slices.Sort(recv)
	e.SentQuantile, e.RecvQuantile = quantiles(sent), quantiles(recv)
	e.HeapPerMemberKB = res.heapPerMember / 1024
	e.Banned = res.banned
	e.RealSeconds = math.Round(wall.Seconds())
}

func (e simEntry) row() string {
	return fmt.Sprintf("| %d | %g %% | %d s%s | %.4f %% | %.3f %% | %.3f (max %.3f) | %s | %.2f× | %.0f / %.0f / %.0f | %.2f / %.2f / %.2f | %d | %.0f KiB | %.0f s |",
		e.Members, e.Loss*100, e.Seconds, e.tickNote(), e.Missing*100, e.Delivery*100, e.Overhead, e.OverheadMax, e.PerPurpose, e.Upload,
		e.P50, e.P90, e.P99, pct(e.SentQuantile, 50), pct(e.SentQuantile, 99), pct(e.SentQuantile, 100), e.Banned, e.HeapPerMemberKB, e.RealSeconds)
}

// tickNote names e's delivery grid for the stream column.
func (e simEntry) tickNote() string {
	if e.Tick == "" {
		return ""
	}
	return " (" + e.Tick + " grid)"
}

// pct is the i-th percentile of quantiles xs, NaN if there are none.
func pct(xs []float64, i int) float64 {
	if len(xs) <= i {
		return math.NaN()
	}
	return xs[i]
}

func loadSimResults(t *testing.T, path string) []simEntry {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var all []simEntry
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return all
}

// writeSimReport writes results.json, results.md and the plots.
func writeSimReport(t *testing.T, dir, path string, all []simEntry) {
	b, err := json.MarshalIndent(all, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Base(path), append(b, '\n'))

	var md strings.Builder
	md.WriteString("| members | loss | stream | missing (worst member) | delivered (mean) | received per useful byte: mean (worst) | push / pull / parity / control | publisher upload | latency p50 / p90 / p99 ms | subscribers' upload p50 / p99 / max (× stream) | honest members banned | heap per member | real time |\n")
	md.WriteString("|---:|---:|---:|---:|---:|---|---|---:|---|---|---:|---:|---:|\n")
	for _, e := range all {
		md.WriteString(e.row() + "\n")
	}
	write("results.md", []byte(md.String()))

	// By size: one series per member count (and stream length, when it
	// is not the default 10 s), against loss.
	series := map[string][]simEntry{}
	var names []string
	for _, e := range all {
		n := e.label()
		if _, ok := series[n]; !ok {
			names = append(names, n)
		}
		series[n] = append(series[n], e)
	}
	vsLoss := func(title, ylabel string, y func(simEntry) float64) plot {
		p := plot{title: title, xlabel: "loss each way (%)", ylabel: ylabel, ymin0: true}
		for _, n := range names {
			s := plotSeries{name: n, dots: true}
			for _, e := range series[n] {
				s.xs, s.ys = append(s.xs, e.Loss*100), append(s.ys, y(e))
			}
			p.series = append(p.series, s)
		}
		return p
	}
	write("delivery.svg", vsLoss("Stream delivered (mean over members)", "delivered (%)", func(e simEntry) float64 { return e.Delivery * 100 }).svg())
	write("overhead.svg", vsLoss("Bytes received per useful byte (mean)", "received / useful", func(e simEntry) float64 { return e.Overhead }).svg())
	write("upload.svg", vsLoss("Publisher upload", "bytes sent / stream bytes", func(e simEntry) float64 { return e.Upload }).svg())

	cdf := func(title string, pick func(simEntry) bool, name func(simEntry) string) plot {
		p := plot{title: title, xlabel: "latency from the publisher's block stamp to output (ms)", ylabel: "fraction of blocks output", ymin0: true}
		for _, e := range all {
			if !pick(e) || len(e.LatencyQuantile) == 0 {
				continue
			}
			s := plotSeries{name: name(e)}
			for i, v := range e.LatencyQuantile {
				s.xs, s.ys = append(s.xs, v), append(s.ys, float64(i)/100)
			}
			p.series = append(p.series, s)
		}
		return p
	}
	if len(names) > 0 {
		n0 := names[0] // all is sorted: the smallest size
		write("latency_cdf_loss.svg", cdf(fmt.Sprintf("Latency CDF, %s, by loss", n0),
			func(e simEntry) bool { return e.label() == n0 }, func(e simEntry) string { return fmt.Sprintf("%g %% loss", e.Loss*100) }).svg())
	}
	at5 := func(e simEntry) bool { return math.Abs(e.Loss-0.05) < 1e-9 }
	write("latency_cdf_size.svg", cdf("Latency CDF at 5 % loss, by size", at5, simEntry.label).svg())

	load := plot{title: "Load over the subscribers at 5 % loss", xlabel: "subscribers, by load (percentile)", ylabel: "bytes / stream bytes", ymin0: true}
	for _, e := range all {
		if !at5(e) {
			continue
		}
		for _, c := range []struct {
			what string
			qs   []float64
		}{{"sent", e.SentQuantile}, {"received", e.RecvQuantile}} {
			s := plotSeries{name: e.label() + ", " + c.what}
			for i, v := range c.qs {
				s.xs, s.ys = append(s.xs, float64(i)), append(s.ys, v)
			}
			load.series = append(load.series, s)
		}
	}
	write("load.svg", load.svg())
}

// logSpread logs the range of each headline figure over runs of one
// scenario and seed.
func logSpread(t *testing.T, runs []simEntry) {
	t.Helper()
	figures := []struct {
		name string
		get  func(simEntry) float64
	}{
		{"missing %", func(e simEntry) float64 { return e.Missing * 100 }},
		{"delivered %", func(e simEntry) float64 { return e.Delivery * 100 }},
		{"received per useful byte", func(e simEntry) float64 { return e.Overhead }},
		{"worst member's received per useful byte", func(e simEntry) float64 { return e.OverheadMax }},
		{"publisher upload", func(e simEntry) float64 { return e.Upload }},
		{"latency p50 ms", func(e simEntry) float64 { return e.P50 }},
		{"latency p99 ms", func(e simEntry) float64 { return e.P99 }},
		{"honest members banned", func(e simEntry) float64 { return float64(e.Banned) }},
	}
	for _, f := range figures {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, r := range runs {
			v := f.get(r)
			lo, hi = min(lo, v), max(hi, v)
		}
		t.Logf("seed %d, %d runs: %s %.4g .. %.4g", runs[0].Seed, len(runs), f.name, lo, hi)
	}
}

// The report names each series by size and, when it is not 10 s, stream
// length: a 60 s run of 1,000 members is a series of its own, not a
// second point on the 10 s one.
func TestSimReportSeries(t *testing.T) {
	dir := t.TempDir()
	qs := make([]float64, 101)
	for i := range qs {
		qs[i] = float64(i)
	}
	all := []simEntry{
		{Members: 100, Loss: 0.05, Seconds: 10, LatencyQuantile: qs, SentQuantile: qs, RecvQuantile: qs},
		{Members: 1000, Loss: 0.05, Seconds: 10, LatencyQuantile: qs, SentQuantile: qs, RecvQuantile: qs},
		{Members: 1000, Loss: 0.05, Seconds: 60, LatencyQuantile: qs, SentQuantile: qs, RecvQuantile: qs},
	}
	writeSimReport(t, dir, filepath.Join(dir, "results.json"), all)
	for _, c := range []struct {
		file string
		want []string
	}{
		{"latency_cdf_size.svg", []string{">100 members<", ">1000 members<", ">1000 members, 60 s stream<"}},
		{"overhead.svg", []string{">1000 members<", ">1000 members, 60 s stream<"}},
		{"load.svg", []string{">1000 members, 60 s stream, sent<"}},
		{"latency_cdf_loss.svg", []string{"Latency CDF, 100 members, by loss"}},
	} {
		b, err := os.ReadFile(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q", c.file, w)
			}
		}
	}
	got := loadSimResults(t, filepath.Join(dir, "results.json"))
	if len(got) != 3 || got[2].Seconds != 60 {
		t.Errorf("results.json holds %+v", got)
	}
}
