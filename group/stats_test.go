package group

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The latency reservoir keeps every sample up to its limit, then a
// uniform sample of at most limit; it grows with use instead of being
// allocated at its limit.
func TestReservoir(t *testing.T) {
	for _, c := range []struct {
		name         string
		limit, n     int
		wantLen      int
		p50lo, p50hi time.Duration // bounds of the median of 1..n ms
	}{
		{"under the limit", 100, 10, 10, 5 * time.Millisecond, 5 * time.Millisecond},
		{"at the limit", 10, 10, 10, 5 * time.Millisecond, 5 * time.Millisecond},
		{"over the limit", 200, 10000, 200, 4000 * time.Millisecond, 6000 * time.Millisecond},
		{"no samples kept", 0, 10, 0, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := reservoir{limit: c.limit}
			if cap(r.samples) != 0 {
				t.Fatalf("allocated %d samples before any", cap(r.samples))
			}
			rnd := rand.New(rand.NewPCG(1, 2))
			for i := 1; i <= c.n; i++ {
				r.add(time.Duration(i)*time.Millisecond, func(n uint64) uint64 { return rnd.Uint64N(n) })
			}
			if len(r.samples) != c.wantLen {
				t.Fatalf("%d samples kept, want %d", len(r.samples), c.wantLen)
			}
			if p := r.percentile(0.5); p < c.p50lo || p > c.p50hi {
				t.Fatalf("median %v, want %v..%v", p, c.p50lo, c.p50hi)
			}
		})
	}
}
