package memnet

import (
	"math"
	"net/netip"
	"testing"
	"time"
)

// arrival is a datagram's sequence number and exact delivery time.
type arrival struct {
	seq uint32
	at  time.Duration // since epoch
}

// run drives clk event by event, draining c after each, until no timer is
// left or limit, and returns what arrived when. Sends scheduled as clock
// timers interleave exactly with deliveries.
func run(t *testing.T, clk *ManualClock, c *Conn, limit time.Duration) []arrival {
	t.Helper()
	var got []arrival
	for range 10_000_000 {
		next, ok := clk.Next()
		if !ok || next.Sub(epoch) > limit {
			break
		}
		clk.AdvanceTo(next)
		seqs, _ := drain(t, c)
		for _, s := range seqs {
			got = append(got, arrival{s, clk.Now().Sub(epoch)})
		}
	}
	return got
}

// sendEvery schedules count datagrams of size bytes from a to b, one every
// interval starting at the clock's current time, and returns their send
// times.
func sendEvery(t *testing.T, clk *ManualClock, a, b *Conn, count int, interval time.Duration, size int) []time.Duration {
	sentAt := make([]time.Duration, count)
	now := clk.Now().Sub(epoch)
	for i := range count {
		d := time.Duration(i) * interval
		sentAt[i] = now + d
		clk.AfterFunc(d, func() {
			if _, err := a.WriteToUDPAddrPort(seqPayload(uint32(i), size), b.LocalAddrPort()); err != nil {
				t.Errorf("write: %v", err)
			}
		})
	}
	return sentAt
}

func TestDelayAndJitter(t *testing.T) {
	tests := []struct {
		name     string
		delay    time.Duration
		jitter   time.Duration
		interval time.Duration // between sends
	}{
		{"none", 0, 0, time.Millisecond},
		{"delay", 40 * time.Millisecond, 0, time.Millisecond},
		{"jitter", 0, 20 * time.Millisecond, 25 * time.Millisecond},
		{"both", 50 * time.Millisecond, 30 * time.Millisecond, 40 * time.Millisecond},
		// Sends closer than the jitter: FIFO order holds delays up but
		// keeps them within bounds.
		{"dense", 50 * time.Millisecond, 30 * time.Millisecond, 500 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, clk := newManual(t, Config{Seed: 1, Link: Link{Delay: tt.delay, Jitter: tt.jitter}})
			a := listen(t, n, "10.0.0.1:1")
			b := listen(t, n, "10.0.0.2:1")
			const count = 1000
			sentAt := sendEvery(t, clk, a, b, count, tt.interval, 20)
			got := run(t, clk, b, time.Hour)
			if len(got) != count {
				t.Fatalf("received %d of %d", len(got), count)
			}
			var minD, maxD time.Duration = math.MaxInt64, 0
			for i, g := range got {
				if g.seq != uint32(i) {
					t.Fatalf("arrival %d is seq %d: jitter alone must not reorder", i, g.seq)
				}
				d := g.at - sentAt[g.seq]
				if d < tt.delay || d > tt.delay+tt.jitter {
					t.Fatalf("seq %d took %v, want within [%v, %v]", g.seq, d, tt.delay, tt.delay+tt.jitter)
				}
				minD, maxD = min(minD, d), max(maxD, d)
			}
			// Jitter must actually spread deliveries over most of its range.
			if spread := maxD - minD; tt.interval > tt.jitter && spread < tt.jitter*9/10 {
				t.Fatalf("delays spread over %v, want about %v", spread, tt.jitter)
			}
		})
	}
}

// sendBurst sends count numbered datagrams from a to b at once.
func sendBurst(t *testing.T, a, b *Conn, count, size int) {
	t.Helper()
	for i := range count {
		send(t, a, b.LocalAddrPort(), seqPayload(uint32(i), size))
	}
}

func TestLossRate(t *testing.T) {
	const N = 20000
	tests := []struct {
		name string
		link Link
		want float64 // expected loss rate
	}{
		{"none", Link{}, 0},
		{"1%", Link{Loss: 0.01}, 0.01},
		{"10%", Link{Loss: 0.10}, 0.10},
		{"50%", Link{Loss: 0.50}, 0.50},
		{"all", Link{Loss: 1}, 1},
		// Gilbert-Elliott: stationary bad share P/(P+R) = 0.05/0.30 = 1/6,
		// loss = 5/6*0.01 + 1/6*0.9 = 0.15833.
		{"burst", Link{Burst: &BurstLoss{P: 0.05, R: 0.25, LossGood: 0.01, LossBad: 0.9}}, 0.15833},
		{"burst overrides loss", Link{Loss: 0.9, Burst: &BurstLoss{P: 0.01, R: 0.5}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, _ := newManual(t, Config{Seed: 42, Link: tt.link, RecvQueue: N})
			a := listen(t, n, "10.0.0.1:1")
			b := listen(t, n, "10.0.0.2:1")
			sendBurst(t, a, b, N, 8)
			seqs, _ := drain(t, b)
			lost := N - len(seqs)
			rate := float64(lost) / N
			// Four standard deviations of a binomial; bursty loss has
			// correlated samples, so allow it three times more.
			sigma := math.Sqrt(tt.want * (1 - tt.want) / N)
			if tt.link.Burst != nil {
				sigma *= 3
			}
			if math.Abs(rate-tt.want) > 4*sigma+1e-9 {
				t.Fatalf("loss rate %.4f, want %.4f ± %.4f", rate, tt.want, 4*sigma)
			}
			if s := a.Stats(); s.DroppedLoss != uint64(lost) || s.Sent != N {
				t.Fatalf("stats %+v, lost %d", s, lost)
			}
		})
	}
}

// TestBurstLossIsBursty checks that Gilbert-Elliott losses cluster: runs of
// consecutive losses average 1/R, far longer than independent loss gives at
// the same rate.
func TestBurstLossIsBursty(t *testing.T) {
	const N = 20000
	runs := func(link Link) (rate, meanRun float64) {
		n, _ := newManual(t, Config{Seed: 7, Link: link, RecvQueue: N})
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:1")
		sendBurst(t, a, b, N, 8)
		seqs, _ := drain(t, b)
		got := make([]bool, N)
		for _, s := range seqs {
			got[s] = true
		}
		var lost, nRuns int
		for i := range got {
			if !got[i] {
				lost++
				if i == 0 || got[i-1] {
					nRuns++
				}
			}
		}
		return float64(lost) / N, float64(lost) / float64(nRuns)
	}
	bRate, bRun := runs(Link{Burst: &BurstLoss{P: 0.02, R: 0.2, LossBad: 1}})
	iRate, iRun := runs(Link{Loss: bRate})
	if bRun < 4 || bRun > 6.5 {
		t.Fatalf("burst: mean run %.2f, want about 1/R = 5", bRun)
	}
	if iRun > 1.3 {
		t.Fatalf("independent loss at %.3f: mean run %.2f, want about 1.1", iRate, iRun)
	}
}

func TestDuplicateAndReorder(t *testing.T) {
	const N = 5000
	tests := []struct {
		name        string
		link        Link
		wantDup     float64
		wantReorder float64
	}{
		{"duplicate", Link{Duplicate: 0.1}, 0.1, 0},
		{"reorder", Link{Reorder: 0.1, ReorderGap: 5 * time.Millisecond}, 0, 0.1},
		{"reorder default gap", Link{Delay: 20 * time.Millisecond, Reorder: 0.05}, 0, 0.05},
		{"both with jitter", Link{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, Duplicate: 0.05, Reorder: 0.05}, 0.05, 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, clk := newManual(t, Config{Seed: 9, Link: tt.link, RecvQueue: 2 * N})
			a := listen(t, n, "10.0.0.1:1")
			b := listen(t, n, "10.0.0.2:1")
			sendEvery(t, clk, a, b, N, time.Millisecond, 16)
			got := run(t, clk, b, time.Hour)

			s := a.Stats()
			if uint64(len(got)) != N+s.Duplicated {
				t.Fatalf("received %d, want %d sent + %d duplicates", len(got), N, s.Duplicated)
			}
			check := func(what string, count uint64, p float64) {
				tol := 4*math.Sqrt(p*(1-p)/N) + 1e-9
				if r := float64(count) / N; math.Abs(r-p) > tol {
					t.Fatalf("%s rate %.4f, want %.4f ± %.4f", what, r, p, tol)
				}
			}
			check("duplicate", s.Duplicated, tt.wantDup)
			check("reorder", s.Reordered, tt.wantReorder)

			// Observe the effects in the data itself.
			seen := make(map[uint32]int)
			var dups, inversions int
			var highest uint32
			for i, g := range got {
				if seen[g.seq]++; seen[g.seq] > 1 {
					dups++
				}
				if i > 0 && g.seq < highest {
					inversions++
				}
				highest = max(highest, g.seq)
			}
			if len(seen) != N {
				t.Fatalf("distinct datagrams %d, want %d", len(seen), N)
			}
			if uint64(dups) != s.Duplicated {
				t.Fatalf("observed %d duplicates, counted %d", dups, s.Duplicated)
			}
			if tt.wantReorder > 0 && uint64(inversions) < s.Reordered/2 {
				t.Fatalf("observed %d late arrivals for %d reordered", inversions, s.Reordered)
			}
			if tt.wantReorder == 0 && inversions != 0 {
				t.Fatalf("observed %d late arrivals without reordering", inversions)
			}
		})
	}
}

func TestBandwidthSerialisation(t *testing.T) {
	// 10 datagrams of 1000 bytes on the wire at 1 MB/s: one per millisecond
	// after the delay.
	n, clk := newManual(t, Config{Link: Link{Bandwidth: 1e6, Delay: 5 * time.Millisecond}})
	a := listen(t, n, "10.0.0.1:1")
	b := listen(t, n, "10.0.0.2:1")
	sendBurst(t, a, b, 10, 1000-ipv4Overhead)
	got := run(t, clk, b, time.Hour)
	if len(got) != 10 {
		t.Fatalf("received %d", len(got))
	}
	for i, g := range got {
		want := 5*time.Millisecond + time.Duration(i+1)*time.Millisecond
		if g.seq != uint32(i) || g.at != want {
			t.Fatalf("arrival %d: seq %d at %v, want seq %d at %v", i, g.seq, g.at, i, want)
		}
	}
}

func TestBandwidthThroughput(t *testing.T) {
	tests := []struct {
		name      string
		bandwidth int64
		queue     int
		offered   time.Duration // interval between 1000-byte datagrams
		wantDrops bool
	}{
		{"underloaded", 200_000, 0, 10 * time.Millisecond, false}, // 100 kB/s offered
		{"saturated", 100_000, 0, 5 * time.Millisecond, true},     // 200 kB/s offered
		{"saturated big queue", 100_000, 50_000, 2 * time.Millisecond, true},
		{"unlimited queue", 500_000, -1, time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, clk := newManual(t, Config{Link: Link{Bandwidth: tt.bandwidth, QueueLimit: tt.queue}, RecvQueue: 1 << 20})
			a := listen(t, n, "10.0.0.1:1")
			b := listen(t, n, "10.0.0.2:1")
			const wire = 1000
			span := 4 * time.Second
			count := int(span / tt.offered)
			sendEvery(t, clk, a, b, count, tt.offered, wire-ipv4Overhead)
			got := run(t, clk, b, span)
			// Measure the delivery rate over the last three seconds.
			var bytes int
			for _, g := range got {
				if g.at > time.Second {
					bytes += wire
				}
			}
			rate := float64(bytes) / 3
			offered := float64(wire) / tt.offered.Seconds()
			want := math.Min(float64(tt.bandwidth), offered)
			if math.Abs(rate-want)/want > 0.02 {
				t.Fatalf("throughput %.0f B/s, want %.0f ± 2%%", rate, want)
			}
			s := a.Stats()
			if (s.DroppedQueue > 0) != tt.wantDrops {
				t.Fatalf("queue drops %d, want drops: %v", s.DroppedQueue, tt.wantDrops)
			}
			// The queue bounds the latency: each datagram waits at most
			// QueueLimit/Bandwidth plus its own transmission.
			if tt.queue >= 0 {
				limit := (&Link{Bandwidth: tt.bandwidth, QueueLimit: tt.queue}).queueLimit()
				maxWait := time.Duration(float64(limit+wire)/float64(tt.bandwidth)*1e9) + time.Microsecond
				sent := map[uint32]time.Duration{}
				for i := range count {
					sent[uint32(i)] = time.Duration(i) * tt.offered
				}
				for _, g := range got {
					if w := g.at - sent[g.seq]; w > maxWait {
						t.Fatalf("seq %d waited %v, queue bound %v", g.seq, w, maxWait)
					}
				}
			}
		})
	}
}

func TestMTU(t *testing.T) {
	tests := []struct {
		name    string
		to      string
		from    string
		size    int
		mtu     int
		deliver bool
	}{
		{"v4 fits", "10.0.0.2:1", "10.0.0.1:1", 1472, 1500, true},
		{"v4 too big", "10.0.0.2:1", "10.0.0.1:1", 1473, 1500, false},
		{"v6 fits", "[fd00::2]:1", "[fd00::1]:1", 1452, 1500, true},
		{"v6 too big", "[fd00::2]:1", "[fd00::1]:1", 1453, 1500, false},
		{"no limit", "10.0.0.2:1", "10.0.0.1:1", maxDatagram, 0, true},
		{"tiny", "10.0.0.2:1", "10.0.0.1:1", 0, 28, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, _ := newManual(t, Config{Link: Link{MTU: tt.mtu}})
			a := listen(t, n, tt.from)
			b := listen(t, n, tt.to)
			send(t, a, b.LocalAddrPort(), make([]byte, tt.size))
			if got := b.Pending() == 1; got != tt.deliver {
				t.Fatalf("delivered = %v, want %v", got, tt.deliver)
			}
			if s := n.Stats(); (s.DroppedMTU == 1) == tt.deliver {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestLinkOverrides(t *testing.T) {
	n, clk := newManual(t, Config{Link: Link{Delay: 10 * time.Millisecond}})
	a := listen(t, n, "10.0.0.1:1")
	b := listen(t, n, "10.0.0.2:1")
	c := listen(t, n, "10.0.0.3:1")
	n.SetLink(a.LocalAddrPort().Addr(), b.LocalAddrPort().Addr(), Link{Delay: 50 * time.Millisecond})
	n.SetLinkBoth(a.LocalAddrPort().Addr(), c.LocalAddrPort().Addr(), Link{Loss: 1})

	delay := func(from, to *Conn) time.Duration {
		t.Helper()
		send(t, from, to.LocalAddrPort(), seqPayload(0, 4))
		start := clk.Now()
		for range 1000 {
			if to.Pending() > 0 {
				drain(t, to)
				return clk.Now().Sub(start)
			}
			clk.Advance(time.Millisecond)
		}
		return -1 // never arrived
	}
	tests := []struct {
		name     string
		from, to *Conn
		want     time.Duration
	}{
		{"override a->b", a, b, 50 * time.Millisecond},
		{"default b->a", b, a, 10 * time.Millisecond},
		{"both a->c", a, c, -1},
		{"both c->a", c, a, -1},
		{"default b->c", b, c, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := delay(tt.from, tt.to); got != tt.want {
			t.Errorf("%s: delay %v, want %v", tt.name, got, tt.want)
		}
	}
	n.ClearLink(a.LocalAddrPort().Addr(), b.LocalAddrPort().Addr())
	n.SetDefaultLink(Link{Delay: 2 * time.Millisecond})
	if got := delay(a, b); got != 2*time.Millisecond {
		t.Errorf("after ClearLink: delay %v", got)
	}
}

func TestBlockAndPartition(t *testing.T) {
	n, _ := newManual(t, Config{})
	hosts := make([]*Conn, 4)
	for i := range hosts {
		c, err := n.ListenAuto()
		if err != nil {
			t.Fatal(err)
		}
		hosts[i] = c
	}
	addr := func(i int) netip.Addr { return hosts[i].LocalAddrPort().Addr() }
	reach := func() [4][4]bool {
		var r [4][4]bool
		for i, a := range hosts {
			for j, b := range hosts {
				if i == j {
					continue
				}
				send(t, a, b.LocalAddrPort(), []byte{1})
				r[i][j] = b.Pending() == 1
				drain(t, b)
			}
		}
		return r
	}
	all := [4][4]bool{{false, true, true, true}, {true, false, true, true}, {true, true, false, true}, {true, true, true, false}}
	if got := reach(); got != all {
		t.Fatalf("initial reachability %v", got)
	}
	n.Block(addr(0), addr(1))
	want := all
	want[0][1] = false
	if got := reach(); got != want {
		t.Fatalf("after Block(0,1): %v", got)
	}
	n.Unblock(addr(0), addr(1))
	n.Partition([]netip.Addr{addr(0), addr(1)}, []netip.Addr{addr(2)}) // 3 is in the rest
	want = [4][4]bool{{false, true, false, false}, {true, false, false, false}, {false, false, false, false}, {false, false, false, false}}
	if got := reach(); got != want {
		t.Fatalf("after Partition: %v", got)
	}
	n.Block(addr(2), addr(3))
	n.Heal()
	if got := reach(); got != all {
		t.Fatalf("after Heal: %v", got)
	}
	if s := n.Stats(); s.DroppedBlocked != 1+10 {
		t.Fatalf("blocked drops %d, want 11", s.DroppedBlocked)
	}
}

func TestDeterminism(t *testing.T) {
	link := Link{Delay: 5 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.05,
		Duplicate: 0.02, Reorder: 0.02, Bandwidth: 2e6}
	pattern := func(seed uint64) []arrival {
		n, clk := newManual(t, Config{Seed: seed, Link: link})
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:1")
		sendEvery(t, clk, a, b, 3000, 100*time.Microsecond, 200)
		return run(t, clk, b, time.Hour)
	}
	first, again, other := pattern(1), pattern(1), pattern(2)
	if len(first) < 2500 {
		t.Fatalf("only %d arrivals", len(first))
	}
	if !equalArrivals(first, again) {
		t.Fatal("same seed gave different patterns")
	}
	if equalArrivals(first, other) {
		t.Fatal("different seeds gave the same pattern")
	}
}

func equalArrivals(a, b []arrival) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// With Config.Tick every datagram arrives at the first multiple of Tick
// (since the network was made) at or after the time its link gives it:
// never earlier, less than a tick later, a path's order kept.
func TestTickGrid(t *testing.T) {
	tests := []struct {
		name          string
		tick          time.Duration
		delay, jitter time.Duration
		interval      time.Duration
	}{
		{"no jitter", time.Millisecond, 20 * time.Millisecond, 0, 130 * time.Microsecond},
		{"jitter", time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 70 * time.Microsecond},
		{"coarse", 5 * time.Millisecond, 3 * time.Millisecond, 0, 900 * time.Microsecond},
		{"exact (no tick)", 0, 20 * time.Millisecond, 0, 130 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, clk := newManual(t, Config{Seed: 3, Tick: tt.tick})
			a, b := listen(t, n, "10.0.0.1:1"), listen(t, n, "10.0.0.2:1")
			n.SetLink(ip("10.0.0.1"), ip("10.0.0.2"), Link{Delay: tt.delay, Jitter: tt.jitter})
			const count = 500
			sentAt := sendEvery(t, clk, a, b, count, tt.interval, 100)
			got := run(t, clk, b, time.Second)
			if len(got) != count {
				t.Fatalf("%d of %d arrived", len(got), count)
			}
			instants := map[time.Duration]bool{}
			for i, g := range got {
				instants[g.at] = true
				if i > 0 && tt.jitter == 0 && g.seq < got[i-1].seq {
					t.Fatalf("datagram %d arrived after %d", got[i-1].seq, g.seq)
				}
				early := sentAt[g.seq] + tt.delay
				if g.at < early || g.at >= early+tt.jitter+max(tt.tick, 1) {
					t.Fatalf("datagram %d sent at %v arrived at %v: want [%v, %v)", g.seq, sentAt[g.seq], g.at, early, early+tt.jitter+max(tt.tick, 1))
				}
				if tt.tick > 0 && g.at%tt.tick != 0 {
					t.Fatalf("datagram %d arrived at %v, off the %v grid", g.seq, g.at, tt.tick)
				}
			}
			// On the grid the datagrams share instants: the point.
			span := got[len(got)-1].at - got[0].at
			if tt.tick > 0 && len(instants) > int(span/tt.tick)+1 {
				t.Fatalf("%d delivery instants over %v", len(instants), span)
			}
			if tt.tick == 0 && len(instants) < count/2 {
				t.Fatalf("exact delivery: only %d distinct instants for %d datagrams", len(instants), count)
			}
		})
	}
}
