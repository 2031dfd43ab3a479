package overlay

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

func TestQueue(t *testing.T) {
	q := newQueue[int](3)
	if _, ok := q.pop(); ok {
		t.Fatal("pop from an empty queue")
	}
	for i := range 3 {
		if !q.push(i) {
			t.Fatalf("push %d refused below the limit", i)
		}
	}
	if q.push(3) {
		t.Fatal("push beyond the limit accepted")
	}
	for want := range 3 {
		if v, ok := q.pop(); !ok || v != want {
			t.Fatalf("pop = %d, %v; want %d", v, ok, want)
		}
	}
	if _, ok := q.pop(); ok || q.q != nil {
		t.Fatalf("emptied queue: pop ok %v, backing array kept %v", ok, q.q != nil)
	}

	// Two consumers waiting, two entries pushed at once: both wake,
	// though ready holds one signal.
	q = newQueue[int](10)
	var wg sync.WaitGroup
	got := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			timeout := time.After(5 * time.Second)
			for {
				if v, ok := q.pop(); ok {
					got <- v
					return
				}
				select {
				case <-q.ready:
				case <-timeout:
					got <- -1
					return
				}
			}
		}()
	}
	q.mu.Lock()
	q.q = append(q.q, 7, 8)
	q.mu.Unlock()
	q.signal()
	wg.Wait()
	if a, b := <-got, <-got; a+b != 15 {
		t.Fatalf("consumers got %d and %d, want 7 and 8", a, b)
	}
}

// Routed messages are delivered once per ID within the last DedupWindow
// IDs; the delivery queue holds at most DeliveryQueue of them.
func TestDedupAndDeliveryQueue(t *testing.T) {
	cfg := LocalConfig()
	cfg.DedupWindow, cfg.DeliveryQueue = 4, 6
	// Nothing else takes the member's deliveries: the queue fills.
	g := newMeshReceiving(t, 1, cfg, memnet.Link{Delay: time.Millisecond}, false).members[0].g
	var target Address
	route := func(id uint64) {
		g.deliverRouted(&Message{Type: MsgRoute, MsgID: id, Path: [][]byte{g.self[:]}, Payload: []byte{byte(id)}}, target)
	}
	for _, c := range []struct {
		id  uint64
		dup bool
	}{
		{1, false}, {2, false}, {3, false}, {4, false},
		{1, true},  // within the window
		{5, false}, // evicts 1
		{1, false}, // forgotten: delivered again, evicts 2
		{3, true},  // still remembered
		{2, false}, // forgotten; the queue is full now (6 delivered)
		{6, false}, // new, but the queue is full
	} {
		before := g.Stats()
		route(c.id)
		after := g.Stats()
		if dup := after.DropDuplicate > before.DropDuplicate; dup != c.dup {
			t.Fatalf("ID %d: duplicate %v, want %v", c.id, dup, c.dup)
		}
	}
	st := g.Stats()
	if st.Delivered != 6 || st.DropQueueFull != 2 {
		t.Fatalf("delivered %d, dropped for a full queue %d; want 6 and 2", st.Delivered, st.DropQueueFull)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var order []byte
	for range 6 {
		d, err := g.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, d.Payload[0])
	}
	if string(order) != "\x01\x02\x03\x04\x05\x01" {
		t.Fatalf("received IDs %v, want [1 2 3 4 5 1]", order)
	}
}
