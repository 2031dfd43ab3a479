package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progress counts bytes and, on a terminal, rewrites one status line on
// stderr twice a second: "LABEL 1.2 MiB (300.0 KiB/s) EXTRA".
type progress struct {
	n     atomic.Int64
	start time.Time

	w     io.Writer // nil: count only
	label string
	extra func() string
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startProgress(e *env, label string, extra func() string) *progress {
	p := &progress{start: time.Now()}
	if !e.stderrIsTerminal {
		return p
	}
	p.w, p.label, p.extra, p.stop = e.stderr, label, extra, make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.print()
			}
		}
	}()
	return p
}

func (p *progress) add(n int) { p.n.Add(int64(n)) }

func (p *progress) bytes() int64 { return p.n.Load() }

// rate is the mean bytes per second since the start.
func (p *progress) rate() float64 {
	d := time.Since(p.start).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(p.n.Load()) / d
}

func (p *progress) print() {
	line := fmt.Sprintf("%s %s (%s/s)", p.label, humanBytes(float64(p.n.Load())), humanBytes(p.rate()))
	if p.extra != nil {
		line += " " + p.extra()
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
}

// end stops the status line, leaving its last state on its own line.
func (p *progress) end() {
	if p.w == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.print()
	fmt.Fprintln(p.w)
	p.w = nil
}
