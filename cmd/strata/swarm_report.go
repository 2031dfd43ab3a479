package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// swarmReport is the outcome of a swarm run: what the command prints at
// the end, as text or JSON.
type swarmReport struct {
	Network    string  `json:"network"` // "memnet" or "udp"
	Nodes      int     `json:"nodes"`
	LossPct    float64 `json:"loss_percent"`
	DelayMS    float64 `json:"delay_ms"`
	JitterMS   float64 `json:"jitter_ms"`
	RateBits   int     `json:"rate_bits_per_second"`
	DurationS  float64 `json:"duration_seconds"`
	BootstrapS float64 `json:"bootstrap_seconds"`
	ElapsedS   float64 `json:"elapsed_seconds"`

	PublishedBytes uint64 `json:"published_bytes"`
	// Delivery is the bytes output intact by all subscribers over the
	// bytes published times the number of subscribers.
	Delivery        float64 `json:"delivery_ratio"`
	LatencyP50MS    float64 `json:"latency_p50_ms"`
	LatencyP99MS    float64 `json:"latency_p99_ms"`
	ReceivedPerByte float64 `json:"received_per_useful_byte"`
	PublisherUpload float64 `json:"publisher_upload_x_stream"`
	LostBytes       uint64  `json:"lost_bytes"`
	MismatchedBytes uint64  `json:"mismatched_bytes"`

	Worst swarmWorst `json:"worst"`

	// Rendezvous counts what the swarm's rendezvous did (absent with
	// --no-rendezvous).
	Rendezvous *swarmRendezvous `json:"rendezvous,omitempty"`

	MinDelivery float64 `json:"min_delivery"`
	Pass        bool    `json:"pass"`
}

// swarmRendezvous is the rendezvous' part of the report.
type swarmRendezvous struct {
	Registrations uint64 `json:"registrations"`
	Introductions uint64 `json:"introductions"`
}

// swarmWorst names the worst subscriber by each measure.
type swarmWorst struct {
	Delivery        swarmWorstMember `json:"delivery_ratio"`
	LatencyP99MS    swarmWorstMember `json:"latency_p99_ms"`
	ReceivedPerByte swarmWorstMember `json:"received_per_useful_byte"`
}

type swarmWorstMember struct {
	Member int     `json:"member"`
	Value  float64 `json:"value"`
}

// report builds the final report from a snapshot taken after the run.
func (s *swarm) report(snap swarmSnapshot, minDelivery float64) swarmReport {
	s.mu.Lock()
	bootstrap := s.bootstrapT
	s.mu.Unlock()
	r := swarmReport{
		Network: "memnet", Nodes: len(s.members),
		LossPct:   s.opt.link.Loss * 100,
		DelayMS:   durMS(s.opt.link.Delay),
		JitterMS:  durMS(s.opt.link.Jitter),
		RateBits:  s.opt.rate * 8,
		DurationS: s.opt.duration.Seconds(), BootstrapS: bootstrap.Seconds(), ElapsedS: snap.Elapsed,
		PublishedBytes:  snap.Totals.Published,
		LatencyP50MS:    snap.Totals.P50MS,
		LatencyP99MS:    snap.Totals.P99MS,
		ReceivedPerByte: snap.Totals.Overhead,
		PublisherUpload: snap.Totals.Upload,
		MinDelivery:     minDelivery,
	}
	if s.opt.udp {
		r.Network, r.LossPct, r.DelayMS, r.JitterMS = "udp", 0, 0, 0
	}
	if s.rdv != nil {
		st := s.rdv.Stats()
		r.Rendezvous = &swarmRendezvous{Registrations: st.Registrations, Introductions: st.Introductions}
	}
	var out uint64
	r.Worst.Delivery = swarmWorstMember{Member: -1, Value: 1}
	r.Worst.LatencyP99MS.Member = -1
	r.Worst.ReceivedPerByte.Member = -1
	for _, n := range snap.Nodes[1:] {
		out += n.Out
		r.MismatchedBytes += n.Bad
		r.LostBytes += snap.Totals.Published - min(n.Out+n.Bad, snap.Totals.Published)
		d := 1.0
		if snap.Totals.Published > 0 {
			d = float64(n.Out) / float64(snap.Totals.Published)
		}
		if r.Worst.Delivery.Member < 0 || d < r.Worst.Delivery.Value {
			r.Worst.Delivery = swarmWorstMember{Member: n.Index, Value: d}
		}
		if r.Worst.LatencyP99MS.Member < 0 || n.P99MS > r.Worst.LatencyP99MS.Value {
			r.Worst.LatencyP99MS = swarmWorstMember{Member: n.Index, Value: n.P99MS}
		}
		if r.Worst.ReceivedPerByte.Member < 0 || n.Overhead > r.Worst.ReceivedPerByte.Value {
			r.Worst.ReceivedPerByte = swarmWorstMember{Member: n.Index, Value: n.Overhead}
		}
	}
	r.Delivery = 1
	if subs := uint64(len(snap.Nodes) - 1); subs > 0 && snap.Totals.Published > 0 {
		r.Delivery = float64(out) / float64(snap.Totals.Published*subs)
	}
	r.Pass = r.Delivery >= minDelivery && r.MismatchedBytes == 0
	return r
}

// writeText prints the report for a person.
func (r swarmReport) writeText(w io.Writer) {
	var b strings.Builder
	net := "real UDP on 127.0.0.1"
	if r.Network == "memnet" {
		net = fmt.Sprintf("the in-memory network (%g ms ± %g ms one way, %g %% loss)", r.DelayMS, r.JitterMS, r.LossPct)
	}
	fmt.Fprintf(&b, "swarm: %d members on %s, %s for %g s\n", r.Nodes, net, swarmFormatBits(r.RateBits), r.DurationS)
	row := func(k, format string, a ...any) { fmt.Fprintf(&b, "  %-22s %s\n", k, fmt.Sprintf(format, a...)) }
	row("bootstrap", "%.1f s", r.BootstrapS)
	row("published", "%d bytes", r.PublishedBytes)
	row("delivery", "%.3f %%  (worst member %d: %.3f %%)", r.Delivery*100, r.Worst.Delivery.Member, r.Worst.Delivery.Value*100)
	row("latency p50 / p99", "%.0f ms / %.0f ms  (worst member p99 %d: %.0f ms)", r.LatencyP50MS, r.LatencyP99MS, r.Worst.LatencyP99MS.Member, r.Worst.LatencyP99MS.Value)
	row("received / useful", "%.3f bytes per byte  (worst member %d: %.3f)", r.ReceivedPerByte, r.Worst.ReceivedPerByte.Member, r.Worst.ReceivedPerByte.Value)
	row("publisher upload", "%.2f × the stream rate", r.PublisherUpload)
	row("lost / mismatched", "%d / %d bytes", r.LostBytes, r.MismatchedBytes)
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	row("verdict", "%s (delivery must be at least %.3f %% with no mismatched byte)", verdict, r.MinDelivery*100)
	io.WriteString(w, b.String())
}

// writeJSON prints the report as one JSON object.
func (r swarmReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	return enc.Encode(r)
}

// swarmFormatBits formats a rate in bits per second.
func swarmFormatBits(bits int) string {
	switch {
	case bits >= 1_000_000 && bits%100_000 == 0:
		return fmt.Sprintf("%g Mbit/s", float64(bits)/1e6)
	case bits >= 1000 && bits%100 == 0:
		return fmt.Sprintf("%g kbit/s", float64(bits)/1e3)
	}
	return fmt.Sprintf("%d bit/s", bits)
}

// swarmProgressLine is the once-a-second status line on a terminal.
func swarmProgressLine(snap swarmSnapshot) string {
	t := snap.Totals
	return fmt.Sprintf("%5.1fs %-13s members %d/%d linked  delivered %7.3f%%  p50 %4.0f ms  p99 %4.0f ms  received/useful %.3f  upload %.2fx",
		snap.Elapsed, snap.Phase, t.Linked, t.Members, t.Delivery*100, t.P50MS, t.P99MS, t.Overhead, t.Upload)
}

// swarmProgress is the once-a-second status when stderr is not a terminal.
type swarmProgress struct {
	Elapsed float64 `json:"elapsed"`
	Phase   string  `json:"phase"`
	swarmTotals
}
