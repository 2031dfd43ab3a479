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

// Percentiles read while samples keep coming: the in-place sort must
// neither hide later samples nor bias which ones are kept, and reading
// allocates nothing.
func TestReservoirReadWhileAdding(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	pick := func(n uint64) uint64 { return rnd.Uint64N(n) }
	r := reservoir{limit: 200}
	for i := 1; i <= 10000; i++ {
		r.add(time.Duration(i)*time.Millisecond, pick)
		if i%50 == 0 {
			r.percentile(0.5)
		}
	}
	if p := r.percentile(0.5); p < 4000*time.Millisecond || p > 6000*time.Millisecond {
		t.Fatalf("median of 1..10000 ms read while adding: %v", p)
	}
	if n := testing.AllocsPerRun(10, func() { r.percentile(0.99) }); n != 0 {
		t.Fatalf("percentile allocates %v times", n)
	}
	small := reservoir{limit: 1000}
	for i := 1; i <= 100; i++ {
		small.add(time.Millisecond, pick)
	}
	if p := small.percentile(0.5); p != time.Millisecond {
		t.Fatalf("median %v, want 1ms", p)
	}
	for i := 1; i <= 200; i++ {
		small.add(time.Second, pick)
	}
	if p := small.percentile(0.5); p != time.Second {
		t.Fatalf("median after 200 samples of 1s over 100 of 1ms: %v (a stale sort?)", p)
	}
}
