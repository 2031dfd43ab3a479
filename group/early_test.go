package group

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/strata-net/strata/node"
)

// A piece pushed by the publisher's own node, proven by the publisher's
// signature over the node's peer ID, is relayed at once, before its
// block's manifest; the manifest follows to subscribers of a carrier
// class once it comes. A piece from any other neighbour waits for the
// manifest, a node signature that names another peer bans its sender, and
// one that comes over a session that does not authenticate the sender's
// peer ID (an ephemeral certificate) proves nothing.
func TestEarlyRelayFromPublisherNode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sign    func(priv ed25519.PrivateKey, x *Group) []byte // nil: no Node signature
		early   bool
		forged  bool
		carrier bool // the piece's class carries the block's manifest
		anon    bool // the session does not authenticate the sender's peer ID
	}{
		{"proven, carrier class", proof(1), true, false, true, false},
		{"proven, other class", proof(1), true, false, false, false},
		{"not proven", nil, false, false, false, false},
		{"signature for another node", proof(9), false, true, false, false},
		{"peer ID not authenticated", proof(1), false, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runVirtual(t, func(t *testing.T) {
				blocks, x, priv := publishedBlocksKey(t, 1)
				x.mu.Lock()
				defer x.mu.Unlock()
				s := x.st
				p, c, q := fakeLink(x, 1), fakeLink(x, 2), fakeLink(x, 3)
				defer removeFake(x, p, c, q)
				now := time.Now()
				h := blocks[0]
				seq, n := h.sm.Manifest.Block, len(h.pieces)
				k := -1
				for i := range h.pieces {
					if s.carriesManifest(seq, i%s.P, n) == tc.carrier {
						k = i
						break
					}
				}
				// x has not seen the block: forget what the real
				// publisher sent it.
				delete(s.blocks, seq)
				c.subs[k%s.P] = true
				p.authentic = !tc.anon
				if tc.sign != nil {
					s.handleControl(p, &control{Type: ctlAvail, Node: tc.sign(priv, x)}, now)
				}
				if got := x.stats.ForgedDropped > 0 && x.isBanned(p.peer); got != tc.forged {
					t.Fatalf("sender banned for a forged node signature: %v, want %v", got, tc.forged)
				}
				if tc.forged {
					return
				}
				s.handlePiece(p, h.pieces[k], true, now)
				before := drain(c)
				if want := map[bool]string{true: "P", false: ""}[tc.early]; before != want {
					t.Errorf("before the manifest the child got %q, want %q", before, want)
				}
				if x.stats.EarlyRelayed != map[bool]uint64{true: 1, false: 0}[tc.early] {
					t.Errorf("EarlyRelayed %d", x.stats.EarlyRelayed)
				}
				s.handleManifest(q, h.sm, now)
				after := drain(c)
				want := "P"
				switch {
				case tc.early && tc.carrier:
					want = "M" // the piece went before
				case tc.early:
					want = ""
				case tc.carrier:
					want = "MP"
				}
				if after != want {
					t.Errorf("after the manifest the child got %q, want %q", after, want)
				}
			})
		})
	}
}

// proof signs the node signature for the peer ID {id}.
func proof(id byte) func(ed25519.PrivateKey, *Group) []byte {
	return func(priv ed25519.PrivateKey, x *Group) []byte {
		return ed25519.Sign(priv, nodeSigningBytes(x.id, node.PeerID{id}))
	}
}

// drain empties l's queue and returns its data messages in order: M for a
// manifest, P for a piece.
func drain(l *link) string {
	var out string
	for {
		m, ok := l.q.pop()
		if !ok {
			return out
		}
		if m.data {
			out += map[byte]string{dataManifest: "M", dataPiece: "P"}[m.b[0]]
		}
	}
}
