package group

import (
	"context"
	"crypto/ed25519"
	"os"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

func mustSpec(t testing.TB, s string) Specifier {
	t.Helper()
	sp, err := ParseSpecifier(s)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestStreamSmallMesh(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	spec := Specifier{Name: "small", Multicast: true, PublisherKey: pub}
	link := memnet.Link{Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.05}
	if os.Getenv("STRATA_NOLOSS") != "" {
		link.Loss = 0
	}
	cfg := Config{}
	if v := os.Getenv("STRATA_FETCH"); v != "" {
		d, _ := time.ParseDuration(v)
		cfg.FetchPeriod = d
	}
	if v := os.Getenv("STRATA_LANES"); v != "" {
		cfg.DataLanes, _ = strconv.Atoi(v)
	}
	m := newMesh(t, 20, link, spec, cfg, priv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m.bootstrap(ctx)
	m.subscribe(ctx)
	if debugLat {
		m.members[1].g.st.debug = func(s string) { fmt.Println(s) }
	}
	m.impair()
	p, err := m.members[0].g.Publish()
	if err != nil {
		t.Fatal(err)
	}
	data := publish(t, ctx, p, 1_000_000, 125_000, 1000)
	res := m.collect(data, 6*time.Second)
	t.Logf("missing %.4f%% overhead max %.3f mean %.3f upload %.2fx p50 %v p99 %v (worst member) pooled p50 %v p99 %v", res.missing*100, res.overhead, res.meanOverhead, res.upload, res.p50, res.p99, res.poolP50, res.poolP99)
	if res.missing > 0.1 {
		for _, mb := range m.members[1:3] {
			mb.g.mu.Lock()
			st := mb.g.st
			t.Logf("decoder %+v head %d low %d links %d", st.dec.Stats(), st.dec.Head(), st.low, len(mb.g.links))
			for k := 0; k < st.P; k++ {
				t.Logf("class %d my depth %d", k, st.myDepth(k))
			}
			for _, l := range mb.g.links {
				t.Logf("link %x depth %v newest %v refused %v subs %v late %v", l.peer[:2], l.depth, l.newest, l.refused[0].Sub(time.Now()), l.subs, l.late)
			}
			for seq := st.dec.Head(); seq < st.dec.Head()+6; seq++ {
				if b := st.blocks[seq]; b != nil {
					t.Logf("block %d sm %v count %d pending %d first %v", seq, b.sm != nil, b.count, len(b.pending), time.Since(b.first))
				}
			}
			mb.g.mu.Unlock()
		}
	}
	for i, mb := range m.members {
		st := mb.g.Stats()
		t.Logf("member %d: %+v", i, st)
		if i > 3 {
			break
		}
	}
}
