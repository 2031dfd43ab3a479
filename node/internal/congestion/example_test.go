package congestion_test

import (
	"fmt"
	"time"

	"github.com/strata-net/strata/node/internal/congestion"
)

// A session owns an RTTEstimator, a Controller and a Pacer, and feeds them
// the events of its packets.
func Example() {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rtt := congestion.NewRTTEstimator()
	cc := congestion.NewReno(rtt)
	pacer := congestion.NewPacer()

	// Send while the window and the burst limit allow.
	now := start
	inFlight := 0
	for cc.CanSend(inFlight) && pacer.Allow(now, rtt.SRTT(), rtt.HasSample(), cc.CWND()) {
		cc.OnSent(now, congestion.SenderMSS, false)
		pacer.OnSent(congestion.SenderMSS)
		inFlight += congestion.SenderMSS
	}
	fmt.Println("packets in the initial window:", inFlight/congestion.SenderMSS)

	// 80 ms later an acknowledgement of one packet arrives, echoing our
	// timestamp.
	now = now.Add(80 * time.Millisecond)
	rtt.OnSample(now, 80*time.Millisecond)
	cc.OnAck(now, congestion.AckEvent{
		AckedBytes:    congestion.SenderMSS,
		PriorInFlight: inFlight,
		InFlight:      inFlight - congestion.SenderMSS,
	})
	pacer.OnAck()
	fmt.Println("cwnd:", cc.CWND(), "ERTO:", rtt.ERTO())
	// Output:
	// packets in the initial window: 3
	// cwnd: 4644 ERTO: 440ms
}
