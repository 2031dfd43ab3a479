package congestion

import (
	"math"
	"time"
)

// MaxCWND caps the congestion window (256 MiB, enough for 2 Gbit/s at a
// one-second RTT) so that no sequence of reports can push it to a value
// that overflows later arithmetic.
const MaxCWND = 256 << 20

// Reno is the default RTMFP congestion controller: the TCP-compatible
// window algorithm of RFC 7016 Appendix A.2 with the refinements of the
// reference implementation. In outline:
//
//   - Slow start: below SSThresh the window grows by the bytes each
//     acknowledging packet acknowledges, doubling per round trip. Unlike
//     RFC 7016 Appendix A.2 (and RFC 5681), a packet that acknowledges
//     several packets counts whole, not as one SenderMSS: a receiver
//     that reads a burst at once acknowledges it once (this package's
//     endpoint acknowledges per batch read), and with the per-packet cap
//     slow start grew by one packet per round trip, not doubling (Linux
//     counts such stretch acknowledgements whole too). The Pacer still
//     spreads what the window allows beyond a burst.
//   - Congestion avoidance: at or above SSThresh it grows by 96 bytes per
//     min(max(CWND/16, 64), 9600) bytes acknowledged, about one packet per
//     round trip.
//   - It grows only when the sender used the window (more than 63/64 of it
//     was outstanding) and the receiver reported no gap; an
//     application-limited window that runs more than 6 packets ahead of
//     use decays by one byte per acknowledging packet.
//   - Loss (negative acknowledgements, NaksForLoss, or ECN CE) cuts the
//     window to half of min(CWND, in flight), never below InitialCWND,
//     then starts a recovery period lasting until the data outstanding at
//     the cut has drained; further losses inside it cost at most what
//     exceeds the decrease already taken, so the window halves at most
//     once per round trip.
//   - A retransmission timeout with data outstanding collapses the window
//     to TimedOutCWND; one that finds the session idle restarts it at
//     InitialCWND (RFC 5681 §4.1's restart after idle). Either way
//     SSThresh becomes at least 3/4 of the old window.
//   - Time-critical data (RFC 7016 §3.5.2.1), within TimeCriticalTimeout
//     of the last notice: a session that sends time-critical data cuts
//     only 1/8 on loss, and grows at a quarter of the slow-start rate or
//     half the avoidance rate; a session that does not, while another
//     sender has time-critical data (the peer's reverse notification, or
//     another session of this endpoint), skips slow start and grows at a
//     quarter of the avoidance rate (24 bytes per step, steps of at most
//     4800 bytes), yielding the path to the real-time traffic. Without
//     any time-critical traffic, a window with more than 67200 bytes in
//     flight also cuts only 1/8 on loss.
//   - Optional delay-based detection (SetCongestionDelay): when SRTT
//     exceeds the minimum RTT by more than the configured delay, the
//     controller reacts as to a loss, once per RTT sample; and every 60
//     SRTTs of window-limited avoidance it briefly cuts the window to let
//     the queue drain, so the minimum RTT stays current.
//
// Reno is not safe for concurrent use.
type Reno struct {
	rtt *RTTEstimator

	cwnd     int
	ssthresh int

	ackedAccumulator int // avoidance growth credit, bytes
	recoveryLeft     int // bytes still to drain before recovery ends
	recoveryAllow    int // loss still covered by this recovery's decrease

	tcSent, tcNotified time.Time // zero: never

	congestionDelay time.Duration // <= 0: delay-based detection off
	lastDelayAction time.Time
	lastProbe       time.Time
}

var _ Controller = (*Reno)(nil)

// NewReno returns the default controller. It reads the session's RTT
// statistics from rtt, and resets rtt's minimum-RTT history when the path
// may have changed (a timeout or a collapsed window). rtt must not be nil.
func NewReno(rtt *RTTEstimator) *Reno {
	return &Reno{rtt: rtt, cwnd: InitialCWND, ssthresh: math.MaxInt}
}

// SetCongestionDelay enables delay-based congestion detection: the window
// is cut as for a loss whenever SRTT exceeds the minimum RTT by more than
// delay. A delay <= 0 turns it off (the default). It only acts on paths
// whose SRTT is at least 32 ms, where the 4 ms timestamp tick resolves
// queueing delay well enough.
func (c *Reno) SetCongestionDelay(delay time.Duration) { c.congestionDelay = delay }

// CWND implements Controller.
func (c *Reno) CWND() int { return c.cwnd }

// SSThresh implements Controller.
func (c *Reno) SSThresh() int { return c.ssthresh }

// InRecovery reports whether the controller is in a loss recovery period,
// during which the window does not grow.
func (c *Reno) InRecovery() bool { return c.recoveryLeft > 0 }

// CanSend implements Controller.
func (c *Reno) CanSend(inFlight int) bool { return c.cwnd > inFlight }

// OnSent implements Controller. Only the time-critical flag matters to
// this controller; burst limits are the Pacer's job.
func (c *Reno) OnSent(now time.Time, bytes int, timeCritical bool) {
	if timeCritical {
		c.tcSent = now
	}
}

// OnTimeCriticalNotified implements Controller.
func (c *Reno) OnTimeCriticalNotified(now time.Time) { c.tcNotified = now }

// recent reports whether t (zero: never) lies within TimeCriticalTimeout
// before now.
func recent(t, now time.Time) bool {
	return !t.IsZero() && !t.Add(TimeCriticalTimeout).Before(now)
}

// OnTimeout implements Controller.
func (c *Reno) OnTimeout(now time.Time, outstanding bool) {
	c.ssthresh = max(c.ssthresh, c.cwnd*3/4) // RFC 7016 Appendix A.2
	c.ackedAccumulator = 0
	c.recoveryLeft = 0
	c.recoveryAllow = 0
	c.rtt.ResetMinRTT()
	if outstanding {
		c.cwnd = TimedOutCWND
	} else {
		c.cwnd = InitialCWND
	}
}

// OnAck implements Controller.
func (c *Reno) OnAck(now time.Time, ev AckEvent) {
	acked := clampBytes(ev.AckedBytes)
	lost := clampBytes(ev.LostBytes)
	prior := clampBytes(ev.PriorInFlight)
	inFlight := clampBytes(ev.InFlight)

	tcSent := recent(c.tcSent, now)
	fastGrow := !tcSent && !recent(c.tcNotified, now)
	lossCost := 0
	if lost > 0 {
		lossCost = lost + (lost+1)/2 // ceil(1.5 * lost)
	}

	if drained := acked + lost; c.recoveryLeft > drained {
		c.recoveryLeft -= drained
		c.lossDuringRecovery(lossCost)
		return
	}
	c.recoveryLeft = 0

	loss := ev.Loss
	if c.delayBased(now, &loss, ev.Nack, prior) {
		return
	}

	switch {
	case loss:
		preCut := min(c.cwnd, prior)
		allow := preCut / 2
		if tcSent || (prior > maxRecoveryBonusInFlight && fastGrow) {
			allow = preCut / 8
		}
		allow = min(preCut, max(allow, lossCost))
		c.recoveryAllow = allow
		c.ssthresh = max(preCut-allow, InitialCWND)
		c.cwnd = c.ssthresh
		c.ackedAccumulator = 0
		c.recoveryLeft = inFlight
	case !ev.Nack && prior > c.cwnd*63/64:
		inc := c.increase(acked, fastGrow, tcSent)
		if c.cwnd >= c.ssthresh {
			inc = min(inc, SenderMSS)
		}
		c.cwnd = min(max(c.cwnd+inc, InitialCWND), MaxCWND)
	case !ev.Nack && c.cwnd > prior+cwndDecayMargin:
		c.cwnd -= cwndDecaySize
	}
	if c.cwnd <= InitialCWND {
		c.rtt.ResetMinRTT()
	}
}

// lossDuringRecovery charges a loss reported while recovering. Losses the
// recovery's decrease already covers cost nothing more; beyond that (the
// path's capacity dropped suddenly) the window shrinks by the excess and
// recovery is extended so the next decrease waits for it to drain.
func (c *Reno) lossDuringRecovery(cost int) {
	if cost == 0 {
		return
	}
	if cost <= c.recoveryAllow {
		c.recoveryAllow -= cost
		return
	}
	cost -= c.recoveryAllow
	c.recoveryAllow = 0
	cost = min(c.ssthresh, cost)
	c.ssthresh = max(c.ssthresh-cost, InitialCWND)
	c.cwnd = c.ssthresh
	c.recoveryLeft = min(c.recoveryLeft+cost, math.MaxInt/2)
}

// increase returns the window growth earned by acked bytes, before the
// per-packet cap of one SenderMSS.
func (c *Reno) increase(acked int, fastGrow, tcSent bool) int {
	slowStart := c.cwnd < c.ssthresh
	switch {
	case fastGrow && slowStart:
		c.ackedAccumulator = 0
		return acked
	case !fastGrow && tcSent && slowStart:
		c.ackedAccumulator = 0
		return (acked + 3) / 4
	}
	step, perStep := 9600, 96
	if !fastGrow {
		step, perStep = 4800, 24
		if tcSent {
			perStep = 48
		}
	}
	step = min(max(c.cwnd/16, 64), step)
	c.ackedAccumulator += acked
	n := c.ackedAccumulator / step
	c.ackedAccumulator -= n * step
	return min(n, SenderMSS/perStep+1) * perStep
}

// delayBased runs the optional delay-based detection. It may turn *loss
// on (queueing delay above the configured limit), or make a min-RTT drain
// probe, in which case it returns true and the acknowledgement needs no
// further processing.
func (c *Reno) delayBased(now time.Time, loss *bool, nack bool, prior int) bool {
	if c.congestionDelay <= 0 || !c.rtt.HasSample() {
		return false
	}
	srtt := c.rtt.SRTT()
	_, sampledAt, _ := c.rtt.LatestRTT()
	if srtt < delayCCRTTThreshold || !c.lastDelayAction.Before(sampledAt) {
		return false
	}
	base, _ := c.rtt.MinRTT()
	if srtt > base+c.congestionDelay {
		c.lastDelayAction = now
		*loss = true
		return false
	}
	lastProbe := c.lastProbe
	if lowered := c.rtt.MinRTTLowered(); lowered.After(lastProbe) {
		lastProbe = lowered
	}
	if *loss || nack ||
		c.congestionDelay >= maxSegmentLifetime ||
		base <= delayCCRTTThreshold ||
		c.cwnd <= 4*SenderMSS ||
		c.cwnd <= c.ssthresh ||
		prior <= c.cwnd/2 ||
		now.Sub(lastProbe) < srtt*minRTTProbeRTTs {
		return false
	}
	// Cut to about 21/32 of what is in flight: the queue we may have built
	// drains, and slow start regains the window in about two round trips.
	c.lastDelayAction = now
	c.lastProbe = now
	c.ssthresh = c.cwnd
	c.cwnd = min(max(prior*21/32, InitialCWND), MaxCWND)
	return true
}

// clampBytes keeps caller-supplied byte counts in [0, MaxCWND*4] so that
// no report, however wrong, can overflow the arithmetic.
func clampBytes(n int) int {
	return min(max(n, 0), MaxCWND*4)
}
