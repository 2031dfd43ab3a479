package core

import (
	"testing"
	"time"
)

// A free list gives up, at each trim, half of what it held unused since
// the last one, and its array once empty.
func TestFreeListTrim(t *testing.T) {
	var p fragPool
	t0 := time.Unix(1000, 0)
	for range 100 {
		p.recycle(make([]byte, 0, maxFragment))
	}
	p.trim(t0) // the first trim knows no history: keeps all
	if n := len(p.bufs.items); n != 100 {
		t.Fatalf("first trim left %d buffers, want 100", n)
	}
	var held [][]byte
	for range 10 { // a burst takes 10 and gives them back
		held = append(held, p.buf(make([]byte, smallBuf+1)))
	}
	for _, b := range held {
		p.recycle(b)
	}
	p.trim(t0.Add(poolTrimPeriod / 2)) // too early: nothing happens
	if n := len(p.bufs.items); n != 100 {
		t.Fatalf("a trim before the period left %d buffers, want 100", n)
	}
	p.trim(t0.Add(poolTrimPeriod))
	if n := len(p.bufs.items); n != 55 {
		t.Fatalf("after a period in which 10 of 100 were used, %d kept, want 55 (half the 90 unused given up)", n)
	}
	for i := 2; i < 10; i++ { // idle: 55 28 14 7 4 2 1 0
		p.trim(t0.Add(time.Duration(i) * poolTrimPeriod))
	}
	if p.bufs.items != nil {
		t.Fatalf("after idle periods %d buffers (cap %d) kept, want none", len(p.bufs.items), cap(p.bufs.items))
	}
	if b := p.buf(make([]byte, 300)); cap(b) != maxFragment || len(b) != 300 {
		t.Fatalf("buffer from an empty pool: len %d cap %d", len(b), cap(b))
	}
}
