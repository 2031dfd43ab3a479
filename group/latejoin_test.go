package group

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// tail is the output of a member that subscribed mid-stream, checked from
// its first record on.
type tail struct {
	mu     sync.Mutex
	since  time.Time     // when it subscribed
	edge   uint64        // bytes published by then
	delay  time.Duration // from subscribing to the first record
	boot   time.Duration // bootstrap time (churn test)
	start  uint64        // offset of the first record
	got    bool
	out    bytes.Buffer
	gaps   uint64
	err    error
	member *member
}

// follow subscribes mb now and records its output until ctx ends or the
// group closes.
func (tl *tail) follow(ctx context.Context, t testing.TB, mb *member, edge uint64) {
	sub, err := mb.g.Subscribe()
	if err != nil {
		t.Error(err)
		return
	}
	tl.mu.Lock()
	tl.since, tl.edge, tl.member = time.Now(), edge, mb
	tl.mu.Unlock()
	go func() {
		for {
			r, err := sub.Next(ctx)
			if err != nil {
				return
			}
			tl.mu.Lock()
			if !tl.got {
				tl.got, tl.start, tl.delay = true, r.Offset, time.Since(tl.since)
			}
			switch {
			case r.IsGap():
				tl.gaps += r.Lost
			case tl.start+uint64(tl.out.Len()) == r.Offset:
				tl.out.Write(r.Data)
			case tl.err == nil:
				tl.err = fmt.Errorf("record at offset %d after %d bytes from %d", r.Offset, tl.out.Len(), tl.start)
			}
			tl.mu.Unlock()
		}
	}()
}

func (tl *tail) end() uint64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.start + uint64(tl.out.Len())
}

// A member that subscribes 5 s into a stream, and a node that joins the
// group then, each output within a window of subscribing a contiguous
// suffix of the stream that starts within a window's worth of bytes of
// the live edge and ends at the stream's end, with no gap: 20 members,
// 1 Mbit/s, links of 10-20 ms with 5 % loss, on the virtual clock.
func TestLateStart(t *testing.T) {
	const (
		members = 19 // and the one that joins late
		rate    = 125_000
		size    = 10 * rate
		lateAt  = 5 * time.Second
	)
	cases := []struct {
		name string
		join bool // a new node that bootstraps late; else a member that subscribes late
	}{
		{name: "late subscriber"},
		{name: "late joiner", join: true},
	}
	wall := time.Now()
	synctest.Test(t, func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "late", Multicast: true, PublisherKey: pub}
		link := memnet.Link{Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.05}
		m := newMesh(t, members, link, spec, Config{}, priv)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m.bootstrap(ctx)
		m.impair()
		p, err := m.members[0].g.Publish()
		if err != nil {
			t.Fatal(err)
		}
		tails := make([]*tail, len(cases))
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(lateAt)
			edge := m.members[0].g.Stats().BytesPublished
			for i, c := range cases {
				tails[i] = &tail{}
				mb := m.members[1+i]
				if c.join {
					mb = m.add(spec, Config{}, nil)
				}
				tails[i].follow(ctx, t, mb, edge)
				if c.join {
					// A handshake can fail under 5 % loss (the overlay's
					// dial timeout is a second here): try other seeds.
					var err error
					for try := range 5 {
						if err = mb.g.Bootstrap(ctx, m.members[2+i+try].h.Self()); err == nil {
							break
						}
						t.Logf("%s: bootstrap: %v", c.name, err)
					}
					if err != nil {
						t.Errorf("%s: bootstrap: %v", c.name, err)
					}
					mb.g.Overlay().Refresh(ctx)
				}
			}
		}()
		data := streamData(size)
		publish(t, ctx, p, data, rate, 1000)
		wg.Wait()
		for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			done := true
			for _, tl := range tails {
				done = done && tl.end() >= uint64(len(data))
			}
			if done {
				break
			}
		}

		window := Config{}.withDefaults().WindowDuration
		windowBytes := uint64(window.Seconds() * rate)
		for i, c := range cases {
			tl := tails[i]
			tl.mu.Lock()
			st := tl.member.g.Stats()
			t.Logf("%s: subscribed at offset %d, first record after %v at offset %d, %d bytes out, %d blocks lost; stats %+v",
				c.name, tl.edge, tl.delay.Round(time.Millisecond), tl.start, tl.out.Len(), tl.gaps, st)
			switch {
			case !tl.got:
				t.Errorf("%s: no output", c.name)
			case tl.err != nil:
				t.Errorf("%s: %v", c.name, tl.err)
			case tl.delay > window:
				t.Errorf("%s: first record %v after subscribing (limit %v)", c.name, tl.delay, window)
			case tl.start+windowBytes < tl.edge || tl.start > tl.edge+windowBytes:
				t.Errorf("%s: output starts at offset %d, live edge was %d (limit ±%d)", c.name, tl.start, tl.edge, windowBytes)
			case tl.gaps > 0:
				t.Errorf("%s: %d blocks reported lost", c.name, tl.gaps)
			case tl.start+uint64(tl.out.Len()) != uint64(len(data)):
				t.Errorf("%s: output [%d, %d) does not end at the stream's end %d", c.name, tl.start, tl.start+uint64(tl.out.Len()), len(data))
			case !bytes.Equal(tl.out.Bytes(), data[tl.start:]):
				t.Errorf("%s: output differs from the published bytes [%d, %d)", c.name, tl.start, len(data))
			}
			tl.mu.Unlock()
		}
	})
	t.Logf("%v of real time", time.Since(wall).Round(time.Millisecond))
}
