package group

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// startFor keeps a second of stream (and a run unit, the precision of a
// run's start) or StartMargin blocks, whichever is more, behind a member's
// first verified manifest, and never reaches before the run or maxAhead/4.
func TestStartFor(t *testing.T) {
	const run = uint64(1_000_000) // a run begun at 125 s after the epoch
	run0 := run << runShift
	began := int64(run) * int64(runUnit)
	sec := int64(time.Second)
	for _, c := range []struct {
		name   string
		margin int
		off    uint64 // the manifest's block, in its run
		age    int64  // its stamp, after the run began (ns)
		want   uint64 // the start, in the run
	}{
		{"young run, tiny blocks", 8, 12, sec * 4 / 10, 0},
		{"young run, default blocks", 8, 3, sec * 4 / 10, 0},
		{"a second and a unit old", 8, 34, int64(startSpan), 0},
		{"tiny blocks, 10 s in", 8, 300, 10 * sec, 300 - 33},
		{"default blocks, 10 s in", 8, 76, 10 * sec, 76 - 8},
		{"margin above the span", 20, 76, 10 * sec, 76 - 20},
		{"sparse stream, 20 s in", 8, 20, 20 * sec, 12},
		{"no margin, long stream", -1, 1000, 100 * sec, 1000 - 11},
		{"many blocks a second", 8, 100_000, 100 * sec, 100_000 - maxAhead/4},
		{"stamp before the run", 8, 5, -sec, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &stream{g: &Group{cfg: Config{StartMargin: c.margin}.withDefaults()}}
			if got := s.startFor(run0+c.off, began+c.age) - run0; got != c.want {
				t.Errorf("start %d, want %d", got, c.want)
			}
		})
	}
}

// A member whose first manifest comes late (cut off from every other
// member for the stream's first 500 ms) in a stream of tiny blocks (K=4:
// 30 a second at 1 Mbit/s) still outputs the stream from its first byte:
// its first manifest is of block 15 or later, and the 8-block margin alone
// started it there less 8 (a run checked: "record at offset 32768 after 0
// bytes", block 8).
func TestLateFirstManifestStartsAtFirstBlock(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "late-first-manifest", Multicast: true, PublisherKey: pub}
		m := newMesh(t, 12, memnet.Link{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}, spec, Config{K: 4, M: 1}, priv)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		m.bootstrap(ctx)
		data := streamData(250_000)
		m.subscribe(ctx, data)
		m.impair()
		far := m.members[len(m.members)-1]
		cut := func(l memnet.Link) {
			for _, mb := range m.members[:len(m.members)-1] {
				m.net.SetLinkBoth(far.n.AddrPort().Addr(), mb.n.AddrPort().Addr(), l)
			}
		}
		cut(memnet.Link{Loss: 1})
		time.AfterFunc(500*time.Millisecond, func() { cut(m.link) })
		m.streamWhole(ctx, data)
		far.mu.Lock()
		got := far.outLen
		far.mu.Unlock()
		if got != len(data) {
			t.Errorf("the far member output %d of %d bytes", got, len(data))
		}
	})
}
