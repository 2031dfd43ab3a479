package core_test

// Tests named after the RFC 7016 sections they check, so conformance can be
// read off the test names.

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/strata-net/strata/node/internal/core"
	"github.com/strata-net/strata/node/internal/flash"
)

// pair opens a session from a to b and returns both ends.
func pair(t *testing.T, n *simNet, cfg core.Config) (a, b *core.Endpoint, sa, sb *core.Session) {
	t.Helper()
	a, _ = n.add("10.0.0.1:1000", cfg)
	b, idB := n.add("10.0.0.2:2000", cfg)
	sa = a.Open(n.now, flash.EPDForPeerID(idB.PeerID()), []netip.AddrPort{n.addrOf(b)})
	ok := n.runUntil(10*time.Second, func() bool {
		if !sa.IsOpen() {
			return false
		}
		for _, ev := range n.events[n.addrOf(b)] {
			if ev.Kind == core.EventSessionOpen {
				sb = ev.Session
			}
		}
		return sb != nil
	})
	if !ok {
		t.Fatalf("session did not open: a=%s stats a=%+v b=%+v", sa.State(), a.Stats(), b.Stats())
	}
	if sa.PeerID() != idB.PeerID() {
		t.Fatalf("initiator sees peer %x, want %x", sa.PeerID(), idB.PeerID())
	}
	return
}

func TestRFC7016_3_5_1_HandshakeOpensBothEnds(t *testing.T) {
	n := newSimNet(t, 1)
	a, _, sa, sb := pair(t, n, core.Config{})
	if !sb.IsOpen() || sb.Initiator() || !sa.Initiator() {
		t.Fatalf("roles/states wrong: sa=%s init=%v sb=%s init=%v", sa.State(), sa.Initiator(), sb.State(), sb.Initiator())
	}
	// The handshake is four startup packets: IHello, RHello, IIKeying, RIKeying.
	if got := a.Stats().HandshakesStarted; got != 1 {
		t.Fatalf("handshakes started = %d", got)
	}
	if n.sent != 4 {
		t.Fatalf("handshake took %d packets, want 4", n.sent)
	}
}

// recvAll reads every message that arrives on flows accepted at ep.
type collector struct {
	msgs    [][]byte
	flows   []*core.RecvFlow
	closed  bool
	readAll bool
}

func (c *collector) pump(evs []core.Event) {
	for _, ev := range evs {
		switch ev.Kind {
		case core.EventFlowIncoming:
			c.flows = append(c.flows, ev.RecvFlow)
		case core.EventRecvFlowClosed:
			c.closed = true
		}
	}
	if !c.readAll {
		return
	}
	for _, f := range c.flows {
		for {
			m, ok := f.Read()
			if !ok {
				break
			}
			c.msgs = append(c.msgs, m.Data)
		}
	}
}

func message(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i*31 + j*7)
	}
	copy(b, fmt.Sprintf("msg-%08d", i))
	return b
}

func TestRFC7016_3_6_OrderedReliableDelivery(t *testing.T) {
	cases := []struct {
		name   string
		loss   float64
		jitter time.Duration
		dup    float64
		count  int
		size   int
	}{
		{"clean", 0, 0, 0, 200, 3000},
		{"loss5-reorder", 0.05, 8 * time.Millisecond, 0.01, 200, 5000},
		{"loss20-reorder-dup", 0.20, 15 * time.Millisecond, 0.05, 100, 2500},
		{"tiny-messages", 0.05, 5 * time.Millisecond, 0, 2000, 1},
		{"empty-and-big", 0.05, 0, 0, 10, 70000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newSimNet(t, 7)
			a, b, sa, _ := pair(t, n, core.Config{})
			_ = a
			n.loss, n.jitter, n.dup = tc.loss, tc.jitter, tc.dup
			f, err := sa.OpenFlow([]byte("meta"), core.PriorityRoutine)
			if err != nil {
				t.Fatal(err)
			}
			var want [][]byte
			for i := 0; i < tc.count; i++ {
				m := message(i, tc.size)
				if tc.name == "empty-and-big" && i%2 == 0 {
					m = nil
				}
				want = append(want, m)
				if _, err := f.Write(m, core.WriteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			f.Close()
			c := &collector{readAll: true}
			bAddr := n.addrOf(b)
			ok := n.runUntil(600*time.Second, func() bool {
				c.pump(n.takeEvents(bAddr))
				return len(c.msgs) >= len(want)
			})
			if !ok {
				t.Fatalf("got %d of %d messages; a=%+v b=%+v", len(c.msgs), len(want), a.Stats(), b.Stats())
			}
			t.Logf("virtual %v, packets %d, dropped %d, retransmits %d", n.now.Sub(time.Unix(1_700_000_000, 0)), n.sent, n.dropped, a.Stats().Retransmits)
			if string(c.flows[0].Metadata()) != "meta" {
				t.Fatalf("metadata %q", c.flows[0].Metadata())
			}
			for i := range want {
				if !bytes.Equal(c.msgs[i], want[i]) {
					t.Fatalf("message %d differs (len %d vs %d)", i, len(c.msgs[i]), len(want[i]))
				}
			}
		})
	}
}
