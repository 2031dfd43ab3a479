package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-net/strata/group"
	"github.com/strata-net/strata/node/memnet"
)

// Bounds of the swarm's flags: one process on a small machine.
const (
	swarmMaxNodes    = 500
	swarmMaxRate     = 100_000_000 // bits per second
	swarmMaxDuration = time.Hour
)

var swarmUsage = usage{
	synopsis: "[--nodes N] [--loss P] [--delay D] [--rate R] [--duration T] [--udp] [--http ADDR] [flags]",
	about: `
Starts N members of one multicast group in this process, on the in-memory
network (or, with --udp, on real UDP sockets on 127.0.0.1). Member 0
publishes a synthetic stream of random bytes at --rate for --duration;
every other member subscribes and checks its output byte for byte. Link
delay, jitter and loss (in-memory network only) start once the mesh has
formed.

While it runs, a line of progress a second goes to stderr (JSON lines when
stderr is not a terminal), and a live view is served on --http: the mesh
as a graph, each member coloured by delivery or latency, rates over time,
and a panel that routes a message to any 256-bit address and shows the
path it took. At the end the report goes to stdout, as text on a terminal
and as JSON otherwise (--format chooses): delivery ratio, latency p50/p99,
bytes received per useful byte, the publisher's upload as a multiple of
the stream rate, and the worst member by each measure.

Exit status: 0 when delivery reached --min-delivery with no mismatched
byte, 1 when it did not (or the run failed), 2 on a usage error.`,
	examples: []string{
		"strata swarm",
		"strata swarm --nodes 50 --loss 5% --delay 30ms --rate 2M --duration 30s",
		"strata swarm --udp --nodes 10 --http 127.0.0.1:8080 --hold",
		"strata swarm --http '' --format json | jq .delivery_ratio",
	},
}

// swarmLossFlag is a loss probability given as a fraction ("0.01") or a
// percentage ("1%").
type swarmLossFlag float64

func (l *swarmLossFlag) String() string {
	return strconv.FormatFloat(float64(*l)*100, 'g', -1, 64) + "%"
}

func (l *swarmLossFlag) Set(s string) error {
	pct, isPct := strings.CutSuffix(strings.TrimSpace(s), "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
	if err != nil {
		return fmt.Errorf("want a fraction (0.01) or a percentage (1%%)")
	}
	if isPct {
		v /= 100
	}
	if v < 0 || v >= 1 {
		if !isPct && v >= 1 && v < 100 {
			return fmt.Errorf("%g is not a fraction below 1; for %g percent write %g%%", v, v, v)
		}
		return fmt.Errorf("want a loss from 0 up to (not including) 100%%")
	}
	*l = swarmLossFlag(v)
	return nil
}

// swarmRateFlag is a rate in bits per second, with an optional k, M or G
// and an optional "bit/s" or "bps": "1M", "500kbit/s", "250000".
type swarmRateFlag int

func (r *swarmRateFlag) String() string { return swarmFormatBits(int(*r)) }

func (r *swarmRateFlag) Set(s string) error {
	t := strings.TrimSpace(s)
	for _, suf := range []string{"bit/s", "bps", "bit", "b/s"} {
		if v, ok := strings.CutSuffix(t, suf); ok {
			t = strings.TrimSpace(v)
			break
		}
	}
	mult := 1.0
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mult = 1e3
		case 'M':
			mult = 1e6
		case 'G':
			mult = 1e9
		}
		if mult != 1 {
			t = strings.TrimSpace(t[:len(t)-1])
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return fmt.Errorf("want a positive rate in bits per second, like 1M, 500k or 250000")
	}
	*r = swarmRateFlag(v * mult)
	return nil
}

func runSwarm(ctx context.Context, e *env, path string, args []string) int {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	nodes := fs.Int("nodes", 30, "run `N` members (one of them the publisher)")
	loss := swarmLossFlag(0.01)
	fs.Var(&loss, "loss", "lose this share `P` of datagrams on every link, as 0.01 or 1% (in-memory network)")
	delay := fs.Duration("delay", 20*time.Millisecond, "one-way delay `D` of every link (in-memory network)")
	jitter := fs.Duration("jitter", 10*time.Millisecond, "random extra delay `D`, up to this much, of every datagram (in-memory network)")
	rate := swarmRateFlag(1_000_000)
	fs.Var(&rate, "rate", "publish the stream at `R` bits per second (k, M and G suffixes)")
	duration := fs.Duration("duration", 15*time.Second, "publish for `T`")
	noRdv := fs.Bool("no-rendezvous", false, "members meet through earlier members only, without the swarm's rendezvous node")
	earlyFragments := fs.Bool("early-fragments", false, "the publisher sends each full 1024-byte fragment, signed, as soon as it is written, not with its block: lower latency, about 4 % more bytes received")
	backupPushers := fs.Bool("backup-pushers", false, "every member takes each push class from a second neighbour too (each piece comes twice): lower latency under loss, about twice the bytes received")
	lowLatency := fs.Bool("low-latency", false, "every member runs the latency configuration: the publisher pushes 8 copies, 5 push classes, relays take up to 8 copies, early fragments and backup pushers (docs/group.md \"A latency configuration\"): about gossipsub's latency without loss, about 2.5 bytes received per useful byte, a publisher upload of about 10x the stream")
	shortParity := fs.Bool("short-parity", false, "the publisher gives blocks closed short (streams under about 524k) parity in proportion to their data, not 4 pieces each: fewer bytes, a longer latency tail")
	udp := fs.Bool("udp", false, "run the members on UDP sockets on 127.0.0.1 instead of the in-memory network")
	httpAddr := fs.String("http", "127.0.0.1:0", "serve the live view on `ADDR` (a loopback address; port 0 picks one; empty disables)")
	hold := fs.Bool("hold", false, "after the report, keep the members and the live view running until interrupted")
	minDelivery := fs.Float64("min-delivery", 0.999, "exit 1 if the delivery ratio falls under `X`")
	format := fs.String("format", "auto", "report format: `auto|text|json` (auto: text when stdout is a terminal)")
	seed := fs.Uint64("seed", 1, "seed `N` of the stream's bytes and of the in-memory network's impairments")
	var lf logFlags
	lf.register(fs, "error")
	pos, code, ok := parseFlags(e, path, fs, swarmUsage, args)
	if !ok {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case len(pos) > 0:
		return usageErr(e, path, "unexpected argument %q", pos[0])
	case *nodes < 2 || *nodes > swarmMaxNodes:
		return usageErr(e, path, "--nodes %d: want 2..%d", *nodes, swarmMaxNodes)
	case *delay < 0 || *jitter < 0:
		return usageErr(e, path, "--delay and --jitter must not be negative")
	case rate < 8*100 || rate > swarmMaxRate:
		return usageErr(e, path, "--rate %s: want 800 bit/s to %s", rate.String(), swarmFormatBits(swarmMaxRate))
	case *duration <= 0 || *duration > swarmMaxDuration:
		return usageErr(e, path, "--duration %s: want more than 0 and at most %s", *duration, swarmMaxDuration)
	case *minDelivery < 0 || *minDelivery > 1:
		return usageErr(e, path, "--min-delivery %g: want 0..1", *minDelivery)
	case *udp && (set["loss"] || set["delay"] || set["jitter"]):
		return usageErr(e, path, "--loss, --delay and --jitter shape the in-memory network; with --udp, use tc netem on the loopback interface instead")
	case *hold && *httpAddr == "":
		return usageErr(e, path, "--hold keeps the live view running, but --http is empty")
	}
	if *httpAddr != "" {
		ap, err := netip.ParseAddrPort(*httpAddr)
		if err != nil || !ap.Addr().IsLoopback() {
			return usageErr(e, path, "--http %q: want a loopback HOST:PORT such as 127.0.0.1:8080 (the view has no authentication)", *httpAddr)
		}
	}
	jsonReport := false
	switch *format {
	case "json":
		jsonReport = true
	case "text":
	case "auto":
		jsonReport = !isTerminal(e.stdout)
	default:
		return usageErr(e, path, "--format %q: want auto, text or json", *format)
	}
	log, err := lf.logger(e)
	if err != nil {
		return usageErr(e, path, "%v", err)
	}

	opt := swarmOptions{
		nodes:    *nodes,
		link:     memnet.Link{Delay: *delay, Jitter: *jitter, Loss: float64(loss)},
		rate:     int(rate) / 8,
		duration: *duration,
		udp:      *udp,
		seed:     *seed,

		noRendezvous:   *noRdv,
		shortParity:    *shortParity,
		earlyFragments: *earlyFragments,
		backupPushers:  *backupPushers,
		lowLatency:     *lowLatency,
		log:            log,
	}
	s, err := newSwarm(opt)
	if err != nil {
		return failErr(e, path, err)
	}
	defer s.close()
	if *httpAddr != "" {
		srv, err := startSwarmServer(s, *httpAddr)
		if err != nil {
			return failErr(e, path, fmt.Errorf("live view: %w", err))
		}
		defer srv.close()
		fmt.Fprintf(e.stderr, "%s: live view at %s\n", path, srv.url())
	}

	stopProgress := s.progress(e, path)
	err = s.bootstrap(ctx)
	if err == nil {
		// Members give up on a block after the group's window; wait that
		// long and a little more for the last blocks.
		err = s.stream(ctx, group.DefaultWindowDuration+2*time.Second)
	}
	stopProgress()
	if err != nil {
		if ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		return failErr(e, path, err)
	}
	snap := s.snapshot(false)
	s.sample(snap)
	rep := s.report(snap, *minDelivery)
	if jsonReport {
		rep.writeJSON(e.stdout)
	} else {
		rep.writeText(e.stdout)
	}
	if *hold {
		fmt.Fprintf(e.stderr, "%s: done; the live view stays up until interrupted (Ctrl-C)\n", path)
		<-ctx.Done()
	}
	if !rep.Pass {
		return failErr(e, path, fmt.Errorf("delivery %.4f%% with %d mismatched bytes; --min-delivery is %.4f%%",
			rep.Delivery*100, rep.MismatchedBytes, *minDelivery*100))
	}
	return exitOK
}

// progress samples the swarm once a second for the rates chart and prints
// a line to stderr (text on a terminal, JSON lines otherwise). The
// returned function stops it.
func (s *swarm) progress(e *env, path string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		enc := json.NewEncoder(e.stderr)
		// The chart's first point is taken at once, so a page loaded
		// within the first second already has one.
		s.sample(s.snapshot(false))
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			snap := s.snapshot(false)
			s.sample(snap)
			if e.stderrIsTerminal {
				fmt.Fprintf(e.stderr, "%s: %s\n", path, swarmProgressLine(snap))
			} else {
				enc.Encode(swarmProgress{Elapsed: snap.Elapsed, Phase: snap.Phase, swarmTotals: snap.Totals})
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
