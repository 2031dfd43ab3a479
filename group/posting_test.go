package group

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
	"github.com/strata-net/strata/overlay"
)

func TestPostingFloodsOnce(t *testing.T) {
	spec := Specifier{Name: "chat", Posting: true}
	m := newMesh(t, 12, memnet.Link{Delay: 5 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.02}, spec, Config{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m.bootstrap(ctx)
	m.impair()
	const posters, each = 3, 5
	for i := 0; i < posters; i++ {
		for j := 0; j < each; j++ {
			if err := m.members[i*5].g.Post(ctx, []byte(fmt.Sprintf("post %d/%d", i*5, j))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, mb := range m.members {
		want := posters * each
		if i%5 == 0 && i/5 < posters {
			want -= each // a member does not receive its own posts
		}
		got := make(map[string]int)
		for n := 0; n < want; n++ {
			p, err := mb.g.ReceivePost(ctx)
			if err != nil {
				t.Fatalf("member %d: got %d of %d posts: %v", i, n, want, err)
			}
			got[string(p.Payload)]++
		}
		for k, v := range got {
			if v != 1 {
				t.Errorf("member %d: %q delivered %d times", i, k, v)
			}
		}
		for j := 0; j < each; j++ {
			if i%5 != 0 || i/5 >= posters {
				if got[fmt.Sprintf("post 0/%d", j)] != 1 {
					t.Errorf("member %d: missing post 0/%d", i, j)
				}
			}
		}
		// Nothing more arrives: duplicates were dropped.
		short, c := context.WithTimeout(ctx, 300*time.Millisecond)
		if p, err := mb.g.ReceivePost(short); err == nil {
			t.Errorf("member %d: extra post %q", i, p.Payload)
		}
		c()
	}
	var dups uint64
	for _, mb := range m.members {
		dups += mb.g.Stats().PostDuplicates
	}
	if dups == 0 {
		t.Error("flooding over a mesh with cycles made no duplicates to drop: the test does not test de-duplication")
	}
	t.Logf("duplicates dropped: %d", dups)
}

func TestPostingNeedsOption(t *testing.T) {
	m := newMesh(t, 1, memnet.Link{}, Specifier{Name: "quiet", Multicast: true}, Config{}, nil)
	if err := m.members[0].g.Post(context.Background(), []byte("x")); err != ErrPostingDisabled {
		t.Fatalf("got %v, want ErrPostingDisabled", err)
	}
	if _, err := m.members[0].g.Publish(); err != nil {
		t.Fatalf("multicast group without publisher key: %v", err)
	}
}

func TestPostTooBig(t *testing.T) {
	m := newMesh(t, 1, memnet.Link{}, Specifier{Name: "big", Posting: true}, Config{}, nil)
	if err := m.members[0].g.Post(context.Background(), make([]byte, MaxPostSize+1)); err != ErrPostTooBig {
		t.Fatalf("got %v", err)
	}
}

// Members joined with other options are in other groups: they share
// nodes and sessions, but not posts.
func TestOptionsMakeOtherGroups(t *testing.T) {
	a := Specifier{Name: "room", Posting: true}
	b := Specifier{Name: "room", Posting: true, Multicast: true}
	if a.ID() == b.ID() {
		t.Fatal("specifiers with different options have one ID")
	}
	m := newMesh(t, 3, memnet.Link{Delay: time.Millisecond}, a, Config{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.bootstrap(ctx)
	// Members 0 and 1 also join b on the same hosts and muxes.
	var gb []*Group
	for _, mb := range m.members[:2] {
		g, err := Join(mb.h, b, Config{Mux: mb.mux, Overlay: overlay.LocalConfig()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		gb = append(gb, g)
	}
	if _, err := Join(m.members[0].h, a, Config{Mux: m.members[0].mux, Overlay: overlay.LocalConfig()}); err == nil {
		t.Fatal("joined the same group twice")
	}
	if err := gb[1].Bootstrap(ctx, overlay.Peer{PeerID: m.members[0].n.PeerID(), Addr: m.members[0].n.AddrPort()}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for gb[0].Stats().Neighbours == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := gb[0].Post(ctx, []byte("in b")); err != nil {
		t.Fatal(err)
	}
	p, err := gb[1].ReceivePost(ctx)
	if err != nil || string(p.Payload) != "in b" {
		t.Fatalf("b: %q %v", p.Payload, err)
	}
	for i, mb := range m.members {
		short, c := context.WithTimeout(ctx, 300*time.Millisecond)
		if p, err := mb.g.ReceivePost(short); err == nil {
			t.Errorf("member %d of a received %q posted in b", i, p.Payload)
		}
		c()
	}
}
