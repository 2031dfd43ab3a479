package group

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
	"github.com/strata-net/strata/overlay"
)

var debugLat = os.Getenv("STRATA_DEBUGLAT") != ""

type member struct {
	c   net.PacketConn // the node's socket (closed under it to crash it)
	n   *node.Node
	h   *overlay.Host
	mux *Mux
	g   *Group
	sub *Subscription

	// The output is checked against the stream as it arrives rather than
	// kept: at thousands of members the outputs were most of the heap.
	mu     sync.Mutex
	outLen int      // bytes output, holes included
	holes  [][2]int // byte ranges of the output reported lost
	lats   []time.Duration
	// data records output and the fragments they held (blocks go out
	// in parts unless Config.WholeBlocks)
	records, fragments int
	gaps               uint64
	err                error
	eof                bool // Next returned io.EOF
}

type mesh struct {
	t       testing.TB
	net     *memnet.Network
	link    memnet.Link
	members []*member
	closed  sync.Once
}

// newMesh starts n members of the group spec on one memnet network; cfg
// is each member's Config (Mux is filled in), and member 0 gets pubKey.
func newMesh(t testing.TB, n int, link memnet.Link, spec Specifier, cfg Config, pubKey ed25519.PrivateKey) *mesh {
	t.Helper()
	return newMeshSeeded(t, n, link, spec, cfg, pubKey, 1)
}

// newMeshSeeded is newMesh on a network whose loss and delay draws come
// from seed.
func newMeshSeeded(t testing.TB, n int, link memnet.Link, spec Specifier, cfg Config, pubKey ed25519.PrivateKey, seed uint64) *mesh {
	t.Helper()
	return newMeshTick(t, n, link, spec, cfg, pubKey, seed, 0)
}

// newMeshTick is newMeshSeeded on a network that delivers on a grid of
// tick (memnet.Config.Tick; 0: exact times).
func newMeshTick(t testing.TB, n int, link memnet.Link, spec Specifier, cfg Config, pubKey ed25519.PrivateKey, seed uint64, tick time.Duration) *mesh {
	t.Helper()
	// The mesh forms on a perfect network; link impairments start with
	// the stream (startLinks), which is what the tests measure.
	m := &mesh{t: t, net: memnet.New(memnet.Config{Seed: seed, Link: memnet.Link{Delay: time.Millisecond}, Tick: tick}), link: link}
	t.Cleanup(m.close)
	for i := 0; i < n; i++ {
		var key ed25519.PrivateKey
		if i == 0 {
			key = pubKey
		}
		m.add(spec, cfg, key)
	}
	return m
}

// add starts one more member of spec on the mesh's network (not
// bootstrapped) with cfg and the publisher key key, and returns it.
func (m *mesh) add(spec Specifier, cfg Config, key ed25519.PrivateKey) *member {
	t := m.t
	t.Helper()
	c, err := m.net.ListenAuto()
	if err != nil {
		t.Fatal(err)
	}
	nd, err := node.New(c, node.Config{KeepalivePeriod: time.Second, RetransmitLimit: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mux := NewMux()
	h := overlay.NewHost(nd, overlay.HostConfig{OnFlow: mux.HandleFlow})
	cfg.Mux = mux
	if cfg.Overlay.RequestTimeout == 0 {
		cfg.Overlay = overlay.LocalConfig()
	}
	cfg.PublisherKey = key
	g, err := Join(h, spec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mb := &member{c: c, n: nd, h: h, mux: mux, g: g}
	m.members = append(m.members, mb)
	return mb
}

func (m *mesh) close() { m.closed.Do(m.closeNow) }

func (m *mesh) closeNow() {
	var wg sync.WaitGroup
	for _, mb := range m.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mb.g.Close()
			mb.h.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			mb.n.Close(ctx)
			cancel()
		}()
	}
	wg.Wait()
	m.net.Close()
}

func (m *mesh) parallel(width int, f func(i int, mb *member)) {
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for i, mb := range m.members {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i, mb)
		}()
	}
	wg.Wait()
}

// bootstrap joins everyone through member 0 and waits until every member
// has a neighbour link.
func (m *mesh) bootstrap(ctx context.Context) {
	// Members join in waves, each through a random member of the earlier
	// waves: all joining through one seed at once overloads the seed's
	// link limit (docs/overlay.md). Waves of 8, or n/32 in large groups
	// (1,000 members join in 32 waves instead of 125; every joined member
	// keeps refreshing its overlay table while later waves join).
	r := rand.New(rand.NewPCG(3, 3))
	wave := max(8, len(m.members)/32)
	for lo := 1; lo < len(m.members); lo += wave {
		hi := min(lo+wave, len(m.members))
		seeds := make([]int, hi-lo)
		for i := range seeds {
			seeds[i] = r.IntN(lo)
		}
		var wg sync.WaitGroup
		for i := lo; i < hi; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				seed := m.members[seeds[i-lo]].h.Self()
				if err := m.members[i].g.Bootstrap(ctx, seed); err != nil {
					m.t.Errorf("member %d bootstrap: %v", i, err)
				}
			}()
		}
		wg.Wait()
	}
	m.parallel(max(16, wave), func(i int, mb *member) { mb.g.Overlay().Refresh(ctx) })
	deadline := time.Now().Add(5*time.Second + time.Duration(len(m.members))*50*time.Millisecond)
	for time.Now().Before(deadline) {
		ok := true
		for _, mb := range m.members {
			if mb.g.Stats().Neighbours == 0 {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.t.Fatal("some member has no neighbour link")
}

// impair applies the mesh's link impairments from now on.
func (m *mesh) impair() { m.net.SetDefaultLink(m.link) }

// impairPairs gives every pair of members a link of its own: a fixed
// delay each way drawn once, uniformly in [Delay, Delay+Jitter], and the
// mesh link's loss; members added later get the mesh link.
func (m *mesh) impairPairs(seed uint64) {
	m.impair()
	d := m.pairDelays(seed)
	for i, a := range m.members {
		for j, b := range m.members[i+1:] {
			m.net.SetLinkBoth(a.n.AddrPort().Addr(), b.n.AddrPort().Addr(), memnet.Link{Delay: d[i][i+1+j], Loss: m.link.Loss})
		}
	}
}

// pairDelays is the one-way delay impairPairs(seed) gives each pair of
// members, indexed by member both ways.
func (m *mesh) pairDelays(seed uint64) [][]time.Duration {
	n := len(m.members)
	d := make([][]time.Duration, n)
	for i := range d {
		d[i] = make([]time.Duration, n)
	}
	r := rand.New(rand.NewPCG(seed, 0x9a1))
	for i := range n {
		for j := i + 1; j < n; j++ {
			v := m.link.Delay + time.Duration(r.Int64N(int64(m.link.Jitter)+1))
			d[i][j], d[j][i] = v, v
		}
	}
	return d
}

// subscribe starts collecting every member's output but the publisher's.
func (m *mesh) subscribe(ctx context.Context, data []byte) {
	for _, mb := range m.members[1:] {
		sub, err := mb.g.Subscribe()
		if err != nil {
			m.t.Fatal(err)
		}
		mb.sub = sub
		go func() {
			for {
				r, err := sub.Next(ctx)
				if err != nil {
					mb.mu.Lock()
					mb.eof = errors.Is(err, io.EOF)
					mb.mu.Unlock()
					return
				}
				mb.mu.Lock()
				if debugLat && mb == m.members[1] {
					fmt.Printf("off %d lat %v gap %v\n", r.Offset, r.Latency, r.IsGap())
				}
				switch {
				case r.IsGap():
					mb.gaps += r.Lost
				case uint64(mb.outLen) == r.Offset:
					mb.output(data, r.Data)
					mb.addLatency(r)
				case uint64(mb.outLen) < r.Offset && mb.gaps > 0:
					// The bytes between are what the gap lost.
					mb.holes = append(mb.holes, [2]int{mb.outLen, int(r.Offset)})
					mb.outLen = int(r.Offset)
					mb.output(data, r.Data)
					mb.addLatency(r)
				case mb.err == nil:
					mb.err = fmt.Errorf("record at offset %d after %d bytes", r.Offset, mb.outLen)
				}
				mb.mu.Unlock()
			}
		}()
	}
}

// streamWhole publishes data from the first member at 125 kB/s in
// 1000-byte writes, collects every output (8 s of drain) and fails the
// test if any member misses part of it.
func (m *mesh) streamWhole(ctx context.Context, data []byte) result {
	p, err := m.members[0].g.Publish()
	if err != nil {
		m.t.Fatal(err)
	}
	publish(m.t, ctx, p, data, 125_000, 1000)
	res := m.collect(data, 8*time.Second)
	if res.missing > 0 {
		m.t.Errorf("members miss %.3f%% of the stream", res.missing*100)
	}
	return res
}

// output checks b, the next bytes of the member's output, against the
// stream data.
func (mb *member) output(data, b []byte) {
	end := mb.outLen + len(b)
	if mb.err == nil && (end > len(data) || !bytes.Equal(b, data[mb.outLen:end])) {
		mb.err = fmt.Errorf("output differs from the published bytes in [%d, %d)", mb.outLen, end)
	}
	mb.outLen = end
}

// streamData is size bytes of seeded random data to publish.
func streamData(size int) []byte {
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return data
}

// publish writes data at rate bytes/s in chunks.
func publish(t testing.TB, ctx context.Context, p *Publisher, data []byte, rate, chunk int) {
	size := len(data)
	start := time.Now()
	for off := 0; off < size; off += chunk {
		end := min(off+chunk, size)
		if _, err := p.Write(ctx, data[off:end]); err != nil {
			t.Fatal(err)
		}
		due := start.Add(time.Duration(float64(end) / float64(rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
	}
	p.Sync()
}

type result struct {
	missing      float64 // worst member's fraction of bytes not output
	overhead     float64 // worst member's bytes received per useful byte
	meanOverhead float64
	upload       float64       // publisher bytes sent / bytes published
	p50, p99     time.Duration // worst member's
	poolP50      time.Duration // over every block at every member
	poolP99      time.Duration

	banned        uint64  // neighbours banned, over all members
	perRecord     float64 // data fragments per data record, over all members
	heapPerMember float64 // bytes, measurement runs only
	perPurpose    string  // received per useful byte by purpose

	// For the simulation report: every block output's latency, and per
	// subscriber the fraction of the stream output and the bytes received
	// and sent over the stream's bytes.
	lats                      []time.Duration
	delivered, recvBy, sentBy []float64
}

// collect waits until every subscriber output size bytes (or timeout) and
// measures.
func (m *mesh) collect(data []byte, timeout time.Duration, skip ...int) result {
	skipped := func(i int) bool { return slices.Contains(skip, i) }
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		done := true
		for i, mb := range m.members[1:] {
			if skipped(i + 1) {
				continue
			}
			mb.mu.Lock()
			if mb.outLen < len(data) && mb.g.Stats().BytesOut+mb.g.Stats().BytesLost < uint64(len(data)) {
				done = false
			}
			mb.mu.Unlock()
		}
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var res result
	var pool []time.Duration
	var sumOv float64
	var records, fragments int
	counted := 0
	for i, mb := range m.members[1:] {
		if skipped(i + 1) {
			continue
		}
		counted++
		st := mb.g.Stats()
		mb.mu.Lock()
		if mb.err != nil {
			m.t.Errorf("member %d: %v", i+1, mb.err)
		}
		lost := len(data) - mb.outLen
		for _, h := range mb.holes {
			lost += h[1] - h[0]
		}
		miss := float64(lost) / float64(len(data))
		if miss > 0.001 {
			m.t.Logf("member %d misses %d bytes: %d holes (%v), output %d of %d", i+1, lost, len(mb.holes), mb.holes, mb.outLen, len(data))
		}
		pool = append(pool, mb.lats...)
		records += mb.records
		fragments += mb.fragments
		mb.mu.Unlock()
		res.missing = max(res.missing, miss)
		useful := len(data) - lost
		res.delivered = append(res.delivered, 1-miss)
		res.recvBy = append(res.recvBy, float64(st.Received.Total())/float64(len(data)))
		res.sentBy = append(res.sentBy, float64(st.Sent.Total())/float64(len(data)))
		ov := float64(st.Received.Total()) / float64(max(useful, 1))

		sumOv += ov
		res.overhead = max(res.overhead, ov)
		res.p99 = max(res.p99, st.LatencyP99)
		res.p50 = max(res.p50, st.LatencyP50)
	}
	res.meanOverhead = sumOv / float64(max(counted, 1))
	res.perRecord = float64(fragments) / float64(max(records, 1))
	if len(pool) > 0 {
		slices.Sort(pool)
		res.lats = pool
		res.poolP50 = pool[len(pool)/2]
		res.poolP99 = pool[len(pool)*99/100]
	}
	var tot Traffic
	var dups, rebuilt, pulls, changes, shunned uint64
	for _, mb := range m.members[1:] {
		st := mb.g.Stats()
		tot.Push += st.Received.Push
		tot.Pull += st.Received.Pull
		tot.Parity += st.Received.Parity
		tot.Control += st.Received.Control
		dups += st.Duplicates
		rebuilt += st.Reconstructed
		pulls += st.PullsSent
		changes += st.PusherChanges
		shunned += st.PushersShunned
		res.banned += st.Banned
	}
	n := float64(len(data)) * float64(len(m.members)-1)
	res.perPurpose = fmt.Sprintf("%.2f / %.2f / %.2f / %.2f", float64(tot.Push)/n, float64(tot.Pull)/n, float64(tot.Parity)/n, float64(tot.Control)/n)
	m.t.Logf("received per useful byte: push %.3f pull %.3f parity %.3f control %.3f; per member: duplicates %d rebuilt %d pulls %d pusher changes %d shunned %d",
		float64(tot.Push)/n, float64(tot.Pull)/n, float64(tot.Parity)/n, float64(tot.Control)/n,
		dups/uint64(len(m.members)-1), rebuilt/uint64(len(m.members)-1), pulls/uint64(len(m.members)-1),
		changes/uint64(len(m.members)-1), shunned/uint64(len(m.members)-1))
	pub := m.members[0].g.Stats()
	res.upload = float64(pub.Sent.Total()) / float64(len(data))
	d := float64(len(data))
	m.t.Logf("publisher sent per published byte: push %.3f pull %.3f parity %.3f control %.3f (pulls served %d refused %d)",
		float64(pub.Sent.Push)/d, float64(pub.Sent.Pull)/d, float64(pub.Sent.Parity)/d, float64(pub.Sent.Control)/d, pub.PullsServed, pub.PullsRefused)
	return res
}

// addLatency records r's latency once per fragment it holds, so that a
// block output in parts weighs what it weighs output whole.
func (mb *member) addLatency(r Record) {
	mb.records++
	mb.fragments += r.Fragments
	for range max(1, r.Fragments) {
		mb.lats = append(mb.lats, r.Latency)
	}
}
