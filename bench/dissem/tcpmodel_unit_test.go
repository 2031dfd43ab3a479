package dissem

import (
	"context"
	"fmt"
	"io"
	"math"
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

// TestTCPModelLoss pins the model's loss recovery and first window: each
// write's arrival, in order, for scripted segment losses (in the order
// the segments are sent).
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
		// 16000 B are 12 segments: the first window (10) at once, the
		// other two when its acknowledgements come, a round trip later.
		{"no loss", 16000, []time.Duration{0, 128 * ms}, nil, []time.Duration{120 * ms, 168 * ms}},
		// The first segment lost: found by RACK when the later ones are
		// acknowledged (80 ms) plus its reordering window (100 ms),
		// resent, arriving 40 ms later.
		{"first segment lost", 16000, []time.Duration{0}, []bool{true}, []time.Duration{140 * ms}},
		// The last segment (sent at 80 ms) lost and nothing follows: the
		// tail loss probe 2 round trips later.
		{"tail lost", 16000, []time.Duration{0}, []bool{false, false, false, false, false, false, false, false, false, false, false, true}, []time.Duration{280 * ms}},
		// A lone 1000 B write lost, then another 8 ms later: found by RACK
		// when the second is acknowledged (8 + 80 ms) and no sooner than
		// 100 ms, resent, arrives 40 ms later; the second waits for it
		// (in order).
		{"lost then followed", 1000, []time.Duration{0, 8 * ms}, []bool{true, false},
			[]time.Duration{140 * ms, 140 * ms}},
		// Followed only after a round trip: the probe repairs it first.
		{"lost, followed late", 1000, []time.Duration{0, 100 * ms}, []bool{true, false},
			[]time.Duration{200 * ms, 200 * ms}},
		// The resent segment (at 100 ms, the last one sent) lost again:
		// the probe, 2 round trips later.
		{"lost twice", 16000, []time.Duration{0}, []bool{true, false, false, false, false, false, false, false, false, false, false, false, true},
			[]time.Duration{300 * ms}},
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

// TestTCPModelRate checks the model's congestion window against the rate
// TCP reaches under random loss (Mathis et al., 1997): about 1.22 / sqrt(p)
// segments per round trip for a sender that always has data. With this
// window a 1 Mbit/s stream over an 80 ms round trip does not fit through
// a link with 5 % loss (about 99 kB/s), and does with 1 %.
func TestTCPModelRate(t *testing.T) {
	const delay = 40 * time.Millisecond
	for _, p := range []float64{0.01, 0.05} {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := &tcpNet{delay: func(i, j int) time.Duration { return delay }, loss: p, seed: 1}
				n.on.Store(true)
				const chunk = 10 * tcpMSS
				s, got := streamPair(t, 0, n, chunk)
				mathis := 1.22 / math.Sqrt(p) * tcpMSS / (2 * delay).Seconds() // bytes per second
				const secs = 30
				for range int(2 * mathis * secs / chunk) {
					s.Write(make([]byte, chunk))
				}
				start := time.Now()
				var bytes int
				for {
					select {
					case <-got:
						bytes += chunk
						continue
					case <-time.After(time.Until(start.Add(secs * time.Second))):
					}
					break
				}
				rate := float64(bytes) / secs
				t.Logf("loss %g: %.0f B/s, %.2f of the Mathis rate %.0f B/s", p, rate, rate/mathis, mathis)
				if rate < 0.7*mathis || rate > 1.5*mathis {
					t.Errorf("loss %g: %.0f B/s, want 0.7-1.5 × %.0f B/s", p, rate, mathis)
				}
			})
		})
	}
}
