package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/strata-net/strata/node"
)

func listen(t testing.TB) *node.Node {
	t.Helper()
	n, err := node.Listen("127.0.0.1:0", node.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

// serveEcho serves n: every incoming flow gets a return flow, with the
// incoming metadata after prefix, carrying each message back. onSession (if
// set) runs for each accepted session.
func serveEcho(ctx context.Context, n *node.Node, prefix string, onSession func()) {
	for {
		s, err := n.Accept(ctx)
		if err != nil {
			return
		}
		if onSession != nil {
			onSession()
		}
		go func() {
			for {
				rf, err := s.AcceptFlow(ctx)
				if err != nil {
					return
				}
				go func() {
					back, err := rf.OpenReturnFlow(append([]byte(prefix), rf.Metadata()...), node.PriorityRoutine)
					if err != nil {
						return
					}
					for {
						m, err := rf.Read(ctx)
						if err != nil {
							back.Close()
							return
						}
						if _, err := back.Write(ctx, m, node.WriteOptions{}); err != nil {
							return
						}
					}
				}()
			}
		}()
	}
}

func TestEchoOverUDP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := listen(t)
	cli := listen(t)
	go serveEcho(ctx, srv, "return ", nil)

	s, err := cli.Dial(ctx, srv.AddrPort(), srv.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	if s.PeerID() != srv.PeerID() {
		t.Fatalf("dialed peer %s, want %s", s.PeerID(), srv.PeerID())
	}
	f, err := s.OpenFlow([]byte("echo-test"), node.PriorityRoutine)
	if err != nil {
		t.Fatal(err)
	}
	const count = 300
	var want [][]byte
	for i := 0; i < count; i++ {
		m := bytes.Repeat([]byte{byte(i)}, 1+i*17%4000)
		copy(m, fmt.Sprint(i))
		want = append(want, m)
		if _, err := f.Write(ctx, m, node.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rf, err := f.AcceptReturn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(rf.Metadata()) != "return echo-test" {
		t.Fatalf("return flow metadata %q", rf.Metadata())
	}
	for i := 0; i < count; i++ {
		m, err := rf.Read(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if !bytes.Equal(m, want[i]) {
			t.Fatalf("echo %d differs", i)
		}
	}
	f.Close()
	if _, err := rf.Read(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after close: %v, want EOF", err)
	}
}

func TestDialAnyAndReceipts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := listen(t)
	cli := listen(t)
	var got [][]byte
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		s, err := srv.Accept(ctx)
		if err != nil {
			return
		}
		rf, err := s.AcceptFlow(ctx)
		if err != nil {
			return
		}
		for {
			m, err := rf.Read(ctx)
			if err != nil {
				close(done)
				return
			}
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		}
	}()
	s, err := cli.DialAny(ctx, srv.AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.OpenFlow(nil, node.PriorityHigh)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Write(ctx, []byte("hello"), node.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	f.Close()
	<-done
	if len(got) != 1 || string(got[0]) != "hello" {
		t.Fatalf("got %q", got)
	}
	_ = netip.AddrPort{}
}

// Send (no receipt) and ReadInto (caller's buffer) carry the same data as
// Write and Read; a short buffer leaves the message queued.
func TestSendAndReadInto(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := listen(t)
	cli := listen(t)
	s, err := cli.Dial(ctx, srv.AddrPort(), srv.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := s.OpenFlow(nil, node.PriorityRoutine)
	var want [][]byte
	for i := 0; i < 200; i++ {
		m := bytes.Repeat([]byte{byte(i)}, 1+i*97%5000)
		want = append(want, m)
		if err := f.Send(ctx, m, node.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	rf := acceptFlow(t, ctx, srv)
	// A too-small buffer: the message stays.
	for {
		if _, ok := rf.MessageLen(); ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := rf.ReadInto(ctx, make([]byte, 0)); !errors.Is(err, node.ErrShortBuffer) {
		t.Fatalf("short buffer: %v", err)
	}
	buf := make([]byte, 8192)
	for i := range want {
		n, err := rf.ReadInto(ctx, buf)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], want[i]) {
			t.Fatalf("message %d differs", i)
		}
	}
	if _, err := rf.ReadInto(ctx, buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last message: %v", err)
	}
}

// Write waits for room only as long as its ctx allows: with a ctx already
// done it queues the message if the send buffer has room and fails at
// once with the ctx's error if not, leaving the flow open. (The overlay's
// reader answers requests this way, never waiting on one peer.)
func TestWriteWithDoneContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := node.Listen("127.0.0.1:0", node.Config{RecvBuffer: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(ctx)
	cli, err := node.Listen("127.0.0.1:0", node.Config{SendBuffer: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close(ctx)
	s, err := cli.Dial(ctx, srv.AddrPort(), srv.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.OpenFlow(nil, node.PriorityRoutine)
	if err != nil {
		t.Fatal(err)
	}
	done, stop := context.WithCancel(ctx)
	stop()
	msg := make([]byte, 1024)
	queued := 0
	for ; queued < 1000; queued++ {
		start := time.Now()
		_, err := f.Write(done, msg, node.WriteOptions{})
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("write %d waited %v", queued, d)
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("write %d: %v, want context.Canceled", queued, err)
			}
			break
		}
	}
	// Nobody reads the server's side: the buffer fills after a few.
	if queued == 0 || queued == 1000 {
		t.Fatalf("%d writes queued before one failed, want a few", queued)
	}
	if err := f.Err(); err != nil {
		t.Fatalf("the flow failed: %v", err)
	}
}
