package memnet

import (
	"testing"
	"time"
)

// BenchmarkSendReceive measures one datagram written and read, on the
// paths a node uses.
func BenchmarkSendReceive(b *testing.B) {
	payload := make([]byte, 1200)
	buf := make([]byte, 1500)

	b.Run("sync/netip", func(b *testing.B) {
		n := New(Config{})
		defer n.Close()
		a, c := listen(b, n, "10.0.0.1:1"), listen(b, n, "10.0.0.2:1")
		to := c.LocalAddrPort()
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			a.WriteToUDPAddrPort(payload, to)
			c.ReadFromUDPAddrPort(buf)
		}
	})
	b.Run("sync/net.Addr", func(b *testing.B) {
		n := New(Config{})
		defer n.Close()
		a, c := listen(b, n, "10.0.0.1:1"), listen(b, n, "10.0.0.2:1")
		to := c.LocalAddr()
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			a.WriteTo(payload, to)
			c.ReadFrom(buf)
		}
	})
	// A reader goroutine and a delayed link on the wall clock: the heap and
	// the timer carry every datagram.
	for _, link := range []struct {
		name string
		l    Link
	}{
		{"async/instant", Link{}},
		{"async/delay+jitter+loss", Link{Delay: time.Millisecond, Jitter: 100 * time.Microsecond, Loss: 0.01}},
	} {
		b.Run(link.name, func(b *testing.B) {
			n := New(Config{Link: link.l, RecvQueue: 1 << 16})
			defer n.Close()
			a, c := listen(b, n, "10.0.0.1:1"), listen(b, n, "10.0.0.2:1")
			to := c.LocalAddrPort()
			done := make(chan int)
			go func() {
				got := 0
				rbuf := make([]byte, 1500)
				for {
					if _, _, err := c.ReadFromUDPAddrPort(rbuf); err != nil {
						done <- got
						return
					}
					got++
				}
			}()
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for i := 0; b.Loop(); i++ {
				a.WriteToUDPAddrPort(payload, to)
				if i%256 == 255 {
					// Keep the receive queue from overflowing: wait
					// while the link and reader catch up.
					for c.Pending() > 1<<15 || n.Stats().InFlight > 1<<15 {
						time.Sleep(50 * time.Microsecond)
					}
				}
			}
			for n.Stats().InFlight > 0 {
				time.Sleep(100 * time.Microsecond)
			}
			for c.Pending() > 0 {
				time.Sleep(100 * time.Microsecond)
			}
			c.Close()
			got := <-done
			s := n.Stats()
			if s.DroppedBuffer > 0 {
				b.Logf("receive queue overflowed %d times", s.DroppedBuffer)
			}
			b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "delivered/s")
		})
	}
}

// BenchmarkSimulation is a simulation-style load on a ManualClock: 2,000
// conns each sending to a neighbour over delayed, lossy links, driven
// event by event.
func BenchmarkSimulation(b *testing.B) {
	clk := NewManualClock(epoch)
	n := New(Config{Clock: clk, Seed: 1, Link: Link{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.02}})
	defer n.Close()
	const conns = 2000
	cs := make([]*Conn, conns)
	for i := range cs {
		c, err := n.ListenAuto()
		if err != nil {
			b.Fatal(err)
		}
		cs[i] = c
	}
	payload := make([]byte, 1000)
	buf := make([]byte, 1500)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		from := cs[i%conns]
		from.WriteToUDPAddrPort(payload, cs[(i*31+1)%conns].LocalAddrPort())
		i++
		if i%conns == 0 {
			clk.Advance(time.Millisecond)
			for _, c := range cs {
				for c.Pending() > 0 {
					c.ReadFromUDPAddrPort(buf)
				}
			}
		}
	}
}
