package memnet

import (
	"math/rand/v2"
	"net/netip"
	"time"
)

// Link describes the impairments of the path from one host (IP address) to
// another. The zero Link is a perfect, instantaneous path. Impairments apply
// in this order: MTU, bandwidth queue, loss, delay and jitter, reordering,
// duplication; a datagram lost on the wire still used its share of the
// bandwidth.
type Link struct {
	// Delay is the one-way propagation delay.
	Delay time.Duration
	// Jitter adds a uniformly random extra delay in [0, Jitter]. Jitter alone
	// never reorders datagrams, as on most real paths: a datagram is never
	// delivered before one sent earlier on the same link (Reorder does that).
	Jitter time.Duration
	// Loss is the probability that a datagram is lost, independently of the
	// others. It is ignored when Burst is set.
	Loss float64
	// Burst, when not nil, replaces Loss with Gilbert-Elliott loss, whose
	// losses come in bursts as on congested or wireless paths.
	Burst *BurstLoss
	// Reorder is the probability that a datagram is held back by ReorderGap
	// (on top of its delay), so that datagrams sent after it during that
	// interval arrive first.
	Reorder float64
	// ReorderGap is how long a reordered datagram is held back. Zero means
	// 10 ms.
	ReorderGap time.Duration
	// Duplicate is the probability that a datagram is delivered twice.
	Duplicate float64
	// Bandwidth, in bytes per second, limits the link's rate. Zero means
	// unlimited. Datagrams are serialised one after another, each taking
	// its size (with IP and UDP headers) divided by Bandwidth, and wait in
	// the link's queue meanwhile.
	Bandwidth int64
	// QueueLimit is the size in bytes of a bandwidth-limited link's queue; a
	// datagram that would make the queue exceed it is dropped (tail drop),
	// unless the queue is empty. Zero means 100 ms worth of Bandwidth, at
	// least 12,000 bytes; a negative value means unlimited.
	QueueLimit int
	// MTU is the largest IP packet, headers included, that the link carries:
	// a UDP payload may be MTU minus 28 bytes over IPv4 and MTU minus 48
	// bytes over IPv6. Larger datagrams are dropped. Zero means no limit.
	MTU int
}

// BurstLoss is the Gilbert-Elliott loss model: a two-state Markov chain
// stepped once per datagram, losing datagrams with a different probability in
// each state. The long-run loss rate is
//
//	(R*LossGood + P*LossBad) / (P + R)
//
// and losses in the bad state come in runs of 1/R datagrams on average.
type BurstLoss struct {
	// P is the probability of moving from the good to the bad state.
	P float64
	// R is the probability of moving from the bad back to the good state.
	R float64
	// LossGood is the loss probability in the good state (often 0).
	LossGood float64
	// LossBad is the loss probability in the bad state (often 1).
	LossBad float64
}

const (
	defaultReorderGap = 10 * time.Millisecond
	minQueueLimit     = 12000
	ipv4Overhead      = 20 + 8
	ipv6Overhead      = 40 + 8
	// maxDatagram is the largest UDP payload over IPv4, which WriteTo
	// enforces whatever the address family, as a real socket would for v4.
	maxDatagram = 65535 - ipv4Overhead
)

// clone copies l so the Network never shares a *BurstLoss with its caller.
func (l Link) clone() Link {
	if l.Burst != nil {
		b := *l.Burst
		l.Burst = &b
	}
	return l
}

// stateful reports whether the link needs per-link memory.
func (l *Link) stateful() bool {
	return l.Jitter > 0 || l.Bandwidth > 0 || l.Burst != nil
}

func (l *Link) queueLimit() int64 {
	switch {
	case l.QueueLimit < 0:
		return -1
	case l.QueueLimit > 0:
		return int64(l.QueueLimit)
	}
	q := l.Bandwidth / 10
	if q < minQueueLimit {
		q = minQueueLimit
	}
	return q
}

func (l *Link) reorderGap() time.Duration {
	if l.ReorderGap > 0 {
		return l.ReorderGap
	}
	return defaultReorderGap
}

// hostPair is a directed pair of hosts.
type hostPair struct{ from, to netip.Addr }

// linkState is what a stateful link remembers between datagrams. Times are
// offsets from the Network's base time.
type linkState struct {
	busyUntil   time.Duration // when the transmitter finishes its queue
	lastArrival time.Duration // latest in-order delivery, for FIFO jitter
	bad         bool          // Gilbert-Elliott state
}

// lost decides whether a datagram is lost and steps the burst model.
func (l *Link) lost(st *linkState, rng *rand.Rand) bool {
	if b := l.Burst; b != nil {
		p := b.LossGood
		if st.bad {
			p = b.LossBad
		}
		lost := p > 0 && rng.Float64() < p
		if st.bad {
			if b.R > 0 && rng.Float64() < b.R {
				st.bad = false
			}
		} else if b.P > 0 && rng.Float64() < b.P {
			st.bad = true
		}
		return lost
	}
	return l.Loss > 0 && rng.Float64() < l.Loss
}

// wireSize is the size of the IP packet carrying a payload of n bytes to dst.
func wireSize(n int, dst netip.Addr) int {
	if dst.Is4() {
		return n + ipv4Overhead
	}
	return n + ipv6Overhead
}
