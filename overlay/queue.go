package overlay

import "sync"

// queue is a first-in first-out queue of at most limit entries whose
// memory follows what it holds (a channel of DeliveryQueue entries was
// allocated in full for every member), with ready signalled whenever
// entries may wait.
type queue[T any] struct {
	mu    sync.Mutex
	q     []T
	limit int
	ready chan struct{}
}

func newQueue[T any](limit int) *queue[T] {
	return &queue[T]{limit: limit, ready: make(chan struct{}, 1)}
}

func (q *queue[T]) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// push adds v at the tail without waiting; false if the queue is full.
func (q *queue[T]) push(v T) bool {
	q.mu.Lock()
	if len(q.q) >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.q = append(q.q, v)
	q.mu.Unlock()
	q.signal()
	return true
}

// pop takes the head, if any. With more left it signals ready again, so
// that another waiting consumer wakes too.
func (q *queue[T]) pop() (T, bool) {
	var zero T
	q.mu.Lock()
	if len(q.q) == 0 {
		q.mu.Unlock()
		return zero, false
	}
	v := q.q[0]
	q.q[0] = zero
	q.q = q.q[1:]
	more := len(q.q) > 0
	if !more {
		q.q = nil // let a burst's backing array go
	}
	q.mu.Unlock()
	if more {
		q.signal()
	}
	return v, true
}
