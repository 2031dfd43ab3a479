package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/group"
)

var playUsage = usage{
	synopsis: "--group SPEC --bootstrap ADDR[,ADDR] [--out FILE] [--gaps skip|zero] [--bytes N] [--duration D] [--idle D] [--linger D]",
	about: `
Joins the group and writes its stream to stdout (or --out FILE), in order,
from where the stream was when this member joined.

A block that could not be received or rebuilt within the group's window is
a gap: it is reported on stderr (a warning log with the stream offset and
the bytes lost) and, with --gaps skip (the default), left out of the
output, so the output is shorter than the stream; with --gaps zero it is
written as zero bytes, so output offsets stay those of the stream (what a
player of a fixed-rate format or a byte-for-byte comparison wants).

If the publisher restarts (publishes again with the same key, after a
crash), play follows it: a warning is logged and the new run's bytes come
next in the output (a new run starts at offset 0, so nothing is padded
across the restart).

play stops at the end of the stream (the publisher reached the end of its
input and ended the stream; every byte up to it has been written), or
when any of these comes first: --bytes N bytes written, --duration D
since it started, --idle D without new data once data has flowed
(default 10s: a publisher that died without ending the stream), or
SIGINT/SIGTERM. At the end of the stream it closes its output and stays
--linger D (default 4s, the group's window) relaying before it exits, so
that neighbours still missing the last blocks can fetch them from it
(when every player leaves at its own end, a late one loses its sources).
It exits 0, or 1 if no stream data came at all before --duration ran out
(is a publisher running?).
Progress is shown on stderr when it is a terminal; a summary is logged at
the end.`,
	examples: []string{
		"strata play --group 'strata:group/demo?multicast' --bootstrap 127.0.0.1:1935 > out.ts",
		"strata play --group 'strata:group/demo?multicast' --bootstrap 127.0.0.1:1935 | ffplay -",
		"strata play --group 'strata:group/demo?multicast' --bootstrap 127.0.0.1:1935 --out first.bin --bytes 1M --gaps zero",
	},
}

// playLimits says when play stops.
type playLimits struct {
	bytes    int64         // 0: no limit
	duration time.Duration // 0: no limit
	idle     time.Duration // 0: no limit
	zeroGaps bool
}

func runPlay(ctx context.Context, e *env, path string, args []string) int {
	var out, gaps *string
	var lim playLimits
	var nbytes sizeFlag
	var linger time.Duration
	c := memberCmd{usage: playUsage, logLevel: "info", needs: "multicast",
		flags: func(fs *flag.FlagSet) {
			out = fs.String("out", "-", "write the stream to `FILE` (-: stdout)")
			gaps = fs.String("gaps", "skip", "what to write for lost blocks: `skip|zero` (leave out, or zero bytes of their length)")
			fs.Var(&nbytes, "bytes", "stop after writing `N` bytes, e.g. 200K (0: no limit)")
			fs.DurationVar(&lim.duration, "duration", 0, "stop `D` after starting (0: no limit)")
			fs.DurationVar(&lim.idle, "idle", 10*time.Second, "stop `D` after the last data, once data has flowed (0: never)")
			fs.DurationVar(&linger, "linger", group.DefaultWindowDuration, "after the end of the stream, close the output and relay `D` more for late neighbours")
		},
		check: func(pos []string) error {
			if err := noArgs(" (the output goes in --out FILE, or on stdout)")(pos); err != nil {
				return err
			}
			if *gaps != "skip" && *gaps != "zero" {
				return fmt.Errorf("--gaps %q: want skip or zero", *gaps)
			}
			return nonNegative("duration", &lim.duration, "idle", &lim.idle, "linger", &linger)
		},
	}
	a, code, ok := c.parse(ctx, e, path, args)
	if !ok {
		return code
	}
	lim.bytes, lim.zeroGaps = nbytes.n, *gaps == "zero"
	s := a.setup
	s.subscribe = true
	var w io.Writer = e.stdout
	if *out != "-" && *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return failErr(e, path, err)
		}
		defer f.Close()
		w = f
	}
	start := time.Now()
	m, err := startMember(ctx, s)
	if err != nil {
		return failErr(e, path, err)
	}
	defer m.close()
	g := m.groups[0]
	prog := startProgress(e, "played", func() string {
		st := g.Stats()
		return fmt.Sprintf("%d neighbours, delivered %.1f%%", st.Neighbours, 100*st.DeliveryRatio())
	})
	res, err := play(ctx, m.subs[0].Next, w, lim, start, prog, s.log)
	prog.end()
	if res.end == "end of stream" && linger > 0 {
		// The output is complete: close it now, file or stdout, so a
		// reader (a player on the pipe) sees its end; then relay a while
		// for neighbours still fetching the tail. (A file's deferred
		// Close then fails, unread.)
		if c, ok := w.(io.Closer); ok {
			c.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(linger):
		}
	}
	st := g.Stats()
	s.log.Info().Int64("bytes", res.written).Uint64("start_offset", res.startOffset).Uint64("gaps", res.gaps).
		Uint64("bytes_lost", res.lost).Uint64("restarts", res.restarts).Str("end", res.end).Dur("latency_p50", st.LatencyP50).Dur("latency_p99", st.LatencyP99).
		Float64("delivery_ratio", st.DeliveryRatio()).Uint64("early_fragments", st.EarlyFragments).Msg("played")
	if err != nil {
		return failErr(e, path, err)
	}
	if !res.started && ctx.Err() == nil {
		return failErr(e, path, fmt.Errorf("no stream data within %s: is a publisher running in this group?", lim.duration))
	}
	return exitOK
}

// playResult is what play did.
type playResult struct {
	started     bool   // some data came
	startOffset uint64 // stream offset of the first byte written
	written     int64
	gaps        uint64 // gap records (blocks lost)
	restarts    uint64 // publisher restarts followed
	lost        uint64 // stream bytes lost (skipped or zero-filled)
	end         string // why it stopped
}

// play copies the records next returns (a Subscription's Next) to w
// until a limit is reached.
func play(ctx context.Context, next func(context.Context) (group.Record, error), w io.Writer, lim playLimits, start time.Time, prog *progress, log zerolog.Logger) (playResult, error) {
	var res playResult
	var pos uint64  // stream offset of the next byte to write
	rebase := false // a restart came: the next record sets pos
	lastData := start
	var zeros []byte
	write := func(b []byte) error {
		if lim.bytes > 0 && res.written+int64(len(b)) > lim.bytes {
			b = b[:lim.bytes-res.written]
		}
		n, err := w.Write(b)
		res.written += int64(n)
		prog.add(n)
		if err != nil {
			return fmt.Errorf("writing the output: %w", err)
		}
		return nil
	}
	for {
		if lim.bytes > 0 && res.written >= lim.bytes {
			res.end = "bytes"
			return res, nil
		}
		deadline, why := time.Time{}, ""
		if lim.duration > 0 {
			deadline, why = start.Add(lim.duration), "duration"
		}
		if lim.idle > 0 && res.started {
			if d := lastData.Add(lim.idle); deadline.IsZero() || d.Before(deadline) {
				deadline, why = d, "idle"
			}
		}
		nctx, cancel := ctx, context.CancelFunc(func() {})
		if !deadline.IsZero() {
			nctx, cancel = context.WithDeadline(ctx, deadline)
		}
		r, err := next(nctx)
		cancel()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				res.end = "end of stream"
				return res, nil
			case ctx.Err() != nil:
				res.end = "interrupted"
				return res, nil
			case errors.Is(err, context.DeadlineExceeded):
				res.end = why
				return res, nil
			}
			res.end = "error"
			return res, fmt.Errorf("receiving the stream: %w", err)
		}
		if r.Restarted {
			// A new run of the stream: its offsets start again at 0.
			res.gaps += r.Lost
			res.restarts++
			rebase = true
			log.Warn().Uint64("offset", r.Offset).Uint64("blocks_lost", r.Lost).Msg("the publisher restarted: the output goes on with its new run")
			continue
		}
		if r.IsGap() {
			res.gaps += r.Lost
			log.Warn().Uint64("offset", r.Offset).Uint64("blocks", r.Lost).Msg("gap: blocks lost")
			continue
		}
		lastData = time.Now()
		if !res.started {
			res.started, pos, res.startOffset = true, r.Offset, r.Offset
			if r.Offset > 0 {
				log.Info().Uint64("offset", r.Offset).Msg("joined the stream after its start")
			}
		}
		if rebase {
			pos, rebase = r.Offset, false
		}
		data := r.Data
		end := r.Offset + uint64(len(data))
		if end <= pos {
			continue // already written (cannot happen with an in-order subscription)
		}
		if r.Offset > pos {
			hole := r.Offset - pos
			res.lost += hole
			log.Warn().Uint64("offset", pos).Uint64("bytes", hole).Bool("zero_filled", lim.zeroGaps).Msg("gap: bytes missing from the output")
			for lim.zeroGaps && hole > 0 {
				if zeros == nil {
					zeros = make([]byte, publishChunk)
				}
				n := min(hole, uint64(len(zeros)))
				if err := write(zeros[:n]); err != nil {
					return res, err
				}
				hole -= n
			}
		} else {
			data = data[pos-r.Offset:]
		}
		if err := write(data); err != nil {
			return res, err
		}
		pos = end
	}
}
