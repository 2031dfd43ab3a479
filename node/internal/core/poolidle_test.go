package core_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/strata-net/strata/node/internal/core"
)

// What a burst leaves in an endpoint's buffer pool goes back to the
// collector, half of it per trim period the endpoint is idle: the
// pool holds what traffic cycles through, not its busiest moment's worth.
// The messages arrive intact, the pool's buffers reused in between.
func TestPoolGivesBackAfterBurst(t *testing.T) {
	n := newSimNet(t, 5)
	a, b, sa, _ := pair(t, n, core.Config{})
	f, err := sa.OpenFlow([]byte("burst"), core.PriorityRoutine)
	if err != nil {
		t.Fatal(err)
	}
	var sent [][]byte
	for i := range 200 {
		m := message(i, 1000)
		sent = append(sent, m)
		if _, err := f.Write(m, core.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c := &collector{readAll: true}
	bAddr := n.addrOf(b)
	if !n.runUntil(30*time.Second, func() bool {
		c.pump(n.takeEvents(bAddr))
		return len(c.msgs) == len(sent)
	}) {
		t.Fatalf("%d of %d messages delivered", len(c.msgs), len(sent))
	}
	for i, m := range c.msgs {
		if !bytes.Equal(m, sent[i]) {
			t.Fatalf("message %d differs", i)
		}
	}
	n.runFor(100*time.Millisecond, func() {}) // the last acks
	// The sender's acknowledged fragments came back to its pool (the
	// receiver handed its buffers over with each message read).
	if a.PooledBuffers() < 50 {
		t.Fatalf("after the burst the sender's pool holds %d buffers: expected the burst's", a.PooledBuffers())
	}
	// Idle: the endpoints are called (a timer, a packet) now and then.
	for range 12 {
		n.now = n.now.Add(time.Second)
		a.Tick(n.now)
		b.Tick(n.now)
	}
	if a.PooledBuffers() != 0 || b.PooledBuffers() != 0 {
		t.Fatalf("idle for 12 s, the pools still hold %d and %d buffers", a.PooledBuffers(), b.PooledBuffers())
	}
}
