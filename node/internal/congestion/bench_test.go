package congestion

import (
	"testing"
	"time"
)

// BenchmarkRenoOnAck measures the per-acknowledging-packet path of the
// controller: it must not allocate.
func BenchmarkRenoOnAck(b *testing.B) {
	r := NewRTTEstimator()
	r.OnSample(t0, 50*ms)
	c := NewReno(r)
	c.SetCongestionDelay(100 * ms)
	now := t0
	inFlight := c.CWND()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		c.OnAck(now, AckEvent{AckedBytes: SenderMSS, PriorInFlight: inFlight, InFlight: inFlight - SenderMSS})
		inFlight = c.CWND()
		if inFlight > 1<<20 {
			c.OnAck(now, AckEvent{LostBytes: SenderMSS, PriorInFlight: inFlight, InFlight: 0, Loss: true})
			inFlight = c.CWND()
		}
	}
}

func BenchmarkRTTOnSample(b *testing.B) {
	r := NewRTTEstimator()
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		r.OnSample(now, 40*ms)
	}
}

// BenchmarkReceivePath is what a session does per received acknowledging
// packet: timestamp bookkeeping, RTT sample, window update, pacer reset.
func BenchmarkReceivePath(b *testing.B) {
	r := NewRTTEstimator()
	c := NewReno(r)
	p := NewPacer()
	e := TimestampEcho{Clock: TimestampClock{Epoch: t0}}
	now := t0
	var echo uint16
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(4 * ms)
		e.OnTimestamp(now, echo)
		echo += 3
		if rtt, ok := e.OnEcho(now, e.Clock.Timestamp(now)-10); ok {
			r.OnSample(now, rtt)
		}
		c.OnAck(now, AckEvent{AckedBytes: SenderMSS, PriorInFlight: c.CWND(), InFlight: c.CWND() - SenderMSS})
		p.OnAck()
		if c.CWND() > 1<<20 {
			c.OnTimeout(now, true)
		}
	}
}

func TestOnAckDoesNotAllocate(t *testing.T) {
	r := NewRTTEstimator()
	r.OnSample(t0, 50*ms)
	c := NewReno(r)
	c.SetCongestionDelay(10 * ms)
	allocs := testing.AllocsPerRun(1000, func() {
		r.OnSample(t0.Add(time.Minute), 60*ms)
		c.OnAck(t0, AckEvent{AckedBytes: SenderMSS, PriorInFlight: c.CWND(), InFlight: c.CWND() - SenderMSS})
		c.OnAck(t0, AckEvent{LostBytes: SenderMSS, PriorInFlight: c.CWND(), InFlight: 0, Loss: true})
	})
	if allocs != 0 {
		t.Errorf("OnAck allocates %v times per run", allocs)
	}
}
