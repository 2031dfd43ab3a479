//go:build unix

package group

import (
	"context"
	"crypto/ed25519"
	"syscall"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// BenchmarkStreamCPU measures the CPU a stream costs: 30 members on
// memnet (10 ms links, no loss) in real time, a 1 Mbit/s stream for 2 s;
// each op forms a mesh, streams and closes it. The metric is the process's
// CPU time (user + system, getrusage) from the first write until every
// member output the stream, per member and second of stream:
// cpu-ms/member-s. The wall time per op is mostly the stream's own 2 s.
//
//	go test ./group -run '^$' -bench StreamCPU -count 6 | tee new.txt
func BenchmarkStreamCPU(b *testing.B) {
	const members, secs, rate = 30, 2, 125_000
	var cpu time.Duration
	for range b.N {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "cpu", Multicast: true, PublisherKey: pub}
		m := newMesh(b, members, memnet.Link{Delay: 10 * time.Millisecond}, spec, Config{}, priv)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		m.bootstrap(ctx)
		data := streamData(secs * rate)
		m.subscribe(ctx, data)
		m.impair()
		p, err := m.members[0].g.Publish()
		if err != nil {
			b.Fatal(err)
		}
		before := cpuTime(b)
		publish(b, ctx, p, data, rate, 1000)
		res := m.collect(data, 10*time.Second)
		cpu += cpuTime(b) - before
		cancel()
		m.close()
		if res.missing > 0 {
			b.Fatalf("a member misses %.3f%% of the stream", res.missing*100)
		}
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N)/members/secs, "cpu-ms/member-s")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
