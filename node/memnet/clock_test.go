package memnet

import (
	"slices"
	"testing"
	"time"
)

func TestManualClockFiresInOrder(t *testing.T) {
	clk := NewManualClock(epoch)
	var got []string
	var at []time.Duration
	add := func(d time.Duration, name string) Timer {
		return clk.AfterFunc(d, func() {
			got = append(got, name)
			at = append(at, clk.Now().Sub(epoch))
		})
	}
	add(30*time.Millisecond, "c")
	add(10*time.Millisecond, "a1")
	add(10*time.Millisecond, "a2") // tie: scheduling order
	stopped := add(20*time.Millisecond, "stopped")
	reset := add(5*time.Millisecond, "reset")
	add(-time.Second, "now") // due immediately
	clk.AfterFunc(15*time.Millisecond, func() {
		got = append(got, "b")
		at = append(at, clk.Now().Sub(epoch))
		// Scheduled from a callback and due within the same Advance.
		add(time.Millisecond, "nested")
	})

	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer = false")
	}
	if stopped.Stop() {
		t.Fatal("second Stop = true")
	}
	if !reset.Reset(25 * time.Millisecond) {
		t.Fatal("Reset of a pending timer = false")
	}
	if n := clk.Pending(); n != 6 {
		t.Fatalf("Pending = %d, want 6", n)
	}
	if next, ok := clk.Next(); !ok || !next.Equal(epoch) {
		t.Fatalf("Next = %v, %v", next, ok)
	}

	if fired := clk.Advance(12 * time.Millisecond); fired != 3 {
		t.Fatalf("first Advance fired %d, want 3", fired)
	}
	if !clk.Now().Equal(epoch.Add(12 * time.Millisecond)) {
		t.Fatalf("Now = %v", clk.Now())
	}
	if fired := clk.Advance(time.Second); fired != 4 {
		t.Fatalf("second Advance fired %d, want 4", fired)
	}
	wantNames := []string{"now", "a1", "a2", "b", "nested", "reset", "c"}
	wantAt := []time.Duration{0, 10e6, 10e6, 15e6, 16e6, 25e6, 30e6}
	if !slices.Equal(got, wantNames) {
		t.Fatalf("order = %v, want %v", got, wantNames)
	}
	if !slices.Equal(at, wantAt) {
		t.Fatalf("times = %v, want %v", at, wantAt)
	}
	if !clk.Now().Equal(epoch.Add(1012 * time.Millisecond)) {
		t.Fatalf("Now = %v", clk.Now())
	}
	if _, ok := clk.Next(); ok {
		t.Fatal("Next reports a timer after all fired")
	}
	// Reset after firing re-arms.
	if reset.Reset(time.Millisecond) {
		t.Fatal("Reset of a fired timer = true")
	}
	if fired := clk.Advance(time.Millisecond); fired != 1 {
		t.Fatalf("re-armed timer fired %d times", fired)
	}
}

func TestManualClockAdvanceToPast(t *testing.T) {
	clk := NewManualClock(epoch)
	fired := 0
	clk.AfterFunc(0, func() { fired++ })
	if n := clk.AdvanceTo(epoch.Add(-time.Hour)); n != 1 || fired != 1 {
		t.Fatalf("AdvanceTo(past) fired %d", n)
	}
	if !clk.Now().Equal(epoch) {
		t.Fatalf("clock went backwards to %v", clk.Now())
	}
	clk.Advance(-time.Second)
	if !clk.Now().Equal(epoch) {
		t.Fatalf("negative Advance moved the clock to %v", clk.Now())
	}
}

func TestRealClock(t *testing.T) {
	var c Clock = RealClock{}
	done := make(chan struct{})
	start := c.Now()
	tm := c.AfterFunc(time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RealClock timer did not fire")
	}
	if c.Now().Sub(start) < time.Millisecond {
		t.Fatal("RealClock timer fired early")
	}
	if tm.Stop() {
		t.Fatal("Stop after firing = true")
	}
}
