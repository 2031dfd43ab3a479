package node_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
)

// A flood of real handshakes, then of flows and data from the sessions
// that got in, stays within the victim's configured bounds: at most
// MaxSessions sessions (further handshakes are dropped as busy and
// counted), at most MaxFlowsPerSession incoming flows per session (the
// rest rejected), and, for an application that accepts everything but
// never reads, at most about RecvBuffer bytes held per flow: the senders
// stall (flow control) instead of filling the victim's memory.
func TestFloodStaysWithinLimits(t *testing.T) {
	const (
		attackers   = 40
		maxSessions = 8
		maxFlows    = 4
		recvBuffer  = 32 << 10
		flowsEach   = 12
		msgSize     = 1000
	)
	netw := memnet.New(memnet.Config{Seed: 11, Link: memnet.Link{Delay: time.Millisecond}})
	t.Cleanup(func() { netw.Close() })
	vc, err := netw.ListenAuto()
	if err != nil {
		t.Fatal(err)
	}
	victim, err := node.New(vc, node.Config{MaxSessions: maxSessions, MaxFlowsPerSession: maxFlows, RecvBuffer: recvBuffer})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The victim's application accepts every session and flow and reads
	// nothing. It also watches the session count.
	var (
		mu       sync.Mutex
		flows    []*node.RecvFlow
		perSess  = map[*node.Session]int{}
		maxOpen  atomic.Int64
		accepted atomic.Int64
	)
	go func() {
		for {
			if _, err := victim.Accept(ctx); err != nil {
				return
			}
			accepted.Add(1)
		}
	}()
	go func() {
		for {
			f, err := victim.AcceptFlow(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			flows = append(flows, f)
			perSess[f.Session()]++
			mu.Unlock()
		}
	}()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for ctx.Err() == nil {
			st := victim.Stats()
			if n := int64(st.SessionsOpen + st.SessionsClosing); n > maxOpen.Load() {
				maxOpen.Store(n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	var (
		wg        sync.WaitGroup
		dialled   atomic.Int64
		sentBytes atomic.Int64
		nodes     []*node.Node
	)
	for i := 0; i < attackers; i++ {
		c, err := netw.ListenAuto()
		if err != nil {
			t.Fatal(err)
		}
		a, err := node.New(c, node.Config{})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
			s, err := a.Dial(dctx, victim.AddrPort(), victim.PeerID())
			dcancel()
			if err != nil {
				return
			}
			dialled.Add(1)
			// Flood: flowsEach flows, each written to for 2 s.
			fctx, fcancel := context.WithTimeout(ctx, 2*time.Second)
			defer fcancel()
			var fw sync.WaitGroup
			for j := 0; j < flowsEach; j++ {
				f, err := s.OpenFlow([]byte("flood"), node.PriorityData)
				if err != nil {
					continue
				}
				fw.Add(1)
				go func() {
					defer fw.Done()
					msg := make([]byte, msgSize)
					for fctx.Err() == nil {
						if err := f.Send(fctx, msg, node.WriteOptions{}); err != nil {
							return
						}
						sentBytes.Add(msgSize)
					}
				}()
			}
			fw.Wait()
		}()
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond) // what is in flight lands

	// What the victim holds: read every accepted flow's buffered bytes.
	mu.Lock()
	var held, worst int
	for _, f := range flows {
		n := 0
		for {
			m, ok, err := f.TryRead()
			if err != nil || !ok {
				break
			}
			n += len(m)
		}
		held += n
		worst = max(worst, n)
	}
	nflows, sessions := len(flows), len(perSess)
	maxPer := 0
	for _, n := range perSess {
		maxPer = max(maxPer, n)
	}
	mu.Unlock()
	cancel()
	<-watchDone
	st := victim.Stats()
	t.Logf("%d attackers: %d sessions opened (%d accepted, at most %d at once), %d dropped as busy; %d flows accepted over %d sessions (at most %d per session); %d bytes written by the attackers (most wait in their own send buffers), %d held by the victim (at most %d per flow)",
		attackers, dialled.Load(), accepted.Load(), maxOpen.Load(), st.DropBusy, nflows, sessions, maxPer, sentBytes.Load(), held, worst)

	if n := maxOpen.Load(); n > maxSessions {
		t.Errorf("the victim held %d sessions at once (MaxSessions %d)", n, maxSessions)
	}
	if d := dialled.Load(); d == 0 || d > maxSessions {
		t.Errorf("%d attackers got a session (want 1..%d)", d, maxSessions)
	}
	if st.DropBusy == 0 {
		t.Errorf("no handshake was counted as dropped for the session limit")
	}
	if maxPer > maxFlows {
		t.Errorf("a session got %d flows accepted (MaxFlowsPerSession %d)", maxPer, maxFlows)
	}
	if nflows == 0 {
		t.Errorf("no flow was accepted: the flood did not get in, the test proves nothing")
	}
	// The per-flow receive buffer, plus the fragment accounting bias and
	// one message that may straddle it.
	if limit := recvBuffer + 2*msgSize; worst > limit {
		t.Errorf("a flow held %d bytes unread (RecvBuffer %d)", worst, recvBuffer)
	}
	if int64(held) >= sentBytes.Load() && sentBytes.Load() > int64(nflows)*(recvBuffer+2*msgSize) {
		t.Errorf("the victim holds all %d bytes sent", held)
	}
	for _, a := range nodes {
		cctx, ccancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		a.Close(cctx)
		ccancel()
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	victim.Close(cctx)
	ccancel()
}
