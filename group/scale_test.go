package group

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
	"github.com/strata-net/strata/overlay"
)

// TestStreamScale measures the stream scenario at sizes, loss rates and
// FEC parameters of the caller's choosing, on the virtual clock:
//
//	STRATA_GROUP_SCALE=1000:0.05,100:0:16:4 [STRATA_GROUP_SCALE_SECONDS=10] \
//	  go test ./group -run StreamScale -v -timeout 3h
//
// Each entry is members[:loss[:k:m]] (loss 0.05 and k=16, m=4 by
// default); links are 20-60 ms one way, the stream 1 Mbit/s. The figures
// are the protocol's (virtual latency, bytes), so this is a measurement
// run rather than a testing.B benchmark; docs/benchmarks.md records them.
// It asserts nothing but that the run completes; without the variable it
// is skipped.
func TestStreamScale(t *testing.T) {
	spec := os.Getenv("STRATA_GROUP_SCALE")
	if spec == "" {
		t.Skip("set STRATA_GROUP_SCALE (see the doc comment) to measure")
	}
	secs := 10
	if v, err := strconv.Atoi(os.Getenv("STRATA_GROUP_SCALE_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	for _, e := range strings.Split(spec, ",") {
		f := strings.Split(strings.TrimSpace(e), ":")
		n, err := strconv.Atoi(f[0])
		loss, k, m := 0.05, 16, 4
		if err == nil && len(f) > 1 {
			loss, err = strconv.ParseFloat(f[1], 64)
		}
		if err == nil && len(f) > 3 {
			if k, err = strconv.Atoi(f[2]); err == nil {
				m, err = strconv.Atoi(f[3])
			}
		}
		if err != nil || n < 2 || len(f) == 3 || len(f) > 4 {
			t.Fatalf("STRATA_GROUP_SCALE entry %q: want members[:loss[:k:m]]", e)
		}
		t.Run(e, func(t *testing.T) {
			sc := sweepScenario(n, loss, secs, Config{K: k, M: m})
			wall := time.Now()
			var res result
			runVirtual(t, func(t *testing.T) { res = sc.run(t) })
			t.Logf("| %d | %.0f %% | %d+%d | %.4f %% | %.3f (max %.3f) | %s | %.2f× | %v / %v | %.0f KiB | %v |",
				n, loss*100, k, m, res.missing*100, res.meanOverhead, res.overhead, res.perPurpose, res.upload,
				res.poolP50.Round(time.Millisecond), res.poolP99.Round(time.Millisecond),
				res.heapPerMember/1024, time.Since(wall).Round(time.Second))
		})
	}
}

// sweepScenario is the measurement runs' stream scenario (TestStreamScale,
// TestSimReport): n members, links of 20-60 ms one way drawn per datagram
// with loss each way, 1 Mbit/s for secs seconds, nothing asserted. The
// overlay refreshes its buckets at the default period (30 s) rather than
// LocalConfig's 5 s, as the swarm does: the work of refreshes grows as N²
// and with the stream's length; at 300 members and 10 s the figures did
// not move and the run took a fifth less real time (docs/sim.md).
func sweepScenario(n int, loss float64, secs int, cfg Config) streamScenario {
	if cfg.Overlay.RequestTimeout == 0 {
		cfg.Overlay = overlay.LocalConfig()
		cfg.Overlay.RefreshPeriod = overlay.DefaultRefreshPeriod
	}
	return streamScenario{
		members:  n,
		link:     memnet.Link{Delay: 20 * time.Millisecond, Jitter: 40 * time.Millisecond, Loss: loss},
		bytes:    secs * 125_000,
		rate:     125_000,
		drain:    10 * time.Second,
		deadline: 24 * time.Hour,
		cfg:      cfg,
		measure:  true,
	}
}
