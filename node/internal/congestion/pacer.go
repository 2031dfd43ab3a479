package congestion

import "time"

// Pacer limits bursts of data packets (RFC 7016 §3.5.2.3). A sender may
// send at most MaxDataBytesBurst of data between acknowledgements; when
// the budget runs out it waits, for one packet's share of the round trip
// (SRTT * SenderMSS / CWND), before it may send one more packet. Any
// acknowledging packet, and any retransmission timeout, restores the full
// budget. Paths with an SRTT below BurstRTTThreshold are not limited,
// and neither are sessions without an RTT sample yet (their window is
// small anyway).
//
// The Pacer owns no timer: when Allow refuses, Deadline says when the
// session should wake up and ask again. The zero value is not ready; use
// NewPacer. It is not safe for concurrent use.
type Pacer struct {
	budget  int // bytes that may still go out in this burst; may be negative
	armed   bool
	release time.Time
}

// NewPacer returns a Pacer with the full burst budget.
func NewPacer() *Pacer { return &Pacer{budget: MaxDataBytesBurst} }

// Allow reports whether a data packet may be sent at now. srtt and
// hasSample come from the session's RTTEstimator and cwnd from its
// Controller. When it refuses, it arms the release deadline (see Deadline)
// if not armed yet. When an armed deadline has passed, it releases one
// packet's budget, plus the share of the window the session overslept.
func (p *Pacer) Allow(now time.Time, srtt time.Duration, hasSample bool, cwnd int) bool {
	if !hasSample || srtt < BurstRTTThreshold {
		return true
	}
	if p.armed && !now.Before(p.release) {
		p.armed = false
		p.budget = SenderMSS
		if late := now.Sub(p.release); late > 0 {
			// Clamp as float: converting an out-of-range float to an
			// integer is implementation-defined in Go.
			bonus := min(float64(late)/float64(srtt)*float64(max(cwnd, 0)), MaxCWND)
			p.budget += int(bonus)
		}
	}
	if p.budget > 0 {
		return true
	}
	if !p.armed {
		excess := int64(-p.budget)
		cwnd = max(cwnd, SenderMSS)
		wait := min(float64(srtt)*float64(SenderMSS+excess)/float64(cwnd), float64(MaxERTO))
		p.release = now.Add(time.Duration(wait))
		p.armed = true
	}
	return false
}

// Deadline returns when a refused sender should call Allow again; ok is
// false when nothing is waiting.
func (p *Pacer) Deadline() (t time.Time, ok bool) { return p.release, p.armed }

// OnSent charges bytes of data sent in one packet to the burst budget.
func (p *Pacer) OnSent(bytes int) {
	p.budget = max(p.budget-clampBytes(bytes), -MaxCWND)
}

// OnAck restores the full burst budget when a packet with
// acknowledgements arrives, and cancels any pending release.
func (p *Pacer) OnAck() {
	p.budget = max(p.budget, MaxDataBytesBurst)
	p.armed = false
}

// OnTimeout restores the full burst budget after a retransmission timeout,
// so retransmission is not throttled by a burst that was lost.
func (p *Pacer) OnTimeout() {
	p.budget = MaxDataBytesBurst
	p.armed = false
}

// Budget returns the bytes that may still be sent in the current burst
// (negative when the last packet overshot it).
func (p *Pacer) Budget() int { return p.budget }
