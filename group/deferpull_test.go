package group

import (
	"testing"
	"time"
)

// A member that relayed pieces of a block before its manifest (the
// publisher's own pushes, relay) is counted a holder by the children it
// relayed them to: a pull of the manifest or of pieces that reaches it
// before the manifest waits and is answered when the manifest comes. It
// used to be dropped, and the asker waited out its retry period (up to
// half the window) before asking again; in the churn scenario whole
// blocks were lost by every member that way.
func TestPullBeforeManifestAnswered(t *testing.T) {
	for _, tc := range []struct {
		name     string
		manifest bool // the pull asks for the manifest
		want     bool // and for the piece held
		sentBy   bool // we send the child the manifest before the pull is answered (carrier class)
		gone     bool // the asker's link closes before the manifest comes
		out      string
	}{
		{name: "manifest", manifest: true, out: "M"},
		{name: "manifest and piece", manifest: true, want: true, out: "MP"},
		{name: "piece", want: true, out: "P"},
		{name: "manifest already sent", manifest: true, want: true, sentBy: true, out: "MP"},
		{name: "asker gone", manifest: true, gone: true, out: ""},
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
					if s.carriesManifest(seq, i%s.P, n) == tc.sentBy {
						k = i
						break
					}
				}
				delete(s.blocks, seq)
				c.subs[k%s.P] = true
				p.authentic = true
				s.handleControl(p, &control{Type: ctlAvail, Node: proof(1)(priv, x)}, now)
				s.handlePiece(p, h.pieces[k], true, now)
				if got := drain(c); got != "P" {
					t.Fatalf("the early relay sent %q, want P", got)
				}
				want := make([]byte, (n+7)/8)
				if tc.want {
					setBit(want, k)
				}
				s.handlePull(c, &control{Type: ctlPull, Block: seq, Manifest: tc.manifest, Want: want})
				if got := drain(c); got != "" {
					t.Fatalf("before the manifest the asker got %q, want nothing yet", got)
				}
				if tc.gone {
					removeFake(x, c)
				}
				s.handleManifest(q, h.sm, now)
				if got := drain(c); got != tc.out {
					t.Errorf("after the manifest the asker got %q, want %q", got, tc.out)
				}
				if b := s.blocks[seq]; b == nil || len(b.deferred) != 0 {
					t.Errorf("deferred pulls left on the block: %v", b)
				}
			})
		})
	}
}

// manifestHolder asks a neighbour known to hold the manifest (it
// advertised the block) before the publisher, and the publisher before a
// neighbour that only sent pieces of the block (it may lack the manifest
// as we do); a neighbour that knows nothing of the block is never asked.
func TestManifestHolder(t *testing.T) {
	for _, tc := range []struct {
		name       string
		advertiser bool // a neighbour advertised the block
		publisher  bool // the publisher is a neighbour
		pieces     bool // a neighbour sent pieces of the block
		want       string
	}{
		{"advertiser first", true, true, true, "advertiser"},
		{"publisher before piece holder", false, true, true, "publisher"},
		{"piece holder", false, false, true, "pieces"},
		{"nobody", false, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runVirtual(t, func(t *testing.T) {
				blocks, x := publishedBlocks(t, 1)
				x.mu.Lock()
				defer x.mu.Unlock()
				s := x.st
				for _, l := range x.links {
					removeFake(x, l) // the real publisher's link
				}
				h := blocks[0]
				seq, n := h.sm.Manifest.Block, len(h.pieces)
				now := time.Now()
				names := map[*link]string{}
				var ls []*link
				add := func(id byte, name string) *link {
					l := fakeLink(x, id)
					names[l], ls = name, append(ls, l)
					return l
				}
				defer func() { removeFake(x, ls...) }()
				add(9, "stranger")
				if tc.pieces {
					add(4, "pieces").learn(seq, 0)
				}
				if tc.publisher {
					pl := add(5, "publisher")
					s.handleControl(pl, &control{Type: ctlAvail, Source: true, Depth: make([]byte, s.P)}, now)
				}
				if tc.advertiser {
					m := make([]byte, (n+7)/8)
					setBit(m, 1)
					s.handleControl(add(6, "advertiser"), &control{Type: ctlAvail, Block: seq, Depth: make([]byte, s.P), Maps: [][]byte{m}}, now)
				}
				for range 20 { // the choice among equals is random
					l := s.manifestHolder(seq, now)
					if got := names[l]; got != tc.want {
						t.Fatalf("asked %q for the manifest, want %q", got, tc.want)
					}
				}
			})
		})
	}
}
