package group

import (
	"context"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	"github.com/strata-net/strata/fec"
	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
)

// A member that says it holds a block whole (a have message) gets none
// of the block's pieces its pusher has not sent yet: neither those the
// pusher relays later nor those still in the pusher's queue, whose bytes
// are then not counted as sent.
// replayed is a block of a real publisher: its signed manifest and pieces.
type replayed struct {
	sm     *signedManifest
	pieces []fec.Piece
}

// publishedBlocks runs a publisher alone on a 2-member mesh (on the
// virtual clock of the calling test) and returns its first n whole blocks
// and the other member, to replay them to.
func publishedBlocks(t *testing.T, n int) ([]replayed, *Group) {
	blocks, x, _ := publishedBlocksKey(t, n)
	return blocks, x
}

// publishedBlocksKey is publishedBlocks that also returns the publisher's
// private key.
func publishedBlocksKey(t *testing.T, n int) ([]replayed, *Group, ed25519.PrivateKey) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	spec := Specifier{Name: "replay", Multicast: true, PublisherKey: pub}
	m := newMesh(t, 2, memnet.Link{}, spec, Config{}, priv)
	p, err := m.members[0].g.Publish()
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.members[0].g.cfg
	data := streamData((n + 1) * cfg.K * cfg.FragmentSize)
	publish(t, context.Background(), p, data, 1<<20, 1000)
	time.Sleep(time.Second)
	var blocks []replayed
	g0 := m.members[0].g
	g0.mu.Lock()
	for _, b := range g0.st.blocks {
		if b.sm != nil && b.count == len(b.pieces) {
			ps := make([]fec.Piece, len(b.pieces))
			for i := range ps {
				ps[i] = b.piece(i)
			}
			blocks = append(blocks, replayed{b.sm, ps})
		}
	}
	g0.mu.Unlock()
	slices.SortFunc(blocks, func(a, b replayed) int { return int(a.sm.Manifest.Block) - int(b.sm.Manifest.Block) })
	if len(blocks) < n {
		t.Fatalf("the publisher holds %d whole blocks, want %d", len(blocks), n)
	}
	return blocks[:n], m.members[1].g, priv
}

// fakeLink adds a link with no session to x (x.mu held); the caller
// removes it (removeFake) before x closes.
func fakeLink(x *Group, id byte) *link {
	l := newLink(node.PeerID{id}, nil, nil, make([]*node.SendFlow, x.cfg.DataLanes+1), 4096)
	x.links[l.peer] = l
	x.st.linkAdded(l)
	return l
}

func removeFake(x *Group, ls ...*link) {
	for _, l := range ls {
		delete(x.links, l.peer)
		for c, p := range x.st.parents {
			if p == l {
				x.st.parents[c] = nil
			}
			if x.st.trying[c] == l {
				x.st.trying[c] = nil
			}
			if x.st.backup[c] == l {
				x.st.backup[c] = nil
			}
		}
	}
}

// holdOff keeps the links out of the running for the given push classes
// (every class if none), as an hour-long refusal does: the links a test
// does not want competing for a pusher's place.
func holdOff(now time.Time, links []*link, classes ...int) {
	for _, l := range links {
		if len(classes) == 0 {
			for k := range l.refused {
				l.refused[k] = now.Add(time.Hour)
			}
		}
		for _, k := range classes {
			l.refused[k] = now.Add(time.Hour)
		}
	}
}

// others returns x's links but those given.
func others(x *Group, not ...*link) []*link {
	var out []*link
	for _, l := range x.links {
		if !slices.Contains(not, l) {
			out = append(out, l)
		}
	}
	return out
}

// acceptTries has every neighbour asked to take a class (stream.trying)
// answer that it refuses none, as handleSubscribe does.
func acceptTries(s *stream, now time.Time) {
	for _, l := range s.trying {
		if l != nil {
			s.handleControl(l, &control{Type: ctlRefuse, Modulus: uint8(s.P), Ask: l.tryAsk}, now)
		}
	}
}

func TestHaveSkipsPushes(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		blocks, x := publishedBlocks(t, 3)
		a, b, c := blocks[0], blocks[1], blocks[2]
		x.mu.Lock()
		defer x.mu.Unlock()
		s := x.st
		from, to := fakeLink(x, 1), fakeLink(x, 2)
		defer removeFake(x, from, to)
		all := make([]byte, s.P)
		for i := range all {
			all[i] = byte(i)
		}
		s.handleSubscribe(to, &control{Type: ctlSubscribe, Classes: all, Modulus: uint8(s.P)})
		queued := func() (pushes map[uint64]int, msgs []outMsg) {
			pushes = make(map[uint64]int)
			for {
				m, ok := to.q.pop()
				if !ok {
					return pushes, msgs
				}
				if m.push {
					pushes[m.seq]++
				}
				msgs = append(msgs, m)
			}
		}
		queued() // the subscription's control messages
		now := time.Now()
		replay := func(h replayed) {
			s.handleManifest(from, h.sm, now)
			for _, pc := range h.pieces {
				s.handlePiece(from, pc, true, now)
			}
		}

		replay(a)
		pushes, msgs := queued()
		if got, want := pushes[a.sm.Manifest.Block], len(a.pieces); got != want {
			t.Fatalf("block without have: %d pieces pushed, want %d", got, want)
		}
		// The have arrives while they wait in the queue.
		s.handleHave(to, a.sm.Manifest.Block)
		sent := x.stats.Sent
		var back uint64
		wrong := 0
		x.mu.Unlock() // as in the send loop, which takes it only to count a skip
		for _, m := range msgs {
			if x.skipPush(to, m) != m.push {
				wrong++
			}
			if m.push {
				back += uint64(len(m.b))
			}
		}
		x.mu.Lock()
		if wrong > 0 {
			t.Fatalf("skipPush wrong for %d of %d queued messages", wrong, len(msgs))
		}
		if got := sent.Push + sent.Parity - x.stats.Sent.Push - x.stats.Sent.Parity; got != back || back == 0 {
			t.Errorf("skipped pushes took back %d bytes from Sent, want %d", got, back)
		}
		if x.stats.PushesSkipped != uint64(len(a.pieces)) {
			t.Errorf("PushesSkipped %d, want %d", x.stats.PushesSkipped, len(a.pieces))
		}

		// The have arrives before the block's pieces.
		s.handleManifest(from, b.sm, now)
		s.handleHave(to, b.sm.Manifest.Block)
		for _, pc := range b.pieces {
			s.handlePiece(from, pc, true, now)
		}
		if pushes, _ := queued(); pushes[b.sm.Manifest.Block] != 0 {
			t.Errorf("block after have: %d pieces pushed, want 0", pushes[b.sm.Manifest.Block])
		}
		if bb := s.blocks[b.sm.Manifest.Block]; bb == nil || bb.count != len(b.pieces) {
			t.Fatalf("member 1 does not hold block %d whole", b.sm.Manifest.Block)
		}
		// A member that rebuilds a block tells the pushers of the pieces
		// it lacks, once each.
		for k := range s.parents {
			s.parents[k] = nil
		}
		s.parents[0] = to // pieces 0 and 10: both arrive
		for k := range s.parents {
			if s.parents[k] == nil {
				s.parents[k] = from
			}
		}
		for len(from.q.buf) > from.q.head {
			from.q.pop()
		}
		s.handleManifest(from, c.sm, now)
		for _, pc := range c.pieces[:c.sm.Manifest.K] {
			s.handlePiece(from, pc, true, now)
		}
		var haves []uint64
		for {
			m, ok := from.q.pop()
			if !ok {
				break
			}
			if len(m.b) > 0 && m.b[0] == dataHave {
				seq, err := decodeHave(m.b)
				if err != nil {
					t.Fatal(err)
				}
				haves = append(haves, seq)
			}
		}
		if len(haves) != 1 || haves[0] != c.sm.Manifest.Block {
			t.Errorf("rebuilding block %d sent have messages %v to its other pusher, want one", c.sm.Manifest.Block, haves)
		}
		pushes, msgs = queued()
		for _, m := range msgs {
			if len(m.b) > 0 && m.b[0] == dataHave {
				t.Error("a pusher whose pieces all came was sent a have message")
			}
		}
		if pushes[c.sm.Manifest.Block] != len(c.pieces) {
			t.Errorf("block %d: %d pieces relayed (rebuilt ones too), want %d", c.sm.Manifest.Block, pushes[c.sm.Manifest.Block], len(c.pieces))
		}
		// A have for a block outside the window is ignored.
		s.handleHave(to, 1<<40)
		if to.whole[1<<40] {
			t.Error("a have outside the window was recorded")
		}
	})
}
