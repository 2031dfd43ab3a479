package overlay

import (
	"context"
	"testing"
	"time"

	"github.com/strata-net/strata/node"
)

// A session the overlay no longer needs stays open while someone holds
// it (Host.Hold), and closes when the last hold ends; without a hold the
// overlay closes it with its last link (acquire and release count the
// overlay's links on a session). A session the overlay never used, or
// does not track, is not closed by a hold's end.
func TestHoldKeepsSessionOpen(t *testing.T) {
	// session returns a session from member 1 to member 0, dialled by
	// member 1's host (tracked) or its node alone.
	session := func(tracked bool) (*member, *node.Session) {
		m := newMesh(t, 2, Config{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a, b := m.members[1], m.members[0]
		var s *node.Session
		var err error
		if tracked {
			s, err = a.h.dial(ctx, Peer{PeerID: b.n.PeerID(), Addr: b.n.AddrPort()})
		} else {
			s, err = a.n.Dial(ctx, b.n.AddrPort(), b.n.PeerID())
		}
		if err != nil {
			t.Fatal(err)
		}
		return a, s
	}
	open := func(s *node.Session) bool {
		select {
		case <-s.Context().Done():
			return false
		case <-time.After(300 * time.Millisecond):
			return true
		}
	}
	for _, held := range []bool{false, true} {
		a, s := session(true)
		a.h.acquire(s) // an overlay link on s
		release := func() {}
		if held {
			release = a.h.Hold(s)
		}
		a.h.release(s, false) // the overlay's last link on s goes
		if got := open(s); got != held {
			t.Fatalf("held %v: open after the overlay's last link went: %v", held, got)
		}
		release()
		release() // a second call does nothing
		select {
		case <-s.Context().Done():
		case <-time.After(2 * time.Second):
			t.Fatalf("held %v: the session is still open after the hold ended", held)
		}
	}
	for _, tracked := range []bool{true, false} {
		a, s := session(tracked)
		a.h.Hold(s)()
		if !open(s) {
			t.Fatalf("tracked %v: ending a hold closed a session the overlay never let go of", tracked)
		}
	}
}
