// Command transport runs the Strata, quic-go and TCP bulk transfers of the
// bench module interleaved in rounds (strata, quic, tcp, strata, quic, ...)
// on 127.0.0.1 and prints goodput and CPU per MiB for each, with the
// ratios strata/quic and strata/tcp. Interleaving and ratios are there
// because the machine is shared: a noisy neighbour slows every contender
// of a round, not just one.
//
//	go run ./cmd/transport -rounds 5 -mib 64 -msg 16384
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/strata-net/strata/bench/internal/harness"
)

func main() {
	rounds := flag.Int("rounds", 5, "rounds; each runs every transport once")
	mib := flag.Int("mib", 64, "MiB transferred per run")
	msg := flag.Int("msg", 16<<10, "bytes per write / message")
	timeout := flag.Duration("timeout", 4*time.Minute, "overall time limit")
	flag.Parse()
	if err := run(*rounds, *mib, *msg, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "transport:", err)
		os.Exit(1)
	}
}

func run(rounds, mib, msg int, timeout time.Duration) error {
	if rounds < 1 || mib < 1 || msg < 8 {
		return fmt.Errorf("need rounds >= 1, mib >= 1, msg >= 8")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	count := (mib << 20) / msg
	ts := map[string]harness.Transport{}
	for _, name := range harness.Names {
		t, err := harness.New(name)
		if err != nil {
			return err
		}
		if err := t.Setup(ctx); err != nil {
			return fmt.Errorf("%s setup: %w", name, err)
		}
		defer t.Close()
		ts[name] = t
	}
	// One untimed warm-up of each (socket buffers, congestion windows).
	for _, name := range harness.Names {
		if _, err := harness.Measure(ctx, ts[name], count/8+1, msg); err != nil {
			return fmt.Errorf("%s warm-up: %w", name, err)
		}
	}
	res := map[string][]harness.Result{}
	fmt.Printf("%d rounds of %d x %d-byte messages (%d MiB) each, loopback\n", rounds, count, msg, mib)
	for r := 0; r < rounds; r++ {
		for _, name := range harness.Names {
			x, err := harness.Measure(ctx, ts[name], count, msg)
			if err != nil {
				return fmt.Errorf("round %d %s: %w", r, name, err)
			}
			res[name] = append(res[name], x)
			fmt.Printf("  round %d %-6s %8.1f MiB/s %10.0f cpu-ns/MiB\n", r+1, name, x.MiBps(), x.CPUPerMiB())
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "transport\tMiB/s (median)\tmin\tmax\tcpu-ms/MiB (median)\t")
	for _, name := range harness.Names {
		gp := collect(res[name], harness.Result.MiBps)
		cpu := collect(res[name], harness.Result.CPUPerMiB)
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%.1f\t%.2f\t\n", name, median(gp), gp[0], gp[len(gp)-1], median(cpu)/1e6)
	}
	w.Flush()
	// Per-round ratios, then their median: each ratio compares runs made
	// a few seconds apart.
	fmt.Println()
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "ratio (median of per-round ratios)\tgoodput\tcpu per MiB\t")
	for _, other := range []string{"quic", "tcp"} {
		var g, c []float64
		for i := range res["strata"] {
			g = append(g, res["strata"][i].MiBps()/res[other][i].MiBps())
			c = append(c, res["strata"][i].CPUPerMiB()/res[other][i].CPUPerMiB())
		}
		sort.Float64s(g)
		sort.Float64s(c)
		fmt.Fprintf(w, "strata/%s\t%.3f\t%.2f\t\n", other, median(g), median(c))
	}
	w.Flush()
	return nil
}

func collect(rs []harness.Result, f func(harness.Result) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	sort.Float64s(out)
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}
