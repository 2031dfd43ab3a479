package node_test

// Robustness of the node under load: many concurrent sessions over real
// loopback UDP, and bulk and deadline-bound transfers over a lossy,
// reordering in-memory network.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/internal/flash"
	"github.com/strata-net/strata/node/internal/wire"
	"github.com/strata-net/strata/node/memnet"
)

// rbClose closes nodes concurrently, each bounded by a short timeout.
func rbClose(nodes ...*node.Node) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n.Close(ctx)
		}()
	}
	wg.Wait()
}

func rbMessage(client, i, size int) []byte {
	m := make([]byte, size)
	rng := mrand.New(mrand.NewPCG(uint64(client), uint64(i)))
	for j := range m {
		m[j] = byte(rng.Uint32())
	}
	copy(m, fmt.Sprintf("c%03d m%02d ", client, i))
	return m
}

// 200 clients, each its own node (a node keeps one session per peer, so
// dialing the same server twice from one node would reuse the session),
// open a session to one server over 127.0.0.1 at once, send messages on a
// flow and check the echo on the return flow byte for byte.
func TestRobustManyConcurrentSessionsOverUDP(t *testing.T) {
	const clients = 200
	sizes := []int{1, 700, 1500, 4000, 9000} // the last ones take several fragments
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	start := time.Now()

	srv, err := node.Listen("127.0.0.1:0", node.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rbClose(srv)
	var accepted atomic.Int64
	go serveEcho(ctx, srv, "echo of ", func() { accepted.Add(1) })

	nodes := make([]*node.Node, clients)
	for i := range nodes {
		n, err := node.Listen("127.0.0.1:0", node.Config{})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
	}
	defer rbClose(nodes...)
	setup := time.Since(start)

	errs := make(chan error, clients)
	var wg sync.WaitGroup
	var rtts [clients]time.Duration
	for i, cli := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				s, err := cli.Dial(ctx, srv.AddrPort(), srv.PeerID())
				if err != nil {
					return fmt.Errorf("dial: %w", err)
				}
				if s.PeerID() != srv.PeerID() {
					return fmt.Errorf("dialed %s", s.PeerID())
				}
				meta := []byte(fmt.Sprintf("client %d", i))
				f, err := s.OpenFlow(meta, node.PriorityRoutine)
				if err != nil {
					return err
				}
				for j, size := range sizes {
					if _, err := f.Write(ctx, rbMessage(i, j, size), node.WriteOptions{}); err != nil {
						return fmt.Errorf("write %d: %w", j, err)
					}
				}
				rf, err := f.AcceptReturn(ctx)
				if err != nil {
					return fmt.Errorf("return flow: %w", err)
				}
				if want := "echo of " + string(meta); string(rf.Metadata()) != want {
					return fmt.Errorf("return flow metadata %q, want %q", rf.Metadata(), want)
				}
				for j, size := range sizes {
					m, err := rf.Read(ctx)
					if err != nil {
						return fmt.Errorf("read echo %d: %w", j, err)
					}
					if !bytes.Equal(m, rbMessage(i, j, size)) {
						return fmt.Errorf("echo %d differs (%d bytes, want %d)", j, len(m), size)
					}
				}
				f.Close()
				if _, err := rf.Read(ctx); !errors.Is(err, io.EOF) {
					return fmt.Errorf("after close: %v, want EOF", err)
				}
				rtts[i] = s.RTT()
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed < 5 {
				t.Error(err)
			}
			failed++
		}
	}
	elapsed := time.Since(start)
	st := srv.Stats()
	if failed > 0 {
		t.Fatalf("%d of %d clients failed after %v; server %+v", failed, clients, elapsed, st)
	}
	if got := accepted.Load(); got != clients || st.SessionsOpened != clients {
		t.Fatalf("server accepted %d sessions, opened %d, want %d", got, st.SessionsOpened, clients)
	}
	if n := len(srv.Sessions()); n != clients {
		t.Fatalf("server has %d open sessions, want %d", n, clients)
	}
	var maxRTT time.Duration
	for _, r := range rtts {
		maxRTT = max(maxRTT, r)
	}
	t.Logf("%d sessions × %d messages echoed in %v (node setup %v); max RTT %v; server: in %d pkts, out %d, retransmits %d, drops %d/%d/%d",
		clients, len(sizes), elapsed, setup, maxRTT, st.PacketsIn, st.PacketsOut, st.Retransmits, st.DropDecrypt, st.DropUnknownSession, st.DropBusy)
}

// rbMemPair makes two nodes on an in-memory network.
func rbMemPair(t *testing.T, cfg memnet.Config) (*memnet.Network, *node.Node, *node.Node) {
	t.Helper()
	netw := memnet.New(cfg)
	t.Cleanup(func() { netw.Close() })
	ca, err := netw.ListenAuto()
	if err != nil {
		t.Fatal(err)
	}
	cb, err := netw.ListenAuto()
	if err != nil {
		t.Fatal(err)
	}
	var a, b *node.Node
	for _, p := range []struct {
		c  net.PacketConn
		to **node.Node
	}{{ca, &a}, {cb, &b}} {
		n, err := node.New(p.c, node.Config{})
		if err != nil {
			t.Fatal(err)
		}
		*p.to = n
	}
	t.Cleanup(func() { rbClose(a, b) })
	return netw, a, b
}

// A 16 MiB transfer at 10 % loss with reordering and jitter arrives intact
// and in order.
func TestRobustBulkTransferLossyReordering(t *testing.T) {
	total := 16 << 20
	if testing.Short() {
		total = 2 << 20
	}
	const msgSize = 64 << 10
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	netw, a, b := rbMemPair(t, memnet.Config{Seed: 7})
	sa, err := a.Dial(ctx, b.AddrPort(), b.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	netw.SetDefaultLink(memnet.Link{
		Delay:      500 * time.Microsecond,
		Jitter:     time.Millisecond,
		Loss:       0.10,
		Reorder:    0.05,
		ReorderGap: 2 * time.Millisecond,
	})
	type result struct {
		sum   [32]byte
		n     int
		bytes int
		err   error
	}
	done := make(chan result, 1)
	go func() {
		var res result
		defer func() { done <- res }()
		rf, err := sb.AcceptFlow(ctx)
		if err != nil {
			res.err = err
			return
		}
		h := sha256.New()
		for {
			m, err := rf.Read(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				res.err = fmt.Errorf("after %d messages: %w", res.n, err)
				return
			}
			if len(m) < 8 || binary.BigEndian.Uint64(m) != uint64(res.n) {
				res.err = fmt.Errorf("message %d out of order or corrupt (%d bytes, index %d)", res.n, len(m), binary.BigEndian.Uint64(m))
				return
			}
			h.Write(m)
			res.n++
			res.bytes += len(m)
		}
		copy(res.sum[:], h.Sum(nil))
	}()

	start := time.Now()
	f, err := sa.OpenFlow([]byte("bulk"), node.PriorityBulk)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	rng := mrand.New(mrand.NewPCG(1, 1))
	count := total / msgSize
	for i := 0; i < count; i++ {
		m := make([]byte, msgSize)
		for j := 8; j < len(m); j += 8 {
			binary.LittleEndian.PutUint64(m[j:], rng.Uint64())
		}
		binary.BigEndian.PutUint64(m, uint64(i))
		h.Write(m)
		if _, err := f.Write(ctx, m, node.WriteOptions{}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	f.Close()
	res := <-done
	elapsed := time.Since(start)
	if res.err != nil {
		t.Fatalf("receiver: %v (after %v)", res.err, elapsed)
	}
	if res.n != count || res.bytes != total {
		t.Fatalf("received %d messages, %d bytes; want %d, %d", res.n, res.bytes, count, total)
	}
	if !bytes.Equal(res.sum[:], h.Sum(nil)) {
		t.Fatal("SHA-256 of the received stream differs")
	}
	ns := netw.Stats()
	st := a.Stats()
	t.Logf("%d MiB in %v (%.2f MB/s); network %+v; sender retransmits %d, packets out %d",
		total>>20, elapsed, float64(total)/elapsed.Seconds()/1e6, ns, st.Retransmits, st.PacketsOut)
}

// On a slow lossy link, messages that cannot finish within their deadline
// are abandoned (their receipts say ErrAbandoned), and the messages after
// them still arrive, in order, without the receiver waiting for the
// abandoned ones.
func TestRobustDeadlinesAbandonOnSlowLossyLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	netw, a, b := rbMemPair(t, memnet.Config{Seed: 9})
	sa, err := a.Dial(ctx, b.AddrPort(), b.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	netw.SetDefaultLink(memnet.Link{Delay: 20 * time.Millisecond, Loss: 0.05, Bandwidth: 200_000})

	const count, size = 300, 2000 // 600 kB: three seconds of link, offered in 1.2 s
	const deadline = 300 * time.Millisecond
	type arrival struct {
		index int
		at    time.Time
	}
	arrivals := make(chan arrival, count+1)
	readErr := make(chan error, 1)
	go func() {
		rf, err := sb.AcceptFlow(ctx)
		if err != nil {
			readErr <- err
			return
		}
		for {
			m, err := rf.Read(ctx)
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				readErr <- err
				return
			}
			i := int(binary.BigEndian.Uint32(m))
			if !bytes.Equal(m, rbDeadlineMessage(i, size)) {
				readErr <- fmt.Errorf("message %d corrupt", i)
				return
			}
			arrivals <- arrival{i, time.Now()}
		}
	}()

	f, err := sa.OpenFlow([]byte("live"), node.PriorityRoutine)
	if err != nil {
		t.Fatal(err)
	}
	// Offer 2.5 times what the link carries, so that messages keep
	// expiring in the queue all along while others get through.
	receipts := make([]*node.Receipt, count)
	written := make([]time.Time, count+1)
	start := time.Now()
	for i := 0; i < count; i++ {
		written[i] = time.Now()
		receipts[i], err = f.Write(ctx, rbDeadlineMessage(i, size), node.WriteOptions{FinishWithin: deadline})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Millisecond)
	}
	fates := map[bool]int{}
	delivered := map[int]bool{}
	for i, r := range receipts {
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.Wait(wctx)
		wcancel()
		switch {
		case err == nil:
			delivered[i] = true
			fates[true]++
		case errors.Is(err, node.ErrAbandoned):
			fates[false]++
		default:
			t.Fatalf("receipt %d: %v", i, err)
		}
	}
	allFates := time.Since(start)
	// A last message without a deadline, after the link has drained.
	final := count
	finalAt := time.Now()
	written[final] = finalAt
	if _, err := f.Write(ctx, rbDeadlineMessage(final, size), node.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var got []arrival
	var finalLatency time.Duration
wait:
	for {
		select {
		case a := <-arrivals:
			got = append(got, a)
			if a.index == final {
				finalLatency = a.at.Sub(finalAt)
			}
		case err := <-readErr:
			if err != nil {
				t.Fatalf("receiver: %v", err)
			}
			break wait
		case <-ctx.Done():
			t.Fatalf("receiver did not finish: %d messages", len(got))
		}
	}
	for len(arrivals) > 0 {
		got = append(got, <-arrivals)
	}
	seen := map[int]bool{}
	var maxLatency time.Duration
	for k, a := range got {
		if k > 0 && a.index <= got[k-1].index {
			t.Fatalf("message %d arrived after %d", a.index, got[k-1].index)
		}
		seen[a.index] = true
		// Had the receiver waited for the abandoned messages before it,
		// a message would arrive long after its own deadline.
		lat := a.at.Sub(written[a.index])
		maxLatency = max(maxLatency, lat)
		if lat > deadline+time.Second {
			t.Fatalf("message %d arrived %v after it was written (deadline %v)", a.index, lat, deadline)
		}
	}
	firstAbandoned, lastDelivered := count, -1
	for i := 0; i < count; i++ {
		if !delivered[i] && i < firstAbandoned {
			firstAbandoned = i
		}
		if seen[i] {
			lastDelivered = i
		}
	}
	if lastDelivered < firstAbandoned {
		t.Fatalf("no message arrived after the first abandoned one (%d); last arrival %d", firstAbandoned, lastDelivered)
	}
	for i := range delivered {
		if !seen[i] {
			t.Fatalf("receipt says message %d was delivered, but it never arrived", i)
		}
	}
	if fates[false] == 0 || fates[true] == 0 {
		t.Fatalf("fates: %d delivered, %d abandoned; want both", fates[true], fates[false])
	}
	if !seen[final] {
		t.Fatal("the final message never arrived")
	}
	if finalLatency > 2*time.Second {
		t.Fatalf("final message took %v: the receiver waited for abandoned data", finalLatency)
	}
	// Messages after abandoned ones were handed over before the flow ended:
	// the receiver did not hold them back for the gaps.
	gaps := 0
	for k := 1; k < len(got); k++ {
		if got[k].index != got[k-1].index+1 {
			gaps++
		}
	}
	st := a.Stats()
	t.Logf("%d messages with a %v deadline offered at 500 kB/s over 200 kB/s, 5%% loss: %d delivered, %d abandoned (fates known after %v), %d arrived with %d gaps, worst latency %v; final message latency %v; sender abandoned %d, retransmits %d; network %+v",
		count, deadline, fates[true], fates[false], allFates, len(got), gaps, maxLatency, finalLatency, st.Abandoned, st.Retransmits, netw.Stats())
}

func rbDeadlineMessage(i, size int) []byte {
	m := bytes.Repeat([]byte{byte(i)}, size)
	binary.BigEndian.PutUint32(m, uint32(i))
	return m
}

// A flood of IHellos for other endpoints must not make the node spawn one
// goroutine per datagram for OnUnmatchedHello: each such datagram is
// unauthenticated and costs the sender 60 bytes, a goroutine costs the node
// kilobytes, and a handler that is slow for a moment (a lookup, a contended
// lock) lets them pile up without bound.
func TestRobustUnmatchedHelloFloodIsBounded(t *testing.T) {
	const hellos = 2000
	release := make(chan struct{})
	var calls atomic.Int64
	srv, err := node.Listen("127.0.0.1:0", node.Config{OnUnmatchedHello: func(node.Hello) {
		calls.Add(1)
		<-release
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer rbClose(srv)
	defer close(release)
	attacker, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	other, err := node.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	to := net.UDPAddrFromAddrPort(srv.AddrPort())
	tag := make([]byte, 16)
	for i := 0; i < hellos; i++ {
		binary.BigEndian.PutUint32(tag, uint32(i))
		plain := wire.AppendHeader(nil, wire.Header{Mode: wire.ModeStartup})
		plain = wire.IHello{EPD: node.EPDForPeerID(other.PeerID()), Tag: tag}.Append(plain)
		enc := flash.NewDefaultCrypto().Seal(nil, plain)
		if _, err := attacker.WriteTo(append(wire.AppendSessionID(nil, 0, enc), enc...), to); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			time.Sleep(time.Millisecond) // stay under the socket buffer
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().PacketsIn < hellos*9/10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	grown := runtime.NumGoroutine() - base
	t.Logf("%d unmatched IHellos (%d received, handler entered %d times): %d more goroutines", hellos, srv.Stats().PacketsIn, calls.Load(), grown)
	if calls.Load() == 0 {
		t.Fatal("the handler was never called")
	}
	if grown > 100 {
		t.Fatalf("the node holds %d extra goroutines after %d unmatched IHellos", grown, hellos)
	}
	// What the blocked handler could not take was dropped and counted.
	st := srv.Stats()
	if handled := calls.Load(); st.HellosDropped+uint64(handled)+512 < st.PacketsIn {
		t.Fatalf("%d IHellos received, %d handled, only %d counted as dropped", st.PacketsIn, handled, st.HellosDropped)
	}
	t.Logf("HellosDropped %d", st.HellosDropped)
}
