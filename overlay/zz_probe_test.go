package overlay

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
)

// TestZZProbe is a reproduction for the node layer: 12 nodes on memnet each
// dial all the others and send one message; under -race some dial, write or
// receipt stalls (once it hung past 10 minutes). Opt in with
// STRATA_OVERLAY_PROBE=1.
func TestZZProbe(t *testing.T) {
	if os.Getenv("STRATA_OVERLAY_PROBE") == "" {
		t.Skip("set STRATA_OVERLAY_PROBE=1")
	}
	nw := memnet.New(memnet.Config{Seed: 1, Link: memnet.Link{Delay: time.Millisecond}})
	var ns []*node.Node
	for i := 0; i < 12; i++ {
		c, _ := nw.ListenAuto()
		n, _ := node.New(c, node.Config{})
		ns = append(ns, n)
		go func() {
			for {
				s, err := n.Accept(context.Background())
				if err != nil {
					return
				}
				go func() {
					for {
						rf, err := s.AcceptFlow(context.Background())
						if err != nil {
							return
						}
						go func() {
							for {
								if _, err := rf.Read(context.Background()); err != nil {
									return
								}
							}
						}()
					}
				}()
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	for i := range ns {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := range ns {
				if i == j {
					continue
				}
				t0 := time.Now()
				s, err := ns[i].Dial(ctx, ns[j].AddrPort(), ns[j].PeerID())
				d1 := time.Since(t0)
				if err != nil {
					t.Log(err)
					continue
				}
				f, _ := s.OpenFlow([]byte("x"), node.PriorityRoutine)
				r, err := f.Write(ctx, []byte("hello"), node.WriteOptions{})
				d2 := time.Since(t0)
				if err == nil {
					err = r.Wait(ctx)
				}
				if err != nil {
					t.Logf("%d->%d: %v", i, j, err)
				}
				d3 := time.Since(t0)
				if d3 > 300*time.Millisecond {
					t.Logf("%d->%d dial %v write %v acked %v", i, j, d1, d2, d3)
				}
			}
		}()
	}
	for range ns {
		<-done
	}
}
