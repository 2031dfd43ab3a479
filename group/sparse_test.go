package group

import (
	"context"
	"crypto/ed25519"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// A sparse stream: a publisher that joins a formed group and writes a
// block at once (before any push tree reaches it), then nothing for
// longer than the window, then a last block. Every member outputs the
// stream from its first byte. Before members that had no manifest yet
// pulled what neighbours advertise, all but one of 60 started at the
// second block (passing the first over), 16 s late.
func TestSparseStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		link memnet.Link
	}{
		{"no loss", memnet.Link{Delay: 5 * time.Millisecond, Jitter: 5 * time.Millisecond}},
		{"5% loss", memnet.Link{Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.05}},
	} {
		t.Run(tc.name, func(t *testing.T) { sparseStream(t, tc.link) })
	}
}

func sparseStream(t *testing.T, link memnet.Link) {
	synctest.Test(t, func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "sparse", Multicast: true, PublisherKey: pub}
		m := newMesh(t, 60, link, spec, Config{}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		m.bootstrap(ctx)
		data := streamData(30720)
		m.subscribe(ctx, data)
		m.impair()
		pm := m.add(spec, Config{}, priv)
		if err := pm.g.Bootstrap(ctx, m.members[1].h.Self()); err != nil {
			t.Fatal(err)
		}
		p, err := pm.g.Publish()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Write(ctx, data[:16384]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(16 * time.Second)
		if _, err := p.Write(ctx, data[16384:]); err != nil {
			t.Fatal(err)
		}
		p.Close()
		res := m.collect(data, 10*time.Second, len(m.members)-1)
		if res.missing > 0 {
			t.Errorf("a member misses %.1f%% of the stream", res.missing*100)
		}
		if t.Failed() {
			m.diagLoad(t, len(data))
		}
	})
}
