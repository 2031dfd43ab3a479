package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// A flow carrying bursts (a group link: a few 1 KB pieces every 131 ms,
// a block's worth) over a 400 ms round trip keeps up from its first
// seconds. The receiver acknowledges each burst it reads at once with one
// packet; while slow start counted that as one packet's growth the window
// grew by a packet a round trip, and the pieces waited: p90 1.68 s with 6
// a block, 3.5 s with 20.
func TestBurstsOverLongRTT(t *testing.T) {
	for _, tc := range []struct {
		perBlock int
		p90      time.Duration
	}{
		{6, 800 * time.Millisecond},
		{20, 1500 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("%d a block", tc.perBlock), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lat := burstLatencies(t, 200*time.Millisecond, tc.perBlock, 75)
				n := len(lat)
				slices.Sort(lat)
				t.Logf("%d pieces a block: p50 %v p90 %v max %v", tc.perBlock, lat[n/2], lat[n*9/10], lat[n-1])
				if lat[n*9/10] > tc.p90 {
					t.Errorf("%d pieces a block over a 400 ms round trip: p90 %v, want at most %v", tc.perBlock, lat[n*9/10], tc.p90)
				}
			})
		})
	}
}

// burstLatencies sends blocks bursts of per 1040-byte messages, one burst
// every 131 ms, over a path of the given one-way delay, and returns each
// message's time from its write to its read.
func burstLatencies(t *testing.T, delay time.Duration, per, blocks int) []time.Duration {
	ns := memnetNodes(t, memnet.Config{Link: memnet.Link{Delay: delay}}, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := ns[0].Dial(ctx, ns[1].AddrPort(), ns[1].PeerID())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ns[1].Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.OpenFlow([]byte("bursts"), PriorityRoutine)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []time.Duration)
	go func() {
		var lat []time.Duration
		defer func() { got <- lat }()
		rf, err := rs.AcceptFlow(ctx)
		if err != nil {
			return
		}
		for len(lat) < per*blocks {
			m, err := rf.Read(ctx)
			if err != nil {
				return
			}
			lat = append(lat, time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(m)))))
		}
	}()
	for range blocks {
		for range per {
			m := make([]byte, 1040)
			binary.BigEndian.PutUint64(m, uint64(time.Now().UnixNano()))
			if err := f.Send(ctx, m, WriteOptions{FinishWithin: 10 * time.Second}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(131 * time.Millisecond)
	}
	lat := <-got
	if len(lat) != per*blocks {
		t.Fatalf("%d of %d messages read", len(lat), per*blocks)
	}
	return lat
}
