package group

import (
	"testing"
	"time"
)

// With BackupPushers a piece this member holds that its pusher did not
// send is owed by the pusher only if it came here less than a round trip
// to the pusher before the pusher's map that shows it: later than that,
// the pusher may have learnt from us that we hold it (our map, or our
// notice that the block is whole) before it had it, and an honest pusher
// skips such pieces. Counted, a pusher slower than the backup was banned
// as a withholder. A piece the pusher sent, or one that was rebuilt here,
// is never owed.
func TestOweWithBackups(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		blocks, x := publishedBlocks(t, 1)
		x.mu.Lock()
		defer x.mu.Unlock()
		x.cfg.BackupPushers = true
		s := x.st
		pusher := fakeLink(x, 7)
		backup := fakeLink(x, 6)
		defer removeFake(x, pusher, backup)
		t0 := time.Now()
		s.parents[0] = pusher
		pusher.parentAt[0] = t0.Add(-2 * time.Second)
		pusher.halfRTT = 40 * time.Millisecond
		b0 := blocks[0]
		seq := b0.sm.Manifest.Block
		s.handleManifest(backup, b0.sm, t0)
		// Class 0's pieces (0 and 10) come by the backup only.
		for _, i := range []int{0, 10} {
			s.handlePiece(backup, b0.pieces[i], true, t0)
		}
		b := s.blocks[seq]
		if b == nil || !bitSet(b.have, 0) || !bitSet(b.have, 10) || b.rebuilt {
			t.Fatalf("block %d not held as the test needs it", seq)
		}
		m := make([]byte, 32)
		setBit(m, 0)
		setBit(m, 10)
		avail := &control{Type: ctlAvail, Block: seq, Maps: [][]byte{m}}
		for _, tc := range []struct {
			name  string
			after time.Duration // the pusher's map comes this long after the pieces
			sent  bool          // the pusher sent piece 10
			made  bool          // piece 0 was rebuilt here
			want  []int
		}{
			{"map within a round trip", 30 * time.Millisecond, false, false, []int{0, 10}},
			{"map a round trip later", 200 * time.Millisecond, false, false, nil},
			{"piece sent by the pusher", 30 * time.Millisecond, true, false, []int{0}},
			{"piece rebuilt here", 30 * time.Millisecond, false, true, []int{10}},
		} {
			clear(pusher.owed)
			clear(pusher.sentUs)
			b.made = nil
			if tc.sent {
				markPiece(pusher.sentUs, seq, 10)
			}
			if tc.made {
				b.made = make([]byte, 32)
				setBit(b.made, 0)
			}
			s.owe(pusher, avail, t0.Add(tc.after))
			var got []int
			for _, i := range []int{0, 10} {
				if _, ok := pusher.owed[pieceKey{seq, i}]; ok {
					got = append(got, i)
				}
			}
			if len(got) != len(tc.want) || len(got) > 0 && got[0] != tc.want[0] {
				t.Errorf("%s: pieces owed %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}
