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
	"github.com/strata-net/strata/overlay"
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
	gapAt  uint64 // offset of the first gap record
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
				if tl.gaps == 0 {
					tl.gapAt = r.Offset
				}
				tl.gaps += r.Lost
			case tl.gaps > 0:
				// After a gap the offsets jump: what was lost is the
				// error reported (check).
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

// waitTails waits up to d for every tail to reach the end of a stream of
// size bytes (members that joined late may still be catching up).
func waitTails(tails []*tail, size int, d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		done := true
		for _, tl := range tails {
			done = done && tl.end() >= uint64(size)
		}
		if done {
			return
		}
	}
}

// check reports what is wrong with tl's output of data, published at rate
// bytes a second: it must start within a window of subscribing and within
// a window's worth of bytes of the live edge, have no gap, and be the
// stream's bytes from there to its end. It reports whether all is well.
func (tl *tail) check(t *testing.T, name string, data []byte, rate int) bool {
	t.Helper()
	window := Config{}.withDefaults().WindowDuration
	windowBytes := uint64(window.Seconds() * float64(rate))
	tl.mu.Lock()
	defer tl.mu.Unlock()
	switch {
	case !tl.got:
		g := tl.member.g
		t.Errorf("%s: no output; overlay %d neighbours, table %d; stats %+v", name, len(g.Overlay().Neighbours()), g.Overlay().Table().Size(), g.Stats())
	case tl.gaps > 0:
		t.Errorf("%s: %d blocks reported lost, the first at offset %d", name, tl.gaps, tl.gapAt)
	case tl.err != nil:
		t.Errorf("%s: %v", name, tl.err)
	case tl.delay > window:
		t.Errorf("%s: first record %v after subscribing (limit %v)", name, tl.delay, window)
	case tl.start+windowBytes < tl.edge || tl.start > tl.edge+windowBytes:
		t.Errorf("%s: output starts at offset %d, live edge was %d (limit ±%d)", name, tl.start, tl.edge, windowBytes)
	case tl.start+uint64(tl.out.Len()) != uint64(len(data)):
		t.Errorf("%s: output [%d, %d) does not end at the stream's end %d", name, tl.start, tl.start+uint64(tl.out.Len()), len(data))
	case !bytes.Equal(tl.out.Bytes(), data[tl.start:]):
		t.Errorf("%s: output differs from the published bytes [%d, %d)", name, tl.start, len(data))
	default:
		return true
	}
	return false
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
					// LocalConfig's dials give up after 1 s, when RTMFP
					// first retransmits a lost handshake packet: 1-3
					// bootstrap attempts failed in each 80 runs, and
					// three in a row (once in 240) left the joiner too
					// little of its window to start. 2.5 s lets one
					// retransmission through (none failed in 80 runs).
					cfg := Config{Overlay: overlay.LocalConfig()}
					cfg.Overlay.DialTimeout = 2500 * time.Millisecond
					mb = m.add(spec, cfg, nil)
				}
				tails[i].follow(ctx, t, mb, edge)
				if c.join {
					// A bootstrap can still fail under 5 % loss: try
					// other seeds.
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
		waitTails(tails, len(data), 6*time.Second)
		for i, c := range cases {
			tl := tails[i]
			tl.mu.Lock()
			t.Logf("%s: subscribed at offset %d, first record after %v at offset %d, %d bytes out, %d blocks lost; stats %+v",
				c.name, tl.edge, tl.delay.Round(time.Millisecond), tl.start, tl.out.Len(), tl.gaps, tl.member.g.Stats())
			tl.mu.Unlock()
			tl.check(t, c.name, data, rate)
		}
	})
	t.Logf("%v of real time", time.Since(wall).Round(time.Millisecond))
}
