package group

import (
	"context"
	"io"
	"sync"
)

// fifo is a bounded first-in first-out queue whose memory follows what it
// holds, with ready signalled when it may have become non-empty. The
// group's queues (a link's messages to write, the records and posts
// waiting for the application) were channels of Config.LinkQueue or
// Config.Queue entries, allocated in full for every link and member: most
// of a member's heap in a simulated swarm, for queues that are nearly
// always empty.
type fifo[T any] struct {
	mu    sync.Mutex
	buf   []T
	head  int
	limit int
	ready chan struct{}
}

func newFIFO[T any](limit int) *fifo[T] {
	return &fifo[T]{limit: limit, ready: make(chan struct{}, 1)}
}

// push adds v at the tail without blocking; false if the queue is full.
func (q *fifo[T]) push(v T) bool {
	q.mu.Lock()
	if len(q.buf)-q.head >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.buf = append(q.buf, v)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// pop takes the head, if any.
func (q *fifo[T]) pop() (T, bool) {
	var zero T
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.buf) {
		if cap(q.buf) > 64 {
			q.buf = nil // let a burst's backing array go
		}
		q.buf, q.head = q.buf[:0], 0
		return zero, false
	}
	v := q.buf[q.head]
	q.buf[q.head] = zero
	q.head++
	if q.head >= 64 && 2*q.head >= len(q.buf) {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	return v, true
}

// len is how many entries wait.
func (q *fifo[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf) - q.head
}

// wait pops the head, waiting for one while ctx and closed allow:
// errClosed is returned once closed is, and io.EOF once end is and the
// queue is empty (a nil end never is).
func (q *fifo[T]) wait(ctx context.Context, closed <-chan struct{}, errClosed error, end <-chan struct{}) (T, error) {
	for {
		if v, ok := q.pop(); ok {
			return v, nil
		}
		var zero T
		select {
		case <-q.ready:
		case <-end:
			if v, ok := q.pop(); ok { // pushed since the pop above
				return v, nil
			}
			return zero, io.EOF
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-closed:
			return zero, errClosed
		}
	}
}
