package congestion

import (
	"math"
	"testing"
	"time"
)

func TestSenderMSSMatchesReference(t *testing.T) {
	if SenderMSS != 1161 {
		t.Errorf("SenderMSS = %d, want 1161", SenderMSS)
	}
	if InitialCWND != 3483 || TimedOutCWND != 2322 || MaxDataBytesBurst != 6966 {
		t.Errorf("InitialCWND, TimedOutCWND, MaxDataBytesBurst = %d, %d, %d", InitialCWND, TimedOutCWND, MaxDataBytesBurst)
	}
}

func TestRenoInitial(t *testing.T) {
	c := NewReno(NewRTTEstimator())
	if c.CWND() != InitialCWND || c.SSThresh() != math.MaxInt || c.InRecovery() {
		t.Errorf("CWND, SSThresh, InRecovery = %d, %d, %v", c.CWND(), c.SSThresh(), c.InRecovery())
	}
	if !c.CanSend(InitialCWND-1) || c.CanSend(InitialCWND) {
		t.Error("CanSend must allow a packet while in-flight < CWND and refuse at CWND")
	}
}

// flow drives a controller the way an ack-clocked session would: it keeps
// the window full of SenderMSS packets, and each round acknowledges every
// packet sent in the previous round, one acknowledging packet each.
type flow struct {
	c        *Reno
	now      time.Time
	inFlight int
	round    int // packets outstanding from the previous round
}

func (f *flow) fill() {
	for f.c.CanSend(f.inFlight) {
		f.c.OnSent(f.now, SenderMSS, false)
		f.inFlight += SenderMSS
		f.round++
	}
}

// ackRound acknowledges the previous round's packets and refills.
func (f *flow) ackRound() {
	n := f.round
	f.round = 0
	for range n {
		f.now = f.now.Add(ms)
		prior := f.inFlight
		f.inFlight -= SenderMSS
		f.c.OnAck(f.now, AckEvent{AckedBytes: SenderMSS, PriorInFlight: prior, InFlight: f.inFlight})
		f.fill()
	}
}

func newFlow() *flow {
	f := &flow{c: NewReno(NewRTTEstimator()), now: t0}
	f.fill()
	return f
}

func TestRFC7016_3_5_2_SlowStartDoublesPerRTT(t *testing.T) {
	f := newFlow()
	want := InitialCWND
	for r := 1; r <= 8; r++ {
		f.ackRound()
		want *= 2
		if f.c.CWND() != want {
			t.Fatalf("after round %d: CWND = %d, want %d", r, f.c.CWND(), want)
		}
	}
}

// A receiver that acknowledges a whole round with one packet (it read the
// burst at once) still lets slow start double the window per round trip:
// with growth capped at SenderMSS per acknowledging packet the window grew
// by one packet a round (3, 4, 5, ... packets), and a session over a
// 400 ms round trip took seconds to carry 50 kB/s.
func TestSlowStartStretchAcks(t *testing.T) {
	c := NewReno(NewRTTEstimator())
	now := t0
	want := InitialCWND
	for r := 1; r <= 8; r++ {
		inFlight := c.CWND()
		now = now.Add(400 * ms)
		c.OnAck(now, AckEvent{AckedBytes: inFlight, PriorInFlight: inFlight, InFlight: 0})
		want *= 2
		if c.CWND() != want {
			t.Fatalf("after round %d, one acknowledgement each: CWND = %d, want %d", r, c.CWND(), want)
		}
	}
	// In avoidance a stretch acknowledgement still grows the window by at
	// most one SenderMSS.
	c.OnAck(now, AckEvent{LostBytes: SenderMSS, PriorInFlight: c.CWND(), InFlight: c.CWND() - SenderMSS, Loss: true, Nack: true})
	c.OnAck(now.Add(time.Second), AckEvent{AckedBytes: c.CWND(), PriorInFlight: c.CWND(), InFlight: 0})
	before := c.CWND()
	c.OnAck(now.Add(2*time.Second), AckEvent{AckedBytes: before, PriorInFlight: before, InFlight: 0})
	if grew := c.CWND() - before; grew <= 0 || grew > SenderMSS {
		t.Errorf("avoidance grew %d bytes on one acknowledgement of the window, want (0, %d]", grew, SenderMSS)
	}
}

func TestRFC7016_3_5_2_CongestionAvoidanceLinear(t *testing.T) {
	f := newFlow()
	for range 5 {
		f.ackRound()
	}
	// One loss ends slow start.
	prior := f.inFlight
	f.inFlight -= SenderMSS
	f.c.OnAck(f.now, AckEvent{LostBytes: SenderMSS, PriorInFlight: prior, InFlight: f.inFlight, Loss: true, Nack: true})
	if f.c.CWND() != f.c.SSThresh() {
		t.Fatalf("after loss CWND %d != SSThresh %d", f.c.CWND(), f.c.SSThresh())
	}
	// Let the recovery drain: two rounds.
	f.round = f.inFlight / SenderMSS
	f.ackRound()
	f.ackRound()
	if f.c.InRecovery() {
		t.Fatal("still in recovery after two rounds")
	}
	for r := range 10 {
		before := f.c.CWND()
		f.ackRound()
		grew := f.c.CWND() - before
		// 16 steps of 96 bytes per window acknowledged: about 1.3 packets
		// per round trip, never a doubling.
		if grew < SenderMSS || grew > 3*SenderMSS/2 {
			t.Errorf("round %d: CWND grew %d bytes from %d", r, grew, before)
		}
	}
}

func TestRFC7016_3_5_2_LossHalvesOncePerRecovery(t *testing.T) {
	c := NewReno(NewRTTEstimator())
	c.cwnd = 40 * SenderMSS
	inFlight := 40 * SenderMSS
	now := t0

	// First loss: half of min(CWND, in flight).
	c.OnAck(now, AckEvent{LostBytes: SenderMSS, PriorInFlight: inFlight, InFlight: inFlight - SenderMSS, Loss: true, Nack: true})
	inFlight -= SenderMSS
	if want := 20 * SenderMSS; c.CWND() != want || c.SSThresh() != want {
		t.Fatalf("after loss: CWND, SSThresh = %d, %d, want %d", c.CWND(), c.SSThresh(), want)
	}
	if !c.InRecovery() {
		t.Fatal("not in recovery after a loss")
	}
	// More losses in the same window: no further cut while the decrease
	// taken (20 packets) covers 1.5x what is lost.
	for range 5 {
		now = now.Add(ms)
		c.OnAck(now, AckEvent{AckedBytes: SenderMSS, LostBytes: SenderMSS, PriorInFlight: inFlight, InFlight: inFlight - 2*SenderMSS, Loss: true, Nack: true})
		inFlight -= 2 * SenderMSS
		if c.CWND() != 20*SenderMSS {
			t.Fatalf("loss inside recovery cut CWND to %d", c.CWND())
		}
	}
	// Drain the rest; the window neither grows nor shrinks in recovery.
	for inFlight > 0 && c.InRecovery() {
		now = now.Add(ms)
		c.OnAck(now, AckEvent{AckedBytes: SenderMSS, PriorInFlight: inFlight, InFlight: inFlight - SenderMSS})
		inFlight -= SenderMSS
		if c.InRecovery() && c.CWND() != 20*SenderMSS {
			t.Fatalf("CWND changed to %d during recovery", c.CWND())
		}
	}
	// The acknowledgement that ends recovery is processed normally: with
	// little in flight the window decays by a byte.
	if c.InRecovery() || c.CWND() != 20*SenderMSS-1 {
		t.Fatalf("after draining: InRecovery %v, CWND %d", c.InRecovery(), c.CWND())
	}
	c.cwnd = 20 * SenderMSS
	// A loss after recovery cuts again.
	c.OnAck(now, AckEvent{LostBytes: SenderMSS, PriorInFlight: 20 * SenderMSS, InFlight: 19 * SenderMSS, Loss: true, Nack: true})
	if c.CWND() != 10*SenderMSS {
		t.Errorf("second recovery: CWND = %d, want %d", c.CWND(), 10*SenderMSS)
	}
}

func TestLossBeyondRecoveryAllowance(t *testing.T) {
	c := NewReno(NewRTTEstimator())
	c.cwnd = 40 * SenderMSS
	c.OnAck(t0, AckEvent{LostBytes: SenderMSS, PriorInFlight: 40 * SenderMSS, InFlight: 39 * SenderMSS, Loss: true})
	// Allowance is 20 packets, 1.5 packets already charged... the first
	// loss's cost is inside the decrease. Now lose 16 packets at once:
	// cost 24 packets, 20 covered, the excess 4 comes off the window.
	lost := 16 * SenderMSS
	c.OnAck(t0.Add(ms), AckEvent{LostBytes: lost, PriorInFlight: 39 * SenderMSS, InFlight: 23 * SenderMSS, Loss: true})
	want := 20*SenderMSS - (lost + (lost+1)/2 - 20*SenderMSS)
	if c.CWND() != want || c.SSThresh() != want {
		t.Errorf("CWND, SSThresh = %d, %d, want %d", c.CWND(), c.SSThresh(), want)
	}
}

func TestLossResponseTable(t *testing.T) {
	tests := []struct {
		name     string
		cwnd     int
		prior    int
		lost     int
		tcSent   bool
		tcNotice bool
		wantCWND int
	}{
		{"halve", 20 * SenderMSS, 20 * SenderMSS, SenderMSS, false, false, 10 * SenderMSS},
		{"halve in-flight when less than CWND", 20 * SenderMSS, 10 * SenderMSS, SenderMSS, false, false, 5 * SenderMSS},
		{"floor at InitialCWND", InitialCWND, InitialCWND, SenderMSS, false, false, InitialCWND},
		{"floor from below", TimedOutCWND, TimedOutCWND, SenderMSS, false, false, InitialCWND},
		{"heavy loss costs 1.5x", 20 * SenderMSS, 20 * SenderMSS, 8 * SenderMSS, false, false, 8 * SenderMSS},
		{"time-critical sender cuts 1/8", 80 * SenderMSS, 80 * SenderMSS, SenderMSS, true, false, 70 * SenderMSS},
		{"large window cuts 1/8", 80 * SenderMSS, 80 * SenderMSS, SenderMSS, false, false, 70 * SenderMSS},
		{"large window halves beside time-critical", 80 * SenderMSS, 80 * SenderMSS, SenderMSS, false, true, 40 * SenderMSS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewReno(NewRTTEstimator())
			c.cwnd = tc.cwnd
			now := t0.Add(time.Hour)
			if tc.tcSent {
				c.OnSent(now.Add(-TimeCriticalTimeout), SenderMSS, true)
			}
			if tc.tcNotice {
				c.OnTimeCriticalNotified(now.Add(-100 * ms))
			}
			c.OnAck(now, AckEvent{LostBytes: tc.lost, PriorInFlight: tc.prior, InFlight: tc.prior - tc.lost, Loss: true})
			if c.CWND() != tc.wantCWND || c.SSThresh() != tc.wantCWND {
				t.Errorf("CWND, SSThresh = %d, %d, want %d", c.CWND(), c.SSThresh(), tc.wantCWND)
			}
		})
	}
}

func TestRFC7016_3_5_2_TimeoutCollapse(t *testing.T) {
	tests := []struct {
		name         string
		cwnd, ssth   int
		outstanding  bool
		wantCWND     int
		wantSSThresh int
	}{
		{"data outstanding", 40 * SenderMSS, math.MaxInt, true, TimedOutCWND, math.MaxInt},
		{"ssthresh raised to 3/4", 40 * SenderMSS, 10 * SenderMSS, true, TimedOutCWND, 30 * SenderMSS},
		{"ssthresh kept when higher", 8 * SenderMSS, 10 * SenderMSS, true, TimedOutCWND, 10 * SenderMSS},
		{"idle restart", 40 * SenderMSS, 10 * SenderMSS, false, InitialCWND, 30 * SenderMSS},
		{"idle restart raises small window", TimedOutCWND, InitialCWND, false, InitialCWND, InitialCWND},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewReno(NewRTTEstimator())
			c.cwnd, c.ssthresh = tc.cwnd, tc.ssth
			c.recoveryLeft = 5
			c.OnTimeout(t0, tc.outstanding)
			if c.CWND() != tc.wantCWND || c.SSThresh() != tc.wantSSThresh || c.InRecovery() {
				t.Errorf("CWND, SSThresh, InRecovery = %d, %d, %v, want %d, %d, false", c.CWND(), c.SSThresh(), c.InRecovery(), tc.wantCWND, tc.wantSSThresh)
			}
		})
	}
}

func TestTimeoutThenGrowthRestoresInitial(t *testing.T) {
	c := NewReno(NewRTTEstimator())
	c.cwnd = 30 * SenderMSS
	c.OnTimeout(t0, true)
	c.OnAck(t0.Add(ms), AckEvent{AckedBytes: 100, PriorInFlight: TimedOutCWND, InFlight: TimedOutCWND - 100})
	if c.CWND() != InitialCWND {
		t.Errorf("CWND = %d, want %d", c.CWND(), InitialCWND)
	}
}

func TestTimeoutResetsMinRTT(t *testing.T) {
	r := NewRTTEstimator()
	c := NewReno(r)
	r.OnSample(t0, 50*ms)
	c.OnTimeout(t0.Add(ms), true)
	r.OnSample(t0.Add(2*ms), 90*ms)
	if m, _ := r.MinRTT(); m != 90*ms {
		t.Errorf("MinRTT after timeout = %v, want a fresh 90ms", m)
	}
}

func TestApplicationLimited(t *testing.T) {
	c := NewReno(NewRTTEstimator())
	c.cwnd = 20 * SenderMSS
	now := t0
	// Using half the window: no growth, and since CWND runs more than 6
	// packets ahead of use it decays one byte per acknowledging packet.
	for i := 1; i <= 50; i++ {
		now = now.Add(ms)
		c.OnAck(now, AckEvent{AckedBytes: SenderMSS, PriorInFlight: 10 * SenderMSS, InFlight: 9 * SenderMSS})
		if want := 20*SenderMSS - i; c.CWND() != want {
			t.Fatalf("ack %d: CWND = %d, want %d", i, c.CWND(), want)
		}
	}
	// Using most of it but not 63/64: neither growth nor decay.
	c.cwnd = 20 * SenderMSS
	c.OnAck(now, AckEvent{AckedBytes: SenderMSS, PriorInFlight: 19 * SenderMSS, InFlight: 18 * SenderMSS})
	if c.CWND() != 20*SenderMSS {
		t.Errorf("CWND = %d, want unchanged", c.CWND())
	}
	// Decay never undercuts the margin over what is used.
	c.cwnd = cwndDecayMargin + 1
	c.OnAck(now, AckEvent{AckedBytes: 0, PriorInFlight: 0, InFlight: 0})
	c.OnAck(now, AckEvent{AckedBytes: 0, PriorInFlight: 0, InFlight: 0})
	if c.CWND() != cwndDecayMargin {
		t.Errorf("CWND = %d, want %d", c.CWND(), cwndDecayMargin)
	}
}

func TestNackBlocksGrowth(t *testing.T) {
	c := NewReno(NewRTTEstimator())
	c.OnAck(t0, AckEvent{AckedBytes: SenderMSS, PriorInFlight: InitialCWND, InFlight: InitialCWND - SenderMSS, Nack: true})
	if c.CWND() != InitialCWND {
		t.Errorf("CWND = %d, want unchanged %d", c.CWND(), InitialCWND)
	}
}

func TestRFC7016_3_5_2_1_TimeCriticalGrowth(t *testing.T) {
	tests := []struct {
		name     string
		notified bool
		sent     bool
		ssthresh int
		acked    int
		want     int // growth
	}{
		{"slow start normal", false, false, math.MaxInt, 1000, 1000},
		{"slow start counts a stretch ack whole", false, false, math.MaxInt, 3000, 3000},
		{"no slow start beside time-critical", true, false, math.MaxInt, 20 * SenderMSS / 16 * 3, 3 * 24},
		{"slow start sending time-critical: quarter", false, true, math.MaxInt, 1001, 251},
		{"avoidance normal: 96 per cwnd/16", false, false, 0, 20 * SenderMSS / 16 * 3, 3 * 96},
		{"avoidance beside time-critical: 24 per step", true, false, 0, 20 * SenderMSS / 16 * 3, 3 * 24},
		{"avoidance sending time-critical: 48 per step", false, true, 0, 20 * SenderMSS / 16 * 3, 3 * 48},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewReno(NewRTTEstimator())
			c.cwnd, c.ssthresh = 20*SenderMSS, tc.ssthresh
			now := t0.Add(time.Hour)
			if tc.notified {
				c.OnTimeCriticalNotified(now.Add(-TimeCriticalTimeout))
			}
			if tc.sent {
				c.OnSent(now.Add(-ms), SenderMSS, true)
			}
			c.OnAck(now, AckEvent{AckedBytes: tc.acked, PriorInFlight: c.cwnd, InFlight: c.cwnd - tc.acked})
			if got := c.CWND() - 20*SenderMSS; got != tc.want {
				t.Errorf("growth = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestTimeCriticalExpires(t *testing.T) {
	c := NewReno(NewRTTEstimator())
	c.OnTimeCriticalNotified(t0)
	now := t0.Add(TimeCriticalTimeout + 1)
	c.OnAck(now, AckEvent{AckedBytes: 1000, PriorInFlight: InitialCWND, InFlight: InitialCWND - 1000})
	if c.CWND() != InitialCWND+1000 {
		t.Errorf("CWND = %d, want full slow-start growth after the notice expired", c.CWND())
	}
}

func TestDelayBasedCongestion(t *testing.T) {
	r := NewRTTEstimator()
	c := NewReno(r)
	c.SetCongestionDelay(50 * ms)
	c.cwnd, c.ssthresh = 40*SenderMSS, math.MaxInt
	now := t0
	r.OnSample(now, 100*ms)
	// Queueing builds: SRTT rises past base + 50 ms.
	for range 30 {
		now = now.Add(10 * ms)
		r.OnSample(now, 300*ms)
	}
	in := 40 * SenderMSS
	c.OnAck(now, AckEvent{AckedBytes: SenderMSS, PriorInFlight: in, InFlight: in - SenderMSS})
	if c.CWND() != 20*SenderMSS {
		t.Fatalf("delay over limit: CWND = %d, want %d", c.CWND(), 20*SenderMSS)
	}
	// Recovery drains; a later ack with no fresh RTT sample must not cut
	// again.
	c.recoveryLeft = 0
	c.OnAck(now.Add(ms), AckEvent{AckedBytes: SenderMSS, PriorInFlight: 20 * SenderMSS, InFlight: 19 * SenderMSS})
	if c.CWND() < 20*SenderMSS {
		t.Errorf("second cut without a new sample: CWND = %d", c.CWND())
	}
	// Disabled: the same delay does nothing.
	c2 := NewReno(r)
	c2.cwnd = 40 * SenderMSS
	r.OnSample(now.Add(2*ms), 300*ms)
	c2.OnAck(now.Add(3*ms), AckEvent{AckedBytes: SenderMSS, PriorInFlight: in, InFlight: in - SenderMSS})
	if c2.CWND() < 40*SenderMSS {
		t.Errorf("delay-based detection acted while off: CWND = %d", c2.CWND())
	}
}

func TestDelayBasedMinRTTProbe(t *testing.T) {
	r := NewRTTEstimator()
	c := NewReno(r)
	c.SetCongestionDelay(100 * ms)
	c.cwnd, c.ssthresh = 40*SenderMSS, 20*SenderMSS
	now := t0
	r.OnSample(now, 50*ms) // min RTT lowered at t0
	in := 40 * SenderMSS
	// Before 60 SRTTs (3 s) have passed: normal avoidance.
	now = now.Add(2 * time.Second)
	r.OnSample(now, 50*ms)
	c.OnAck(now, AckEvent{AckedBytes: SenderMSS, PriorInFlight: in, InFlight: in - SenderMSS})
	if c.CWND() < 40*SenderMSS {
		t.Fatalf("probe too early: CWND = %d", c.CWND())
	}
	cw := c.CWND()
	now = now.Add(2 * time.Second)
	r.OnSample(now, 50*ms)
	c.OnAck(now, AckEvent{AckedBytes: SenderMSS, PriorInFlight: in, InFlight: in - SenderMSS})
	if want := in * 21 / 32; c.CWND() != want || c.SSThresh() != cw {
		t.Errorf("probe: CWND, SSThresh = %d, %d, want %d, %d", c.CWND(), c.SSThresh(), want, cw)
	}
}

func TestInputsAreClamped(t *testing.T) {
	c := NewReno(NewRTTEstimator())
	c.OnAck(t0, AckEvent{AckedBytes: -5, LostBytes: -7, PriorInFlight: -1, InFlight: -1, Loss: true})
	if c.CWND() != InitialCWND || c.InRecovery() {
		t.Errorf("negative report: CWND %d, InRecovery %v", c.CWND(), c.InRecovery())
	}
	for range 1000 {
		c.OnAck(t0, AckEvent{AckedBytes: math.MaxInt, PriorInFlight: math.MaxInt, InFlight: math.MaxInt})
	}
	if c.CWND() > MaxCWND || c.CWND() < InitialCWND {
		t.Errorf("huge reports: CWND = %d", c.CWND())
	}
}
