package node

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// TryReadInto copies each message into the caller's buffer (messages of
// one and of several fragments), answers ErrShortBuffer with the message
// kept when the buffer is too small, and reports no message without
// waiting.
func TestTryReadInto(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := memnetNodes(t, memnet.Config{}, 2)
	s, err := ns[0].Dial(ctx, ns[1].AddrPort(), ns[1].PeerID())
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.OpenFlow([]byte("t"), PriorityRoutine)
	if err != nil {
		t.Fatal(err)
	}
	msgs := [][]byte{[]byte("small"), bytes.Repeat([]byte{7}, 1000), bytes.Repeat([]byte{9}, 5000)}
	for _, m := range msgs {
		if _, err := f.Write(ctx, m, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rf, err := ns[1].AcceptFlow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2000)
	for i := 0; i < len(msgs); {
		n, ok, err := rf.TryReadInto(buf)
		switch {
		case errors.Is(err, ErrShortBuffer):
			size, _ := rf.MessageLen()
			if size != len(msgs[i]) {
				t.Fatalf("message %d: short buffer, MessageLen %d, want %d", i, size, len(msgs[i]))
			}
			buf = make([]byte, size)
		case err != nil:
			t.Fatal(err)
		case !ok:
			time.Sleep(time.Millisecond) // not arrived yet
		default:
			if !bytes.Equal(buf[:n], msgs[i]) {
				t.Fatalf("message %d: got %d bytes, want %d equal ones", i, n, len(msgs[i]))
			}
			i++
		}
	}
	if _, ok, err := rf.TryReadInto(buf); ok || err != nil {
		t.Fatalf("no message waiting: ok %v, err %v", ok, err)
	}
}
