package dissem

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"
)

// gossipConnects is how many random other members each gossipsub member
// dials (go-libp2p-pubsub's own tests' connectSome): about twice that many
// connections per member, enough for the mesh degree D = 6 (Dhi = 12).
const gossipConnects = 10

// rpcCounter counts the bytes of pubsub RPC frames (uvarint length and
// protobuf, as written on the stream) one member receives and sends, and
// the RPCs it dropped because a peer's outbound queue was full.
type rpcCounter struct{ recv, sent, drops atomic.Uint64 }

func frameSize(rpc *pubsub.RPC) uint64 {
	n := proto.Size(&rpc.RPC)
	return uint64(n + len(binary.AppendUvarint(nil, uint64(n))))
}

func (c *rpcCounter) RecvRPC(rpc *pubsub.RPC) { c.recv.Add(frameSize(rpc)) }
func (c *rpcCounter) SendRPCCompleted(rpc *pubsub.RPC, _ peer.ID, _ time.Duration) {
	c.sent.Add(frameSize(rpc))
}
func (c *rpcCounter) DropRPC(*pubsub.RPC, peer.ID)             { c.drops.Add(1) }
func (c *rpcCounter) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (c *rpcCounter) OnClosedOutboundStream(peer.ID)           {}
func (c *rpcCounter) Join(string)                              {}
func (c *rpcCounter) Leave(string)                             {}
func (c *rpcCounter) Graft(peer.ID, string)                    {}
func (c *rpcCounter) Prune(peer.ID, string)                    {}
func (c *rpcCounter) ValidateMessage(*pubsub.Message)          {}
func (c *rpcCounter) DeliverMessage(*pubsub.Message)           {}
func (c *rpcCounter) RejectMessage(*pubsub.Message, string)    {}
func (c *rpcCounter) DuplicateMessage(*pubsub.Message)         {}
func (c *rpcCounter) ThrottlePeer(peer.ID)                     {}
func (c *rpcCounter) SendRPC(*pubsub.RPC, peer.ID)             {}
func (c *rpcCounter) UndeliverableMessage(*pubsub.Message)     {}

// runGossip streams sc over gossipsub (default parameters, Ed25519
// identities, signed messages) on a mocknet whose streams are modelled
// TCP connections (tcpStream) with sc's delays and, when lossy, sc.loss
// from the stream's start. Each message carries perMsg chunks of the
// stream after an 8-byte chunk index.
func runGossip(t *testing.T, sc scenario, perMsg int, lossy bool) result {
	res := result{system: fmt.Sprintf("gossipsub %d B", perMsg*sc.chunk)}
	tn := &tcpNet{delay: sc.delay, seed: sc.seed}
	if lossy && sc.loss > 0 {
		tn.loss = sc.loss
		res.loss = sc.loss
		res.system += ", TCP loss model"
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	hosts := make([]host.Host, sc.members)
	counters := make([]*rpcCounter, sc.members)
	topics := make([]*pubsub.Topic, sc.members)
	subs := make([]*pubsub.Subscription, sc.members)
	kr := rand.NewChaCha8([32]byte{byte(sc.seed), 'g'})
	for i := range hosts {
		sk, _, err := crypto.GenerateEd25519Key(kr)
		if err != nil {
			t.Fatal(err)
		}
		addr := ma.StringCast(fmt.Sprintf("/ip4/10.1.%d.%d/tcp/4001", i/250, i%250+1))
		h, err := mn.AddPeer(sk, addr)
		if err != nil {
			t.Fatal(err)
		}
		hosts[i] = h
	}
	defer func() {
		for _, h := range hosts {
			h.Close()
		}
	}()
	index := make(map[peer.ID]int, len(hosts))
	for i, h := range hosts {
		index[h.ID()] = i
	}
	r := rand.New(rand.NewPCG(sc.seed, 5))
	for i := range hosts {
		for _, j := range r.Perm(len(hosts))[:min(gossipConnects+1, len(hosts))] {
			if j == i || len(mn.LinksBetweenPeers(hosts[i].ID(), hosts[j].ID())) > 0 {
				continue
			}
			l, err := mn.LinkPeers(hosts[i].ID(), hosts[j].ID())
			if err != nil {
				t.Fatal(err)
			}
			// No mocknet latency: tcpStream delays each write
			// (mocknet's own would deliver one write per latency).
			l.SetOptions(mocknet.LinkOptions{})
			if _, err := mn.ConnectPeers(hosts[i].ID(), hosts[j].ID()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, h := range hosts {
		counters[i] = &rpcCounter{}
		th := &tcpHost{Host: h, net: tn, self: i, index: index}
		ps, err := pubsub.NewGossipSub(ctx, th, pubsub.WithRawTracer(counters[i]))
		if err != nil {
			t.Fatal(err)
		}
		if topics[i], err = ps.Join("stream"); err != nil {
			t.Fatal(err)
		}
		if subs[i], err = topics[i].Subscribe(pubsub.WithBufferSize(4096)); err != nil {
			t.Fatal(err)
		}
	}
	// The mesh forms over a few heartbeats (1 s).
	time.Sleep(5 * time.Second)
	var nb int
	for _, tp := range topics {
		nb += len(tp.ListPeers())
	}
	res.neighbours = float64(nb) / float64(len(topics))

	data := sc.data()
	wc := newWriteClock(sc.chunks())
	rs := make([]*receiver, len(hosts)-1)
	var readers sync.WaitGroup
	readers.Go(func() { // the publisher's own copies
		for {
			if _, err := subs[0].Next(ctx); err != nil {
				return
			}
		}
	})
	arrivals := make([][]time.Time, len(rs))
	for i := range rs {
		rcv := &receiver{}
		rs[i] = rcv
		arrivals[i] = make([]time.Time, sc.chunks())
		readers.Go(func() { readGossip(ctx, subs[i+1], data, sc.chunk, rcv, arrivals[i]) })
	}
	recv0 := make([]uint64, len(hosts))
	for i, c := range counters {
		recv0[i] = c.recv.Load()
	}
	sent0 := counters[0].sent.Load()

	var msg []byte
	first := 0
	tn.on.Store(true)
	err := sc.pace(data, wc, func(c int, b []byte) error {
		if len(msg) == 0 {
			first = c
			msg = binary.BigEndian.AppendUint64(msg, uint64(c))
		}
		msg = append(msg, b...)
		if c-first+1 < perMsg && (c+1)*sc.chunk < len(data) {
			return nil
		}
		err := topics[0].Publish(ctx, msg)
		msg = nil
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(sc.drain); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		done := true
		for _, rcv := range rs {
			rcv.mu.Lock()
			done = done && rcv.useful >= uint64(len(data))
			rcv.mu.Unlock()
		}
		if done {
			break
		}
	}
	var got, useful float64
	for i, c := range counters[1:] {
		got += float64(c.recv.Load() - recv0[i+1])
	}
	res.upload = float64(counters[0].sent.Load()-sent0) / float64(len(data))
	cancel()
	readers.Wait()
	var msgLats []time.Duration
	for i, rcv := range rs {
		msgLats = append(msgLats, inOrder(arrivals[i], wc, rcv, sc.perSecond())...)
	}
	res.summarize(rs, len(data))
	res.msgP50, res.msgP99 = percentiles(msgLats)
	for _, rcv := range rs {
		useful += float64(rcv.useful)
	}
	res.overhead = got / useful
	res.wire = res.overhead
	var drops uint64
	for _, c := range counters {
		drops += c.drops.Load()
	}
	res.note = fmt.Sprintf("loss %g (TCP model); RPCs dropped at full outbound queues: %d", tn.loss, drops)
	return res
}

// readGossip takes sub's messages until ctx ends: checks each against the
// published bytes, counts its bytes as useful and notes when each chunk
// in it first arrived in arrivals.
func readGossip(ctx context.Context, sub *pubsub.Subscription, data []byte, chunk int, rcv *receiver, arrivals []time.Time) {
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return
		}
		now := time.Now()
		b := m.GetData()
		if len(b) < 8 {
			rcv.reject()
			continue
		}
		c := int(binary.BigEndian.Uint64(b))
		b = b[8:]
		lo := c * chunk
		if c < 0 || lo+len(b) > len(data) || !bytes.Equal(b, data[lo:lo+len(b)]) {
			rcv.reject()
			continue
		}
		rcv.mu.Lock()
		fresh := arrivals[c].IsZero()
		for k := c; k*chunk < lo+len(b); k++ {
			if arrivals[k].IsZero() {
				arrivals[k] = now
			}
		}
		rcv.mu.Unlock()
		if fresh {
			rcv.add(len(b), c, 0)
		}
	}
}

// inOrder gives a member's chunk latencies as a stream reader would see
// them, as Strata's are measured: a chunk is output once it and every
// chunk before it have arrived. It adds those to rcv and returns the
// latencies of each chunk's own arrival (the message latency). A chunk
// that never arrived holds back the ones after it: they are not counted.
func inOrder(arrivals []time.Time, wc *writeClock, rcv *receiver, perSecond int) (msg []time.Duration) {
	var out time.Time
	var lats []time.Duration
	for c, a := range arrivals {
		if a.IsZero() {
			break
		}
		msg = append(msg, wc.since(c, a))
		if a.After(out) {
			out = a
		}
		lats = append(lats, wc.since(c, out))
	}
	rcv.add(0, 0, perSecond, lats...)
	return msg
}
