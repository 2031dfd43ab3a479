// Package bench holds side-by-side benchmarks of Strata against quic-go and
// plain TCP on loopback. It is a separate module so that quic-go never
// enters the library's dependency tree; see docs/benchmarks.md.
package bench

import (
	"context"
	"testing"
	"time"

	"github.com/strata-net/strata/bench/internal/harness"
)

// msgSize is the size of one write: one Strata message, or one Write on
// the QUIC stream or TCP connection.
const msgSize = 16 << 10

// BenchmarkTransfer moves b.N messages of 16 KiB over one reliable flow,
// stream or connection on 127.0.0.1 (-benchtime=4096x is 64 MiB). The
// connection is set up before the timer starts. MB/s is goodput;
// cpu-ns/MiB is user+system CPU of the whole process (sender and receiver
// both) per MiB delivered.
func BenchmarkTransfer(b *testing.B) {
	for _, name := range harness.Names {
		b.Run("proto="+name, func(b *testing.B) {
			t, err := harness.New(name)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			if err := t.Setup(ctx); err != nil {
				b.Fatal(err)
			}
			defer t.Close()
			b.SetBytes(msgSize)
			b.ResetTimer()
			r, err := harness.Measure(ctx, t, b.N, msgSize)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(r.CPUPerMiB(), "cpu-ns/MiB")
		})
	}
}

// BenchmarkHandshake opens and closes one session per iteration from a new
// client (its own socket) to a long-lived server on 127.0.0.1: the
// handshake, the first usable session, and an orderly close.
func BenchmarkHandshake(b *testing.B) {
	cases := []struct {
		name string
		make func() (harness.Handshaker, error)
	}{
		{"strata", func() (harness.Handshaker, error) { return harness.NewStrataHandshaker(true) }},
		{"strata-fixed-identity", func() (harness.Handshaker, error) { return harness.NewStrataHandshaker(false) }},
		{"quic", func() (harness.Handshaker, error) { return harness.NewQUICHandshaker() }},
	}
	for _, tc := range cases {
		b.Run("proto="+tc.name, func(b *testing.B) {
			h, err := tc.make()
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			c0 := harness.CPUTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := h.Handshake(ctx); err != nil {
					b.Fatalf("handshake %d: %v", i, err)
				}
			}
			h.Wait()
			b.StopTimer()
			cpu := harness.CPUTime() - c0
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/handshake")
		})
	}
}
