package group

import (
	"testing"
	"time"
)

// A neighbour that refuses a class again and again (a full publisher or
// relay keeps its subscribers) is asked ever less often: the hold after
// each refusal doubles, up to 2^maxRefusalBackoff times the first, until
// the neighbour pushes the class to us. Before, a member asked the full
// publisher every 2 s, losing its pusher each time (in the 200-member
// scenario one member was refused 110 times in 35 s).
func TestRefusalBackoff(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		blocks, x := publishedBlocks(t, 1)
		x.mu.Lock()
		defer x.mu.Unlock()
		s := x.st
		p := fakeLink(x, 1)
		defer removeFake(x, p)
		period := x.cfg.AvailabilityUpdatePeriod
		now := time.Now()
		refuse := func() time.Duration {
			s.handleControl(p, &control{Type: ctlRefuse, Classes: []byte{0}, Modulus: uint8(s.P)}, now)
			return p.refused[0].Sub(now)
		}
		var holds []time.Duration
		for range 7 {
			holds = append(holds, refuse()/period)
		}
		want := []time.Duration{8, 16, 32, 64, 128, 128, 128}
		for i := range want {
			if holds[i] != want[i] {
				t.Fatalf("holds after refusals, in availability periods: %v, want %v", holds, want)
			}
		}
		if p.refused[1].After(now) {
			t.Errorf("class 1 held too")
		}
		// Once it pushes the class to us, a later refusal holds it 8
		// periods again.
		s.parents[0] = p
		h := blocks[0]
		s.handlePiece(p, h.pieces[0], true, now)
		if got := refuse() / period; got != 8 {
			t.Errorf("hold after a push and a refusal: %d periods, want 8", got)
		}
	})
}
