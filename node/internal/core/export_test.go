package core

import (
	"fmt"
	"time"
)

// CheckTimers verifies the timer heap against a scan of every session: the
// heap may wake early (a stale entry) but never later than a session needs.
func (e *Endpoint) CheckTimers() error {
	heapNext := e.NextDeadline()
	var scan time.Time
	var who *Session
	for _, s := range e.sessions {
		if t := s.nextDeadline(); !t.IsZero() && (scan.IsZero() || t.Before(scan)) {
			scan, who = t, s
		}
	}
	if !scan.IsZero() && (heapNext.IsZero() || scan.Before(heapNext)) {
		return fmt.Errorf("timer heap says %v, session %d (%s) needs %v", heapNext, who.rxID, who.state, scan)
	}
	return nil
}
