package dissem

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Mocknet's own link latency cannot carry a stream: its stream hands a
// write to the reader only after the previous write has arrived, so a
// stream delivers at most one write per link latency (1000-byte writes
// every 8 ms over a 40 ms link arrive 40, 160, 280 ms ... after they were
// written; TestTCPModelPipelines). Gossipsub's links are therefore given
// no latency in mocknet, and each stream a member writes on goes through
// a tcpStream, which delays every write by the pair's one-way delay and
// pipelines them, as a TCP connection with room in its window would.
//
// With loss, tcpStream models what TCP's loss recovery does to a stream
// (RACK-TLP, RFC 8985): each write is cut into segments of tcpMSS bytes,
// each lost with the link's probability; the write, and every write after
// it (in order, as TCP delivers), arrives late by the time the sender
// takes to repair the hole:
//   - a segment followed by another one sent within a round trip is found
//     lost when that one is acknowledged, after 1.25 round trips (RACK's
//     reordering window is a quarter of the round trip), and resent;
//   - a segment nothing follows within the round trip is resent by the
//     tail loss probe, 2 round trips after it was sent;
//   - a resent segment is lost again with the same probability, each time
//     costing 1.25 round trips more.
//
// The model leaves out what would make TCP slower still (the congestion
// window halved at each loss, lost acknowledgements, retransmission
// timeouts of 200 ms and more) and the retransmitted bytes (the figures
// count RPC frames, as without loss), so it flatters gossipsub.
const tcpMSS = 1448

// tcpNet is the link model of one gossipsub run: the pairs' delays and
// the loss, applied once on is set. Each stream draws its losses from its
// own source, seeded by the run's seed and the pair.
type tcpNet struct {
	delay func(i, j int) time.Duration // one-way, per pair of members
	loss  float64
	seed  uint64
	on    atomic.Bool // loss applies from the stream's start
	mu    sync.Mutex
	draws []bool // tests: the outcomes of the next draws, before any stream's own
}

// lost draws whether one segment is lost, from rng.
func (n *tcpNet) lost(rng *rand.Rand) bool {
	if !n.on.Load() {
		return false
	}
	n.mu.Lock()
	if len(n.draws) > 0 {
		d := n.draws[0]
		n.draws = n.draws[1:]
		n.mu.Unlock()
		return d
	}
	n.mu.Unlock()
	return n.loss > 0 && rng.Float64() < n.loss
}

// tcpHost is a member's host whose outbound streams are tcpStreams.
type tcpHost struct {
	host.Host
	net   *tcpNet
	self  int
	index map[peer.ID]int
}

func (h *tcpHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	j, ok := h.index[p]
	if !ok {
		return s, nil
	}
	rng := rand.New(rand.NewPCG(h.net.seed, uint64(h.self)<<32|uint64(j)))
	return newTCPStream(s, h.net, h.net.delay(h.self, j), rng), nil
}

// tcpStream is the sending side of a modelled TCP connection over a
// mocknet stream with no latency of its own.
type tcpStream struct {
	network.Stream
	net   *tcpNet
	delay time.Duration // one-way
	rng   *rand.Rand    // loss draws, under mu
	kick  chan struct{}
	done  chan struct{}
	stop  sync.Once

	mu    sync.Mutex
	queue []tcpWrite
}

type tcpWrite struct {
	b        []byte
	sent     time.Time // when it was written
	at       time.Time // when it arrives, as far as known
	tailLost bool      // its last segment was lost: at may come earlier if another write follows
	closing  bool      // close the stream once everything before has arrived
}

func newTCPStream(s network.Stream, n *tcpNet, delay time.Duration, rng *rand.Rand) *tcpStream {
	ts := &tcpStream{Stream: s, net: n, delay: delay, rng: rng, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go ts.deliver()
	return ts
}

// recovery is how late a write of size bytes arrives, and whether its
// last segment was lost (its repair then depends on what follows).
func (s *tcpStream) recovery(size int) (late time.Duration, tailLost bool) {
	rtt := 2 * s.delay
	rack := rtt + rtt/4
	segs := max(1, (size+tcpMSS-1)/tcpMSS)
	for i := range segs {
		if !s.net.lost(s.rng) {
			continue
		}
		d := rack
		if i == segs-1 {
			d, tailLost = 2*rtt, true
		}
		for s.net.lost(s.rng) {
			d += rack
		}
		late = max(late, d)
	}
	return late, tailLost
}

func (s *tcpStream) Write(p []byte) (int, error) {
	select {
	case <-s.done:
		return 0, network.ErrReset
	default:
	}
	now := time.Now()
	s.mu.Lock()
	late, tailLost := s.recovery(len(p))
	w := tcpWrite{b: append([]byte(nil), p...), sent: now, at: now.Add(s.delay + late), tailLost: tailLost}
	// A write sent within a round trip of an earlier one whose last
	// segment was lost lets RACK find that loss before the probe would.
	rtt := 2 * s.delay
	for i := range s.queue {
		q := &s.queue[i]
		if q.tailLost && now.Sub(q.sent) < rtt {
			found := now.Add(rtt)
			if rack := q.sent.Add(rtt + rtt/4); rack.After(found) {
				found = rack
			}
			found = found.Add(s.delay)
			if found.Before(q.at) {
				q.at = found
			}
		}
	}
	s.queue = append(s.queue, w)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return len(p), nil
}

// deliver hands the writes to the mocknet stream in order, each at its
// arrival time or when the one before it has been handed on, whichever
// is later.
func (s *tcpStream) deliver() {
	var timer *time.Timer
	for {
		s.mu.Lock()
		var head tcpWrite
		ok := len(s.queue) > 0
		if ok {
			head = s.queue[0]
		}
		s.mu.Unlock()
		if !ok {
			select {
			case <-s.kick:
				continue
			case <-s.done:
				return
			}
		}
		if d := time.Until(head.at); d > 0 {
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-timer.C:
			case <-s.kick: // a later write may have moved the head's arrival
				timer.Stop() // no stale tick after Stop since Go 1.23
				continue
			case <-s.done:
				timer.Stop()
				return
			}
		}
		s.mu.Lock()
		s.queue = s.queue[1:]
		s.mu.Unlock()
		if head.closing {
			s.Stream.Close()
			return
		}
		if _, err := s.Stream.Write(head.b); err != nil {
			s.stop.Do(func() { close(s.done) })
			return
		}
	}
}

// Close closes the stream once what was written before has arrived.
func (s *tcpStream) Close() error {
	s.mu.Lock()
	s.queue = append(s.queue, tcpWrite{closing: true, at: time.Now()})
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

func (s *tcpStream) Reset() error {
	s.stop.Do(func() { close(s.done) })
	return s.Stream.Reset()
}

func (s *tcpStream) ResetWithError(c network.StreamErrorCode) error {
	s.stop.Do(func() { close(s.done) })
	return s.Stream.ResetWithError(c)
}
