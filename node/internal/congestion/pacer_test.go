package congestion

import (
	"testing"
	"time"
)

func TestRFC7016_3_5_2_3_BurstLimit(t *testing.T) {
	p := NewPacer()
	srtt := 100 * ms
	cwnd := 100 * SenderMSS
	now := t0
	sent := 0
	for p.Allow(now, srtt, true, cwnd) {
		p.OnSent(SenderMSS)
		sent++
		if sent > 100 {
			t.Fatal("burst never limited")
		}
	}
	if sent != MaxDataPacketBurst {
		t.Fatalf("burst of %d packets, want %d", sent, MaxDataPacketBurst)
	}
	// Refused: a release one packet's share of the RTT later.
	dl, ok := p.Deadline()
	if want := now.Add(srtt * SenderMSS / time.Duration(cwnd)); !ok || !dl.Equal(want) {
		t.Fatalf("Deadline = %v, %v, want %v", dl.Sub(t0), ok, want.Sub(t0))
	}
	if p.Allow(dl.Add(-1), srtt, true, cwnd) {
		t.Error("allowed before the release deadline")
	}
	if !p.Allow(dl, srtt, true, cwnd) {
		t.Fatal("refused at the release deadline")
	}
	if p.Budget() != SenderMSS {
		t.Errorf("released budget = %d, want %d", p.Budget(), SenderMSS)
	}
	p.OnSent(SenderMSS)
	if p.Allow(dl, srtt, true, cwnd) {
		t.Error("second packet allowed on one release")
	}
	// An acknowledgement restores the whole burst and cancels the wait.
	p.OnAck()
	if _, ok := p.Deadline(); ok {
		t.Error("deadline still armed after an ack")
	}
	if p.Budget() != MaxDataBytesBurst || !p.Allow(dl, srtt, true, cwnd) {
		t.Errorf("after ack: budget %d", p.Budget())
	}
}

func TestPacerOversleepBonus(t *testing.T) {
	p := NewPacer()
	srtt, cwnd := 100*ms, 10*SenderMSS
	p.OnSent(MaxDataBytesBurst + 500) // overshoot by 500 bytes
	if p.Allow(t0, srtt, true, cwnd) {
		t.Fatal("allowed with an exhausted budget")
	}
	dl, _ := p.Deadline()
	if want := t0.Add(srtt * (SenderMSS + 500) / time.Duration(cwnd)); !dl.Equal(want) {
		t.Errorf("deadline %v, want %v (overshoot lengthens the wait)", dl.Sub(t0), want.Sub(t0))
	}
	// Waking 10 ms late earns 10% of the window on top of one packet.
	if !p.Allow(dl.Add(10*ms), srtt, true, cwnd) {
		t.Fatal("refused after the deadline")
	}
	if want := SenderMSS + cwnd/10; p.Budget() != want {
		t.Errorf("budget %d, want %d", p.Budget(), want)
	}
}

func TestPacerUnlimited(t *testing.T) {
	tests := []struct {
		name      string
		srtt      time.Duration
		hasSample bool
	}{
		{"no RTT sample", 0, false},
		{"short path", BurstRTTThreshold - 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPacer()
			for range 100 {
				if !p.Allow(t0, tc.srtt, tc.hasSample, InitialCWND) {
					t.Fatal("burst limited")
				}
				p.OnSent(SenderMSS)
			}
			if _, ok := p.Deadline(); ok {
				t.Error("deadline armed")
			}
		})
	}
}

func TestPacerTimeoutRestores(t *testing.T) {
	p := NewPacer()
	p.OnSent(10 * MaxDataBytesBurst)
	p.Allow(t0, 50*ms, true, InitialCWND)
	p.OnTimeout()
	if _, ok := p.Deadline(); ok || p.Budget() != MaxDataBytesBurst {
		t.Errorf("after timeout: budget %d, armed %v", p.Budget(), ok)
	}
}

func TestPacerAbsurdInputs(t *testing.T) {
	p := NewPacer()
	p.OnSent(1 << 62)
	if p.Budget() != -MaxCWND {
		t.Errorf("budget %d, want clamped to %d", p.Budget(), -MaxCWND)
	}
	huge := time.Duration(1 << 62)
	if p.Allow(t0, huge, true, 1) {
		t.Fatal("allowed with an exhausted budget")
	}
	dl, ok := p.Deadline()
	if !ok || dl.Sub(t0) != MaxERTO {
		t.Fatalf("deadline %v, want capped at %v", dl.Sub(t0), MaxERTO)
	}
	// Waking absurdly late on a fast path: the bonus is capped, not
	// wrapped negative.
	if !p.Allow(dl.Add(huge), BurstRTTThreshold, true, MaxCWND) {
		t.Fatal("refused after the deadline")
	}
	if p.Budget() != SenderMSS+MaxCWND {
		t.Errorf("budget %d, want %d", p.Budget(), SenderMSS+MaxCWND)
	}
}
