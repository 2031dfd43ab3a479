package group

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
)

// runOutput follows one member's output across a publisher restart: the
// first run must be output from its first byte, then one Restarted
// record, then the second run from offset 0, each byte checked.
type runOutput struct {
	mu        sync.Mutex
	run       int    // 0: first run, 1: second
	out       [2]int // bytes output of each run
	restarted int    // Restarted records
	lost      uint64 // blocks reported lost (gaps and restarts)
	eof       bool
	err       error
}

func (o *runOutput) follow(ctx context.Context, sub *Subscription, runs [2][]byte) {
	for {
		r, err := sub.Next(ctx)
		o.mu.Lock()
		switch {
		case errors.Is(err, io.EOF):
			o.eof = true
		case err != nil:
		case r.Restarted:
			o.restarted++
			o.lost += r.Lost
			if o.run == 0 && r.Offset != uint64(o.out[0]) && o.err == nil {
				o.err = fmt.Errorf("restart record at offset %d after %d bytes", r.Offset, o.out[0])
			}
			o.run = 1
		case r.IsGap():
			o.lost += r.Lost
		case r.Offset != uint64(o.out[o.run]):
			if o.err == nil {
				o.err = fmt.Errorf("run %d: record at offset %d after %d bytes", o.run, r.Offset, o.out[o.run])
			}
		default:
			data, at := runs[o.run], o.out[o.run]
			if o.err == nil && (at+len(r.Data) > len(data) || !bytes.Equal(r.Data, data[at:at+len(r.Data)])) {
				o.err = fmt.Errorf("run %d: output differs from the published bytes in [%d, %d)", o.run, at, at+len(r.Data))
			}
			o.out[o.run] += len(r.Data)
		}
		o.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// The publisher crashes mid-stream (its socket closes under it) and the
// same key publishes again from a new node: members follow without
// restarting. Every subscriber outputs the whole first run, one Restarted
// record, the whole second run from offset 0, then io.EOF at its end. 15
// members, 1 Mbit/s, links of 10-20 ms with 1 % loss, virtual clock.
func TestPublisherRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"fragments with their blocks", Config{}},
		{"early fragments", Config{EarlyFragments: true}},
	} {
		t.Run(tc.name, func(t *testing.T) { testPublisherRestart(t, tc.cfg) })
	}
}

func testPublisherRestart(t *testing.T, cfg Config) {
	synctest.Test(t, func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "restart", Multicast: true, PublisherKey: pub}
		link := memnet.Link{Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01}
		m := newMesh(t, 15, link, spec, cfg, priv)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		m.bootstrap(ctx)
		var runs [2][]byte
		runs[0] = streamData(2 * 125_000)
		runs[1] = make([]byte, 3*125_000)
		rnd := rand.New(rand.NewPCG(9, 9))
		for i := range runs[1] {
			runs[1][i] = byte(rnd.Uint32())
		}
		outs := make([]*runOutput, len(m.members))
		for i, mb := range m.members[1:] {
			sub, err := mb.g.Subscribe()
			if err != nil {
				t.Fatal(err)
			}
			outs[i+1] = &runOutput{}
			go outs[i+1].follow(ctx, sub, runs)
		}
		m.impair()

		p, err := m.members[0].g.Publish()
		if err != nil {
			t.Fatal(err)
		}
		publish(t, ctx, p, runs[0], 125_000, 1000)
		p.Sync()
		time.Sleep(time.Second) // the last blocks spread
		m.members[0].c.Close()  // a crash: no end of stream
		time.Sleep(2 * time.Second)

		again := m.add(spec, cfg, priv)
		// Through several members, as a client with a bootstrap list
		// would: one of them can be busy with the links the crash broke.
		if err := again.g.Bootstrap(ctx, m.members[1].h.Self(), m.members[5].h.Self(), m.members[9].h.Self()); err != nil {
			t.Fatalf("the restarted publisher's bootstrap: %v", err)
		}
		for again.g.Stats().Neighbours == 0 {
			time.Sleep(50 * time.Millisecond)
		}
		p2, err := again.g.Publish()
		if err != nil {
			t.Fatal(err)
		}
		restartedAt := time.Now()
		publish(t, ctx, p2, runs[1], 125_000, 1000)
		if err := p2.Close(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			done := true
			for _, o := range outs[1:] {
				o.mu.Lock()
				done = done && o.eof
				o.mu.Unlock()
			}
			if done {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		for i, o := range outs[1:] {
			st := m.members[i+1].g.Stats()
			o.mu.Lock()
			if o.err != nil {
				t.Errorf("member %d: %v", i+1, o.err)
			}
			if o.out[0] != len(runs[0]) || o.out[1] != len(runs[1]) || o.restarted != 1 || !o.eof || o.lost != 0 {
				t.Errorf("member %d: first run %d of %d bytes, second %d of %d, %d restart records (want 1), %d blocks lost, EOF %v",
					i+1, o.out[0], len(runs[0]), o.out[1], len(runs[1]), o.restarted, o.lost, o.eof)
			}
			o.mu.Unlock()
			if st.Restarts != 1 || st.Banned != 0 {
				t.Errorf("member %d: Stats.Restarts %d (want 1), banned %d", i+1, st.Restarts, st.Banned)
			}
		}
		t.Logf("second run: %d bytes, every member at its end %v after the restarted publisher began", len(runs[1]), time.Since(restartedAt).Round(time.Millisecond))
	})
}

// A member whose first manifest is an old one (genuinely signed, replayed
// by a neighbour) anchors its output there, far behind the live stream;
// once a manifest of the live stream beyond its window comes, it moves to
// it and outputs the rest of the stream byte for byte. 8 members, blocks
// of 4 fragments (31 a second at 1 Mbit/s, so the stream is 256 blocks
// past the replayed one after 9 s).
func TestReplayedStartMovesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "replay", Multicast: true, PublisherKey: pub}
		cfg := Config{K: 4, M: 2}
		m := newMesh(t, 8, memnet.Link{Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond}, spec, cfg, priv)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		m.bootstrap(ctx)
		m.impair()
		data := streamData(14 * 125_000)
		p, err := m.members[0].g.Publish()
		if err != nil {
			t.Fatal(err)
		}
		published := make(chan struct{})
		go func() {
			defer close(published)
			publish(t, ctx, p, data, 125_000, 1000)
			p.Close()
		}()

		time.Sleep(500 * time.Millisecond)
		var old *signedManifest
		g0 := m.members[0].g
		g0.mu.Lock()
		for seq, b := range g0.st.blocks {
			if b.sm != nil && (old == nil || seq < old.Manifest.Block) {
				old = b.sm
			}
		}
		g0.mu.Unlock()
		if old == nil {
			t.Fatal("the publisher holds no block after 0.5 s")
		}

		time.Sleep(9500 * time.Millisecond)
		x := m.add(spec, cfg, nil)
		x.g.mu.Lock()
		x.g.st.handleManifest(newLink(node.PeerID{1}, nil, nil, nil, 1), old, time.Now())
		anchored, start := x.g.st.anchored, x.g.st.start
		x.g.mu.Unlock()
		if !anchored || start != old.Manifest.Block-min(old.Manifest.Block-runOf(old.Manifest.Block)<<runShift, uint64(DefaultStartMargin)) {
			t.Fatalf("the replayed manifest did not fix the start: anchored %v at %d (manifest of block %d)", anchored, start, old.Manifest.Block)
		}
		sub, err := x.g.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		if err := x.g.Bootstrap(ctx, m.members[1].h.Self()); err != nil {
			t.Fatal(err)
		}
		var first, end, holes uint64
		var bad error
		gap := false
		for {
			r, err := sub.Next(ctx)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("Next: %v", err)
				}
				if gap { // the last blocks were lost, and said so
					holes += uint64(len(data)) - end
					end = uint64(len(data))
				}
				break
			}
			if r.IsGap() {
				gap = true // the bytes up to the next record are lost, and said so
				continue
			}
			switch {
			case end == 0:
				first = r.Offset
			case r.Offset > end && gap:
				holes += r.Offset - end
			case r.Offset != end && bad == nil:
				bad = fmt.Errorf("record at offset %d after %d without a gap record", r.Offset, end)
			}
			gap = false
			if e := r.Offset + uint64(len(r.Data)); e > uint64(len(data)) || !bytes.Equal(r.Data, data[r.Offset:e]) {
				if bad == nil {
					bad = fmt.Errorf("output differs from the published bytes at [%d, %d)", r.Offset, e)
				}
			}
			end = r.Offset + uint64(len(r.Data))
		}
		<-published
		if bad != nil {
			t.Error(bad)
		}
		// After the move the member catches up on StartMargin blocks by
		// pulls; one its neighbours no longer hold is a reported gap.
		if end != uint64(len(data)) || first == 0 || holes*10 > end-first {
			t.Errorf("output [%d, %d) of %d bytes with %d bytes in reported gaps: want a suffix of the stream to its end, at least 90 %% of it", first, end, len(data), holes)
		}
		if st := x.g.Stats(); st.Restarts != 0 || st.Banned != 0 {
			t.Errorf("Restarts %d (a move within the run is not a restart), banned %d", st.Restarts, st.Banned)
		}
		t.Logf("anchored at block %d by the replay; output [%d, %d) of the stream, %d bytes in reported gaps", start, first, end, holes)
	})
}
