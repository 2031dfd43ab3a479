package group

import (
	"context"
	"crypto/ed25519"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// A publisher with ShortParity streams at 64 kbit/s (blocks of 2
// fragments) to members with the default setting: they accept its blocks
// of 1 parity piece, output the whole stream, and receive far fewer bytes
// per useful byte than the 3.7 of M=4 parity pieces per short block.
func TestShortParityStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "short-parity", Multicast: true, PublisherKey: pub}
		m := newMesh(t, 30, memnet.Link{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01}, spec, Config{}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		m.bootstrap(ctx)
		data := streamData(64000)
		m.subscribe(ctx, data)
		pm := m.add(spec, Config{ShortParity: true}, priv)
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
		res := m.collect(data, 8*time.Second, len(m.members)-1)
		if res.missing > 0 {
			t.Errorf("a member misses %.2f%% of the stream", res.missing*100)
		}
		pm.g.mu.Lock()
		st := pm.g.st.enc.Stats()
		pm.g.mu.Unlock()
		t.Logf("%d blocks (%d short), %d parity pieces; members received %.3f bytes per useful byte (mean)", st.Blocks, st.ShortBlocks, st.ParityPieces, res.meanOverhead)
		if st.ShortBlocks < st.Blocks/2 || st.ParityPieces > st.Blocks+st.Blocks/4 {
			t.Errorf("%d of %d blocks short, %d parity pieces: want mostly short blocks of 1 parity piece", st.ShortBlocks, st.Blocks, st.ParityPieces)
		}
		if res.meanOverhead > 2.6 {
			t.Errorf("members received %.3f bytes per useful byte (limit 2.6; about 3.7 with M parity pieces per short block)", res.meanOverhead)
		}
	})
}
