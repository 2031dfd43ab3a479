package core_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/strata-net/strata/node/internal/congestion"
	"github.com/strata-net/strata/node/internal/core"
)

// A loss that few later packets follow is repaired without the
// retransmission timeout (at least MinimumERTO, and it cuts the window to
// one packet and backs off): the newest fragment is probed two round trips
// after it went out (plus the receiver's delayed-ack allowance when it is
// the only one outstanding), and one negative acknowledgement declares an
// older fragment lost once it is two round trips old.
func TestTailLossRepairedBeforeTimeout(t *testing.T) {
	cases := []struct {
		name string
		// burst messages are written at once, every gap apart, and the
		// data packets numbered in drop (counted from 1 after the warm-up)
		// never arrive.
		burst int
		gap   time.Duration
		drop  map[int]bool
		// within bounds the time from the first lost message's write to
		// its delivery; probes and naks say whether the repair takes a
		// tail-loss probe and a loss declared by negative acknowledgement.
		within       time.Duration
		probes, naks bool
		// ackDelay is the receiver's hold (zero: the default).
		ackDelay time.Duration
	}{
		{name: "last two of a burst", burst: 4, drop: map[int]bool{3: true, 4: true}, within: congestion.MinimumERTO, probes: true, naks: true},
		// A lone fragment's acknowledgement may be held: the probe waits
		// for the hold the sender measured too (20 ms each way: 2 round
		// trips, about 50 ms, one way).
		{name: "last of three", burst: 3, drop: map[int]bool{3: true}, within: 200 * time.Millisecond, probes: true},
		// A peer that holds acknowledgements RFC 7016's 200 ms: the
		// probe waits for that, and probes no packet that arrived.
		{name: "last of three, peer holds 200 ms", burst: 3, drop: map[int]bool{3: true}, within: 330 * time.Millisecond, probes: true, ackDelay: 200 * time.Millisecond},
		{name: "one of a sparse flow", burst: 4, gap: 100 * time.Millisecond, drop: map[int]bool{2: true}, within: 200 * time.Millisecond, naks: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newSimNet(t, 7)
			n.delay = 20 * time.Millisecond
			a, b, sa, _ := pair(t, n, core.Config{AckDelay: tc.ackDelay})
			f, _ := sa.OpenFlow([]byte("tail"), core.PriorityRoutine)
			bAddr := n.addrOf(b)
			c := &collector{readAll: true}
			// Warm up: round-trip samples, a window of a few packets.
			var want [][]byte
			for i := 0; i < 20; i++ {
				m := message(i, 1000)
				want = append(want, m)
				f.Write(m, core.WriteOptions{})
			}
			if !n.runUntil(5*time.Second, func() bool { c.pump(n.takeEvents(bAddr)); return len(c.msgs) == 20 }) {
				t.Fatalf("warm-up: %d of 20 messages", len(c.msgs))
			}
			// Lone packets: the sender learns how long b holds their
			// acknowledgement (its delayed-ack period, shorter than the
			// 200 ms a sender assumes at first).
			for i := 20; i < 32; i++ {
				m := message(i, 1000)
				want = append(want, m)
				f.Write(m, core.WriteOptions{})
				n.runFor(100*time.Millisecond, func() { c.pump(n.takeEvents(bAddr)) })
			}
			n.runUntil(300*time.Millisecond, func() bool { c.pump(n.takeEvents(bAddr)); return false })
			if len(c.msgs) != len(want) {
				t.Fatalf("warm-up: %d of %d messages", len(c.msgs), len(want))
			}
			if st := a.Stats(); st.Probes != 0 || st.Retransmits != 0 {
				t.Fatalf("warm-up without loss: %d probes, %d retransmissions", st.Probes, st.Retransmits)
			}
			before := a.Stats()
			seen := 0
			n.filter = func(from, to netip.AddrPort, pkt []byte) bool {
				if to != bAddr || len(pkt) < 900 {
					return true
				}
				seen++
				return !tc.drop[seen]
			}
			first := 0 // the first lost message
			for first = 1; !tc.drop[first]; first++ {
			}
			first += len(want) - 1
			var wrote, came time.Time
			pump := func() {
				c.pump(n.takeEvents(bAddr))
				if came.IsZero() && len(c.msgs) > first {
					came = n.now
				}
			}
			for i := 0; i < tc.burst; i++ {
				if i > 0 && tc.gap > 0 {
					n.runFor(tc.gap, pump)
				}
				m := message(100+i, 1000)
				if len(want) == first {
					wrote = n.now
				}
				want = append(want, m)
				f.Write(m, core.WriteOptions{})
			}
			if !n.runUntil(5*time.Second, func() bool { pump(); return len(c.msgs) == len(want) }) {
				t.Fatalf("%d of %d messages", len(c.msgs), len(want))
			}
			took := came.Sub(wrote)
			for i := range want {
				if !bytes.Equal(c.msgs[i], want[i]) {
					t.Fatalf("message %d out of order or corrupt", i)
				}
			}
			st := a.Stats()
			t.Logf("lost message delivered %v after its write; probes %d, lost by nak %d, timeouts %d",
				took, st.Probes-before.Probes, st.NakLosses-before.NakLosses, st.Timeouts-before.Timeouts)
			if took > tc.within {
				t.Errorf("the lost message came %v after its write, want within %v", took, tc.within)
			}
			if st.Timeouts != before.Timeouts {
				t.Errorf("%d retransmission timeouts", st.Timeouts-before.Timeouts)
			}
			if got := st.Probes > before.Probes; got != tc.probes {
				t.Errorf("probes sent: %v, want %v", got, tc.probes)
			}
			if got := st.NakLosses > before.NakLosses; got != tc.naks {
				t.Errorf("lost by negative acknowledgement: %v, want %v", got, tc.naks)
			}
		})
	}
}

// A message written NoRetransmit is abandoned on its first loss; a probe
// is not a loss, so its fragments are not probed (and not abandoned)
// while their acknowledgement is late: only the timeout declares them
// lost.
func TestTailLossProbeSparesNoRetransmit(t *testing.T) {
	for _, noRTX := range []bool{false, true} {
		n := newSimNet(t, 9)
		n.delay = 20 * time.Millisecond
		a, b, sa, _ := pair(t, n, core.Config{})
		f, _ := sa.OpenFlow([]byte("live"), core.PriorityRoutine)
		bAddr, aAddr := n.addrOf(b), n.addrOf(a)
		c := &collector{readAll: true}
		for i := 0; i < 20; i++ { // round-trip samples
			f.Write(message(i, 1000), core.WriteOptions{})
		}
		if !n.runUntil(5*time.Second, func() bool { c.pump(n.takeEvents(bAddr)); return len(c.msgs) == 20 }) {
			t.Fatalf("warm-up: %d of 20 messages", len(c.msgs))
		}
		n.runUntil(300*time.Millisecond, func() bool { c.pump(n.takeEvents(bAddr)); return false })
		// The data arrives; its acknowledgements do not, for a while.
		start := n.now
		n.filter = func(from, to netip.AddrPort, pkt []byte) bool {
			return !(to == aAddr && n.now.Sub(start) < 200*time.Millisecond)
		}
		var rs []*core.Receipt
		for i := 0; i < 3; i++ {
			r, err := f.Write(message(100+i, 1000), core.WriteOptions{NoRetransmit: noRTX})
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		before := a.Stats().Probes
		// Past two round trips (the probe's time), before the timeout
		// (250 ms at least).
		n.runFor(180*time.Millisecond, func() { c.pump(n.takeEvents(bAddr)) })
		probes := a.Stats().Probes - before
		abandoned := 0
		for _, r := range rs {
			if r.State() == core.ReceiptAbandoned {
				abandoned++
			}
		}
		if noRTX && (probes != 0 || abandoned != 0) {
			t.Errorf("NoRetransmit: %d probes, %d of 3 messages abandoned before the timeout", probes, abandoned)
		}
		if !noRTX && probes != 1 {
			t.Errorf("reliable: %d probes, want 1 (the case must reach the probe's time)", probes)
		}
		if len(c.msgs) != 23 {
			t.Errorf("noRetransmit %v: %d of 23 messages arrived", noRTX, len(c.msgs))
		}
	}
}
