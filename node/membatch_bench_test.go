package node

import (
	"context"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// BenchmarkMemnetFlow: one flow of 1000-byte messages between two nodes
// on memnet (real clock, no delay), reading one datagram a call against
// taking what is queued at once (ReadBatch). Compare with benchstat:
//
//	go test ./node -run '^$' -bench MemnetFlow -count 8 | tee /tmp/m.txt; benchstat -col /read /tmp/m.txt
func BenchmarkMemnetFlow(b *testing.B) {
	for _, c := range []struct {
		name  string
		batch bool
	}{{"read=single", false}, {"read=batch", true}} {
		b.Run(c.name, func(b *testing.B) {
			old := memBatchReads
			memBatchReads = c.batch
			defer func() { memBatchReads = old }()
			benchMemnetFlow(b)
		})
	}
}

func benchMemnetFlow(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := memnetNodes(b, memnet.Config{RecvQueue: 4096}, 2)
	s, err := ns[0].Dial(ctx, ns[1].AddrPort(), ns[1].PeerID())
	if err != nil {
		b.Fatal(err)
	}
	f, err := s.OpenFlow([]byte("bench"), PriorityRoutine)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 1000)
	got := make(chan int, 1)
	go func() {
		rf, err := ns[1].AcceptFlow(ctx)
		if err != nil {
			got <- -1
			return
		}
		buf := make([]byte, 2048)
		n := 0
		for n < b.N {
			k, err := rf.ReadInto(ctx, buf)
			if err != nil || k != len(msg) {
				break
			}
			n++
		}
		got <- n
	}()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for range b.N {
		if _, err := f.Write(ctx, msg, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if n := <-got; n != b.N {
		b.Fatalf("received %d of %d messages", n, b.N)
	}
}
