package core

import (
	"container/heap"
	"time"
)

// The endpoint keeps its sessions' next deadlines in a min-heap, so finding
// the next timer and running the due ones cost O(log n) per changed session
// rather than a scan of every session and flow on every event (which made a
// node with a hundred sessions spend most of its time scanning).
//
// A session's deadline is recomputed when it is touched: after it received
// or sent a packet, ran its timers, or was called by the application. A
// stale entry can only be early (a spurious wake-up that recomputes it);
// every change that can make a deadline earlier touches the session.

type sessionHeap []*Session

func (h sessionHeap) Len() int           { return len(h) }
func (h sessionHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h sessionHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *sessionHeap) Push(x any) {
	s := x.(*Session)
	s.hidx = len(*h)
	*h = append(*h, s)
}
func (h *sessionHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.hidx = -1
	return s
}

// touch marks s for its deadline to be recomputed.
func (e *Endpoint) touch(s *Session) {
	if !s.dirty {
		s.dirty = true
		e.dirty = append(e.dirty, s)
	}
}

// settle recomputes the deadlines of touched sessions.
func (e *Endpoint) settle() {
	for i, s := range e.dirty {
		e.dirty[i] = nil
		s.dirty = false
		d := time.Time{}
		if e.sessions[s.rxID] == s {
			d = s.nextDeadline()
		}
		if s.hidx >= 0 && d.Equal(s.deadline) {
			continue // in the heap, in place
		}
		s.deadline = d
		switch {
		case d.IsZero() && s.hidx >= 0:
			heap.Remove(&e.timers, s.hidx)
		case d.IsZero():
		case s.hidx >= 0:
			heap.Fix(&e.timers, s.hidx)
		default:
			heap.Push(&e.timers, s)
		}
	}
	e.dirty = e.dirty[:0]
}

// NextDeadline is when Tick should next be called (zero: nothing scheduled).
func (e *Endpoint) NextDeadline() time.Time {
	e.settle()
	if len(e.timers) == 0 {
		return time.Time{}
	}
	return e.timers[0].deadline
}

// Tick runs the timers due at now.
func (e *Endpoint) Tick(now time.Time) {
	e.setNow(now)
	e.settle()
	var due []*Session
	for len(e.timers) > 0 && !e.timers[0].deadline.After(e.now) {
		due = append(due, heap.Pop(&e.timers).(*Session))
	}
	for _, s := range due {
		s.deadline = time.Time{}
		s.tick()
		e.touch(s)
	}
}
