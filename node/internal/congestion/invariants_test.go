package congestion

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// harness drives every component of the package from a stream of
// (op, arg) byte pairs, the way a session would, and checks invariants.
type harness struct {
	r        *RTTEstimator
	c        *Reno
	p        *Pacer
	a, b     TimestampEcho // our side and the peer's
	now      time.Time
	inFlight int
}

func newHarness() *harness {
	r := NewRTTEstimator()
	h := &harness{r: r, c: NewReno(r), p: NewPacer(), now: t0}
	h.a.Clock = TimestampClock{Epoch: t0}
	h.b.Clock = TimestampClock{Epoch: t0.Add(-time.Hour)}
	return h
}

func (h *harness) step(op, arg byte) {
	switch op % 10 {
	case 0: // try to send a data packet
		if h.c.CanSend(h.inFlight) && h.p.Allow(h.now, h.r.SRTT(), h.r.HasSample(), h.c.CWND()) {
			n := SenderMSS - int(arg)
			h.c.OnSent(h.now, n, arg&1 == 1)
			h.p.OnSent(n)
			h.inFlight += n
			if ts, ok := h.a.TimestampToSend(h.now); ok {
				h.a.OnSent(ts, true, 0, false)
				h.b.OnTimestamp(h.now, ts)
			}
		}
	case 1: // a packet acknowledging (and maybe declaring lost) some data
		acked := min(h.inFlight, int(arg)*64)
		lost := 0
		if arg%5 == 0 {
			lost = min(h.inFlight-acked, SenderMSS*int(arg%3+1))
		}
		prior := h.inFlight
		h.inFlight -= acked + lost
		h.c.OnAck(h.now, AckEvent{AckedBytes: acked, LostBytes: lost, PriorInFlight: prior, InFlight: h.inFlight, Loss: lost > 0, Nack: arg%3 == 0})
		h.p.OnAck()
		if echo, ok := h.b.EchoToSend(h.now); ok {
			h.b.OnSent(0, false, echo, true)
			if rtt, ok := h.a.OnEcho(h.now, echo); ok {
				h.r.OnSample(h.now, rtt)
			}
		}
	case 2: // the ERTO alarm fires
		outstanding := h.inFlight > 0
		h.c.OnTimeout(h.now, outstanding)
		h.p.OnTimeout()
		if outstanding {
			h.r.Backoff()
		}
		h.inFlight = 0
	case 3: // an RTT sample, including absurd ones
		h.r.OnSample(h.now, time.Duration(int8(arg))*time.Duration(arg)*ms)
	case 4:
		h.now = h.now.Add(time.Duration(arg) * ms)
	case 5:
		h.now = h.now.Add(time.Duration(arg) * time.Second)
	case 6:
		h.c.OnTimeCriticalNotified(h.now)
	case 7:
		h.r.ResetBackoff()
	case 8:
		h.c.SetCongestionDelay(time.Duration(int8(arg)) * ms)
	case 9: // a pacer release wake-up
		if dl, ok := h.p.Deadline(); ok && dl.After(h.now) {
			h.now = dl
		}
	}
}

func (h *harness) check() error {
	c, r, p := h.c, h.r, h.p
	switch {
	case c.CWND() < TimedOutCWND || c.CWND() > MaxCWND:
		return fmt.Errorf("CWND %d out of range", c.CWND())
	case c.SSThresh() < InitialCWND:
		return fmt.Errorf("SSThresh %d below InitialCWND", c.SSThresh())
	case c.recoveryLeft < 0 || c.recoveryAllow < 0 || c.ackedAccumulator < 0:
		return fmt.Errorf("negative accounting %d %d %d", c.recoveryLeft, c.recoveryAllow, c.ackedAccumulator)
	case r.ERTO() < MinimumERTO || r.ERTO() < r.MRTO() || r.ERTO() > max(MaxERTO, r.MRTO()):
		return fmt.Errorf("ERTO %v with MRTO %v", r.ERTO(), r.MRTO())
	case r.SRTT() < 0 || r.SRTT() > MaxRTTSample || r.RTTVar() < 0 || r.RTTVar() > MaxRTTSample:
		return fmt.Errorf("SRTT %v RTTVar %v", r.SRTT(), r.RTTVar())
	case r.HasSample() && r.MRTO() < DelayedAckPeriod:
		return fmt.Errorf("MRTO %v below the delayed-ack period", r.MRTO())
	case p.Budget() < -MaxCWND || p.Budget() > MaxDataBytesBurst+MaxCWND:
		return fmt.Errorf("pacer budget %d", p.Budget())
	}
	if m, ok := r.MinRTT(); ok && (m < 0 || m > MaxRTTSample) {
		return fmt.Errorf("MinRTT %v", m)
	}
	if dl, ok := p.Deadline(); ok && dl.Sub(h.now) > MaxERTO {
		return fmt.Errorf("pacer deadline %v ahead", dl.Sub(h.now))
	}
	return nil
}

func runEvents(t testing.TB, data []byte) {
	h := newHarness()
	for i := 0; i+1 < len(data); i += 2 {
		h.step(data[i], data[i+1])
		if err := h.check(); err != nil {
			t.Fatalf("after event %d (op %d arg %d): %v", i/2, data[i]%10, data[i+1], err)
		}
	}
}

func TestRandomEventSequencesKeepInvariants(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		data := make([]byte, 4000)
		for i := range data {
			data[i] = byte(rng.UintN(256))
		}
		// Bias towards the common path: mostly sends and acks.
		for i := 0; i < len(data); i += 2 {
			if rng.UintN(4) != 0 {
				data[i] = byte(rng.UintN(2)) * 10
			}
		}
		runEvents(t, data)
	}
}

func FuzzEvents(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 1, 20, 1, 20, 1, 20})
	f.Add([]byte{0, 0, 3, 25, 1, 10, 2, 0, 2, 0, 2, 0, 7, 0})
	f.Add([]byte{8, 50, 3, 10, 0, 0, 0, 0, 1, 5, 3, 120, 1, 30, 4, 200, 9, 0})
	f.Add([]byte{6, 0, 0, 1, 1, 15, 5, 255, 1, 255, 2, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<14 {
			data = data[:1<<14]
		}
		runEvents(t, data)
	})
}
