package congestion

import (
	"testing"
	"time"
)

func TestTimestampClock(t *testing.T) {
	c := TimestampClock{Epoch: t0}
	tests := []struct {
		d    time.Duration
		want uint16
	}{
		{0, 0},
		{3999 * time.Microsecond, 0},
		{4 * ms, 1},
		{1 * time.Second, 250},
		{65535 * TimestampPeriod, 65535},
		{65536 * TimestampPeriod, 0}, // wraps every 262.144 s
		{65537*TimestampPeriod + 1, 1},
		{-1, 65535}, // before the epoch: floor, not truncation
		{-4 * ms, 65535},
		{-4*ms - 1, 65534},
	}
	for _, tc := range tests {
		if got := c.Timestamp(t0.Add(tc.d)); got != tc.want {
			t.Errorf("Timestamp(epoch%+v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func TestRFC7016_3_5_2_2_EchoToRTT(t *testing.T) {
	tick := func(n int) time.Time { return t0.Add(time.Duration(n) * TimestampPeriod) }
	tests := []struct {
		name   string
		nowTS  int // our clock, ticks since epoch
		echo   uint16
		want   time.Duration
		wantOK bool
	}{
		{"plain", 100, 75, 100 * ms, true},
		{"same tick", 100, 100, 0, true},
		{"wrapped", 65536 + 10, 65530, 64 * ms, true},
		{"largest", 40000, 40000 - 32767, 32767 * TimestampPeriod, true},
		{"too old", 40000, 40000 - 32768, 0, false},
		{"from our future", 100, 101, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := TimestampEcho{Clock: TimestampClock{Epoch: t0}}
			got, ok := e.OnEcho(tick(tc.nowTS), tc.echo)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("OnEcho = %v, %v, want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestEchoRepeatIgnored(t *testing.T) {
	e := TimestampEcho{Clock: TimestampClock{Epoch: t0}}
	now := t0.Add(time.Second)
	if _, ok := e.OnEcho(now, 200); !ok {
		t.Fatal("first echo rejected")
	}
	if _, ok := e.OnEcho(now.Add(time.Second), 200); ok {
		t.Error("repeated echo gave a second sample")
	}
	if rtt, ok := e.OnEcho(now.Add(time.Second), 201); !ok || rtt != 299*TimestampPeriod {
		t.Errorf("new echo = %v, %v", rtt, ok)
	}
}

func TestRFC7016_3_5_2_2_EchoToSend(t *testing.T) {
	e := TimestampEcho{Clock: TimestampClock{Epoch: t0}}
	if _, ok := e.EchoToSend(t0); ok {
		t.Fatal("echo offered before any timestamp was received")
	}
	rx := t0.Add(time.Minute)
	e.OnTimestamp(rx, 65535)
	steps := []struct {
		after  time.Duration
		want   uint16
		wantOK bool
		sent   bool
	}{
		{0, 65535, true, false},
		{10 * ms, 1, true, true}, // held 2 ticks: 65535+2 wraps to 1
		{11 * ms, 0, false, false},
		{12 * ms, 2, true, false},
		{MaxTimestampEchoElapsed, (65535 + 32000) % 65536, true, false},
		{MaxTimestampEchoElapsed + 1, 0, false, false}, // too old: forgotten
		{1 * ms, 0, false, false},                      // and stays forgotten
	}
	for _, s := range steps {
		got, ok := e.EchoToSend(rx.Add(s.after))
		if ok != s.wantOK || (ok && got != s.want) {
			t.Errorf("EchoToSend(+%v) = %d, %v, want %d, %v", s.after, got, ok, s.want, s.wantOK)
		}
		if s.sent {
			e.OnSent(0, false, got, true)
		}
	}
	// A new timestamp revives echoing.
	e.OnTimestamp(rx.Add(200*time.Second), 7)
	if got, ok := e.EchoToSend(rx.Add(200 * time.Second)); !ok || got != 7 {
		t.Errorf("after new timestamp: %d, %v", got, ok)
	}
}

func TestOnTimestampRepeatKeepsArrival(t *testing.T) {
	e := TimestampEcho{Clock: TimestampClock{Epoch: t0}}
	e.OnTimestamp(t0, 500)
	e.OnTimestamp(t0.Add(40*ms), 500) // same value again: still 40 ms old
	if got, _ := e.EchoToSend(t0.Add(40 * ms)); got != 510 {
		t.Errorf("echo = %d, want 510", got)
	}
}

func TestTimestampToSendSuppressesRepeats(t *testing.T) {
	e := TimestampEcho{Clock: TimestampClock{Epoch: t0}}
	ts, ok := e.TimestampToSend(t0.Add(8 * ms))
	if !ok || ts != 2 {
		t.Fatalf("TimestampToSend = %d, %v", ts, ok)
	}
	e.OnSent(ts, true, 0, false)
	if _, ok := e.TimestampToSend(t0.Add(11 * ms)); ok {
		t.Error("same tick offered twice")
	}
	if ts, ok := e.TimestampToSend(t0.Add(12 * ms)); !ok || ts != 3 {
		t.Errorf("next tick = %d, %v", ts, ok)
	}
}

// TestTimestampRoundTrip runs two endpoints with unrelated clocks: the
// echo's hold-time adjustment makes the measured RTT the network's, not
// the network's plus the peer's delay, within the 4 ms tick.
func TestTimestampRoundTrip(t *testing.T) {
	a := TimestampEcho{Clock: TimestampClock{Epoch: t0}}
	b := TimestampEcho{Clock: TimestampClock{Epoch: t0.Add(-1234567 * time.Microsecond)}}
	est := NewRTTEstimator()
	now := t0.Add(500 * time.Second) // a's clock has wrapped once
	for i := range 20 {
		oneWay := time.Duration(20+i) * ms
		hold := time.Duration(i*7%50) * ms
		ts, ok := a.TimestampToSend(now)
		if !ok {
			t.Fatal("no timestamp")
		}
		a.OnSent(ts, true, 0, false)
		b.OnTimestamp(now.Add(oneWay), ts)
		back := now.Add(oneWay + hold)
		echo, ok := b.EchoToSend(back)
		if !ok {
			t.Fatalf("round %d: no echo", i)
		}
		b.OnSent(0, false, echo, true)
		rtt, ok := a.OnEcho(back.Add(oneWay), echo)
		if !ok {
			t.Fatalf("round %d: echo gave no sample", i)
		}
		if !within(rtt, 2*oneWay, 2*TimestampPeriod) {
			t.Errorf("round %d: rtt = %v, want about %v", i, rtt, 2*oneWay)
		}
		est.OnSample(back.Add(oneWay), rtt)
		now = now.Add(time.Second + 3*ms)
	}
	if !within(est.SRTT(), 2*39*ms, 20*ms) {
		t.Errorf("SRTT = %v", est.SRTT())
	}
}
