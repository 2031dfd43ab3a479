package memnet

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

// readResult is what a background ReadFrom returned.
type readResult struct {
	n   int
	err error
}

func readAsync(c *Conn) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		buf := make([]byte, 100)
		n, _, err := c.ReadFrom(buf)
		ch <- readResult{n, err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan readResult) readResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("read did not return")
		return readResult{}
	}
}

func assertTimeout(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v is not a net.Error timeout", err)
	}
}

func TestReadDeadlineRealClock(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration // relative to now
		atLeast  time.Duration
	}{
		{"past", -time.Second, 0},
		{"now", 0, 0},
		{"future", 30 * time.Millisecond, 30 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := New(Config{})
			defer n.Close()
			c := listen(t, n, "10.0.0.1:1")
			start := time.Now()
			if err := c.SetReadDeadline(start.Add(tt.deadline)); err != nil {
				t.Fatal(err)
			}
			r := wait(t, readAsync(c))
			assertTimeout(t, r.err)
			if el := time.Since(start); el < tt.atLeast {
				t.Fatalf("timed out after %v, want >= %v", el, tt.atLeast)
			}
		})
	}
}

func TestReadDeadlineManualClock(t *testing.T) {
	n, clk := newManual(t, Config{})
	a := listen(t, n, "10.0.0.1:1")
	c := listen(t, n, "10.0.0.2:1")
	c.SetReadDeadline(clk.Now().Add(time.Second))
	ch := readAsync(c)
	clk.Advance(999 * time.Millisecond)
	select {
	case r := <-ch:
		t.Fatalf("read returned before the deadline: %v", r.err)
	case <-time.After(20 * time.Millisecond):
	}
	// Extending the deadline while blocked keeps the reader blocked.
	c.SetReadDeadline(clk.Now().Add(time.Second))
	clk.Advance(500 * time.Millisecond)
	select {
	case r := <-ch:
		t.Fatalf("read returned before the extended deadline: %v", r.err)
	case <-time.After(20 * time.Millisecond):
	}
	clk.Advance(500 * time.Millisecond)
	assertTimeout(t, wait(t, ch).err)

	// An expired deadline fails reads even with data queued, as net does.
	send(t, a, c.LocalAddrPort(), []byte("x"))
	if _, _, err := c.ReadFrom(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with expired deadline: %v", err)
	}
	// Clearing it makes the data readable.
	c.SetReadDeadline(time.Time{})
	if r := wait(t, readAsync(c)); r.err != nil || r.n != 1 {
		t.Fatalf("read after clearing deadline = %d, %v", r.n, r.err)
	}
	// A blocked reader is woken by a deadline set in the past.
	ch = readAsync(c)
	time.Sleep(10 * time.Millisecond)
	c.SetReadDeadline(clk.Now().Add(-time.Second))
	assertTimeout(t, wait(t, ch).err)
}

func TestWriteDeadline(t *testing.T) {
	n, clk := newManual(t, Config{})
	a := listen(t, n, "10.0.0.1:1")
	b := listen(t, n, "10.0.0.2:1")
	a.SetWriteDeadline(clk.Now().Add(time.Second))
	send(t, a, b.LocalAddrPort(), []byte("ok"))
	clk.Advance(time.Second)
	_, err := a.WriteTo([]byte("late"), b.LocalAddr())
	assertTimeout(t, err)
	a.SetDeadline(time.Time{})
	send(t, a, b.LocalAddrPort(), []byte("ok again"))
	if got := b.Pending(); got != 2 {
		t.Fatalf("pending = %d, want 2", got)
	}
}

func TestCloseUnblocksReaders(t *testing.T) {
	tests := []struct {
		name  string
		close func(n *Network, c *Conn)
	}{
		{"conn", func(_ *Network, c *Conn) { c.Close() }},
		{"network", func(n *Network, _ *Conn) { n.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := New(Config{})
			defer n.Close()
			c := listen(t, n, "10.0.0.1:1")
			var chs []<-chan readResult
			for range 3 {
				chs = append(chs, readAsync(c))
			}
			time.Sleep(10 * time.Millisecond)
			tt.close(n, c)
			for _, ch := range chs {
				if r := wait(t, ch); !errors.Is(r.err, net.ErrClosed) {
					t.Fatalf("blocked read returned %v, want net.ErrClosed", r.err)
				}
			}
			if _, _, err := c.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after close: %v", err)
			}
			if _, err := c.WriteTo([]byte("x"), c.LocalAddr()); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("write after close: %v", err)
			}
			if err := c.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("SetDeadline after close: %v", err)
			}
			if err := c.Close(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

func TestCloseFreesAddress(t *testing.T) {
	n, _ := newManual(t, Config{})
	c := listen(t, n, "10.0.0.1:7")
	if _, err := n.Listen(ap("10.0.0.1:7")); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("second Listen: %v, want ErrAddrInUse", err)
	}
	c.Close()
	listen(t, n, "10.0.0.1:7")
	n.Close()
	if _, err := n.Listen(ap("10.0.0.1:8")); !errors.Is(err, ErrNetworkClosed) {
		t.Fatalf("Listen after Close: %v", err)
	}
	if _, err := n.ListenAuto(); !errors.Is(err, ErrNetworkClosed) {
		t.Fatalf("ListenAuto after Close: %v", err)
	}
}

func TestListenAddresses(t *testing.T) {
	n, _ := newManual(t, Config{})
	tests := []struct {
		addr    string
		wantErr error
	}{
		{"0.0.0.0:1", ErrBadAddr},
		{"[::]:1", ErrBadAddr},
		{"224.0.0.1:1", ErrBadAddr},
		{"192.0.2.1:1", nil},
		{"[2001:db8::1]:1", nil},
		{"[::ffff:192.0.2.2]:1", nil}, // unmapped to 192.0.2.2
	}
	for _, tt := range tests {
		c, err := n.Listen(ap(tt.addr))
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Listen(%s) err = %v, want %v", tt.addr, err, tt.wantErr)
		}
		if err == nil && c.LocalAddrPort().Addr().Is4In6() {
			t.Errorf("Listen(%s) kept a mapped address", tt.addr)
		}
	}
	// Port 0 picks distinct ephemeral ports.
	c1 := listen(t, n, "192.0.2.9:0")
	c2 := listen(t, n, "192.0.2.9:0")
	if p1, p2 := c1.LocalAddrPort().Port(), c2.LocalAddrPort().Port(); p1 < ephemeralFirst || p1 == p2 {
		t.Fatalf("ephemeral ports %d, %d", p1, p2)
	}
	// ListenAuto hands out distinct 10/8 addresses on AutoPort, skipping
	// one already taken.
	listen(t, n, "10.0.0.2:1935")
	seen := map[string]bool{}
	for range 600 {
		c, err := n.ListenAuto()
		if err != nil {
			t.Fatal(err)
		}
		a := c.LocalAddrPort()
		if !a.Addr().Is4() || a.Addr().As4()[0] != 10 || a.Port() != AutoPort || seen[a.String()] {
			t.Fatalf("ListenAuto gave %v", a)
		}
		if last := a.Addr().As4()[3]; last == 0 || last == 255 {
			t.Fatalf("ListenAuto gave %v", a)
		}
		seen[a.String()] = true
	}
	if seen["10.0.0.2:1935"] {
		t.Fatal("ListenAuto reused a bound address")
	}
}

func TestWriteErrors(t *testing.T) {
	n, _ := newManual(t, Config{})
	c := listen(t, n, "10.0.0.1:1")
	tests := []struct {
		name string
		b    []byte
		addr net.Addr
		want error
	}{
		{"tcp addr", []byte("x"), &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 1}, ErrBadAddr},
		{"nil udp addr", []byte("x"), (*net.UDPAddr)(nil), ErrBadAddr},
		{"port 0", []byte("x"), &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2)}, ErrBadAddr},
		{"too long", make([]byte, maxDatagram+1), &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 1}, errMsgSize},
	}
	for _, tt := range tests {
		if _, err := c.WriteTo(tt.b, tt.addr); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if s := c.Stats(); s.Sent != 0 {
		t.Fatalf("failed writes were counted as sent: %+v", s)
	}
}

func TestUnknownDestinationDropsSilently(t *testing.T) {
	n, _ := newManual(t, Config{})
	c := listen(t, n, "10.0.0.1:1")
	for range 3 {
		send(t, c, ap("10.9.9.9:9"), []byte("nobody"))
	}
	if s := c.Stats(); s.Sent != 3 || s.DroppedNoListener != 3 {
		t.Fatalf("conn stats %+v", s)
	}
	if s := n.Stats(); s.DroppedNoListener != 3 || s.Received != 0 {
		t.Fatalf("network stats %+v", s)
	}
}

func TestReceiveQueueBound(t *testing.T) {
	n, _ := newManual(t, Config{RecvQueue: 4})
	a := listen(t, n, "10.0.0.1:1")
	b := listen(t, n, "10.0.0.2:1")
	for i := range 10 {
		send(t, a, b.LocalAddrPort(), seqPayload(uint32(i), 10))
	}
	seqs, _ := drain(t, b)
	if len(seqs) != 4 || seqs[0] != 0 || seqs[3] != 3 {
		t.Fatalf("received %v, want the first 4", seqs)
	}
	if s := b.Stats(); s.DroppedBuffer != 6 || s.Received != 4 {
		t.Fatalf("receiver stats %+v", s)
	}
	// Room again after reading.
	send(t, a, b.LocalAddrPort(), seqPayload(10, 10))
	if seqs, _ := drain(t, b); len(seqs) != 1 || seqs[0] != 10 {
		t.Fatalf("after drain received %v", seqs)
	}
}

func TestTruncation(t *testing.T) {
	n, _ := newManual(t, Config{})
	a := listen(t, n, "10.0.0.1:1")
	b := listen(t, n, "10.0.0.2:1")
	send(t, a, b.LocalAddrPort(), []byte("hello world"))
	buf := make([]byte, 5)
	k, _, err := b.ReadFrom(buf)
	if err != nil || k != 5 || string(buf) != "hello" {
		t.Fatalf("short read = %d %q %v", k, buf, err)
	}
	if b.Pending() != 0 {
		t.Fatal("truncated datagram left a remainder")
	}
}

// ReadBatch takes what is queued, in order, up to the buffers given;
// longer datagrams are truncated to their buffer; a closed conn errs.
func TestReadBatch(t *testing.T) {
	n, _ := newManual(t, Config{})
	a := listen(t, n, "10.0.0.1:1")
	c := listen(t, n, "10.0.0.3:1")
	b := listen(t, n, "10.0.0.2:1")
	for i := range 5 {
		from := a
		if i == 3 {
			from = c
		}
		send(t, from, b.LocalAddrPort(), seqPayload(uint32(i), 10+i))
	}
	bufs := [][]byte{make([]byte, 64), make([]byte, 64), make([]byte, 12)}
	ns := make([]int, 3)
	srcs := make([]netip.AddrPort, 3)
	for _, want := range []struct {
		count int
		seqs  []uint32
		ns    []int
	}{
		{3, []uint32{0, 1, 2}, []int{10, 11, 12}},
		{2, []uint32{3, 4}, []int{13, 14}},
	} {
		k, err := b.ReadBatch(bufs, ns, srcs)
		if err != nil || k != want.count {
			t.Fatalf("ReadBatch = %d, %v; want %d", k, err, want.count)
		}
		for i := range k {
			if got := binary.BigEndian.Uint32(bufs[i]); got != want.seqs[i] || ns[i] != want.ns[i] {
				t.Errorf("datagram %d: seq %d, %d bytes; want %d, %d", i, got, ns[i], want.seqs[i], want.ns[i])
			}
			wantSrc := a.LocalAddrPort()
			if want.seqs[i] == 3 {
				wantSrc = c.LocalAddrPort()
			}
			if srcs[i] != wantSrc {
				t.Errorf("datagram %d from %v, want %v", i, srcs[i], wantSrc)
			}
		}
	}
	// The third buffer is 12 bytes: a 14-byte datagram there is cut.
	for i := range 3 {
		send(t, a, b.LocalAddrPort(), seqPayload(uint32(10+i), 14))
	}
	if k, err := b.ReadBatch(bufs, ns, srcs); err != nil || k != 3 || ns[2] != 12 || b.Pending() != 0 {
		t.Fatalf("ReadBatch = %d, %v, sizes %v, %d left; want 3 with the last cut to 12", k, err, ns, b.Pending())
	}
	b.Close()
	if _, err := b.ReadBatch(bufs, ns, srcs); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadBatch on a closed conn: %v", err)
	}
}

// TestConcurrentTraffic exercises every path at once under -race on the
// real clock: writers, readers, stats and impairment changes.
func TestConcurrentTraffic(t *testing.T) {
	n := New(Config{Seed: 3, Link: Link{Delay: time.Millisecond, Jitter: time.Millisecond, Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, ReorderGap: time.Millisecond}})
	defer n.Close()
	const conns, perConn = 8, 300
	cs := make([]*Conn, conns)
	for i := range cs {
		c, err := n.ListenAuto()
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}
	var readers, writers sync.WaitGroup
	for _, c := range cs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 64)
			for {
				if _, _, err := c.ReadFrom(buf); err != nil {
					return
				}
			}
		}()
	}
	for i, c := range cs {
		writers.Add(1)
		go func() {
			defer writers.Done()
			to := cs[(i+1)%conns].LocalAddr()
			for j := range perConn {
				c.WriteTo(seqPayload(uint32(j), 32), to)
				if j%50 == 0 {
					_ = n.Stats()
					_ = c.Stats()
					n.SetLink(c.LocalAddrPort().Addr(), cs[0].LocalAddrPort().Addr(), Link{Delay: time.Duration(j) * time.Microsecond})
				}
			}
		}()
	}
	writers.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for n.Stats().InFlight > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s := n.Stats()
	if s.Sent != conns*perConn {
		t.Fatalf("sent %d", s.Sent)
	}
	if s.InFlight != 0 || s.Sent+s.Duplicated != s.Received+s.Dropped() {
		t.Fatalf("unbalanced stats %+v", s)
	}
	n.Close()
	readers.Wait()
}
