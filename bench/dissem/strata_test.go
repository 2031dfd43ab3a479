package dissem

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/strata-net/strata/group"
	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
	"github.com/strata-net/strata/overlay"
)

type strataMember struct {
	conn *memnet.Conn
	n    *node.Node
	h    *overlay.Host
	g    *group.Group
}

// runStrata streams sc over Strata's group multicast: members on one
// memnet network, joined in waves of 8 through earlier members on 1 ms
// links, then every pair's link set to its delay and sc.loss before the
// publisher (member 0) starts.
func runStrata(t *testing.T, sc scenario) result {
	res := result{system: "strata", loss: sc.loss}
	if sc.sourceCopies > 0 {
		res.system += fmt.Sprintf(", publisher %d copies", sc.sourceCopies)
	}
	if sc.fecK > 0 || sc.fecM > 0 {
		res.system += fmt.Sprintf(", K=%d M=%d", sc.fecK, sc.fecM)
	}
	if sc.classes > 0 {
		res.system += fmt.Sprintf(", %d push classes", sc.classes)
	}
	if sc.fragment > 0 {
		res.system += fmt.Sprintf(", %d-byte fragments", sc.fragment)
	}
	if sc.relayCopies > 0 {
		res.system += fmt.Sprintf(", relays %d copies", sc.relayCopies)
	}
	if sc.carriers > 0 {
		res.system += fmt.Sprintf(", %d manifest carriers", sc.carriers)
	}
	if sc.wholeBlocks {
		res.system += ", whole blocks"
	}
	if sc.earlyFragments {
		res.system += ", early fragments"
	}
	if sc.allParity {
		res.system += ", all parity"
	}
	if sc.backupPushers {
		res.system += ", backup pushers"
	}
	pub, priv, err := ed25519.GenerateKey(rand.NewChaCha8([32]byte{byte(sc.seed)}))
	if err != nil {
		t.Fatal(err)
	}
	spec := group.Specifier{Name: "stream", Multicast: true, PublisherKey: pub}
	net := memnet.New(memnet.Config{Seed: sc.seed, Link: memnet.Link{Delay: time.Millisecond}})
	ms := make([]*strataMember, sc.members)
	for i := range ms {
		c, err := net.ListenAuto()
		if err != nil {
			t.Fatal(err)
		}
		nd, err := node.New(c, node.Config{KeepalivePeriod: time.Second, RetransmitLimit: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		mux := group.NewMux()
		h := overlay.NewHost(nd, overlay.HostConfig{OnFlow: mux.HandleFlow})
		cfg := group.Config{Mux: mux, Overlay: overlay.LocalConfig(), SourcePushCopies: sc.sourceCopies, ManifestCarriers: sc.carriers, K: sc.fecK, M: sc.fecM, WholeBlocks: sc.wholeBlocks, EarlyFragments: sc.earlyFragments, AllParity: sc.allParity, BackupPushers: sc.backupPushers, PushNeighbourLimit: sc.classes, FragmentSize: sc.fragment, RelayPushCopies: sc.relayCopies}
		if i == 0 {
			cfg.PublisherKey = priv
		}
		g, err := group.Join(h, spec, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = &strataMember{conn: c, n: nd, h: h, g: g}
	}
	if sc.delaysFirst {
		// The mesh forms on the stream's link delays (loss still
		// starts with the stream), as gossipsub's does.
		for i, a := range ms {
			for j, b := range ms {
				if i != j {
					net.SetLink(a.conn.LocalAddrPort().Addr(), b.conn.LocalAddrPort().Addr(), memnet.Link{Delay: sc.delay(i, j)})
				}
			}
		}
	}
	defer func() {
		var wg sync.WaitGroup
		for _, m := range ms {
			wg.Go(func() {
				m.g.Close()
				m.h.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				m.n.Close(ctx)
				cancel()
			})
		}
		wg.Wait()
		net.Close()
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Bootstrap in waves of 8, each member through a random member of
	// the earlier waves (all through one seed overloads its link limit).
	r := rand.New(rand.NewPCG(sc.seed, 3))
	for lo := 1; lo < len(ms); lo += 8 {
		var wg sync.WaitGroup
		for i := lo; i < min(lo+8, len(ms)); i++ {
			seed := ms[r.IntN(lo)].h.Self()
			wg.Go(func() {
				bctx, bcancel := context.WithTimeout(ctx, 30*time.Second)
				defer bcancel()
				if err := ms[i].g.Bootstrap(bctx, seed); err != nil {
					t.Errorf("member %d bootstrap: %v", i, err)
				}
			})
		}
		wg.Wait()
	}
	for _, m := range ms {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		m.g.Overlay().Refresh(rctx)
		rcancel()
	}
	for deadline := time.Now().Add(5*time.Second + time.Duration(len(ms))*50*time.Millisecond); ; {
		ok := true
		for _, m := range ms {
			ok = ok && m.g.Stats().Neighbours > 0
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("some member has no neighbour link")
		}
		time.Sleep(50 * time.Millisecond)
	}

	data := sc.data()
	wc := newWriteClock(sc.chunks())
	rs := make([]*receiver, len(ms)-1)
	var readers sync.WaitGroup
	for i, m := range ms[1:] {
		rcv := &receiver{}
		rs[i] = rcv
		sub, err := m.g.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		readers.Go(func() { readStrata(ctx, sub, data, sc.chunk, sc.perSecond(), wc, rcv) })
	}

	if !sc.delaysFirst && sc.settle > 0 {
		// The links get their delays first, so that round-trip
		// estimates are settled when the stream starts, as they are on
		// a real network (the mesh formed on 1 ms links, for speed).
		for i, a := range ms {
			for j, b := range ms {
				if i != j {
					net.SetLink(a.conn.LocalAddrPort().Addr(), b.conn.LocalAddrPort().Addr(), memnet.Link{Delay: sc.delay(i, j)})
				}
			}
		}
		time.Sleep(sc.settle)
	}
	// Loss starts with the stream, on a formed mesh.
	for i, a := range ms {
		for j, b := range ms {
			if i != j {
				net.SetLink(a.conn.LocalAddrPort().Addr(), b.conn.LocalAddrPort().Addr(),
					memnet.Link{Delay: sc.delay(i, j), Loss: sc.loss})
			}
		}
	}
	type counts struct{ group, wire uint64 }
	snap := func() (pubSent counts, recv []counts) {
		st := ms[0].g.Stats()
		pubSent = counts{st.Sent.Total(), ms[0].conn.Stats().SentBytes}
		for _, m := range ms[1:] {
			recv = append(recv, counts{m.g.Stats().Received.Total(), m.conn.Stats().ReceivedBytes})
		}
		return
	}
	pub0, recv0 := snap()
	// Pusher changes and pulls while the stream flows, per subscriber.
	churn := func() (changes, pulls uint64) {
		for _, m := range ms[1:] {
			st := m.g.Stats()
			changes += st.PusherChanges
			pulls += st.PullsSent
		}
		return
	}
	changes0, pulls0 := churn()

	p, err := ms[0].g.Publish()
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.pace(data, wc, func(_ int, b []byte) error { _, err := p.Write(ctx, b); return err }); err != nil {
		t.Fatal(err)
	}
	p.Sync()
	for deadline := time.Now().Add(sc.drain); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		done := true
		for _, m := range ms[1:] {
			st := m.g.Stats()
			done = done && st.BytesOut+st.BytesLost >= uint64(len(data))
		}
		if done {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // let readers take the last records
	pub1, recv1 := snap()
	cancel()
	readers.Wait()

	res.summarize(rs, len(data))
	var useful, got, wire float64
	var stamps []time.Duration
	for i, rcv := range rs {
		useful += float64(rcv.useful)
		got += float64(recv1[i].group - recv0[i].group)
		wire += float64(recv1[i].wire - recv0[i].wire)
		stamps = append(stamps, rcv.stamps...)
	}
	res.overhead = got / useful
	res.wire = wire / useful
	res.upload = float64(pub1.group-pub0.group) / float64(len(data))
	changes1, pulls1 := churn()
	res.note = "wire upload " + f2(float64(pub1.wire-pub0.wire)/float64(len(data))) +
		"; per subscriber: pusher changes " + f2(float64(changes1-changes0)/float64(len(rs))) +
		", pull requests " + f2(float64(pulls1-pulls0)/float64(len(rs)))
	res.stampP50, res.stampP99 = percentiles(stamps)
	if sc.backupPushers {
		var backups int
		for _, m := range ms[1:] {
			backups += m.g.Stats().BackupClasses
		}
		res.note += ", classes with a backup pusher " + f2(float64(backups)/float64(len(ms)-1))
	}
	var nb int
	for _, m := range ms {
		nb += m.g.Stats().Neighbours
	}
	res.neighbours = float64(nb) / float64(len(ms))
	return res
}

// readStrata takes sub's records until ctx ends: checks each against the
// published bytes, and times each chunk whose last byte it outputs.
func readStrata(ctx context.Context, sub *group.Subscription, data []byte, chunk, perSecond int, wc *writeClock, rcv *receiver) {
	for {
		rec, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if rec.IsGap() {
			continue
		}
		now := time.Now()
		lo, hi := int(rec.Offset), int(rec.Offset)+len(rec.Data)
		if hi > len(data) || !bytes.Equal(rec.Data, data[lo:hi]) {
			rcv.reject()
			continue
		}
		var lats []time.Duration
		first := -1
		// Chunks whose last byte is in [lo, hi).
		for c := lo / chunk; c*chunk < hi; c++ {
			end := min((c+1)*chunk, len(data))
			if end > lo && end <= hi {
				if first < 0 {
					first = c
				}
				lats = append(lats, wc.since(c, now))
			}
		}
		rcv.add(len(rec.Data), first, perSecond, lats...)
		rcv.mu.Lock()
		for range max(1, rec.Fragments) { // per fragment, as when blocks went out whole
			rcv.stamps = append(rcv.stamps, rec.Latency)
		}
		rcv.mu.Unlock()
	}
}
