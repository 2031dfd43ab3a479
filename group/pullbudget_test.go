package group

import (
	"bytes"
	"testing"
	"time"
)

// A member serves pulls up to RelayPullShare of the bytes it received
// (at least sourcePullFloor blocks' worth), then refuses them and counts
// the refusals.
func TestRelayPullBudget(t *testing.T) {
	for _, tc := range []struct {
		name  string
		share float64 // 0: the default, 1
	}{
		{"default share (the floor is above it here)", 0},
		{"share 4", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runVirtual(t, func(t *testing.T) {
				blocks, x := publishedBlocks(t, 2)
				x.mu.Lock()
				defer x.mu.Unlock()
				if tc.share > 0 {
					x.cfg.RelayPullShare = tc.share
				}
				s := x.st
				from, to := fakeLink(x, 1), fakeLink(x, 2)
				defer removeFake(x, from, to)
				now := time.Now()
				for _, b := range blocks {
					s.handleManifest(from, b.sm, now)
					for _, pc := range b.pieces {
						s.handlePiece(from, pc, true, now)
					}
				}
				// What the fake links' queues hold is never counted as
				// received: count the replayed bytes as a neighbour's
				// messages would have been.
				for _, b := range blocks {
					for _, pc := range b.pieces {
						msg, _ := appendPieceMsg(nil, viaPush, pc)
						x.stats.Received.Push += uint64(len(msg))
					}
				}
				received := float64(x.stats.Received.Total())
				floor := float64(sourcePullFloor * x.cfg.K * x.cfg.FragmentSize)
				budget := max(x.cfg.RelayPullShare*received, floor)
				served := func() float64 { return float64(x.stats.Sent.Pull + s.pulledParity + s.pulledManifests) }
				var pullBytes float64
				for i := 0; i < 200 && x.stats.PullsRefused == 0; i++ {
					before := served()
					s.handlePull(to, &control{Type: ctlPull, Block: blocks[i%2].sm.Manifest.Block, Want: fullMap(), Manifest: true})
					pullBytes = max(pullBytes, served()-before)
				}
				if x.stats.PullsRefused == 0 {
					t.Fatalf("200 whole-block pulls served (%.0f bytes), budget %.0f", served(), budget)
				}
				// It serves up to the budget, overshooting by at most the
				// pull that crossed it.
				if got := served(); got < budget || got > budget+pullBytes {
					t.Errorf("served %.0f bytes of pulls, want %.0f to %.0f", got, budget, budget+pullBytes)
				}
				want := []byte{0x05, 0x80}
				s.handlePull(to, &control{Type: ctlPull, Block: blocks[0].sm.Manifest.Block, Want: want})
				if x.stats.PullsRefused != 2 {
					t.Errorf("PullsRefused %d after two refusals", x.stats.PullsRefused)
				}
				// Each refusal is answered busy, echoing the pull.
				var busy []*control
				for {
					m, ok := to.q.pop()
					if !ok {
						break
					}
					if c, err := decodeControl(m.b); !m.data && err == nil && c.Type == ctlBusy {
						busy = append(busy, c)
					}
				}
				if len(busy) != 2 {
					t.Fatalf("%d busy answers to 2 refused pulls", len(busy))
				}
				if c := busy[1]; c.Block != blocks[0].sm.Manifest.Block || !bytes.Equal(c.Want, want) || c.Manifest {
					t.Errorf("busy answer %+v does not echo the pull (block %d, want %x)", c, blocks[0].sm.Manifest.Block, want)
				}
				if c := busy[0]; !c.Manifest || !bytes.Equal(c.Want, fullMap()) {
					t.Errorf("busy answer %+v does not echo the first refused pull (manifest, every piece)", c)
				}
				// A manifest refused is sent when the same neighbour asks
				// for it again (it found no other holder), once, with its
				// pieces still refused; a neighbour asking for the first
				// time is refused.
				seq := blocks[1].sm.Manifest.Block
				drain := func(l *link) (manifests []uint64, busy []*control) {
					for {
						m, ok := l.q.pop()
						if !ok {
							return manifests, busy
						}
						if m.data && m.b[0] == dataManifest {
							sm, _, _, err := decodeData(m.b)
							if err != nil {
								t.Fatal(err)
							}
							manifests = append(manifests, sm.Manifest.Block)
						} else if c, err := decodeControl(m.b); !m.data && err == nil && c.Type == ctlBusy {
							busy = append(busy, c)
						}
					}
				}
				one, other := fakeLink(x, 3), fakeLink(x, 4)
				defer removeFake(x, one, other)
				for i, tc := range []struct {
					l         *link
					want      []byte
					manifest  bool // the manifest is sent
					busyWant  bool // answered busy for the pieces
					busyManif bool // and for the manifest
				}{
					{one, nil, false, false, true},
					{one, want, true, true, false},
					{one, nil, false, false, true},
					{other, nil, false, false, true},
					{other, nil, true, false, false},
				} {
					past := x.stats.ManifestsPastShare
					s.handlePull(tc.l, &control{Type: ctlPull, Block: seq, Want: tc.want, Manifest: true})
					ms, busy := drain(tc.l)
					if got := len(ms) == 1 && ms[0] == seq; got != tc.manifest || len(ms) > 1 {
						t.Errorf("ask %d: manifests sent %v, want block %d: %v", i, ms, seq, tc.manifest)
					}
					if n := x.stats.ManifestsPastShare - past; n != uint64(len(ms)) {
						t.Errorf("ask %d: ManifestsPastShare grew by %d for %d manifests", i, n, len(ms))
					}
					if !tc.busyWant && !tc.busyManif {
						if len(busy) != 0 {
							t.Errorf("ask %d: answered busy %+v, nothing refused", i, busy[0])
						}
						continue
					}
					if len(busy) != 1 {
						t.Fatalf("ask %d: %d busy answers, want 1", i, len(busy))
					}
					if c := busy[0]; c.Manifest != tc.busyManif || bytes.Equal(c.Want, want) != tc.busyWant {
						t.Errorf("ask %d: busy answer %+v, want manifest %v, pieces %v", i, c, tc.busyManif, tc.busyWant)
					}
				}
				// Each neighbour is remembered once, however often it asks.
				blk := s.blocks[seq]
				if n := len(blk.manifestRefused); n != 2 {
					t.Errorf("%d neighbours remembered as refused the manifest, want 2", n)
				}
				// The side-by-side knob refuses without a word.
				s.quietRefusal = true
				s.handlePull(to, &control{Type: ctlPull, Block: blocks[0].sm.Manifest.Block, Want: want})
				if x.stats.PullsRefused != 7 {
					t.Errorf("PullsRefused %d after seven refusals", x.stats.PullsRefused)
				}
				if m, ok := to.q.pop(); ok {
					t.Errorf("a quiet refusal queued %d bytes", len(m.b))
				}
			})
		})
	}
}

// fullMap is the bitmap of every piece of a block.
func fullMap() []byte {
	m := make([]byte, 32)
	for i := range m {
		m[i] = 0xff
	}
	return m
}

// shortBlock gives a member (its mutex held; the caller unlocks it) a
// published block 3 pieces short of k, through a neighbour, and two more
// fake neighbours that hold nothing yet, removed when the test ends.
func shortBlock(t *testing.T) (x *Group, b replayed, h1, h2 *link, now time.Time) {
	blocks, x := publishedBlocks(t, 1)
	x.mu.Lock()
	from, h1, h2 := fakeLink(x, 1), fakeLink(x, 2), fakeLink(x, 3)
	t.Cleanup(func() {
		x.mu.Lock()
		removeFake(x, from, h1, h2)
		x.mu.Unlock()
	})
	b = blocks[0]
	now = time.Now()
	x.st.handleManifest(from, b.sm, now)
	for _, pc := range b.pieces[:b.sm.Manifest.K-3] {
		x.st.handlePiece(from, pc, false, now)
	}
	for _, l := range []*link{from, h1, h2} {
		for {
			if _, ok := l.q.pop(); !ok {
				break
			}
		}
	}
	return x, b, h1, h2, now
}

// A pull answered busy is asked at once of another holder of the pieces,
// not after the retry period, and the busy neighbour is not asked for
// busyFor; while every holder is busy nobody is asked.
func TestBusyPullAskedElsewhere(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		x, b, h1, h2, now := shortBlock(t)
		defer x.mu.Unlock()
		s, seq := x.st, b.sm.Manifest.Block
		for _, h := range []*link{h1, h2} {
			for i := range b.pieces {
				h.learn(seq, i)
			}
		}
		pulls := func(l *link) (n int, want []byte) {
			for {
				m, ok := l.q.pop()
				if !ok {
					return n, want
				}
				if c, err := decodeControl(m.b); !m.data && err == nil && c.Type == ctlPull && c.Block == seq {
					n++
					want = c.Want
				}
			}
		}
		at := now.Add(x.cfg.WindowDuration / 4) // past any fetch period
		s.pull(at)
		n1, w1 := pulls(h1)
		n2, w2 := pulls(h2)
		if n1+n2 == 0 {
			t.Fatal("no pull sent for a block 3 pieces short")
		}
		first, w := h1, w1
		if n2 > 0 {
			first, w = h2, w2
		}
		other := map[*link]*link{h1: h2, h2: h1}[first]
		s.pull(at.Add(time.Millisecond))
		if n, _ := pulls(h1); n > 0 {
			t.Fatal("pieces asked again before the retry period without a busy answer")
		}
		if n, _ := pulls(h2); n > 0 {
			t.Fatal("pieces asked again before the retry period without a busy answer")
		}
		s.handleControl(first, &control{Type: ctlBusy, Block: seq, Want: w}, at)
		if x.stats.PullsBusy != 1 {
			t.Errorf("PullsBusy %d, want 1", x.stats.PullsBusy)
		}
		s.pull(at.Add(time.Millisecond))
		if n, _ := pulls(first); n > 0 {
			t.Error("the busy neighbour was asked again while another holds the pieces")
		}
		n, w2b := pulls(other)
		if n == 0 {
			t.Fatal("a busy answer did not send the pull to the other holder")
		}
		for i := range b.pieces {
			if bitSet(w, i) && !bitSet(w2b, i) {
				t.Errorf("piece %d refused by the busy neighbour was not asked of the other", i)
			}
		}
		// Both busy: nobody is asked (they would only say busy again)
		// until busyFor has passed.
		s.handleControl(other, &control{Type: ctlBusy, Block: seq, Want: w2b}, at)
		s.pull(at.Add(2 * time.Millisecond))
		n1, _ = pulls(h1)
		n2, _ = pulls(h2)
		if n1+n2 != 0 {
			t.Errorf("%d pulls sent while every holder is busy", n1+n2)
		}
		s.pull(at.Add(busyFor))
		n1, _ = pulls(h1)
		n2, _ = pulls(h2)
		if n1+n2 == 0 {
			t.Error("nothing asked once the busy holders' busyFor had passed")
		}
	})
}

// A piece asked for that does not come within the retry period is asked
// again, of another holder if there is one: the one that left it
// unanswered is asked after the others for busyFor (its session may be
// backing off after losses), but still asked when it is the only holder.
func TestUnansweredPullAskedElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name    string
		another bool // a second holder appears after the first ask
	}{
		{"another holder", true},
		{"only holder", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runVirtual(t, func(t *testing.T) {
				x, b, h1, h2, now := shortBlock(t)
				defer x.mu.Unlock()
				s, seq := x.st, b.sm.Manifest.Block
				for i := range b.pieces {
					h1.learn(seq, i)
				}
				asked := func(l *link) []byte {
					want := make([]byte, 32)
					for {
						m, ok := l.q.pop()
						if !ok {
							return want
						}
						if c, err := decodeControl(m.b); !m.data && err == nil && c.Type == ctlPull && c.Block == seq {
							for i := range b.pieces {
								if bitSet(c.Want, i) {
									setBit(want, i)
								}
							}
						}
					}
				}
				count := func(m []byte) (n int) {
					for i := range b.pieces {
						if bitSet(m, i) {
							n++
						}
					}
					return n
				}
				step := x.cfg.WindowDuration / 4 // at least a fetch period
				s.pull(now.Add(step))
				if n := count(asked(h1)); n != 3 {
					t.Fatalf("first pull asked the only holder for %d pieces, want 3", n)
				}
				if tc.another {
					for i := range b.pieces {
						h2.learn(seq, i)
					}
				}
				s.pull(now.Add(3 * step)) // two fetch periods at most later
				if x.stats.PullsUnanswered != 3 {
					t.Errorf("PullsUnanswered %d, want 3", x.stats.PullsUnanswered)
				}
				n1, n2 := count(asked(h1)), count(asked(h2))
				if tc.another && (n1 != 0 || n2 != 3) {
					t.Errorf("unanswered pieces asked again of the silent holder %d times, of the other %d, want 0 and 3", n1, n2)
				}
				if !tc.another && n1 != 3 {
					t.Errorf("unanswered pieces asked again of the only holder %d times, want 3", n1)
				}
			})
		})
	}
}
