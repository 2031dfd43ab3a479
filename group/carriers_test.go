package group

import (
	"context"
	"crypto/ed25519"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// Which push classes carry a block's manifest: ManifestCarriers classes in
// a row from seq mod P, turning with the block; every class at P or more.
// A short block of n < P pieces has pieces in classes 0..n-1 only: its
// carriers are among those (they were chosen among all P, so blocks whose
// carriers held no piece had their manifest pushed by nobody, and at 100
// members and 64 kbit/s every member lost them when the publisher's pull
// share ran out).
func TestCarriesManifest(t *testing.T) {
	for _, c := range []struct {
		carriers int
		seq      uint64
		pieces   int   // in the block; 0 means 20 (K=16, M=4)
		want     []int // the carrying classes, of P = 10
	}{
		{1, 0, 0, []int{0}},
		{1, 13, 0, []int{3}},
		{2, 0, 0, []int{0, 1}},
		{2, 9, 0, []int{9, 0}},
		{2, 25, 0, []int{5, 6}},
		{4, 8, 0, []int{8, 9, 0, 1}},
		{10, 3, 0, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{32, 7, 0, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{2, 9, 10, []int{9, 0}},
		// short blocks: 1 data fragment + 4 parity, 2 + 4, 6 + 4
		{2, 6, 5, []int{1, 2}},
		{2, 7, 5, []int{2, 3}},
		{2, 9, 5, []int{4, 0}},
		{2, 6, 6, []int{0, 1}},
		{2, 8, 6, []int{2, 3}},
		{2, 11, 6, []int{5, 0}},
		{1, 9, 6, []int{3}},
		{10, 3, 6, []int{0, 1, 2, 3, 4, 5}},
		{2, 9, 9, []int{0, 1}},
		{2, 17, 9, []int{8, 0}},
		{2, 4, 1, []int{0}},
	} {
		if c.pieces == 0 {
			c.pieces = 20
		}
		cfg := Config{ManifestCarriers: c.carriers, PushNeighbourLimit: 10}.withDefaults()
		s := &stream{g: &Group{cfg: cfg}, P: cfg.PushNeighbourLimit}
		want := make(map[int]bool)
		for _, k := range c.want {
			want[k] = true
		}
		for k := range s.P {
			if got := s.carriesManifest(c.seq, k, c.pieces); got != want[k] {
				t.Errorf("carriers %d, block %d of %d pieces, class %d: carries %v, want %v", c.carriers, c.seq, c.pieces, k, got, want[k])
			}
		}
	}
}

// A low-rate stream: blocks close by BlockDelay with 2 fragments (6
// pieces of 10 classes). Every block's manifest comes down the push trees
// with its pieces, so the publisher answers (almost) no manifest pulls,
// and every member outputs the whole stream. Before the carriers of a
// short block were chosen among its own classes, three blocks in ten had
// no carrier: every member pulled their manifests from the publisher
// (about a third of its blocks times its neighbours), and at 100 members
// its pull share ran out and every member lost blocks.
func TestShortBlocksCarryManifests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res, src := lowRateStream(t, Config{})
		if res.missing > 0 {
			t.Errorf("a member misses %.2f%% of the stream", res.missing*100)
		}
		src.mu.Lock()
		pulled, blocks, links := src.st.pulledManifests, src.st.published-src.st.start, len(src.links)
		short := src.st.enc.Stats().ShortBlocks
		src.mu.Unlock()
		// A manifest of a 6-piece block is about 200 bytes.
		t.Logf("%d blocks (%d short), %d links; the publisher sent %d bytes of manifests for pulls", blocks, short, links, pulled)
		if short < blocks/2 {
			t.Fatalf("only %d of %d blocks were short: the scenario does not test short blocks", short, blocks)
		}
		if limit := uint64(blocks) * uint64(links) * 200 / 20; pulled > limit {
			t.Errorf("the publisher sent %d bytes of manifests for pulls (limit %d: a twentieth of its blocks to every neighbour)", pulled, limit)
		}
	})
}

// lowRateStream streams 64 kB at 64 kbit/s (blocks of 2 fragments) from a
// publisher with pubCfg to 30 members with the default Config, over links
// of 20-30 ms with 1 % loss, and returns the measures and the publisher's
// group. Run it inside synctest.Test.
func lowRateStream(t *testing.T, pubCfg Config) (result, *Group) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	spec := Specifier{Name: "low-rate", Multicast: true, PublisherKey: pub}
	m := newMesh(t, 30, memnet.Link{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01}, spec, Config{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m.bootstrap(ctx)
	data := streamData(64000)
	m.subscribe(ctx, data)
	pm := m.add(spec, pubCfg, priv)
	if err := pm.g.Bootstrap(ctx, m.members[1].h.Self()); err != nil {
		t.Fatal(err)
	}
	pm.g.Overlay().Refresh(ctx)
	time.Sleep(2 * time.Second) // links to the publisher
	m.impair()
	p, err := pm.g.Publish()
	if err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, p, data, 8000, 1000)
	return m.collect(data, 8*time.Second, len(m.members)-1), pm.g
}
