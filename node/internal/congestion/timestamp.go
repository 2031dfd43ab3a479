package congestion

import "time"

// TimestampClock turns time into the 16-bit packet header timestamp: the
// number of 4 ms ticks since Epoch, modulo 65536 (RFC 7016 §2.2.4). Any
// epoch works because only differences between a clock's own timestamps are
// ever interpreted; the endpoint's start time is the natural one.
type TimestampClock struct {
	Epoch time.Time
}

// Timestamp returns the header timestamp for now.
func (c TimestampClock) Timestamp(now time.Time) uint16 {
	d := now.Sub(c.Epoch)
	ticks := d / TimestampPeriod
	if d < 0 && d%TimestampPeriod != 0 {
		ticks-- // floor, so ticks stay evenly spaced across the epoch
	}
	return uint16(ticks)
}

// TimestampEcho is the per-session bookkeeping of RFC 7016 §3.5.2.2 for
// header timestamps: it remembers the peer's latest timestamp so it can be
// echoed (advanced by the time it was held, so the peer measures the
// network RTT rather than our scheduling delay), and it turns echoes of our
// own timestamps into RTT samples.
//
// The zero value is ready once Clock is set. It is not safe for concurrent
// use.
type TimestampEcho struct {
	// Clock is our own timestamp clock.
	Clock TimestampClock

	tsRx        uint16 // peer's latest timestamp
	tsRxTime    time.Time
	hasTSRx     bool
	tsTx        uint16 // last timestamp we sent
	hasTSTx     bool
	tsEchoTx    uint16 // last echo we sent
	hasTSEchoTx bool
	tsEchoRx    uint16 // last echo we received
	hasTSEchoRx bool
}

// TimestampToSend returns the timestamp to put in a packet sent at now; ok
// is false when it equals the last one sent, because a repeated timestamp
// adds nothing and the field can be left out to save two bytes.
func (t *TimestampEcho) TimestampToSend(now time.Time) (ts uint16, ok bool) {
	ts = t.Clock.Timestamp(now)
	if t.hasTSTx && ts == t.tsTx {
		return 0, false
	}
	return ts, true
}

// EchoToSend returns the timestamp echo to put in a packet sent at now; ok
// is false when there is nothing to echo: no timestamp received, the last
// one is older than MaxTimestampEchoElapsed (it could alias after the tick
// counter wraps, so it is forgotten), or the echo equals the last one sent
// (a repeat would give the peer a stale sample).
func (t *TimestampEcho) EchoToSend(now time.Time) (echo uint16, ok bool) {
	if !t.hasTSRx {
		return 0, false
	}
	elapsed := now.Sub(t.tsRxTime)
	if elapsed > MaxTimestampEchoElapsed {
		t.hasTSRx = false
		t.hasTSEchoTx = false
		return 0, false
	}
	if elapsed < 0 {
		elapsed = 0
	}
	echo = t.tsRx + uint16(elapsed/TimestampPeriod)
	if t.hasTSEchoTx && echo == t.tsEchoTx {
		return 0, false
	}
	return echo, true
}

// OnSent records what a packet that was actually sent carried, so the same
// values are not repeated. Pass hasTS/hasEcho false for fields left out.
func (t *TimestampEcho) OnSent(ts uint16, hasTS bool, echo uint16, hasEcho bool) {
	if hasTS {
		t.tsTx, t.hasTSTx = ts, true
	}
	if hasEcho {
		t.tsEchoTx, t.hasTSEchoTx = echo, true
	}
}

// OnTimestamp records the timestamp of a packet received at now, from a
// session peer (any packet the session accepts, including during keying).
// A repeated value keeps its original arrival time so the echo keeps
// advancing.
func (t *TimestampEcho) OnTimestamp(now time.Time, ts uint16) {
	if t.hasTSRx && ts == t.tsRx {
		return
	}
	t.tsRx, t.tsRxTime, t.hasTSRx = ts, now, true
}

// OnEcho turns the timestamp echo of a packet received at now into an RTT
// sample. ok is false for a repeat of the previous echo (it was measured
// already) and for an echo that, modulo 65536, lies more than 32767 ticks
// in the past or in our future (corrupt, or older than the wraparound
// allows); such echoes give no sample.
func (t *TimestampEcho) OnEcho(now time.Time, echo uint16) (rtt time.Duration, ok bool) {
	if t.hasTSEchoRx && echo == t.tsEchoRx {
		return 0, false
	}
	t.tsEchoRx, t.hasTSEchoRx = echo, true
	ticks := t.Clock.Timestamp(now) - echo
	if ticks >= 32768 {
		return 0, false
	}
	return time.Duration(ticks) * TimestampPeriod, true
}
