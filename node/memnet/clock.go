package memnet

import (
	"container/heap"
	"sync"
	"time"
)

// Clock is the source of time and timers for a Network and its conns.
//
// It is a seam: RealClock runs a Network in wall-clock time, while a virtual
// clock such as ManualClock lets a test or a large simulation decide when time
// passes, so that runs are fast and reproducible. Everything a Network
// schedules (deliveries, read and write deadlines) goes through it.
type Clock interface {
	// Now reports the current time.
	Now() time.Time
	// AfterFunc calls f once, after at least d has passed. As with
	// time.AfterFunc, f must not block for long: the Network calls it with
	// deliveries pending.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call made by a Clock. Its methods have the semantics of
// the methods of the same name on *time.Timer created by time.AfterFunc.
type Timer interface {
	// Stop prevents the call from happening. It reports whether it did,
	// false meaning the call already happened, is under way, or the timer
	// was already stopped.
	Stop() bool
	// Reset schedules the call d from now, whether or not it already
	// happened. It reports whether the timer was pending.
	Reset(d time.Duration) bool
}

// RealClock is the wall clock: time.Now and time.AfterFunc.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// AfterFunc returns time.AfterFunc(d, f).
func (RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// ManualClock is a virtual clock that only moves when told to. Advance fires
// the timers that fall due, in order of their due time (ties in the order
// they were scheduled), on the caller's goroutine, and while a timer's
// function runs Now reports that timer's due time. A test therefore sees
// exactly the same sequence of events on every run, however long the
// simulated interval and however slow the machine.
//
// ManualClock is safe for concurrent use; concurrent Advance calls are
// serialised.
type ManualClock struct {
	advancing sync.Mutex // held for a whole Advance so timers fire in one order

	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers manualHeap
}

// NewManualClock returns a ManualClock that reads start until advanced.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{now: start}
}

// Now reports the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f to run when the clock has advanced by d. A d of zero
// or less makes f due immediately: it runs during the next Advance, even
// Advance(0).
func (c *ManualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{clock: c, f: f, index: -1}
	c.scheduleLocked(t, d)
	return t
}

// Advance moves the clock forward by d, firing every timer due at or before
// the new time, and returns how many fired. Timers scheduled by the fired
// functions also fire if they fall due within the interval. A negative d is
// treated as zero.
func (c *ManualClock) Advance(d time.Duration) int {
	if d < 0 {
		d = 0
	}
	return c.AdvanceTo(c.Now().Add(d))
}

// AdvanceTo moves the clock forward to t, like Advance. A t before Now only
// fires the timers already due.
func (c *ManualClock) AdvanceTo(t time.Time) int {
	c.advancing.Lock()
	defer c.advancing.Unlock()
	fired := 0
	c.mu.Lock()
	if t.Before(c.now) {
		t = c.now
	}
	c.mu.Unlock()
	for {
		c.mu.Lock()
		if len(c.timers) == 0 || c.timers[0].when.After(t) {
			if t.After(c.now) {
				c.now = t
			}
			c.mu.Unlock()
			return fired
		}
		next := heap.Pop(&c.timers).(*manualTimer)
		if next.when.After(c.now) {
			c.now = next.when
		}
		f := next.f
		c.mu.Unlock()
		f()
		fired++
	}
}

// Next reports the due time of the earliest pending timer, if any. An
// event-driven simulation can use it to jump straight to the next event
// with AdvanceTo.
func (c *ManualClock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].when, true
}

// Pending reports how many timers are scheduled.
func (c *ManualClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func (c *ManualClock) scheduleLocked(t *manualTimer, d time.Duration) {
	if d < 0 {
		d = 0
	}
	t.when = c.now.Add(d)
	c.seq++
	t.seq = c.seq
	if t.index >= 0 {
		heap.Fix(&c.timers, t.index)
		return
	}
	heap.Push(&c.timers, t)
}

type manualTimer struct {
	clock *ManualClock
	f     func()
	when  time.Time
	seq   uint64
	index int // position in clock.timers, -1 when not pending
}

func (t *manualTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&c.timers, t.index)
	return true
}

func (t *manualTimer) Reset(d time.Duration) bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	pending := t.index >= 0
	c.scheduleLocked(t, d)
	return pending
}

// manualHeap orders timers by due time, then by scheduling order.
type manualHeap []*manualTimer

func (h manualHeap) Len() int { return len(h) }
func (h manualHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}
func (h manualHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *manualHeap) Push(x any) {
	t := x.(*manualTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *manualHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
