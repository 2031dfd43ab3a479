package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// With EarlyFragments at the publisher and no loss, every member's
// blocks complete with their fragments, the closing one and a parity
// piece at most, so members ask their neighbours for only the first
// parity piece of each block (parity sparing): the parity they receive
// falls from M/K (0.25) towards 1/K of the stream, and every output is
// still the stream byte for byte. AllParity keeps every piece pushed.
// Without EarlyFragments a block's pieces all come at its close and
// parity stands in for the slowest data pieces: members may spare or
// not, as their blocks show. Virtual clock.
func TestParitySparing(t *testing.T) {
	for _, tc := range []struct {
		name      string
		early     bool
		all       bool
		maxParity float64 // parity received per useful byte, all members
		minParity float64
		spare     int // 1: members must spare, 0: none may, -1: either
	}{
		{"sparing", true, false, 0.17, 0, 1},
		{"all parity", true, true, 0.35, 0.22, 0},
		{"fragments with their block", false, false, 0.35, 0, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runVirtual(t, func(t *testing.T) {
				sc := streamScenario{
					members:  12,
					link:     memnet.Link{Delay: 10 * time.Millisecond, Jitter: 20 * time.Millisecond},
					bytes:    1_500_000,
					rate:     125_000,
					drain:    6 * time.Second,
					deadline: 40 * time.Second,
					cfg:      Config{EarlyFragments: tc.early, AllParity: tc.all},
				}
				sc.check = func(t *testing.T, m *mesh, res result) {
					var parity, sparing, skipped uint64
					for _, mb := range m.members[1:] {
						st := mb.g.Stats()
						parity += st.Received.Parity
						sparing += st.ParitySparing
					}
					for _, mb := range m.members {
						skipped += mb.g.Stats().PushesSkipped
					}
					got := float64(parity) / float64(sc.bytes*(len(m.members)-1))
					t.Logf("parity received per useful byte %.3f; members sparing %d; pushes skipped %d", got, sparing, skipped)
					if got > tc.maxParity || got < tc.minParity {
						t.Errorf("parity received per useful byte %.3f, want %.2f-%.2f", got, tc.minParity, tc.maxParity)
					}
					if tc.spare >= 0 && (tc.spare == 1) != (sparing > 0) {
						t.Errorf("%d members spared parity (AllParity %v)", sparing, tc.all)
					}
				}
				sc.run(t)
			})
		})
	}
}

// A neighbour that asked for sparing gets each block's first parity
// piece pushed, not the others, until it asks for every piece again.
func TestSparingNeighbourGetsFirstParity(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		blocks, x := publishedBlocks(t, 2)
		x.mu.Lock()
		defer x.mu.Unlock()
		s := x.st
		now := time.Now()
		p, q := fakeLink(x, 1), fakeLink(x, 2)
		defer removeFake(x, p, q)
		for k := range q.subs {
			q.subs[k] = true // q takes every class from this member
		}
		pushed := func() map[int]bool {
			got := map[int]bool{}
			for {
				m, ok := q.q.pop()
				if !ok {
					return got
				}
				if m.data && m.b[0] == dataPiece {
					_, pc, _, err := decodeData(m.b)
					if err != nil {
						t.Fatal(err)
					}
					got[pc.Index] = true
				}
			}
		}
		feed := func(b replayed) {
			s.handleManifest(p, b.sm, now)
			for _, pc := range b.pieces {
				s.handlePiece(p, pc, true, now)
			}
		}
		s.handleControl(q, &control{Type: ctlParity, Spare: true}, now)
		feed(blocks[0])
		k := blocks[0].sm.Manifest.K
		got := pushed()
		for i := range blocks[0].pieces {
			if want := i <= k; got[i] != want {
				t.Errorf("sparing: piece %d pushed %v, want %v (pushed %v)", i, got[i], want, got)
			}
		}
		s.handleControl(q, &control{Type: ctlParity}, now)
		feed(blocks[1])
		got = pushed()
		for i := range blocks[1].pieces {
			if !got[i] {
				t.Errorf("sparing ended: piece %d not pushed (pushed %v)", i, got)
			}
		}
	})
}

// noteClean starts sparing after spareAfter clean blocks in a row and
// ends it at the first block that is not; after a short spell of
// sparing it waits twice as many clean blocks to start again, after a
// long one spareAfter.
func TestNoteClean(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		_, x := publishedBlocks(t, 1)
		x.mu.Lock()
		defer x.mu.Unlock()
		s := x.st
		now := time.Now()
		q := fakeLink(x, 2)
		defer removeFake(x, q)
		told := func() []bool {
			var out []bool
			for _, c := range controls(t, q, ctlParity) {
				out = append(out, c.Spare)
			}
			return out
		}
		s.cleanRun, s.spare, s.spareNeed = 0, false, 0
		for i := 0; i < spareAfter-1; i++ {
			s.noteClean(true, now)
		}
		if s.spare || len(told()) != 0 {
			t.Fatalf("sparing after %d clean blocks", spareAfter-1)
		}
		s.noteClean(true, now)
		if got := told(); !s.spare || fmt.Sprint(got) != "[true]" {
			t.Fatalf("after %d clean blocks: sparing %v, told %v", spareAfter, s.spare, got)
		}
		s.noteClean(false, now)
		if got := told(); s.spare || fmt.Sprint(got) != "[false]" || s.cleanRun != 0 {
			t.Fatalf("after a block that was not clean: sparing %v, told %v", s.spare, got)
		}
		for i := 0; i < 2*spareAfter-1; i++ {
			s.noteClean(true, now)
		}
		if s.spare || len(told()) != 0 {
			t.Fatalf("sparing again after %d clean blocks, want %d (doubled)", 2*spareAfter-1, 2*spareAfter)
		}
		s.noteClean(true, now)
		if got := told(); !s.spare || fmt.Sprint(got) != "[true]" {
			t.Fatalf("after %d clean blocks: sparing %v, told %v", 2*spareAfter, s.spare, got)
		}
		for i := 0; i < 4*2*spareAfter; i++ {
			s.noteClean(true, now) // a long spell
		}
		s.noteClean(false, now)
		if s.spare || s.spareNeed != spareAfter {
			t.Fatalf("after a long spell: sparing %v, need %d, want %d", s.spare, s.spareNeed, spareAfter)
		}
		told()
	})
}
