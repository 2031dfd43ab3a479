package memnet

import "sync/atomic"

// Stats counts datagrams. A Conn's Stats describe the datagrams it sent (and
// what became of them) plus those it received; the Network's Stats are the
// totals over all conns, including closed ones. Counters only grow.
//
// Once nothing is in flight, every datagram is accounted for:
//
//	Sent + Duplicated == Received + Dropped()
type Stats struct {
	// Sent and SentBytes count datagrams accepted by WriteTo (payload bytes).
	Sent, SentBytes uint64
	// Received and ReceivedBytes count datagrams placed in a receive queue.
	Received, ReceivedBytes uint64
	// Duplicated counts extra copies made by a link's Duplicate probability.
	Duplicated uint64
	// Reordered counts datagrams a link's Reorder probability held back so
	// that later ones could overtake them.
	Reordered uint64

	// DroppedLoss counts random loss (Link.Loss or Link.Burst).
	DroppedLoss uint64
	// DroppedQueue counts tail drops at a bandwidth-limited link's queue.
	DroppedQueue uint64
	// DroppedBuffer counts datagrams that found the receiver's queue full,
	// like a full socket receive buffer. On a Conn it counts at the receiver.
	DroppedBuffer uint64
	// DroppedMTU counts datagrams larger than a link's MTU.
	DroppedMTU uint64
	// DroppedBlocked counts datagrams stopped by Block or Partition.
	DroppedBlocked uint64
	// DroppedNAT counts datagrams a NAT refused: no mapping, filtered, or
	// addressed to a private address from outside.
	DroppedNAT uint64
	// DroppedNoListener counts datagrams that arrived where no conn listens.
	DroppedNoListener uint64

	// InFlight is the number of datagrams scheduled but not yet delivered.
	// It is only set on Network stats.
	InFlight uint64
}

// Dropped is the total over every drop reason.
func (s Stats) Dropped() uint64 {
	return s.DroppedLoss + s.DroppedQueue + s.DroppedBuffer + s.DroppedMTU +
		s.DroppedBlocked + s.DroppedNAT + s.DroppedNoListener
}

type counter int

const (
	cSent counter = iota
	cSentBytes
	cReceived
	cReceivedBytes
	cDuplicated
	cReordered
	cLoss
	cQueue
	cBuffer
	cMTU
	cBlocked
	cNAT
	cNoListener
	numCounters
)

// counters is lock-free so that Stats can be read at any time without
// contending with the datagram path.
type counters [numCounters]atomic.Uint64

func (c *counters) add(k counter, v uint64) { c[k].Add(v) }

func (c *counters) snapshot() Stats {
	return Stats{
		Sent:              c[cSent].Load(),
		SentBytes:         c[cSentBytes].Load(),
		Received:          c[cReceived].Load(),
		ReceivedBytes:     c[cReceivedBytes].Load(),
		Duplicated:        c[cDuplicated].Load(),
		Reordered:         c[cReordered].Load(),
		DroppedLoss:       c[cLoss].Load(),
		DroppedQueue:      c[cQueue].Load(),
		DroppedBuffer:     c[cBuffer].Load(),
		DroppedMTU:        c[cMTU].Load(),
		DroppedBlocked:    c[cBlocked].Load(),
		DroppedNAT:        c[cNAT].Load(),
		DroppedNoListener: c[cNoListener].Load(),
	}
}
