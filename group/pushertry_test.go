package group

import (
	"slices"
	"testing"
	"time"
)

// controls empties l's queue and returns the control messages of type t
// in it, oldest first.
func controls(t *testing.T, l *link, typ ctlType) []*control {
	t.Helper()
	var out []*control
	for {
		m, ok := l.q.pop()
		if !ok {
			return out
		}
		if m.data {
			continue
		}
		c, err := decodeControl(m.b)
		if err != nil {
			t.Fatalf("undecodable control: %v", err)
		}
		if c.Type == typ {
			out = append(out, c)
		}
	}
}

// name is a fake link's ID byte, -1 for none.
func name(l *link) int {
	if l == nil {
		return -1
	}
	return int(l.peer[0])
}

// A member that finds a nearer pusher for a class asks it first and
// keeps the current one until it answers: a refusal leaves the class
// where it was (no change, no gap), an acceptance moves it and only then
// releases the old pusher; no answer within tryWait counts as acceptance
// (members older than answers accept in silence); a pusher lost while
// the candidate is asked hands the class over at once.
func TestPusherTry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(s *stream, cur, cand *link, now time.Time) time.Time
		moved  bool
	}{
		{"accepted", func(s *stream, cur, cand *link, now time.Time) time.Time {
			s.handleControl(cand, &control{Type: ctlRefuse, Modulus: uint8(s.P), Ask: cand.tryAsk}, now)
			return now
		}, true},
		{"refused", func(s *stream, cur, cand *link, now time.Time) time.Time {
			s.handleControl(cand, &control{Type: ctlRefuse, Classes: []byte{0}, Modulus: uint8(s.P), Ask: cand.tryAsk}, now)
			return now
		}, false},
		{"refusal not answering the ask", func(s *stream, cur, cand *link, now time.Time) time.Time {
			// An unsolicited refusal of other classes answers nothing.
			s.handleControl(cand, &control{Type: ctlRefuse, Classes: []byte{5}, Modulus: uint8(s.P)}, now)
			return now
		}, false},
		{"no answer in time", func(s *stream, cur, cand *link, now time.Time) time.Time {
			now = now.Add(tryWait(cand) + time.Millisecond)
			s.selectParents(now)
			return now
		}, true},
		{"current pusher refuses meanwhile", func(s *stream, cur, cand *link, now time.Time) time.Time {
			s.handleControl(cur, &control{Type: ctlRefuse, Classes: []byte{0}, Modulus: uint8(s.P)}, now)
			return now
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runVirtual(t, func(t *testing.T) {
				_, x := publishedBlocks(t, 1)
				x.mu.Lock()
				defer x.mu.Unlock()
				s := x.st
				now := time.Now()
				holdOff(now, others(x), 0) // only the two below compete
				cur, cand := fakeLink(x, 1), fakeLink(x, 2)
				defer removeFake(x, cur, cand)
				for k := 1; k < s.P; k++ {
					holdOff(now, []*link{cur, cand}, k) // and only for class 0
				}
				cur.depth[0], cur.delay[0], cur.halfRTT = 1, 80*time.Millisecond, 20*time.Millisecond
				cand.depth[0], cand.delay[0], cand.halfRTT = 2, 20*time.Millisecond, 10*time.Millisecond
				s.parents[0] = cur
				changes := x.stats.PusherChanges
				s.selectParents(now)
				if s.parents[0] != cur || s.trying[0] != cand || x.stats.PusherChanges != changes {
					t.Fatalf("after choosing: pusher %v, trying %v, changes %d; want the current kept while the nearer is asked", name(s.parents[0]), name(s.trying[0]), x.stats.PusherChanges-changes)
				}
				subs := controls(t, cand, ctlSubscribe)
				if len(subs) != 1 || !slices.Contains(subs[0].Classes, 0) || subs[0].Ask == 0 || subs[0].Ask != cand.tryAsk {
					t.Fatalf("candidate was sent %+v, want one subscription to class 0 asking for an answer", subs)
				}
				for _, c := range controls(t, cur, ctlSubscribe) {
					if !slices.Contains(c.Classes, 0) {
						t.Fatal("the current pusher was released before the candidate answered")
					}
				}
				now = tc.answer(s, cur, cand, now)
				released := false
				for _, c := range controls(t, cur, ctlSubscribe) {
					released = released || !slices.Contains(c.Classes, 0)
				}
				if tc.moved {
					if s.parents[0] != cand || s.trying[0] != nil || x.stats.PusherChanges != changes+1 {
						t.Fatalf("pusher %v trying %v changes %d; want the candidate, nothing pending, one change", name(s.parents[0]), name(s.trying[0]), x.stats.PusherChanges-changes)
					}
					if tc.name != "current pusher refuses meanwhile" && !released {
						t.Error("the old pusher was not released")
					}
					return
				}
				if s.parents[0] != cur || s.trying[0] != nil && tc.name == "refused" || released || x.stats.PusherChanges != changes {
					t.Fatalf("pusher %v trying %v released %v changes %d; want the class kept by the current pusher", name(s.parents[0]), name(s.trying[0]), released, x.stats.PusherChanges-changes)
				}
				if tc.name == "refused" && x.stats.PusherTriesRefused != 1 {
					t.Errorf("PusherTriesRefused %d, want 1", x.stats.PusherTriesRefused)
				}
				// Refused: not asked again while its refusal holds.
				if tc.name == "refused" {
					s.selectParents(now.Add(time.Second))
					if s.trying[0] != nil {
						t.Error("asked again while its refusal holds")
					}
				}
			})
		})
	}
}

// A subscription that asks for an answer gets one, refusing nothing or
// what is over the limit, echoing its Ask; one that does not ask gets an
// answer only when something is refused.
func TestSubscribeAnswered(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ask     uint64
		wantAns bool
	}{
		{"asked", 9, true},
		{"not asked", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runVirtual(t, func(t *testing.T) {
				_, x := publishedBlocks(t, 1)
				x.mu.Lock()
				defer x.mu.Unlock()
				s := x.st
				l := fakeLink(x, 1)
				defer removeFake(x, l)
				s.handleControl(l, &control{Type: ctlSubscribe, Classes: []byte{1, 2}, Modulus: uint8(s.P), Ask: tc.ask}, time.Now())
				if !l.subs[1] || !l.subs[2] {
					t.Fatalf("subscription not taken: %v", l.subs)
				}
				ans := controls(t, l, ctlRefuse)
				if got := len(ans) == 1; got != tc.wantAns {
					t.Fatalf("answers %+v, want one: %v", ans, tc.wantAns)
				}
				if tc.wantAns && (ans[0].Ask != tc.ask || len(ans[0].Classes) != 0) {
					t.Errorf("answer %+v, want Ask %d refusing nothing", ans[0], tc.ask)
				}
			})
		})
	}
}
