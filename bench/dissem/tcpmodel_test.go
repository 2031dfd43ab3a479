package dissem

import (
	"context"
	"math"
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
// a tcpStream: a model of the sending side of a TCP connection, segment
// by segment, on the pair's one-way delay.
//
//   - The bytes written are cut into segments of at most tcpMSS bytes,
//     each sent as soon as the congestion window has room for it (Nagle
//     off, as Go sets its TCP sockets: a lone write goes out at once), and
//     arrive one delay later; the reader gets each write once every byte
//     up to its end has arrived (in order, as TCP delivers).
//   - The window (RFC 5681, counted in segments) starts at 10 (RFC 6928),
//     grows by one per acknowledged segment below the slow-start
//     threshold and by one per window above it, only while the sender
//     uses it (Linux's tcp_is_cwnd_limited), and is halved at a loss, once
//     per window of data (NewReno, RFC 6582); it never falls below 2. At
//     these windows CUBIC, Linux's default, runs in its Reno-friendly
//     region and reaches the same mean rate (about 1.22 / sqrt(loss)
//     segments per round trip: TestTCPModelRate).
//   - Each transmission is lost with the link's probability. A lost
//     segment is found (RACK-TLP, RFC 8985) when a segment sent after it
//     is acknowledged, and no earlier than 1.25 round trips after it was
//     sent (RACK's reordering window is a quarter of the round trip); if
//     nothing sent after it is acknowledged first, by the tail loss probe
//     2 round trips after it was sent. It is then resent at once, and a
//     resent segment is lost with the same probability.
//
// The model leaves out lost acknowledgements, delayed acknowledgements,
// retransmission timeouts (200 ms and more), the window's reset after an
// idle period, the receive window and the retransmitted bytes (the
// figures count RPC frames, as without loss): all of them would make TCP
// slower or costlier, so it still flatters gossipsub.
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

	mu       sync.Mutex
	writes   []tcpWrite // not yet handed to the reader, in order
	written  int64      // bytes written so far: the send buffer's end
	sndNxt   int64      // the first byte never sent
	flight   []*tcpSeg  // sent, neither acknowledged nor found lost
	resend   []*tcpSeg  // found lost: sent again at once
	arrivals []tcpSeg   // on their way to the reader
	got      map[int64]int64
	rcvNxt   int64 // every byte below it has arrived
	cwnd     float64
	ssthresh float64
	recover  int64 // a loss among the transmissions up to this one does not halve the window again
	nextSeq  int64
}

// tcpSeg is one transmission of the bytes [start, end).
type tcpSeg struct {
	start, end int64
	seq        int64     // transmission order
	first      int64     // the seq of the bytes' first transmission
	sent       time.Time // when it was sent
	at         time.Time // lost: when the sender finds out; else when it arrives (arrivals) or is acknowledged (flight)
	lost       bool
}

type tcpWrite struct {
	b       []byte
	end     int64 // the stream offset after it
	closing bool  // close the stream once everything before has arrived
}

const (
	tcpInitCwnd = 10 // segments (RFC 6928)
	tcpMinCwnd  = 2
)

func newTCPStream(s network.Stream, n *tcpNet, delay time.Duration, rng *rand.Rand) *tcpStream {
	ts := &tcpStream{Stream: s, net: n, delay: delay, rng: rng, kick: make(chan struct{}, 1), done: make(chan struct{}),
		got: map[int64]int64{}, cwnd: tcpInitCwnd, ssthresh: math.Inf(1), recover: -1}
	go ts.deliver()
	return ts
}

func (s *tcpStream) Write(p []byte) (int, error) {
	select {
	case <-s.done:
		return 0, network.ErrReset
	default:
	}
	s.mu.Lock()
	s.written += int64(len(p))
	s.writes = append(s.writes, tcpWrite{b: append([]byte(nil), p...), end: s.written})
	s.mu.Unlock()
	s.wake()
	return len(p), nil
}

func (s *tcpStream) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// transmit sends the bytes [start, end) now, under mu; first is the seq
// of their first transmission (-1: this one).
func (s *tcpStream) transmit(start, end, first int64, now time.Time) {
	rtt := 2 * s.delay
	seg := &tcpSeg{start: start, end: end, seq: s.nextSeq, first: first, sent: now}
	if first < 0 {
		seg.first = seg.seq
	}
	s.nextSeq++
	if s.net.lost(s.rng) {
		seg.lost, seg.at = true, now.Add(2*rtt) // the tail loss probe, unless found sooner
	} else {
		seg.at = now.Add(rtt)
		s.arrivals = append(s.arrivals, tcpSeg{start: start, end: end, at: now.Add(s.delay)})
		// Its acknowledgement lets RACK find the losses sent before it.
		for _, l := range s.flight {
			if l.lost {
				found := maxT(seg.at, l.sent.Add(rtt+rtt/4))
				if found.Before(l.at) {
					l.at = found
				}
			}
		}
	}
	s.flight = append(s.flight, seg)
}

func maxT(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// step runs the sender and the network up to now, under mu: it returns
// the writes that have arrived (in order) and when the next event is due
// (zero: none).
func (s *tcpStream) step(now time.Time) (ready []tcpWrite, next time.Time) {
	// Acknowledgements and losses found.
	limited := float64(len(s.flight)) >= s.cwnd || s.cwnd < s.ssthresh && 2*float64(len(s.flight)) >= s.cwnd
	keep := s.flight[:0]
	for _, seg := range s.flight {
		switch {
		case seg.at.After(now):
			keep = append(keep, seg)
		case seg.lost:
			s.resend = append(s.resend, seg)
			// Once per window: a loss among the data sent before the
			// last reduction (a resent segment lost again included)
			// does not reduce the window again.
			if seg.first > s.recover {
				s.ssthresh = max(s.cwnd/2, tcpMinCwnd)
				s.cwnd = s.ssthresh
				s.recover = s.nextSeq - 1
			}
		case seg.seq > s.recover && limited:
			if s.cwnd < s.ssthresh {
				s.cwnd++
			} else {
				s.cwnd += 1 / s.cwnd
			}
		}
	}
	clear(s.flight[len(keep):])
	s.flight = keep
	// Sending: what was found lost at once, then new bytes while the
	// window has room.
	for _, seg := range s.resend {
		s.transmit(seg.start, seg.end, seg.first, now)
	}
	s.resend = s.resend[:0]
	for s.sndNxt < s.written && float64(len(s.flight)) < s.cwnd {
		end := min(s.sndNxt+tcpMSS, s.written)
		s.transmit(s.sndNxt, end, -1, now)
		s.sndNxt = end
	}
	// Arrivals, in order.
	arr := s.arrivals[:0]
	for _, a := range s.arrivals {
		if a.at.After(now) {
			arr = append(arr, a)
			continue
		}
		s.got[a.start] = max(s.got[a.start], a.end)
	}
	s.arrivals = arr
	for {
		end, ok := s.got[s.rcvNxt]
		if !ok {
			break
		}
		delete(s.got, s.rcvNxt)
		s.rcvNxt = max(s.rcvNxt, end)
	}
	n := 0
	for n < len(s.writes) && s.writes[n].end <= s.rcvNxt {
		n++
	}
	ready = append(ready, s.writes[:n]...)
	s.writes = s.writes[n:]
	for _, seg := range s.flight {
		if next.IsZero() || seg.at.Before(next) {
			next = seg.at
		}
	}
	for _, a := range s.arrivals {
		if next.IsZero() || a.at.Before(next) {
			next = a.at
		}
	}
	return ready, next
}

// deliver runs the model: it hands the writes to the mocknet stream in
// order as their last bytes arrive.
func (s *tcpStream) deliver() {
	var timer *time.Timer
	for {
		s.mu.Lock()
		ready, next := s.step(time.Now())
		s.mu.Unlock()
		for _, w := range ready {
			if w.closing {
				s.Stream.Close()
				return
			}
			if _, err := s.Stream.Write(w.b); err != nil {
				s.stop.Do(func() { close(s.done) })
				return
			}
		}
		if len(ready) > 0 {
			continue
		}
		if next.IsZero() {
			select {
			case <-s.kick:
				continue
			case <-s.done:
				return
			}
		}
		d := time.Until(next)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-timer.C:
		case <-s.kick:
			timer.Stop() // no stale tick after Stop since Go 1.23
		case <-s.done:
			timer.Stop()
			return
		}
	}
}

// Close closes the stream once what was written before has arrived.
func (s *tcpStream) Close() error {
	s.mu.Lock()
	s.writes = append(s.writes, tcpWrite{closing: true, end: s.written})
	s.mu.Unlock()
	s.wake()
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
