// Package congestion holds an RTMFP session's round-trip time estimation,
// retransmission timeouts, congestion control and burst limiting, as pure
// state machines: nothing here reads a clock, starts a timer or does I/O.
// Every method that depends on time takes now, so the session state
// machine can drive it from a real clock or a virtual one.
//
// The pieces, and the parts of RFC 7016 they implement:
//
//   - TimestampClock and TimestampEcho: the 16-bit, 4 ms packet header
//     timestamp and timestamp echo (§2.2.4), and turning echoes into RTT
//     samples across the counter's wraparound (§3.5.2.2).
//   - RTTEstimator: SRTT and RTTVAR (the RFC 6298 smoothing that §3.5.2.2
//     asks for), the measured retransmission timeout
//     MRTO = SRTT + 4*RTTVAR + 200 ms (the peer's delayed-ack allowance),
//     the effective timeout
//     ERTO = max(MRTO, 250 ms) with √2 exponential backoff up to 10 s, and
//     a windowed minimum RTT.
//   - Controller and its default implementation Reno: the congestion
//     window, "at least as conservative as TCP" (§3.5.2, RFC 5681), with
//     the time-critical data rules of §3.5.2.1 and the example algorithm of
//     Appendix A.2 as the reference implementation refines it.
//   - Pacer: the burst avoidance of §3.5.2.3 (at most six packets' worth
//     of data between acknowledgements).
//
// Constants follow the reference implementation (zenomt/rtmfp-cpp); their
// names here say what they are for. Window sizes are in bytes of User Data
// chunks as transmitted, with SenderMSS as the packet-sized unit.
//
// A session typically owns one of each: on every packet it sends it asks
// Controller.CanSend and Pacer.Allow, then reports OnSent to both and
// records the header fields with TimestampEcho.OnSent; on every packet it
// receives it feeds TimestampEcho (and any RTT sample into the
// RTTEstimator), and if the packet acknowledged anything it builds an
// AckEvent for Controller.OnAck and calls Pacer.OnAck; it keeps one alarm
// at now+ERTO, re-armed on every send and acknowledgement, and when that
// alarm fires it calls Controller.OnTimeout, Pacer.OnTimeout and, if data
// was outstanding, RTTEstimator.Backoff.
package congestion
