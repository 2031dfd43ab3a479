package group

import (
	"context"
	"io"
	"testing"
)

// The group's queues are bounded FIFOs: it refuses beyond its limit, keeps
// order across compactions and signals readiness.
func TestFIFO(t *testing.T) {
	for _, tc := range []struct {
		name         string
		limit, burst int // messages pushed before popping
		popEvery     int // pop one after every popEvery pushes (0: never)
	}{
		{"under the limit", 10, 5, 0},
		{"at the limit", 10, 10, 0},
		{"beyond the limit", 10, 25, 0},
		{"long run with compaction", 1000, 5000, 2},
		{"one slot", 1, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newFIFO[outMsg](tc.limit)
			next, accepted, refused := 0, 0, 0
			var got []int
			for i := 0; i < tc.burst; i++ {
				if q.push(outMsg{lane: i}) {
					accepted++
				} else {
					refused++
				}
				if tc.popEvery > 0 && i%tc.popEvery == 0 {
					if m, ok := q.pop(); ok {
						got = append(got, m.lane)
					}
				}
			}
			select {
			case <-q.ready:
			default:
				if accepted > 0 {
					t.Fatal("no readiness signal after a push")
				}
			}
			if q.len() != accepted-len(got) {
				t.Fatalf("len %d, want %d", q.len(), accepted-len(got))
			}
			for {
				m, ok := q.pop()
				if !ok {
					break
				}
				got = append(got, m.lane)
			}
			if len(got) != accepted {
				t.Fatalf("popped %d of %d accepted", len(got), accepted)
			}
			for _, lane := range got {
				if lane < next {
					t.Fatalf("out of order: %d after %d", lane, next)
				}
				next = lane + 1
			}
			if tc.popEvery == 0 && (accepted != min(tc.burst, tc.limit) || refused != tc.burst-accepted) {
				t.Fatalf("accepted %d refused %d of %d with limit %d", accepted, refused, tc.burst, tc.limit)
			}
			if q.len() != 0 {
				t.Fatalf("len %d after draining", q.len())
			}
		})
	}
}

// wait returns what is queued before it reports the end, and the closed
// error once closed.
func TestFIFOWait(t *testing.T) {
	ctx := context.Background()
	q := newFIFO[int](4)
	end, closed := make(chan struct{}), make(chan struct{})
	q.push(1)
	close(end)
	q.push(2)
	for _, want := range []int{1, 2} {
		if v, err := q.wait(ctx, closed, ErrClosed, end); err != nil || v != want {
			t.Fatalf("wait: %d %v, want %d", v, err, want)
		}
	}
	if _, err := q.wait(ctx, closed, ErrClosed, end); err != io.EOF {
		t.Fatalf("after the end: %v, want io.EOF", err)
	}
	close(closed)
	if _, err := q.wait(ctx, closed, ErrClosed, nil); err != ErrClosed {
		t.Fatalf("closed: %v, want ErrClosed", err)
	}
}
