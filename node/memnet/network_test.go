package memnet

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestRealClockDelivery checks delay bounds on the wall clock, where
// deliveries run from the timer: never early, and not absurdly late.
func TestRealClockDelivery(t *testing.T) {
	const delay = 20 * time.Millisecond
	n := New(Config{Link: Link{Delay: delay, Jitter: 5 * time.Millisecond}})
	defer n.Close()
	a := listen(t, n, "10.0.0.1:1")
	b := listen(t, n, "10.0.0.2:1")
	buf := make([]byte, 16)
	for i := range 5 {
		start := time.Now()
		send(t, a, b.LocalAddrPort(), seqPayload(uint32(i), 8))
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := b.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < delay || el > delay+5*time.Millisecond+time.Second {
			t.Fatalf("datagram %d took %v", i, el)
		}
	}
}

func TestStatsBalance(t *testing.T) {
	n, clk := newManual(t, Config{Seed: 5, RecvQueue: 50, Link: Link{
		Delay: 3 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.05, Duplicate: 0.05,
		Reorder: 0.05, Bandwidth: 1e6, QueueLimit: 20_000, MTU: 1200}})
	conns := make([]*Conn, 5)
	for i := range conns {
		c, err := n.ListenAuto()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	nowhere := ap("10.99.0.1:1")
	n.Block(conns[0].LocalAddrPort().Addr(), conns[1].LocalAddrPort().Addr())
	for i := range 2000 {
		from := conns[i%5]
		to := conns[(i*7+1)%5].LocalAddrPort()
		if i%97 == 0 {
			to = nowhere
		}
		send(t, from, to, make([]byte, 100+(i*37)%1300))
		if i%10 == 0 {
			clk.Advance(time.Millisecond)
		}
	}
	if n.Stats().InFlight == 0 {
		t.Fatal("nothing in flight mid-test")
	}
	clk.Advance(time.Second)
	s := n.Stats()
	if s.InFlight != 0 {
		t.Fatalf("in flight after settling: %d", s.InFlight)
	}
	if s.Sent+s.Duplicated != s.Received+s.Dropped() {
		t.Fatalf("unbalanced: %+v", s)
	}
	for name, v := range map[string]uint64{"loss": s.DroppedLoss, "queue": s.DroppedQueue,
		"buffer": s.DroppedBuffer, "mtu": s.DroppedMTU, "blocked": s.DroppedBlocked,
		"no listener": s.DroppedNoListener, "duplicated": s.Duplicated, "reordered": s.Reordered} {
		if v == 0 {
			t.Errorf("no %s events; the test no longer covers them", name)
		}
	}
	// Network totals are the sums over conns.
	var sum Stats
	for _, c := range conns {
		cs := c.Stats()
		sum.Sent += cs.Sent
		sum.SentBytes += cs.SentBytes
		sum.Received += cs.Received
		sum.ReceivedBytes += cs.ReceivedBytes
		sum.DroppedBuffer += cs.DroppedBuffer
		sum.DroppedLoss += cs.DroppedLoss
	}
	if sum.Sent != s.Sent || sum.SentBytes != s.SentBytes || sum.Received != s.Received ||
		sum.ReceivedBytes != s.ReceivedBytes || sum.DroppedBuffer != s.DroppedBuffer || sum.DroppedLoss != s.DroppedLoss {
		t.Fatalf("conn sums %+v differ from network %+v", sum, s)
	}
}

// TestInFlightToClosedConn checks that datagrams in flight to a conn closed
// meanwhile are dropped, and reach a new conn bound to the address.
func TestInFlightToClosedConn(t *testing.T) {
	n, clk := newManual(t, Config{Link: Link{Delay: 10 * time.Millisecond}})
	a := listen(t, n, "10.0.0.1:1")
	b := listen(t, n, "10.0.0.2:1")
	send(t, a, b.LocalAddrPort(), []byte("1"))
	b.Close()
	clk.Advance(10 * time.Millisecond)
	if s := a.Stats(); s.DroppedNoListener != 1 {
		t.Fatalf("stats %+v", s)
	}
	send(t, a, b.LocalAddrPort(), []byte("2"))
	b2 := listen(t, n, "10.0.0.2:1")
	clk.Advance(10 * time.Millisecond)
	if b2.Pending() != 1 {
		t.Fatal("datagram in flight did not reach the rebound address")
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	n := New(Config{Seed: 1, Link: Link{Delay: 2 * time.Millisecond, Jitter: time.Millisecond, Bandwidth: 1e6}})
	const conns = 50
	cs := make([]*Conn, conns)
	var readers sync.WaitGroup
	for i := range cs {
		c, err := n.ListenAuto()
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
		c.SetReadDeadline(time.Now().Add(time.Hour)) // a pending deadline timer
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 2048)
			for {
				if _, _, err := c.ReadFrom(buf); err != nil {
					return
				}
			}
		}()
	}
	for i := range 2000 {
		send(t, cs[i%conns], cs[(i+1)%conns].LocalAddrPort(), make([]byte, 500))
	}
	if n.Stats().InFlight == 0 {
		t.Fatal("nothing in flight at Close")
	}
	n.Close()
	readers.Wait()
	after := n.Stats()
	time.Sleep(20 * time.Millisecond) // the delays have passed: nothing may be delivered now
	if s := n.Stats(); s != after || s.InFlight != 0 {
		t.Fatalf("activity after Close: %+v then %+v", after, s)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after Close:\n%s", before, got, buf[:runtime.Stack(buf, true)])
	}
}
