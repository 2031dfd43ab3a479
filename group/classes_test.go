package group

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// A stream is cut into no more push classes than a block has pieces: with
// K=4 and M=1 a member asking for 10 classes had five that no piece fell
// in, and their pushers, never seen fresh there, were changed all the time
// (36-106 changes per member in this 4 s stream, four runs, against 11-14
// with the classes cut to 5).
func TestClassesWithinBlock(t *testing.T) {
	if got := (Config{K: 4, M: 1}).withDefaults().PushNeighbourLimit; got != 5 {
		t.Errorf("PushNeighbourLimit %d with K=4 M=1, want 5", got)
	}
	if got := (Config{}).withDefaults().PushNeighbourLimit; got != DefaultPushNeighbourLimit {
		t.Errorf("PushNeighbourLimit %d by default, want %d", got, DefaultPushNeighbourLimit)
	}
	if got := (Config{PushNeighbourLimit: 64, K: 40, M: 10}).withDefaults().PushNeighbourLimit; got != maxClasses {
		t.Errorf("PushNeighbourLimit %d asked 64 with 50 pieces a block, want %d", got, maxClasses)
	}
	runVirtual(t, func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "classes", Multicast: true, PublisherKey: pub}
		cfg := Config{K: 4, M: 1}
		m := newMesh(t, 30, memnet.Link{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}, spec, cfg, priv)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		m.bootstrap(ctx)
		data := streamData(500_000)
		m.subscribe(ctx, data)
		m.streamWhole(ctx, data)
		var changes uint64
		for _, mb := range m.members[1:] {
			changes += mb.g.Stats().PusherChanges
		}
		if per := float64(changes) / float64(len(m.members)-1); per > 25 {
			t.Errorf("%.1f pusher changes per member in a 4 s stream", per)
		} else {
			t.Logf("%.1f pusher changes per member", per)
		}
	})
}
