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

// A heap entry carries its session's deadline (as an offset from the
// endpoint's epoch, monotonic like the deadlines) so that comparisons read
// the heap's own array, not two sessions: with a hundred sessions per
// node and thousands of nodes in a simulation, those reads missed the
// cache (2.4 % of a 2,000-member simulation's CPU in Less).
type timerEntry struct {
	at time.Duration
	s  *Session
}

type sessionHeap []timerEntry

func (h sessionHeap) Len() int           { return len(h) }
func (h sessionHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h sessionHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].s.hidx, h[j].s.hidx = i, j
}
func (h *sessionHeap) Push(x any) {
	t := x.(timerEntry)
	t.s.hidx = len(*h)
	*h = append(*h, t)
}
func (h *sessionHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*h = old[:len(old)-1]
	t.s.hidx = -1
	return t
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
			e.timers[s.hidx].at = d.Sub(e.epoch)
			heap.Fix(&e.timers, s.hidx)
		default:
			heap.Push(&e.timers, timerEntry{d.Sub(e.epoch), s})
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
	return e.timers[0].s.deadline
}

// Tick runs the timers due at now.
func (e *Endpoint) Tick(now time.Time) {
	e.setNow(now)
	e.settle()
	var due []*Session
	for len(e.timers) > 0 && !e.timers[0].s.deadline.After(e.now) {
		due = append(due, heap.Pop(&e.timers).(timerEntry).s)
	}
	for _, s := range due {
		s.deadline = time.Time{}
		s.tick()
		e.touch(s)
	}
}
