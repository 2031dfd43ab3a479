package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// chromiumBinary is the headless browser for the live view's test, if
// one is installed (Debian's package is "chromium"; .ci/run installs it).
func chromiumBinary() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// chromiumDOM loads url in headless Chromium, lets the page run for
// budget of virtual time (the page's timers; network waits do not count)
// and returns the DOM as it then is.
func chromiumDOM(t *testing.T, bin, url string, budget time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget="+strconv.Itoa(int(budget.Milliseconds())), "--dump-dom", url)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --dump-dom: %v", bin, err)
	}
	return string(out)
}

// domFloat returns the number in the first group of re's match in dom.
func domFloat(t *testing.T, dom string, re *regexp.Regexp) float64 {
	t.Helper()
	m := re.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("DOM has no match for %s:\n%s", re, dom)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %q is not a number", re, m[1])
	}
	return v
}

var (
	domNode      = regexp.MustCompile(`<circle class="node(?: [a-z-]+)*"[^>]*data-i="\d+"`)
	domEdge      = regexp.MustCompile(`<line class="edge"`)
	domDelivered = regexp.MustCompile(`id="delivered"[^>]*data-value="([0-9.e+-]+)"[^>]*>[0-9.]+ %<`)
	domPublished = regexp.MustCompile(`id="published"[^>]*data-value="([0-9]+)"`)
	domUpdates   = regexp.MustCompile(`<body[^>]*data-updates="(\d+)"`)
	domElapsed   = regexp.MustCompile(`<body[^>]*data-elapsed="([0-9.]+)"`)
	domPoints    = regexp.MustCompile(`id="chart"[^>]*data-points="(\d+)"`)
	domRouteOK   = regexp.MustCompile(`id="route-result"[^>]*data-status="ok"`)
	domHop       = regexp.MustCompile(`<polyline class="hop"`)
	liveViewURL  = regexp.MustCompile(`live view at (http://\S+)`)
)

// TestSwarmChromium runs the command with its live view, loads the page
// in headless Chromium twice and checks that the graph, the figures, the
// chart and a route rendered, and that the second load shows later
// figures.
func TestSwarmChromium(t *testing.T) {
	bin := chromiumBinary()
	if bin == "" {
		t.Skip("chromium is not installed (apt-get install chromium): the live view's browser test does not run")
	}
	const n = 8
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		// The page is under test here, not delivery (TestSwarmRun checks
		// that), and Chromium competes with the swarm for the CPU: a
		// starved run may lose blocks, so no delivery threshold.
		done <- run(ctx, []string{"swarm", "--nodes", strconv.Itoa(n), "--duration", "10s", "--rate", "400k",
			"--loss", "0", "--min-delivery", "0", "--http", "127.0.0.1:0", "--format", "json"}, newEnv(&out, &errb))
	}()
	var base string
	for deadline := time.Now().Add(20 * time.Second); base == ""; time.Sleep(20 * time.Millisecond) {
		if m := liveViewURL.FindStringSubmatch(errb.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no live view URL on stderr: %s", errb.String())
		}
	}
	// Wait for the stream to start, so the figures have something to show.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var st struct {
			Totals swarmTotals `json:"totals"`
		}
		if resp, err := http.Get(base + "api/state"); err == nil {
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if st.Totals.Published > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream did not start: %s", errb.String())
		}
	}

	dom1 := chromiumDOM(t, bin, base+"?route=random", 2500*time.Millisecond)
	if got := len(domNode.FindAllString(dom1, -1)); got != n {
		t.Errorf("graph has %d member nodes, want %d", got, n)
	}
	if len(domEdge.FindAllString(dom1, -1)) < n-1 {
		t.Errorf("graph has %d edges, fewer than a tree of %d members needs", len(domEdge.FindAllString(dom1, -1)), n)
	}
	if d := domFloat(t, dom1, domDelivered); d <= 0 || d > 1 {
		t.Errorf("delivered figure %g, want in (0, 1]", d)
	}
	pub1 := domFloat(t, dom1, domPublished)
	if pub1 <= 0 {
		t.Errorf("published figure %g, want > 0", pub1)
	}
	if u := domFloat(t, dom1, domUpdates); u < 2 {
		t.Errorf("the page updated %g times in 2.5 s of its time, want at least 2", u)
	}
	if p := domFloat(t, dom1, domPoints); p < 1 {
		t.Errorf("the chart has %g points", p)
	}
	if !domRouteOK.MatchString(dom1) || !domHop.MatchString(dom1) {
		t.Errorf("the route to a random address did not render as delivered at the nearest member")
	}

	time.Sleep(1500 * time.Millisecond)
	dom2 := chromiumDOM(t, bin, base, 1500*time.Millisecond)
	if e1, e2 := domFloat(t, dom1, domElapsed), domFloat(t, dom2, domElapsed); e2 < e1+1 {
		t.Errorf("elapsed %g s then %g s: the view did not update", e1, e2)
	}
	if pub2 := domFloat(t, dom2, domPublished); pub2 <= pub1 {
		t.Errorf("published %g then %g bytes: the figures did not update", pub1, pub2)
	}
	if got := len(domNode.FindAllString(dom2, -1)); got != n {
		t.Errorf("second load: %d member nodes, want %d", got, n)
	}

	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("swarm exit %d: %s", code, errb.String())
		}
	case <-ctx.Done():
		t.Fatal("swarm did not finish")
	}
}
