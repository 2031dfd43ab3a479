package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
)

// One goroutine reads a flow through Notify and TryRead instead of a
// blocking Read: every message arrives in order, then io.EOF; the
// session's Context is done when it closes, and Stats counts it.
func TestNotifyTryReadAndSessionContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, a, b := rbMemPair(t, memnet.Config{Seed: 3, Link: memnet.Link{Delay: 2 * time.Millisecond, Loss: 0.05}})
	s, f := openFlow(t, ctx, a, b, "notify")
	var want [][]byte
	for i := 0; i < 100; i++ {
		want = append(want, bytes.Repeat([]byte{byte(i)}, 1+i*131%3000))
	}
	go func() {
		for _, m := range want {
			if err := f.Send(ctx, m, node.WriteOptions{}); err != nil {
				return
			}
		}
		f.Close()
	}()
	rf := acceptFlow(t, ctx, b)
	bs := rf.Session()
	var got [][]byte
	if m, ok, err := rf.TryRead(); ok && err == nil {
		got = append(got, m) // one may already be there
	}
	ready := make(chan struct{}, 1)
	rf.Notify(func() {
		select {
		case ready <- struct{}{}:
		default:
		}
	})
	var end error
	for end == nil {
		select {
		case <-ready:
		case <-ctx.Done():
			t.Fatalf("after %d messages: %v", len(got), ctx.Err())
		}
		for {
			m, ok, err := rf.TryRead()
			if err != nil {
				end = err
				break
			}
			if !ok {
				break
			}
			got = append(got, m)
		}
	}
	if !errors.Is(end, io.EOF) {
		t.Fatalf("flow ended with %v, want io.EOF", end)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d messages, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d differs", i)
		}
	}

	if st := a.Stats(); st.SessionsOpen != 1 || st.SessionsClosing != 0 {
		t.Fatalf("open session: %d open, %d closing", st.SessionsOpen, st.SessionsClosing)
	}
	ended := make(chan struct{})
	context.AfterFunc(bs.Context(), func() { close(ended) })
	s.Close()
	select {
	case <-ended:
	case <-ctx.Done():
		t.Fatal("the far end's session context is not done after close")
	}
	if bs.Err() == nil || s.Context().Err() == nil {
		t.Fatalf("after close: Err %v, context %v", bs.Err(), s.Context().Err())
	}
	// The far end lingers to acknowledge the close (RFC 7016 §3.5.5.2).
	if st := b.Stats(); st.SessionsOpen != 0 || st.SessionsClosing != 1 {
		t.Fatalf("far end after close: %d open, %d closing", st.SessionsOpen, st.SessionsClosing)
	}
}

// Rejecting a flow wakes a Read blocked on it (io.EOF) and a Notify
// function; TryRead then says io.EOF too.
func TestRejectWakesReader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, a, b := rbMemPair(t, memnet.Config{Seed: 4, Link: memnet.Link{Delay: time.Millisecond}})
	_, f := openFlow(t, ctx, a, b, "reject me")
	if err := f.Send(ctx, []byte("first"), node.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	rf := acceptFlow(t, ctx, b)
	if m, err := rf.Read(ctx); err != nil || string(m) != "first" {
		t.Fatalf("first read: %q %v", m, err)
	}
	notified := make(chan struct{}, 1)
	rf.Notify(func() {
		select {
		case notified <- struct{}{}:
		default:
		}
	})
	read := make(chan error, 1)
	go func() {
		_, err := rf.Read(ctx) // blocks: nothing more is sent
		read <- err
	}()
	time.Sleep(50 * time.Millisecond)
	rf.Reject(0)
	select {
	case err := <-read:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("Read after Reject: %v, want io.EOF", err)
		}
	case <-ctx.Done():
		t.Fatal("a Read blocked on the flow did not return after Reject")
	}
	select {
	case <-notified:
	default:
		t.Fatal("Reject did not call the Notify function")
	}
	if _, ok, err := rf.TryRead(); ok || !errors.Is(err, io.EOF) {
		t.Fatalf("TryRead after Reject: %v %v", ok, err)
	}
}

// openFlow dials b from a and opens a flow with metadata meta on the
// session.
func openFlow(t *testing.T, ctx context.Context, a, b *node.Node, meta string) (*node.Session, *node.SendFlow) {
	t.Helper()
	s, err := a.Dial(ctx, b.AddrPort(), b.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.OpenFlow([]byte(meta), node.PriorityRoutine)
	if err != nil {
		t.Fatal(err)
	}
	return s, f
}

// acceptFlow accepts b's next session and that session's first flow.
func acceptFlow(t *testing.T, ctx context.Context, b *node.Node) *node.RecvFlow {
	t.Helper()
	bs, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rf, err := bs.AcceptFlow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rf
}
