package main

import (
	"time"

	"github.com/strata-net/strata/group"
)

// swarmDueAfter is how long after publication a byte must have been
// output or given up on by every subscriber: the group's window plus a
// second. A member that has output less than what is due is behind.
const swarmDueAfter = group.DefaultWindowDuration + time.Second

// swarmHistoryLimit bounds the samples kept for the rates chart.
const swarmHistoryLimit = 600

// swarmNodeState is one member's state for the web view and the report.
type swarmNodeState struct {
	Index      int    `json:"i"`
	Peer       string `json:"peer"` // peer ID, first 8 bytes in hex
	Addr       string `json:"addr"` // group address (256 bits) in hex
	Publisher  bool   `json:"publisher,omitempty"`
	Neighbours int    `json:"neighbours"`
	// Delivery is the share of the bytes due by now (published
	// swarmDueAfter ago, or all once the run is over) that this member
	// output intact; 1 for the publisher.
	Delivery float64 `json:"delivery"`
	Out      uint64  `json:"out_bytes"`
	Lost     uint64  `json:"lost_bytes"`
	Bad      uint64  `json:"mismatched_bytes"`
	// P50MS and P99MS are percentiles of the latency of this member's
	// output records (publisher's stamp to output).
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	// Overhead is the bytes this member received (every purpose) per
	// useful byte it output.
	Overhead float64 `json:"overhead"`
	Sent     uint64  `json:"sent_bytes"`
	Received uint64  `json:"received_bytes"`
}

// swarmTotals are the swarm-wide figures at one moment.
type swarmTotals struct {
	Members   int    `json:"members"`
	Linked    int    `json:"linked"` // members with at least one neighbour link
	Published uint64 `json:"published_bytes"`
	// Delivery is the subscribers' bytes output intact over the bytes
	// due (see swarmNodeState.Delivery).
	Delivery float64 `json:"delivery"`
	P50MS    float64 `json:"p50_ms"` // pooled over every output record
	P99MS    float64 `json:"p99_ms"`
	Overhead float64 `json:"overhead"` // received per useful byte, all subscribers
	Upload   float64 `json:"upload"`   // publisher bytes sent per byte published
}

// swarmSample is one point of the rates chart; rates in bytes per second.
type swarmSample struct {
	T         float64 `json:"t"` // seconds since the swarm started
	Published uint64  `json:"-"`
	Out       uint64  `json:"-"`
	Received  uint64  `json:"-"`
	PubSent   uint64  `json:"-"`
	Stream    float64 `json:"stream"`   // published
	Output    float64 `json:"output"`   // output per subscriber
	Inbound   float64 `json:"inbound"`  // received per subscriber, every purpose
	Upload    float64 `json:"upload"`   // sent by the publisher
	Delivery  float64 `json:"delivery"` // swarmTotals.Delivery then
}

// swarmSnapshot is the whole swarm at one moment.
type swarmSnapshot struct {
	Phase   string           `json:"phase"`
	Elapsed float64          `json:"elapsed"` // seconds since the swarm started
	Nodes   []swarmNodeState `json:"nodes"`
	Edges   [][2]int         `json:"edges"` // overlay neighbour links, each once, lower index first
	Totals  swarmTotals      `json:"totals"`
}

// due is the number of stream bytes every subscriber should have output
// or given up on by now. Called with s.mu held.
func (s *swarm) dueLocked(now time.Time) uint64 {
	if s.phase == phaseDone {
		return s.published
	}
	if s.streamStart.IsZero() {
		return 0
	}
	// Bytes are published at a steady rate from streamStart on.
	at := now.Sub(s.streamStart) - swarmDueAfter
	if at <= 0 {
		return 0
	}
	return min(uint64(at.Seconds()*float64(s.opt.rate)), s.published)
}

// snapshot gathers every member's state; with edges, the neighbour links
// too.
func (s *swarm) snapshot(edges bool) swarmSnapshot {
	now := time.Now()
	s.mu.Lock()
	snap := swarmSnapshot{Phase: s.phase, Elapsed: now.Sub(s.start).Seconds()}
	due := s.dueLocked(now)
	published := s.published
	s.mu.Unlock()

	snap.Nodes = make([]swarmNodeState, len(s.members))
	snap.Totals = swarmTotals{Members: len(s.members), Published: published, Delivery: 1}
	var pool []time.Duration
	var out, bad, received uint64
	for i, m := range s.members {
		st := m.g.Stats()
		ns := swarmNodeState{
			Index: i, Peer: m.n.PeerID().String()[:16], Addr: m.addr.String(),
			Publisher: i == 0, Neighbours: st.Neighbours, Delivery: 1,
			Sent: st.Sent.Total(), Received: st.Received.Total(),
		}
		if st.Neighbours > 0 {
			snap.Totals.Linked++
		}
		if i > 0 {
			m.mu.Lock()
			ns.Out, ns.Lost, ns.Bad = m.out, m.lost, m.bad
			lats := append([]time.Duration(nil), m.lats...)
			m.mu.Unlock()
			pool = append(pool, lats...)
			// The same samples as the pooled figures (group.Stats has
			// its own, of blocks rather than records).
			ns.P50MS = durMS(swarmPercentile(lats, 0.5))
			ns.P99MS = durMS(swarmPercentile(lats, 0.99))
			if due > 0 {
				ns.Delivery = min(float64(ns.Out)/float64(due), 1)
			}
			if ns.Out > 0 {
				ns.Overhead = float64(ns.Received) / float64(ns.Out)
			}
			out += ns.Out
			bad += ns.Bad
			received += ns.Received
		}
		snap.Nodes[i] = ns
	}
	if subs := uint64(len(s.members) - 1); due > 0 && subs > 0 {
		snap.Totals.Delivery = min(float64(out)/float64(due*subs), 1)
	}
	if out > 0 {
		snap.Totals.Overhead = float64(received) / float64(out)
	}
	if published > 0 {
		snap.Totals.Upload = float64(snap.Nodes[0].Sent) / float64(published)
	}
	snap.Totals.P50MS = durMS(swarmPercentile(pool, 0.5))
	snap.Totals.P99MS = durMS(swarmPercentile(pool, 0.99))
	if edges {
		snap.Edges = s.edges()
	}
	return snap
}

// edges lists the overlay neighbour links, each once.
func (s *swarm) edges() [][2]int {
	seen := make(map[[2]int]bool)
	out := [][2]int{}
	for i, m := range s.members {
		for _, c := range m.g.Overlay().Neighbours() {
			j, ok := s.byPeer[c.PeerID]
			if !ok || j == i {
				continue
			}
			e := [2]int{min(i, j), max(i, j)}
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// sample appends a point to the rates chart from a snapshot.
func (s *swarm) sample(snap swarmSnapshot) swarmSample {
	p := swarmSample{T: snap.Elapsed, Published: snap.Totals.Published, PubSent: snap.Nodes[0].Sent, Delivery: snap.Totals.Delivery}
	for _, n := range snap.Nodes[1:] {
		p.Out += n.Out
		p.Received += n.Received
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := len(s.history); k > 0 {
		prev := s.history[k-1]
		if dt := p.T - prev.T; dt > 0 {
			subs := float64(max(len(s.members)-1, 1))
			p.Stream = float64(p.Published-prev.Published) / dt
			p.Output = float64(p.Out-prev.Out) / dt / subs
			p.Inbound = float64(p.Received-prev.Received) / dt / subs
			p.Upload = float64(p.PubSent-prev.PubSent) / dt
		}
	}
	if len(s.history) == swarmHistoryLimit {
		s.history = append(s.history[:0], s.history[1:]...)
	}
	s.history = append(s.history, p)
	return p
}

// historyCopy returns the rates chart's points.
func (s *swarm) historyCopy() []swarmSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]swarmSample(nil), s.history...)
}

func durMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
