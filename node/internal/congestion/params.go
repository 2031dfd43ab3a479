package congestion

import "time"

// Packet geometry. SenderMSS is derived the way the reference
// implementation derives its sender MSS: the largest user-data fragment that
// always fits in one session packet whatever the flow's header needs.
const (
	// maxSessionPacketLength leaves room under the 1280-byte IPv6 minimum
	// MTU for the IP and UDP headers, the scrambled session ID and the
	// cipher's padding.
	maxSessionPacketLength = 1200
	// maxPacketHeaderLength is the packet header's flags byte plus the
	// optional 16-bit timestamp and timestamp echo.
	maxPacketHeaderLength = 5
	// chunkHeaderLength is a chunk's type byte and 16-bit length.
	chunkHeaderLength = 3
	// maxVLUSize is the longest variable-length unsigned integer a 64-bit
	// value can need: ceil(64/7) = 10 bytes.
	maxVLUSize = 10

	// SenderMSS is the maximum size in bytes of one User Data chunk a
	// sender puts in a packet, and the unit of every window constant below.
	// It is 1200 - 5 (packet header) - 3 (chunk header) - 1 (fragment
	// flags) - 3*10 (flow ID, sequence number and forward sequence number
	// offset, each a VLU of at most 10 bytes) = 1161.
	SenderMSS = maxSessionPacketLength - maxPacketHeaderLength - chunkHeaderLength - 1 - 3*maxVLUSize

	// InitialCWND is the congestion window of a new session, and the floor
	// the window returns to after a loss or an idle period (RFC 7016
	// Appendix A.2 uses the same three-packet start as RFC 5681 allows).
	InitialCWND = 3 * SenderMSS
	// TimedOutCWND is the window after a retransmission timeout with data
	// outstanding; it is the smallest value the window ever takes.
	TimedOutCWND = 2 * SenderMSS
	// cwndDecayMargin is how far the window may run ahead of what the
	// sender actually uses before it starts decaying (application-limited).
	cwndDecayMargin = 6 * SenderMSS
	// cwndDecaySize is how much an application-limited window shrinks per
	// acknowledgement packet.
	cwndDecaySize = 1

	// MaxDataPacketBurst is how many full-size data packets may be sent
	// back to back before an acknowledgement arrives (RFC 7016 §3.5.2.3).
	MaxDataPacketBurst = 6
	// MaxDataBytesBurst is MaxDataPacketBurst in bytes.
	MaxDataBytesBurst = MaxDataPacketBurst * SenderMSS

	// NaksForLoss is how many acknowledgements that skip a fragment
	// (negative acknowledgements) declare it lost, like TCP's three
	// duplicate acks for fast retransmit, once it is older than a round
	// trip and a reordering allowance; one is enough once it is two round
	// trips old (the session's loss detection).
	NaksForLoss = 3

	// maxRecoveryBonusInFlight is the in-flight size (bytes) above which a
	// session that is not competing with time-critical traffic takes the
	// gentler 1/8 decrease on loss instead of 1/2.
	maxRecoveryBonusInFlight = 67200
)

// Timing constants (RFC 7016 §3.5.2.2 and the reference implementation).
const (
	// TimestampPeriod is the tick of the 16-bit packet header timestamp
	// (250 ticks per second).
	TimestampPeriod = 4 * time.Millisecond
	// InitialMRTO is the measured retransmission timeout before any RTT
	// sample.
	InitialMRTO = 250 * time.Millisecond
	// InitialERTO is the effective retransmission timeout before any RTT
	// sample.
	InitialERTO = 3 * time.Second
	// MinimumERTO is the floor of the effective retransmission timeout.
	MinimumERTO = 250 * time.Millisecond
	// DelayedAckPeriod is the receiver's delayed-ack alarm; MRTO includes
	// it because an acknowledgement may legitimately be held that long.
	DelayedAckPeriod = 200 * time.Millisecond
	// MaxERTO caps the exponential backoff of the effective timeout.
	MaxERTO = 10 * time.Second
	// ertoBackoffFactor is about √2: each timeout without progress grows
	// the effective timeout by this factor.
	ertoBackoffFactor = 1.414214
	// MaxTimestampEchoElapsed is how long a received timestamp may be
	// echoed; older ones could alias after the 16-bit tick counter wraps
	// (65536 ticks = 262 s).
	MaxTimestampEchoElapsed = 128 * time.Second
	// SafeRTT is an RTT to assume for rate estimates before any sample.
	SafeRTT = 200 * time.Millisecond
	// TimeCriticalTimeout is how long sending, or being told about,
	// time-critical data holds back other traffic's growth (RFC 7016
	// §3.5.2.1).
	TimeCriticalTimeout = 800 * time.Millisecond
	// BurstRTTThreshold is the smoothed RTT below which bursts are not
	// limited: on such paths a burst cannot build a meaningful queue and a
	// timer could not pace it anyway.
	BurstRTTThreshold = 4500 * time.Microsecond

	// minRTTBucket and minRTTBuckets give the window of the minimum-RTT
	// filter: the minimum over the last 6 buckets of 30 s.
	minRTTBucket  = 30 * time.Second
	minRTTBuckets = 6
	// delayCCRTTThreshold is the smoothed RTT below which delay-based
	// congestion detection stays off: the timestamp tick is too coarse.
	delayCCRTTThreshold = 32 * time.Millisecond
	// minRTTProbeRTTs is how many smoothed RTTs pass between deliberate
	// window cuts that let the queue drain to re-measure the base RTT.
	minRTTProbeRTTs = 60
	// maxSegmentLifetime bounds a congestion delay that still enables the
	// min-RTT probing above.
	maxSegmentLifetime = 120 * time.Second
)
