package core

import (
	"time"

	"github.com/strata-net/strata/node/internal/congestion"
)

// congestionState binds a session to its RTT estimator, congestion
// controller and burst pacer (RFC 7016 §3.5.2); the algorithms live in
// package congestion, this only feeds them the session's events.
type congestionState struct {
	rtt   *congestion.RTTEstimator
	ctl   congestion.Controller
	pacer *congestion.Pacer
}

func (s *Session) initCongestion() {
	rtt := congestion.NewRTTEstimator()
	s.cc = congestionState{rtt: rtt, ctl: congestion.NewReno(rtt), pacer: congestion.NewPacer()}
	s.peerAckDelay = congestion.DelayedAckPeriod
}

func (c *congestionState) srtt() time.Duration { return c.rtt.SRTT() }
func (c *congestionState) erto() time.Duration { return c.rtt.ERTO() }
func (c *congestionState) mrto() time.Duration { return c.rtt.MRTO() }

func (c *congestionState) burstAt() time.Time {
	if t, ok := c.pacer.Deadline(); ok {
		return t
	}
	return time.Time{}
}

// canSend: the window has room and the pacer allows a burst now.
func (c *congestionState) canSend(now time.Time, inFlight int) bool {
	if !c.ctl.CanSend(inFlight) {
		return false
	}
	return c.pacer.Allow(now, c.rtt.SRTT(), c.rtt.HasSample(), c.ctl.CWND())
}

func (c *congestionState) dataSent(now time.Time, n int, timeCritical bool) {
	c.ctl.OnSent(now, n, timeCritical)
	c.pacer.OnSent(n)
}

func (c *congestionState) onAck(now time.Time, ev congestion.AckEvent) {
	c.pacer.OnAck()
	c.ctl.OnAck(now, ev)
}

func (c *congestionState) onTimeout(now time.Time, outstanding bool) {
	c.pacer.OnTimeout()
	c.ctl.OnTimeout(now, outstanding)
	if outstanding {
		c.rtt.Backoff()
	}
}
