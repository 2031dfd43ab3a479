package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/group"
	"github.com/strata-net/strata/overlay"
)

// TestSwarmRun runs the command on a small swarm without loss, on the
// in-memory network and on UDP, and checks its JSON report and progress
// lines.
func TestSwarmRun(t *testing.T) {
	tests := []struct {
		network string
		args    []string
	}{
		{"memnet", []string{"--nodes", "8", "--loss", "0", "--delay", "5ms", "--jitter", "0"}},
		{"udp", []string{"--nodes", "8", "--udp"}},
	}
	for _, tc := range tests {
		t.Run(tc.network, func(t *testing.T) { testSwarmRun(t, tc.network, tc.args) })
	}
}

func testSwarmRun(t *testing.T, network string, args []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append([]string{"swarm", "--duration", "3s", "--rate", "400k", "--http", "", "--format", "json"}, args...)
	code, stdout, stderr := runArgs(ctx, args...)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	var rep swarmReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout)
	}
	// Every field a script would read is present under its name.
	var fields map[string]any
	json.Unmarshal([]byte(stdout), &fields)
	for _, k := range []string{"network", "nodes", "published_bytes", "delivery_ratio", "latency_p50_ms", "latency_p99_ms",
		"received_per_useful_byte", "publisher_upload_x_stream", "lost_bytes", "mismatched_bytes", "worst", "min_delivery", "pass"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("report lacks %q: %s", k, stdout)
		}
	}
	d := group.DefaultK
	checks := []struct {
		name string
		ok   bool
	}{
		{"network", rep.Network == network},
		{"8 nodes", rep.Nodes == 8},
		{"published 3 s at 50 kB/s", rep.PublishedBytes == 150_000},
		{"delivery 1", rep.Delivery == 1},
		{"nothing lost or mismatched", rep.LostBytes == 0 && rep.MismatchedBytes == 0},
		{"pass", rep.Pass && rep.MinDelivery == 0.999},
		{"latency p50 > 0", rep.LatencyP50MS > 0},
		{"latency p99 ≥ p50 and under the window", rep.LatencyP99MS >= rep.LatencyP50MS && rep.LatencyP99MS < 4000},
		// Data, parity (M/K) and a little control: more than the data,
		// less than twice it.
		{"received per useful byte", rep.ReceivedPerByte > 1+float64(group.DefaultM)/float64(d)*0.5 && rep.ReceivedPerByte < 2},
		{"publisher upload", rep.PublisherUpload > 1 && rep.PublisherUpload < 4},
		{"worst delivery member is a subscriber", rep.Worst.Delivery.Member >= 1 && rep.Worst.Delivery.Member < 8 && rep.Worst.Delivery.Value == 1},
		{"worst p99 member", rep.Worst.LatencyP99MS.Member >= 1 && rep.Worst.LatencyP99MS.Value >= rep.LatencyP50MS},
		{"worst overhead member", rep.Worst.ReceivedPerByte.Member >= 1 && rep.Worst.ReceivedPerByte.Value >= rep.ReceivedPerByte},
		{"bootstrap took time", rep.BootstrapS > 0 && rep.BootstrapS < rep.ElapsedS},
		// Every member registered with the swarm's rendezvous, and the
		// dials after the first went through it too.
		{"rendezvous", rep.Rendezvous != nil && rep.Rendezvous.Registrations >= 8 && rep.Rendezvous.Introductions > 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: report %+v", c.name, rep)
		}
	}
	// stderr is not a terminal: a JSON line a second, in phase order.
	var phases []string
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var p swarmProgress
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("progress line %q: %v", line, err)
		}
		if p.Members != 8 {
			t.Errorf("progress line %q: members %d", line, p.Members)
		}
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}
	if len(phases) == 0 || !strings.Contains(strings.Join(phases, " "), phaseStreaming) {
		t.Errorf("progress phases %v, want streaming among them", phases)
	}
}

func TestSwarmUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "1"}, "--nodes 1: want 2..500"},
		{[]string{"--loss", "5"}, "for 5 percent write 5%"},
		{[]string{"--loss", "100%"}, "want a loss from 0"},
		{[]string{"--loss", "x"}, "want a fraction"},
		{[]string{"--rate", "0"}, "want a positive rate"},
		{[]string{"--rate", "10"}, "--rate 10 bit/s: want 800 bit/s"},
		{[]string{"--duration", "0s"}, "--duration 0s"},
		{[]string{"--min-delivery", "2"}, "--min-delivery 2: want 0..1"},
		{[]string{"--udp", "--loss", "1%"}, "tc netem"},
		{[]string{"--http", "0.0.0.0:8080"}, "want a loopback HOST:PORT"},
		{[]string{"--http", "", "--hold"}, "--hold keeps the live view"},
		{[]string{"--format", "xml"}, `--format "xml"`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := runArgs(context.Background(), append([]string{"swarm"}, tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitUsage, tc.want)
			}
		})
	}
}

func TestSwarmFlagValues(t *testing.T) {
	rates := []struct {
		in   string
		want int
	}{
		{"1M", 1_000_000}, {"500k", 500_000}, {"250000", 250_000}, {"2Mbit/s", 2_000_000}, {"1.5 Mbps", 1_500_000},
	}
	for _, tc := range rates {
		var r swarmRateFlag
		if err := r.Set(tc.in); err != nil || int(r) != tc.want {
			t.Errorf("rate %q: %d, %v; want %d", tc.in, int(r), err, tc.want)
		}
	}
	losses := []struct {
		in   string
		want float64
	}{
		{"0", 0}, {"0.05", 0.05}, {"5%", 0.05}, {"0.5 %", 0.005},
	}
	for _, tc := range losses {
		var l swarmLossFlag
		if err := l.Set(tc.in); err != nil || float64(l) != tc.want {
			t.Errorf("loss %q: %g, %v; want %g", tc.in, float64(l), err, tc.want)
		}
	}
}

// TestSwarmRecord checks the subscriber's output check on record
// sequences.
func TestSwarmRecord(t *testing.T) {
	const seed = 9
	data := func(off, n uint64) group.Record {
		b := make([]byte, n)
		swarmPattern(seed, off, b)
		return group.Record{Offset: off, Data: b, Latency: time.Millisecond}
	}
	corrupt := func(r group.Record) group.Record { r.Data[len(r.Data)/2] ^= 1; return r }
	gap := func(off uint64) group.Record { return group.Record{Offset: off, Lost: 1} }
	tests := []struct {
		name           string
		recs           []group.Record
		out, lost, bad uint64
	}{
		{"in order", []group.Record{data(0, 100), data(100, 50)}, 150, 0, 0},
		{"gap then data", []group.Record{data(0, 100), gap(100), data(300, 10)}, 110, 200, 0},
		{"skip without a gap", []group.Record{data(0, 100), data(200, 10)}, 100, 0, 10},
		{"overlap", []group.Record{data(0, 100), data(50, 100)}, 100, 0, 100},
		{"wrong bytes", []group.Record{data(0, 100), corrupt(data(100, 100))}, 100, 0, 100},
		{"gap at start", []group.Record{gap(0), data(64, 64)}, 64, 64, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &swarmMember{rnd: nil}
			for _, r := range tc.recs {
				m.record(r, seed, func(uint64) time.Time { return time.Time{} })
			}
			if m.out != tc.out || m.lost != tc.lost || m.bad != tc.bad {
				t.Fatalf("out %d lost %d bad %d, want %d %d %d", m.out, m.lost, m.bad, tc.out, tc.lost, tc.bad)
			}
		})
	}
	// Latency runs from the write of each fragment's last byte.
	m := &swarmMember{}
	now := time.Now()
	written := func(o uint64) time.Time {
		if o < group.DefaultFragmentSize {
			return now.Add(-300 * time.Millisecond)
		}
		return now.Add(-100 * time.Millisecond)
	}
	m.record(group.Record{Offset: 0, Data: data(0, 1500).Data, Fragments: 2}, seed, written)
	if len(m.lats) != 2 || m.lats[0] < 300*time.Millisecond || m.lats[0] > 400*time.Millisecond ||
		m.lats[1] < 100*time.Millisecond || m.lats[1] > 200*time.Millisecond {
		t.Fatalf("latencies %v, want about 300 ms and 100 ms", m.lats)
	}
	// The pattern is a function of the offset alone: any split of the
	// stream gives the same bytes.
	whole := make([]byte, 1000)
	swarmPattern(seed, 0, whole)
	part := make([]byte, 333)
	swarmPattern(seed, 401, part)
	if !bytes.Equal(part, whole[401:734]) {
		t.Fatal("swarmPattern depends on where a chunk starts")
	}
}

func TestSwarmReport(t *testing.T) {
	node := func(i int, out, bad uint64, p99, ov float64) swarmNodeState {
		return swarmNodeState{Index: i, Out: out, Bad: bad, P99MS: p99, Overhead: ov}
	}
	s := &swarm{opt: swarmOptions{rate: 1000, duration: time.Second}, members: make([]*swarmMember, 4)}
	tests := []struct {
		name      string
		nodes     []swarmNodeState
		min       float64
		delivery  float64
		worst     swarmWorst
		lost      uint64
		pass      bool
		mismatch  uint64
		published uint64
	}{
		{
			name:  "all delivered",
			nodes: []swarmNodeState{{Publisher: true}, node(1, 1000, 0, 300, 1.3), node(2, 1000, 0, 500, 1.4), node(3, 1000, 0, 200, 1.2)},
			min:   0.999, delivery: 1, pass: true, published: 1000,
			worst: swarmWorst{swarmWorstMember{1, 1}, swarmWorstMember{2, 500}, swarmWorstMember{2, 1.4}},
		},
		{
			name:  "one member short",
			nodes: []swarmNodeState{{Publisher: true}, node(1, 1000, 0, 300, 1.3), node(2, 700, 0, 500, 1.4), node(3, 1000, 0, 900, 1.5)},
			min:   0.999, delivery: 0.9, pass: false, lost: 300, published: 1000,
			worst: swarmWorst{swarmWorstMember{2, 0.7}, swarmWorstMember{3, 900}, swarmWorstMember{3, 1.5}},
		},
		{
			name:  "short but above the threshold",
			nodes: []swarmNodeState{{Publisher: true}, node(1, 1000, 0, 300, 1.3), node(2, 700, 0, 500, 1.4), node(3, 1000, 0, 900, 1.5)},
			min:   0.85, delivery: 0.9, pass: true, lost: 300, published: 1000,
			worst: swarmWorst{swarmWorstMember{2, 0.7}, swarmWorstMember{3, 900}, swarmWorstMember{3, 1.5}},
		},
		{
			name:  "a mismatched byte fails",
			nodes: []swarmNodeState{{Publisher: true}, node(1, 1000, 0, 300, 1.3), node(2, 990, 10, 500, 1.4), node(3, 1000, 0, 200, 1.2)},
			min:   0.99, delivery: 0.99666, pass: false, mismatch: 10, published: 1000,
			worst: swarmWorst{swarmWorstMember{2, 0.99}, swarmWorstMember{2, 500}, swarmWorstMember{2, 1.4}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := swarmSnapshot{Nodes: tc.nodes, Totals: swarmTotals{Published: tc.published}}
			r := s.report(snap, tc.min)
			if d := r.Delivery - tc.delivery; d > 1e-4 || d < -1e-4 {
				t.Errorf("delivery %g, want %g", r.Delivery, tc.delivery)
			}
			if r.Worst != tc.worst || r.LostBytes != tc.lost || r.MismatchedBytes != tc.mismatch || r.Pass != tc.pass {
				t.Errorf("report %+v", r)
			}
			var text bytes.Buffer
			r.writeText(&text)
			verdict := map[bool]string{true: "PASS", false: "FAIL"}[tc.pass]
			if !strings.Contains(text.String(), verdict) || !strings.Contains(text.String(), "4 members") {
				t.Errorf("text report:\n%s", text.String())
			}
		})
	}
}

// startTestSwarm starts a bootstrapped swarm of n members (no stream) and
// its live view.
func startTestSwarm(t *testing.T, n int) (*swarm, string) {
	t.Helper()
	s, err := newSwarm(swarmOptions{nodes: n, rate: 10_000, duration: time.Second, seed: 5, log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := startSwarmServer(s, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.close)
	return s, srv.url()
}

func getJSON(t *testing.T, method, u string, form url.Values, v any) int {
	t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = http.PostForm(u, form)
	} else {
		resp, err = http.Get(u + "?" + form.Encode())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: content type %q: %s", method, u, ct, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s %s: %v: %s", method, u, err, b)
	}
	return resp.StatusCode
}

func TestSwarmHTTP(t *testing.T) {
	const n = 8
	_, base := startTestSwarm(t, n)

	var st swarmState
	if code := getJSON(t, http.MethodGet, base+"api/state", nil, &st); code != http.StatusOK {
		t.Fatalf("state: status %d", code)
	}
	if len(st.Nodes) != n || st.Config.Nodes != n || st.Totals.Members != n || st.Totals.Linked != n {
		t.Fatalf("state: %d nodes, config %+v, totals %+v", len(st.Nodes), st.Config, st.Totals)
	}
	addrs := make([]overlay.Address, n)
	linked := make([]bool, n)
	for i, nd := range st.Nodes {
		b, err := hex.DecodeString(nd.Addr)
		if nd.Index != i || err != nil || len(b) != 32 || (i == 0) != nd.Publisher {
			t.Fatalf("node %d: %+v", i, nd)
		}
		copy(addrs[i][:], b)
	}
	seen := map[[2]int]bool{}
	for _, e := range st.Edges {
		if e[0] < 0 || e[1] >= n || e[0] >= e[1] || seen[e] {
			t.Fatalf("edge %v: want two existing members, lower first, once (edges %v)", e, st.Edges)
		}
		seen[e] = true
		linked[e[0]], linked[e[1]] = true, true
	}
	for i, ok := range linked {
		if !ok {
			t.Errorf("member %d is on no edge (edges %v)", i, st.Edges)
		}
	}

	// Routes end at the member truly nearest the target, computed here
	// from the addresses the state gave.
	nearest := func(target overlay.Address) int {
		best := 0
		for i := range addrs {
			if overlay.Closer(addrs[i], addrs[best], target) {
				best = i
			}
		}
		return best
	}
	var targets []overlay.Address
	for i := 0; i < 6; i++ {
		var a overlay.Address
		for j := range a {
			a[j] = byte(i*37 + j*11)
		}
		targets = append(targets, a)
	}
	exact := addrs[5]
	near := addrs[3]
	near[31] ^= 1 // one bit from member 3
	targets = append(targets, exact, near)
	for k, target := range targets {
		from := k % n
		method := []string{http.MethodGet, http.MethodPost}[k%2]
		var res swarmRoute
		code := getJSON(t, method, base+"api/route", url.Values{"to": {target.String()}, "from": {fmt.Sprint(from)}}, &res)
		want := nearest(target)
		if code != http.StatusOK || res.To != want || res.Nearest != want || !res.Correct {
			t.Errorf("route %d from %d to %s: status %d, %+v; want delivery at %d", k, from, target, code, res, want)
			continue
		}
		if len(res.Path) == 0 || res.Path[0] != from || res.Path[len(res.Path)-1] != want || res.Hops != len(res.Path)-1 {
			t.Errorf("route %d: path %v hops %d, want %d … %d", k, res.Path, res.Hops, from, want)
		}
	}
	var res swarmRoute
	if code := getJSON(t, http.MethodPost, base+"api/route", url.Values{"to": {"random"}}, &res); code != http.StatusOK || !res.Correct {
		t.Errorf("random route: status %d %+v", code, res)
	}

	bad := []url.Values{
		{"to": {"zz"}},
		{"to": {strings.Repeat("ab", 31)}},
		{"from": {"8"}},
		{"from": {"-1"}},
		{"from": {"first"}},
	}
	for _, form := range bad {
		var e map[string]string
		if code := getJSON(t, http.MethodGet, base+"api/route", form, &e); code != http.StatusBadRequest || e["error"] == "" {
			t.Errorf("route %v: status %d %v, want 400 with an error", form, code, e)
		}
	}

	// The page and its scripts come from the binary.
	for path, want := range map[string]string{"": "<svg id=\"graph\"", "app.js": "api/state", "style.css": ".node"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(want)) {
			t.Errorf("GET /%s: status %d, body lacks %q", path, resp.StatusCode, want)
		}
		if regexp.MustCompile(`(?i)(src|href)="https?:`).Match(b) {
			t.Errorf("GET /%s refers to another host", path)
		}
	}
}

func TestSwarmPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		d    []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{ms(4, 1, 3, 2), 0.99, 4 * time.Millisecond},
		{ms(4, 1, 3, 2), 0, 1 * time.Millisecond},
	}
	for _, tc := range tests {
		if got := swarmPercentile(tc.d, tc.q); got != tc.want {
			t.Errorf("percentile %v of %v = %v, want %v", tc.q, tc.d, got, tc.want)
		}
	}
}

func TestSwarmHelp(t *testing.T) {
	code, stdout, _ := runArgs(context.Background(), "swarm", "--help")
	for _, want := range []string{"Usage: strata swarm", "--nodes N", "--loss P", "--rate R", "--http ADDR", "--min-delivery X", "Examples:", "Exit status"} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("swarm --help: exit %d, output lacks %q:\n%s", code, want, stdout)
		}
	}
}

// TestSwarmInterrupt cancels a run while it streams: the command stops
// promptly, says it was interrupted and exits 1.
func TestSwarmInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"swarm", "--nodes", "4", "--duration", "60s", "--rate", "100k", "--http", ""}, newEnv(&out, &errb))
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(errb.String(), `"streaming"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no streaming progress: %s", errb.String())
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != exitFail || !strings.Contains(errb.String(), "strata swarm: interrupted") || out.String() != "" {
			t.Fatalf("exit %d, stdout %q, stderr %s", code, out.String(), errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("swarm did not stop within 10 s of the interrupt")
	}
}

// --early-fragments: the stream arrives whole, and (logged, not asserted:
// a timed run on a shared machine) the latency falls.
func TestSwarmEarlyFragments(t *testing.T) {
	p50 := make(map[bool]float64)
	for _, on := range []bool{false, true} {
		rep := swarmWhole(t, on, "--early-fragments", "--nodes", "8", "--duration", "2s", "--loss", "0", "--delay", "5ms", "--jitter", "0")
		p50[on] = rep.LatencyP50MS
	}
	t.Logf("latency p50 %.0f ms without --early-fragments, %.0f ms with", p50[false], p50[true])
}

// --backup-pushers: the stream arrives whole and every member receives
// each piece twice (bytes per useful byte about double).
func TestSwarmBackupPushers(t *testing.T) {
	overhead := make(map[bool]float64)
	for _, on := range []bool{false, true} {
		rep := swarmWhole(t, on, "--backup-pushers", "--nodes", "8", "--duration", "3s", "--early-fragments", "--loss", "0.02", "--delay", "5ms", "--jitter", "0")
		overhead[on] = rep.ReceivedPerByte
	}
	t.Logf("received per useful byte %.3f without --backup-pushers, %.3f with", overhead[false], overhead[true])
	if overhead[true] < 1.5*overhead[false] {
		t.Errorf("received per useful byte %.3f with --backup-pushers, %.3f without: pieces did not come twice", overhead[true], overhead[false])
	}
}

// --low-latency: the stream arrives whole, the publisher pushes about four
// times the copies (8 against 2) and every member receives each piece
// about twice (backup pushers).
func TestSwarmLowLatency(t *testing.T) {
	reps := make(map[bool]swarmReport)
	for _, on := range []bool{false, true} {
		reps[on] = swarmWhole(t, on, "--low-latency", "--nodes", "16", "--duration", "3s", "--loss", "0", "--delay", "5ms", "--jitter", "0")
	}
	off, lat := reps[false], reps[true]
	t.Logf("publisher upload %.2fx, received per useful byte %.3f, p50 %.0f ms without --low-latency; %.2fx, %.3f, %.0f ms with",
		off.PublisherUpload, off.ReceivedPerByte, off.LatencyP50MS, lat.PublisherUpload, lat.ReceivedPerByte, lat.LatencyP50MS)
	if lat.PublisherUpload < 2.5*off.PublisherUpload {
		t.Errorf("publisher upload %.2fx with --low-latency, %.2fx without: not the 8 copies", lat.PublisherUpload, off.PublisherUpload)
	}
	if lat.ReceivedPerByte < 1.5*off.ReceivedPerByte {
		t.Errorf("received per useful byte %.3f with --low-latency, %.3f without: pieces did not come twice", lat.ReceivedPerByte, off.ReceivedPerByte)
	}
}

// swarmWhole runs a swarm with args, and flag too if on, and checks that
// every member got the whole stream.
func swarmWhole(t *testing.T, on bool, flag string, args ...string) swarmReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append(append([]string{"swarm"}, args...), "--http", "", "--format", "json")
	if on {
		args = append(args, flag)
	}
	code, stdout, stderr := runArgs(ctx, args...)
	if code != exitOK {
		t.Fatalf("%s %v: exit %d\nstdout %s\nstderr %s", flag, on, code, stdout, stderr)
	}
	var rep swarmReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout)
	}
	if rep.Delivery != 1 || rep.LostBytes != 0 || rep.MismatchedBytes != 0 {
		t.Errorf("%s %v: delivery %v, lost %d, mismatched %d", flag, on, rep.Delivery, rep.LostBytes, rep.MismatchedBytes)
	}
	return rep
}

// --short-parity: at 64 kbit/s (blocks of 2 fragments) the publisher
// sends 1 parity piece per block instead of 4, and members receive far
// fewer bytes per useful byte for the same, whole stream.
func TestSwarmShortParity(t *testing.T) {
	overhead := make(map[bool]float64)
	for _, on := range []bool{false, true} {
		rep := swarmWhole(t, on, "--short-parity", "--nodes", "8", "--duration", "3s", "--rate", "64k", "--loss", "0", "--delay", "5ms", "--jitter", "0")
		overhead[on] = rep.ReceivedPerByte
	}
	t.Logf("received per useful byte: %.3f without --short-parity, %.3f with", overhead[false], overhead[true])
	if overhead[true] > 2.6 || overhead[false] < 3 {
		t.Errorf("received per useful byte %.3f with --short-parity (want under 2.6), %.3f without (want over 3)", overhead[true], overhead[false])
	}
}
