package congestion

import (
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

const ms = time.Millisecond

func TestRFC7016_3_5_2_2_InitialTimeouts(t *testing.T) {
	r := NewRTTEstimator()
	if r.HasSample() {
		t.Fatal("HasSample before any sample")
	}
	if got := r.MRTO(); got != 250*ms {
		t.Errorf("MRTO = %v, want 250ms", got)
	}
	if got := r.ERTO(); got != 3*time.Second {
		t.Errorf("ERTO = %v, want 3s", got)
	}
	if r.SRTT() != 0 || r.RTTVar() != 0 {
		t.Errorf("SRTT, RTTVar = %v, %v, want 0, 0", r.SRTT(), r.RTTVar())
	}
	if got := r.SafeSRTT(); got != SafeRTT {
		t.Errorf("SafeSRTT = %v, want %v", got, SafeRTT)
	}
	if _, ok := r.MinRTT(); ok {
		t.Error("MinRTT ok before any sample")
	}
	if _, _, ok := r.LatestRTT(); ok {
		t.Error("LatestRTT ok before any sample")
	}
}

func TestRFC7016_3_5_2_2_Samples(t *testing.T) {
	tests := []struct {
		name                     string
		samples                  []time.Duration
		srtt, rttvar, mrto, erto time.Duration
		minRTT                   time.Duration
	}{
		{"first sample", []time.Duration{100 * ms}, 100 * ms, 50 * ms, 500 * ms, 500 * ms, 100 * ms},
		{"first sample small, ERTO floor", []time.Duration{10 * ms}, 10 * ms, 5 * ms, 230 * ms, 250 * ms, 10 * ms},
		{"zero sample", []time.Duration{0}, 0, 0, 200 * ms, 250 * ms, 0},
		{"second sample", []time.Duration{100 * ms, 200 * ms}, 112500 * time.Microsecond, 62500 * time.Microsecond, 562500 * time.Microsecond, 562500 * time.Microsecond, 100 * ms},
		{"steady", []time.Duration{80 * ms, 80 * ms, 80 * ms}, 80 * ms, 22500 * time.Microsecond, 370 * ms, 370 * ms, 80 * ms},
		{"negative ignored", []time.Duration{100 * ms, -5 * ms}, 100 * ms, 50 * ms, 500 * ms, 500 * ms, 100 * ms},
		{"absurd ignored", []time.Duration{100 * ms, MaxRTTSample + 1}, 100 * ms, 50 * ms, 500 * ms, 500 * ms, 100 * ms},
		{"largest accepted", []time.Duration{MaxRTTSample}, MaxRTTSample, MaxRTTSample / 2, 3*MaxRTTSample + 200*ms, 3*MaxRTTSample + 200*ms, MaxRTTSample},
		{"min tracks lowest", []time.Duration{100 * ms, 40 * ms, 300 * ms}, 118437500, 91250 * time.Microsecond, 683437500, 683437500, 40 * ms},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRTTEstimator()
			now := t0
			for _, s := range tc.samples {
				now = now.Add(time.Second)
				r.OnSample(now, s)
			}
			if r.SRTT() != tc.srtt || r.RTTVar() != tc.rttvar {
				t.Errorf("SRTT, RTTVar = %v, %v, want %v, %v", r.SRTT(), r.RTTVar(), tc.srtt, tc.rttvar)
			}
			if r.MRTO() != tc.mrto || r.ERTO() != tc.erto {
				t.Errorf("MRTO, ERTO = %v, %v, want %v, %v", r.MRTO(), r.ERTO(), tc.mrto, tc.erto)
			}
			if m, ok := r.MinRTT(); !ok || m != tc.minRTT {
				t.Errorf("MinRTT = %v, %v, want %v", m, ok, tc.minRTT)
			}
		})
	}
}

func TestOnSampleReportsUse(t *testing.T) {
	r := NewRTTEstimator()
	if r.OnSample(t0, -1) || r.OnSample(t0, MaxRTTSample+1) {
		t.Error("out-of-range sample reported as used")
	}
	if r.HasSample() {
		t.Error("out-of-range sample counted")
	}
	if !r.OnSample(t0, 5*ms) {
		t.Error("valid sample reported unused")
	}
	if rtt, at, ok := r.LatestRTT(); !ok || rtt != 5*ms || !at.Equal(t0) {
		t.Errorf("LatestRTT = %v, %v, %v", rtt, at, ok)
	}
}

func within(got, want, tol time.Duration) bool {
	d := got - want
	return d <= tol && d >= -tol
}

func TestRFC7016_3_5_2_2_Backoff(t *testing.T) {
	tests := []struct {
		name   string
		sample time.Duration // 0: none
		want   []time.Duration
	}{
		{"from initial ERTO", 0, []time.Duration{4242642 * time.Microsecond, 6 * time.Second, 8485284 * time.Microsecond, 10 * time.Second, 10 * time.Second}},
		{"from 500ms", 100 * ms, []time.Duration{707107 * time.Microsecond, 1 * time.Second, 1414214 * time.Microsecond, 2 * time.Second}},
		{"capped at 10s", 3 * time.Second, []time.Duration{10 * time.Second, 10 * time.Second}},
		{"never below MRTO", 5 * time.Second, []time.Duration{15200 * ms, 15200 * ms}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRTTEstimator()
			if tc.sample > 0 {
				r.OnSample(t0, tc.sample)
			}
			for i, w := range tc.want {
				r.Backoff()
				if !within(r.ERTO(), w, 20*time.Microsecond) {
					t.Errorf("after %d backoffs ERTO = %v, want about %v", i+1, r.ERTO(), w)
				}
			}
		})
	}
}

func TestRFC7016_3_5_2_2_BackoffReset(t *testing.T) {
	r := NewRTTEstimator()
	r.Backoff()
	r.ResetBackoff()
	if r.ERTO() != InitialERTO {
		t.Errorf("reset without sample: ERTO = %v, want %v", r.ERTO(), InitialERTO)
	}
	r.OnSample(t0, 20*ms) // MRTO 260ms
	r.Backoff()
	r.Backoff()
	if r.ERTO() <= 260*ms {
		t.Fatalf("backoff did not grow ERTO: %v", r.ERTO())
	}
	r.ResetBackoff()
	if r.ERTO() != 260*ms {
		t.Errorf("ResetBackoff: ERTO = %v, want 260ms", r.ERTO())
	}
	r.Backoff()
	r.OnSample(t0, 20*ms) // steady: RTTVAR 7.5ms -> MRTO 250ms
	if r.ERTO() != 250*ms {
		t.Errorf("sample after backoff: ERTO = %v, want 250ms", r.ERTO())
	}
}

func TestMinRTTWindow(t *testing.T) {
	r := NewRTTEstimator()
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	steps := []struct {
		sec     int
		sample  time.Duration
		reset   bool
		want    time.Duration
		lowered int // seconds of MinRTTLowered after the step
	}{
		{0, 50 * ms, false, 50 * ms, 0},
		{10, 40 * ms, false, 40 * ms, 10},
		{31, 60 * ms, false, 40 * ms, 10},  // new bucket, older one still in window
		{200, 70 * ms, false, 60 * ms, 10}, // bucket from 0s expired, 31s kept
		{400, 80 * ms, false, 80 * ms, 10}, // everything expired
		{405, 75 * ms, false, 75 * ms, 405},
		{406, 90 * ms, true, 90 * ms, 405}, // reset: fresh history
		{407, 85 * ms, false, 85 * ms, 407},
	}
	for _, s := range steps {
		if s.reset {
			r.ResetMinRTT()
		}
		r.OnSample(at(s.sec), s.sample)
		if m, _ := r.MinRTT(); m != s.want {
			t.Errorf("t=%ds: MinRTT = %v, want %v", s.sec, m, s.want)
		}
		if got := r.MinRTTLowered(); !got.Equal(at(s.lowered)) {
			t.Errorf("t=%ds: MinRTTLowered = %v, want %v", s.sec, got.Sub(t0), time.Duration(s.lowered)*time.Second)
		}
	}
}

func TestMinRTTManyBuckets(t *testing.T) {
	// Samples every 31 s for a long time: the ring must wrap without
	// losing the window's minimum or growing.
	r := NewRTTEstimator()
	for i := range 100 {
		rtt := time.Duration(100+i%7) * ms
		r.OnSample(t0.Add(time.Duration(i)*31*time.Second), rtt)
		want := rtt
		for j := max(0, i-5); j <= i; j++ { // buckets within 180 s
			want = min(want, time.Duration(100+j%7)*ms)
		}
		if m, _ := r.MinRTT(); m != want {
			t.Fatalf("i=%d: MinRTT = %v, want %v", i, m, want)
		}
	}
}
