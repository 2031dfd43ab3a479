package congestion

import "time"

// MaxRTTSample is the largest round-trip time an estimator accepts. It is
// the largest RTT a 16-bit timestamp echo can express (32767 ticks of 4 ms);
// anything longer is a measurement error, and one absurd sample would keep
// the timeout absurd for many round trips.
const MaxRTTSample = 32767 * TimestampPeriod

// RTTEstimator keeps a session's round-trip time statistics and its
// retransmission timeouts (RFC 7016 §3.5.2.2). It uses the RFC 6298
// smoothing (gains 1/8 and 1/4), adds the peer's delayed-ack period to the
// measured timeout, and applies √2 exponential backoff to the effective
// timeout. It also tracks a windowed minimum RTT, the "base RTT" that
// delay-based congestion detection compares against.
//
// The zero value is not ready; use NewRTTEstimator. It is not safe for
// concurrent use.
type RTTEstimator struct {
	srtt, rttvar time.Duration
	latest       time.Duration
	latestAt     time.Time
	hasSample    bool

	mrto, erto time.Duration

	// Windowed minimum: a ring of buckets, newest at head, each holding
	// the minimum of the samples taken while it was the newest.
	buckets    [minRTTBuckets + 2]minRTTBucketState
	head, n    int
	minRTT     time.Duration
	hasMinRTT  bool
	minRTTDrop time.Time // when minRTT last decreased
}

type minRTTBucketState struct {
	min    time.Duration
	origin time.Time
}

// NewRTTEstimator returns an estimator with no samples: MRTO is
// InitialMRTO and ERTO is InitialERTO.
func NewRTTEstimator() *RTTEstimator {
	return &RTTEstimator{mrto: InitialMRTO, erto: InitialERTO}
}

// HasSample reports whether any RTT sample has been taken. Before the
// first one SRTT and RTTVar are zero and callers should use SafeRTT for
// rate estimates.
func (r *RTTEstimator) HasSample() bool { return r.hasSample }

// SRTT returns the smoothed round-trip time, or 0 before the first sample.
func (r *RTTEstimator) SRTT() time.Duration { return r.srtt }

// RTTVar returns the round-trip time variation, or 0 before the first
// sample.
func (r *RTTEstimator) RTTVar() time.Duration { return r.rttvar }

// LatestRTT returns the most recent sample and when it was taken; ok is
// false before the first sample.
func (r *RTTEstimator) LatestRTT() (rtt time.Duration, at time.Time, ok bool) {
	return r.latest, r.latestAt, r.hasSample
}

// SafeSRTT returns SRTT, or SafeRTT before the first sample, so that rate
// estimates never divide by zero or assume an instant path.
func (r *RTTEstimator) SafeSRTT() time.Duration {
	if !r.hasSample {
		return SafeRTT
	}
	return r.srtt
}

// MRTO returns the measured retransmission timeout: SRTT + 4*RTTVAR plus
// the peer's delayed-ack period, or InitialMRTO before any sample.
func (r *RTTEstimator) MRTO() time.Duration { return r.mrto }

// ERTO returns the effective retransmission timeout, the one to arm the
// session's timeout alarm with. It is max(MRTO, MinimumERTO) after a
// sample, InitialERTO before one, and grows by √2 (up to MaxERTO, but never
// below MRTO) on each Backoff.
func (r *RTTEstimator) ERTO() time.Duration { return r.erto }

// MinRTT returns the minimum RTT over roughly the last three minutes of
// samples (six 30 s buckets); ok is false before the first sample.
func (r *RTTEstimator) MinRTT() (time.Duration, bool) { return r.minRTT, r.hasMinRTT }

// MinRTTLowered returns when MinRTT last decreased (the zero Time if it
// never has). A fresh lower minimum means the path was recently seen with
// an empty queue, so a deliberate drain probe is not needed yet.
func (r *RTTEstimator) MinRTTLowered() time.Time { return r.minRTTDrop }

// OnSample feeds one round-trip time measurement taken at now. It updates
// SRTT, RTTVAR, MRTO and the minimum RTT, and resets ERTO (ending any
// backoff), because an echo proves the path is delivering again. Negative
// samples and samples above MaxRTTSample are ignored; the result reports
// whether the sample was used.
func (r *RTTEstimator) OnSample(now time.Time, rtt time.Duration) bool {
	if rtt < 0 || rtt > MaxRTTSample {
		return false
	}
	if r.hasSample {
		delta := r.srtt - rtt
		if delta < 0 {
			delta = -delta
		}
		r.rttvar = (3*r.rttvar + delta) / 4
		r.srtt = (7*r.srtt + rtt) / 8
	} else {
		r.srtt = rtt
		r.rttvar = rtt / 2
		r.hasSample = true
	}
	r.mrto = r.srtt + 4*r.rttvar + DelayedAckPeriod
	r.erto = max(r.mrto, MinimumERTO)
	r.latest = rtt
	r.latestAt = now
	r.updateMinRTT(now, rtt)
	return true
}

// Backoff grows ERTO after a retransmission timeout with data outstanding:
// ERTO = max(min(ERTO*√2, MaxERTO), MRTO).
func (r *RTTEstimator) Backoff() {
	e := time.Duration(float64(r.erto) * ertoBackoffFactor)
	r.erto = max(min(e, MaxERTO), r.mrto)
}

// ResetBackoff undoes any Backoff once the session makes progress without
// a new RTT sample (for example an acknowledgement whose packet carried no
// timestamp echo): ERTO returns to max(MRTO, MinimumERTO), or InitialERTO
// before the first sample.
func (r *RTTEstimator) ResetBackoff() {
	if !r.hasSample {
		r.erto = InitialERTO
		return
	}
	r.erto = max(r.mrto, MinimumERTO)
}

// ResetMinRTT forgets the minimum-RTT history, for when the path may have
// changed (a timeout, an address change, a collapsed window). The reported
// MinRTT is kept until the next sample, which starts a fresh history.
func (r *RTTEstimator) ResetMinRTT() {
	r.n = 0
}

func (r *RTTEstimator) updateMinRTT(now time.Time, rtt time.Duration) {
	prev, hadPrev := r.minRTT, r.hasMinRTT
	if r.n == 0 || now.Sub(r.buckets[r.head].origin) > minRTTBucket {
		// Start a new bucket and drop those that fell out of the window.
		r.head = (r.head + 1) % len(r.buckets)
		r.buckets[r.head] = minRTTBucketState{min: rtt, origin: now}
		if r.n < len(r.buckets) {
			r.n++
		}
		for r.n > 1 {
			oldest := (r.head - r.n + 1 + len(r.buckets)) % len(r.buckets)
			if now.Sub(r.buckets[oldest].origin) <= minRTTBucket*minRTTBuckets {
				break
			}
			r.n--
		}
		r.minRTT = rtt
		for i := 0; i < r.n; i++ {
			b := r.buckets[(r.head-i+len(r.buckets))%len(r.buckets)]
			r.minRTT = min(r.minRTT, b.min)
		}
	} else {
		b := &r.buckets[r.head]
		b.min = min(b.min, rtt)
	}
	r.minRTT = min(r.minRTT, rtt)
	r.hasMinRTT = true
	if !hadPrev || r.minRTT < prev {
		r.minRTTDrop = now
	}
}
