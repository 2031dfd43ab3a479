package group

import (
	"context"
	"crypto/ed25519"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// The publisher ends the stream: every subscriber outputs the whole
// stream, then Next returns io.EOF (within a second of the last byte);
// writes after Close fail; an end that is not the publisher's is dropped
// as forged and ends nothing. 15 members, 1 Mbit/s for 4 s, links of
// 10-20 ms with 5 % loss, on the virtual clock.
func TestEndOfStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "end", Multicast: true, PublisherKey: pub}
		link := memnet.Link{Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.05}
		m := newMesh(t, 15, link, spec, Config{}, priv)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		m.bootstrap(ctx)
		data := streamData(4 * 125_000)
		m.subscribe(ctx, data)
		m.impair()
		p, err := m.members[0].g.Publish()
		if err != nil {
			t.Fatal(err)
		}

		// A forged end, from a member that is not the publisher, midway.
		const forger = 4
		fg := m.members[forger].g
		go func() {
			time.Sleep(time.Second)
			fg.mu.Lock()
			c := &control{Type: ctlEnd, Count: 1, End: 1000, Stamp: time.Now().UnixNano(), Sig: make([]byte, ed25519.SignatureSize)}
			for _, l := range fg.links {
				fg.sendControl(l, c)
			}
			fg.mu.Unlock()
		}()

		publish(t, ctx, p, data, 125_000, 1000)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		closed := time.Now()
		if _, err := p.Write(ctx, []byte("late")); err != ErrStreamEnded {
			t.Errorf("write after Close: %v, want ErrStreamEnded", err)
		}
		res := m.collect(data, 5*time.Second, forger)
		if res.missing > 0 {
			t.Errorf("members miss %.3f%% of the stream", res.missing*100)
		}
		for time.Since(closed) < 5*time.Second {
			done := true
			for i, mb := range m.members[1:] {
				mb.mu.Lock()
				done = done && (mb.eof || i+1 == forger)
				mb.mu.Unlock()
			}
			if done {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		forged := uint64(0)
		for i, mb := range m.members[1:] {
			forged += mb.g.Stats().ForgedDropped
			if i+1 == forger {
				continue
			}
			mb.mu.Lock()
			if !mb.eof {
				t.Errorf("member %d: no io.EOF 5 s after the end (output %d of %d bytes)", i+1, mb.outLen, len(data))
			} else if mb.outLen != len(data) {
				t.Errorf("member %d: io.EOF after %d of %d bytes", i+1, mb.outLen, len(data))
			}
			mb.mu.Unlock()
		}
		if forged == 0 {
			t.Error("the forged end was not counted")
		}
		t.Logf("every member at io.EOF %v after Close; forged ends dropped: %d", time.Since(closed).Round(time.Millisecond), forged)
	})
}
