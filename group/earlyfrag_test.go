package group

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/strata-net/strata/fec"
	"github.com/strata-net/strata/node/memnet"
)

// TestFragmentsBeforeTheirBlock streams six blocks and then half of a
// seventh, and stops writing, with a BlockDelay far away: with
// Config.EarlyFragments every member outputs the open block's eight full
// fragments (through relays: a mesh of 8) long before it closes; without
// it, nothing of that block comes out until then. Virtual clock.
//
// The six blocks first: before the stream, idle push trees can hold a
// routing loop in a class (docs/group.md, "Trees before the stream"),
// which the stream's freshness breaks; a fragment sent into one waits for
// its block (and pulls) like any piece.
func TestFragmentsBeforeTheirBlock(t *testing.T) {
	for _, tc := range []struct {
		name  string
		early bool
		want  int // bytes out at every member before the block closes
	}{
		{"early fragments", true, 8 * DefaultFragmentSize},
		{"fragments with their block", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runVirtual(t, func(t *testing.T) {
				pub, priv, _ := ed25519.GenerateKey(nil)
				spec := Specifier{Name: "early", Multicast: true, PublisherKey: pub}
				cfg := Config{EarlyFragments: tc.early, BlockDelay: 5 * time.Second}
				m := newMesh(t, 8, memnet.Link{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}, spec, cfg, priv)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				m.bootstrap(ctx)
				const closed = 6 * DefaultK * DefaultFragmentSize
				data := streamData(closed + 8*DefaultFragmentSize + 500) // and a partial fragment
				m.subscribe(ctx, data)
				m.impair()
				p, err := m.members[0].g.Publish()
				if err != nil {
					t.Fatal(err)
				}
				for off := 0; off < len(data); off += 1000 { // 1 Mbit/s, no Sync
					if _, err := p.Write(ctx, data[off:min(off+1000, len(data))]); err != nil {
						t.Fatal(err)
					}
					time.Sleep(8 * time.Millisecond)
				}
				time.Sleep(time.Second) // the open block closes 5 s after its first byte
				var early uint64
				for i, mb := range m.members[1:] {
					early += mb.g.Stats().EarlyFragments
					mb.mu.Lock()
					got, err := mb.outLen, mb.err
					mb.mu.Unlock()
					if err != nil || got-closed != tc.want {
						t.Errorf("member %d: %d bytes of the open block out before it closed, want %d (%v)", i+1, got-closed, tc.want, err)
					}
				}
				if tc.early != (early > 0) {
					t.Errorf("%d fragments taken before their block's manifest", early)
				}
				// Then the block closes and everything comes out.
				p.Sync()
				res := m.collect(data, 3*time.Second)
				if res.missing > 0 {
					t.Errorf("a member misses %.3f%% of the stream", res.missing*100)
				}
			})
		})
	}
}

// TestEarlyFragmentsStream runs TestBlocksOutputInParts's stream (12
// members, 2 % loss, 1 Mbit/s) with Config.EarlyFragments: every byte
// arrives (run's checks), the bytes received stay within the default's
// bound plus the fragments' own overhead (run's limit), and most data
// fragments were taken before their block's manifest.
func TestEarlyFragmentsStream(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		sc := partsScenario(Config{EarlyFragments: true})
		sc.check = func(t *testing.T, m *mesh, res result) {
			fragments := float64(400_000/DefaultFragmentSize) * float64(len(m.members)-1)
			var early uint64
			for _, mb := range m.members[1:] {
				early += mb.g.Stats().EarlyFragments
			}
			t.Logf("%.0f%% of the data fragments taken before their block's manifest; %.2f fragments per data record", 100*float64(early)/fragments, res.perRecord)
			// 15 of a block's 16 fragments can go early (the 16th
			// closes the block); loss and pulls take some.
			if float64(early) < 0.6*fragments {
				t.Errorf("%d of %.0f fragments taken before their block's manifest", early, fragments)
			}
		}
		sc.run(t)
	})
}

// fragmentOverhead is how many bytes a fragment sent before its block
// closed costs on the wire beyond the same data sent as a piece.
const fragmentOverhead = fragmentHeaderLen + ed25519.SignatureSize - (2 + fec.PieceHeaderSize)

func TestFragmentMessage(t *testing.T) {
	f := &fragment{p: fec.Piece{Block: 1<<40 + 3, Offset: 123456, Index: 7, Data: bytes.Repeat([]byte{0xab}, 1024)}, stamp: 1_700_000_000_123, sig: bytes.Repeat([]byte{1}, 64)}
	msg := appendFragmentMsg(nil, f)
	if len(msg) != fragmentHeaderLen+64+1024 {
		t.Fatalf("message of %d bytes", len(msg))
	}
	got, err := decodeFragment(msg)
	if err != nil {
		t.Fatal(err)
	}
	if got.p.Block != f.p.Block || got.p.Offset != f.p.Offset || got.p.Index != f.p.Index || got.p.K != 0 || got.stamp != f.stamp || !bytes.Equal(got.sig, f.sig) || !bytes.Equal(got.p.Data, f.p.Data) {
		t.Fatalf("decoded %+v", got)
	}
	for _, tt := range []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"another type", append([]byte{dataPiece}, msg[1:]...)},
		{"short header", msg[:fragmentHeaderLen-1]},
		{"no data", msg[:fragmentHeaderLen+64]},
		{"signature of 63 bytes", func() []byte { b := append([]byte(nil), msg...); b[26] = 63; return b }()},
		{"signature longer than the message", func() []byte { b := append([]byte(nil), msg[:fragmentHeaderLen+10]...); return b }()},
		{"data too long", append(append([]byte(nil), msg[:fragmentHeaderLen+64]...), make([]byte, fec.MaxFragmentSize+1)...)},
	} {
		if _, err := decodeFragment(tt.msg); err == nil {
			t.Errorf("%s: decoded", tt.name)
		}
	}
	// Signed: any change breaks the signature.
	pub, priv, _ := ed25519.GenerateKey(nil)
	spec := Specifier{Name: "frag", Multicast: true, PublisherKey: pub}
	gid := spec.ID()
	f.sig = ed25519.Sign(priv, fragmentSigningBytes(gid, f))
	if !verifyFragment(spec, gid, f) {
		t.Fatal("the publisher's signature does not verify")
	}
	for _, change := range []func(g *fragment){
		func(g *fragment) { g.p.Block++ },
		func(g *fragment) { g.p.Offset++ },
		func(g *fragment) { g.p.Index++ },
		func(g *fragment) { g.stamp++ },
		func(g *fragment) { g.p.Data = append([]byte{1}, g.p.Data[1:]...) },
	} {
		g := *f
		change(&g)
		if verifyFragment(spec, gid, &g) {
			t.Errorf("a changed fragment verifies: %+v", g.p)
		}
	}
	other := Specifier{Name: "frag2", Multicast: true, PublisherKey: pub}
	if verifyFragment(other, other.ID(), f) {
		t.Error("a fragment of another group verifies")
	}
}

func FuzzDecodeFragment(f *testing.F) {
	fr := &fragment{p: fec.Piece{Block: 9, Offset: 1000, Index: 2, Data: []byte("fragment data")}, stamp: 5, sig: make([]byte, 64)}
	f.Add(appendFragmentMsg(nil, fr))
	fr.sig = nil
	f.Add(appendFragmentMsg(nil, fr))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeFragment(b)
		if err != nil {
			return
		}
		if !bytes.Equal(appendFragmentMsg(nil, got), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}
