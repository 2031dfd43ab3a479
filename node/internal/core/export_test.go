package core

import (
	"fmt"
	"time"
)

// CheckTimers verifies the timer heap against a scan of every session: the
// heap may wake early (a stale entry) but never later than a session needs,
// and the same holds for each session's cached earliest flow timer.
func (e *Endpoint) CheckTimers() error {
	heapNext := e.NextDeadline()
	var scan time.Time
	var who *Session
	for _, s := range e.sessions {
		// The session's cached earliest flow timer may be early (a
		// stale entry) but never later than a flow's own timer.
		if s.state == stateOpen && !s.flowsStale {
			if t := s.flowTimers(); !t.IsZero() && (s.flowsAt.IsZero() || t.Before(s.flowsAt)) {
				return fmt.Errorf("session %d caches its earliest flow timer as %v, a flow needs %v", s.rxID, s.flowsAt, t)
			}
		}
		if t := s.nextDeadline(); !t.IsZero() && (scan.IsZero() || t.Before(scan)) {
			scan, who = t, s
		}
	}
	if !scan.IsZero() && (heapNext.IsZero() || scan.Before(heapNext)) {
		return fmt.Errorf("timer heap says %v, session %d (%s) needs %v", heapNext, who.rxID, who.state, scan)
	}
	return nil
}

// HandshakeBytes is how many bytes of handshake state s still holds: the
// initiator's IIKeying, cookie and tag, the responder's RIKeying, and the
// candidate addresses tried (counted per entry).
func (s *Session) HandshakeBytes() int {
	return len(s.iikeying) + len(s.cookie) + len(s.tag) + len(s.rikeying) + len(s.candidates)
}

// PooledBuffers is how many data buffers the endpoint's pool holds.
func (e *Endpoint) PooledBuffers() int { return len(e.pool.bufs.items) + len(e.pool.small.items) }
