package dissem

import (
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// streamPair connects two mocknet hosts with the given link latency and
// returns a's stream to b (through a tcpHost on n when n is not nil) and
// a channel of b's reads: each write's size and arrival time.
func streamPair(t *testing.T, latency time.Duration, n *tcpNet, size int) (network.Stream, <-chan time.Time) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	a, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	b, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	l, err := mn.LinkPeers(a.ID(), b.ID())
	if err != nil {
		t.Fatal(err)
	}
	l.SetOptions(mocknet.LinkOptions{Latency: latency})
	if _, err := mn.ConnectPeers(a.ID(), b.ID()); err != nil {
		t.Fatal(err)
	}
	got := make(chan time.Time, 1000)
	b.SetStreamHandler("/p", func(s network.Stream) {
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			got <- time.Now()
		}
	})
	var h host.Host = a
	if n != nil {
		h = &tcpHost{Host: a, net: n, self: 0, index: map[peer.ID]int{b.ID(): 1}}
	}
	s, err := h.NewStream(context.Background(), b.ID(), "/p")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	return s, got
}

// TestTCPModelPipelines shows why gossipsub's links have no mocknet
// latency: a mocknet stream holds each write until the one before it has
// arrived, while tcpStream pipelines them.
func TestTCPModelPipelines(t *testing.T) {
	const delay = 40 * time.Millisecond
	for _, tc := range []struct {
		name      string
		model     bool
		wantFirst time.Duration // how late write 0 and write 99 arrive
		wantLast  time.Duration
	}{
		{"mocknet latency", false, delay, 1216 * time.Millisecond},
		{"tcp model", true, delay, delay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var s network.Stream
				var got <-chan time.Time
				if tc.model {
					n := &tcpNet{delay: func(i, j int) time.Duration { return delay }}
					s, got = streamPair(t, 0, n, 1000)
				} else {
					s, got = streamPair(t, delay, nil, 1000)
				}
				start := time.Now()
				go func() {
					for i := range 100 {
						time.Sleep(time.Until(start.Add(time.Duration(i) * 8 * time.Millisecond)))
						s.Write(make([]byte, 1000))
					}
				}()
				for i := range 100 {
					late := (<-got).Sub(start) - time.Duration(i)*8*time.Millisecond
					if i == 0 && late != tc.wantFirst || i == 99 && late != tc.wantLast {
						t.Errorf("write %d arrived %v after it was written", i, late)
					}
				}
			})
		})
	}
}

// TestTCPModelLoss pins the loss model: each write's arrival, in order,
// for scripted segment losses.
func TestTCPModelLoss(t *testing.T) {
	const delay = 40 * time.Millisecond // round trip 80 ms
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		size   int
		writes []time.Duration // when each write is made
		draws  []bool          // segment losses, in draw order
		want   []time.Duration // when each write arrives
	}{
		{"no loss", 16000, []time.Duration{0, 128 * ms}, nil, []time.Duration{40 * ms, 168 * ms}},
		// 16000 B are 12 segments: the first lost, found by RACK.
		{"first segment lost", 16000, []time.Duration{0}, []bool{true}, []time.Duration{140 * ms}},
		// The last segment lost and nothing follows: tail loss probe.
		{"tail lost", 16000, []time.Duration{0},
			[]bool{false, false, false, false, false, false, false, false, false, false, false, true},
			[]time.Duration{200 * ms}},
		// A lone 1000 B write lost, then another 8 ms later: found by RACK
		// when the second is acknowledged (8 + 80 ms), resent, arrives
		// 40 ms later; the second waits for it (in order).
		{"lost then followed", 1000, []time.Duration{0, 8 * ms}, []bool{true, false},
			[]time.Duration{140 * ms, 140 * ms}},
		// Followed only after a round trip: the probe repairs it first.
		{"lost, followed late", 1000, []time.Duration{0, 100 * ms}, []bool{true, false},
			[]time.Duration{200 * ms, 200 * ms}},
		// The resent segment lost again: 1.25 round trips more.
		{"lost twice", 16000, []time.Duration{0}, []bool{true, true, false},
			[]time.Duration{240 * ms}},
		// Later writes wait for the hole; a later one on time arrives
		// right behind it.
		{"head of line", 1000, []time.Duration{0, 8 * ms, 150 * ms}, []bool{true, false, false},
			[]time.Duration{140 * ms, 140 * ms, 190 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := &tcpNet{delay: func(i, j int) time.Duration { return delay },
					seed: 1, draws: tc.draws}
				n.on.Store(true)
				s, got := streamPair(t, 0, n, tc.size)
				start := time.Now()
				go func() {
					for _, at := range tc.writes {
						time.Sleep(time.Until(start.Add(at)))
						s.Write(make([]byte, tc.size))
					}
				}()
				for i, want := range tc.want {
					if at := (<-got).Sub(start); at != want {
						t.Errorf("write %d arrived at %v, want %v", i, at, want)
					}
				}
			})
		})
	}
}
