package congestion

import "time"

// AckEvent summarises what one received packet's acknowledgements did to
// the session's outstanding data. RFC 7016 sessions react to each
// acknowledging packet as a whole (Appendix A.2): the loss response, the
// recovery accounting and the growth rules all need the bytes acknowledged
// and the bytes declared lost by the same packet, and the amount that was
// outstanding before it, so the session reports them together rather than
// fragment by fragment.
//
// Byte counts are the transmitted sizes of User Data chunks (chunk header
// included) that the session counts as outstanding.
type AckEvent struct {
	// AckedBytes is the number of outstanding bytes this packet
	// acknowledged for the first time.
	AckedBytes int
	// LostBytes is the number of outstanding bytes this packet declared
	// lost: fragments negatively acknowledged long enough (NaksForLoss).
	LostBytes int
	// PriorInFlight is the number of bytes outstanding just before this
	// packet was processed.
	PriorInFlight int
	// InFlight is the number of bytes still outstanding afterwards (acked
	// and lost fragments removed).
	InFlight int
	// Loss is true when a fragment that was not abandoned was declared
	// lost, or the packet reported congestion (ECN CE); it triggers the
	// multiplicative decrease.
	Loss bool
	// Nack is true when any fragment not yet abandoned was negatively
	// acknowledged (a gap below the highest acknowledged sequence); the
	// window does not grow while the receiver reports gaps.
	Nack bool
}

// Controller decides how much data a session may have outstanding
// (RFC 7016 §3.5.2). It is a pure state machine: every method takes the
// current time, none performs I/O or starts timers. Implementations must
// keep CWND within [TimedOutCWND, a sane maximum] whatever they are fed.
type Controller interface {
	// OnSent records that a packet carrying bytes of user data left at
	// now; timeCritical is true if the packet carried the time-critical
	// flag (RFC 7016 §3.5.2.1).
	OnSent(now time.Time, bytes int, timeCritical bool)
	// OnAck applies one received packet's acknowledgements.
	OnAck(now time.Time, ev AckEvent)
	// OnTimeout applies a retransmission timeout (the ERTO alarm fired).
	// outstanding is true if data (or a keepalive) was outstanding; false
	// means the alarm found the session idle, and the window restarts.
	OnTimeout(now time.Time, outstanding bool)
	// OnTimeCriticalNotified records that another sender competing for
	// our path has time-critical data: a packet from the peer carried the
	// time-critical reverse notification flag, or another session of this
	// endpoint sent time-critical data.
	OnTimeCriticalNotified(now time.Time)
	// CanSend reports whether a new data packet may be sent with inFlight
	// bytes outstanding. Like TCP, a packet may start while the window is
	// not full, even if it then overshoots by up to one packet.
	CanSend(inFlight int) bool
	// CWND returns the congestion window in bytes.
	CWND() int
	// SSThresh returns the slow-start threshold in bytes (math.MaxInt
	// until the first loss).
	SSThresh() int
}
