package overlay

import "sync/atomic"

// Stats are a group's counters since it was joined.
type Stats struct {
	// Messages received and sent (control and data).
	Received, Sent uint64
	// Dropped on receipt, by reason.
	DropMalformed uint64 // undecodable, wrong version or invalid fields
	DropTooBig    uint64 // over MaxMessageSize
	DropTTL       uint64 // routed message out of hops
	DropLoop      uint64 // routed message came back to a member on its path
	DropDuplicate uint64 // routed message delivered before
	DropQueueFull uint64 // delivery queue or forwarding capacity full, or a reply's link send buffer full
	DropNoRoute   uint64 // every next hop failed
	// Routing.
	Forwarded uint64 // routed messages passed on
	Delivered uint64 // messages handed to Receive
	// Lookups and liveness.
	Lookups        uint64
	Requests       uint64 // FindNode requests sent (by lookups, refreshes included)
	RequestsFailed uint64 // FindNode requests unanswered in time
	DeadEvicted    uint64 // contacts removed from the table as dead
	// Links is how many links (flows to and from other members) are open
	// now, neighbours included; at most about MaxSessions, twice that
	// briefly under a burst of joiners (a gauge, not a counter).
	Links int
}

type counters struct {
	received, sent                                        atomic.Uint64
	malformed, tooBig, ttl, loop, dup, queueFull, noRoute atomic.Uint64
	forwarded, delivered                                  atomic.Uint64
	lookups, requests, requestsFailed, deadEvicted        atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Received: c.received.Load(), Sent: c.sent.Load(),
		DropMalformed: c.malformed.Load(), DropTooBig: c.tooBig.Load(),
		DropTTL: c.ttl.Load(), DropLoop: c.loop.Load(), DropDuplicate: c.dup.Load(),
		DropQueueFull: c.queueFull.Load(), DropNoRoute: c.noRoute.Load(),
		Forwarded: c.forwarded.Load(), Delivered: c.delivered.Load(),
		Lookups: c.lookups.Load(), Requests: c.requests.Load(), RequestsFailed: c.requestsFailed.Load(), DeadEvicted: c.deadEvicted.Load(),
	}
}
