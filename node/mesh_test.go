package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
)

// Every node dials every other at the same moment, so most pairs open
// simultaneously from both ends (RFC 7016 §3.5.1.3) and one attempt of each
// pair is folded into the other. Every Dial must still return the surviving
// session promptly and every message must be delivered. (A Dial whose
// session was folded used to wait for its context to expire.)
func TestMutualDialsOverMemnet(t *testing.T) {
	const N = 12
	nw := memnet.New(memnet.Config{Seed: 1, Link: memnet.Link{Delay: time.Millisecond}})
	defer nw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ns []*node.Node
	received := make(chan string, N*N)
	for i := 0; i < N; i++ {
		c, err := nw.ListenAuto()
		if err != nil {
			t.Fatal(err)
		}
		n, err := node.New(c, node.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close(context.Background())
		ns = append(ns, n)
		// Flows arrive on sessions either end opened: serve them node-wide.
		go func() {
			for {
				rf, err := n.AcceptFlow(ctx)
				if err != nil {
					return
				}
				go func() {
					if m, err := rf.Read(ctx); err == nil {
						received <- string(rf.Metadata()) + " " + string(m)
					}
				}()
			}
		}()
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, N*N)
	for i := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ns {
				if i == j {
					continue
				}
				s, err := ns[i].Dial(ctx, ns[j].AddrPort(), ns[j].PeerID())
				if err != nil {
					errs <- fmt.Errorf("dial %d->%d: %w", i, j, err)
					continue
				}
				if s.PeerID() != ns[j].PeerID() {
					errs <- fmt.Errorf("dial %d->%d reached the wrong peer", i, j)
					continue
				}
				f, err := s.OpenFlow([]byte(fmt.Sprintf("%d->%d", i, j)), node.PriorityRoutine)
				if err != nil {
					errs <- err
					continue
				}
				r, err := f.Write(ctx, []byte("hello"), node.WriteOptions{})
				if err == nil {
					err = r.Wait(ctx)
				}
				if err != nil {
					errs <- fmt.Errorf("write %d->%d: %w", i, j, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := map[string]bool{}
	for len(got) < N*(N-1) {
		select {
		case m := <-received:
			got[m] = true
		case <-ctx.Done():
			t.Fatalf("%d of %d messages arrived", len(got), N*(N-1))
		}
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("mutual dials took %v", took)
	}
	for i := range ns {
		if got := len(ns[i].Sessions()); got != N-1 {
			t.Errorf("node %d has %d sessions, want %d (one per peer)", i, got, N-1)
		}
	}
}
