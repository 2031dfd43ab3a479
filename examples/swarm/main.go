// Command swarm is a small swarm in one process, written against the
// public API of node, overlay and group: N members of one multicast group
// on the in-memory network (node/memnet), one of them publishing a stream
// of random bytes, every other one checking its output byte for byte.
//
//	go run ./examples/swarm
//	go run ./examples/swarm --nodes 20 --duration 5s --loss 2%
//
// It prints one line per member and a summary, and exits 1 if any member's
// output differs from what was published.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-net/strata/examples/internal/cli"
	"github.com/strata-net/strata/examples/internal/memgroup"
	"github.com/strata-net/strata/group"
	"github.com/strata-net/strata/node/memnet"
	"github.com/strata-net/strata/overlay"
)

func main() {
	cli.Main("swarm", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Stdout) })
}

// options of one run.
type options struct {
	nodes    int
	duration time.Duration
	rate     int // stream bytes per second
	delay    time.Duration
	loss     float64
	seed     uint64
	timeout  time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("swarm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.nodes, "nodes", 12, "members in the group, the publisher included (2..200)")
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "how long the publisher streams")
	fs.IntVar(&o.rate, "rate", 64<<10, "stream rate in bytes per second")
	fs.DurationVar(&o.delay, "delay", 10*time.Millisecond, "one-way delay of every link while streaming")
	loss := fs.String("loss", "0%", "datagram loss on every link while streaming, e.g. 2% or 0.02")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the stream's bytes and of the network's randomness")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up after this long")
	if err := cli.Parse(fs, args); err != nil {
		return o, err
	}
	bad := func(format string, a ...any) (options, error) {
		return o, cli.Usagef(stderr, "swarm", format, a...)
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q (all settings are flags; see --help)", fs.Arg(0))
	}
	if o.nodes < 2 || o.nodes > 200 {
		return bad("--nodes %d: want 2..200", o.nodes)
	}
	if o.duration <= 0 || o.rate <= 0 || o.timeout <= 0 {
		return bad("--duration, --rate and --timeout must be positive")
	}
	pct, isPct := strings.CutSuffix(*loss, "%")
	v, err := strconv.ParseFloat(pct, 64)
	if isPct {
		v /= 100
	}
	if err != nil || v < 0 || v >= 1 {
		return bad("--loss %q: want a fraction below 1 (0.02) or a percentage (2%%)", *loss)
	}
	o.loss = v
	return o, nil
}

// member is one node of the swarm with its group membership and, for
// subscribers, what it output.
type member struct {
	*memgroup.Member

	mu   sync.Mutex
	out  bytes.Buffer // stream bytes output, in order
	gaps int          // gap records (blocks given up on)
}

// run starts the swarm, streams, checks every member's output and writes
// the report to out.
func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	// The mesh forms on a near-perfect network; the --delay and --loss of
	// every link start with the stream.
	network := memnet.New(memnet.Config{Seed: o.seed, Link: memnet.Link{Delay: time.Millisecond}})
	defer network.Close()

	spec, err := group.ParseSpecifier("strata:group/example-swarm?multicast")
	if err != nil {
		return err
	}
	var members []*member
	defer func() {
		all := make([]*memgroup.Member, len(members))
		for i, m := range members {
			all[i] = m.Member
		}
		memgroup.CloseAll(all)
	}()
	for range o.nodes {
		m, err := memgroup.Start(network, spec, group.Config{Overlay: overlay.LocalConfig()})
		if err != nil {
			return err
		}
		members = append(members, &member{Member: m})
	}
	fmt.Fprintf(out, "%d members of %s on the in-memory network\n", o.nodes, spec)

	t0 := time.Now()
	if err := bootstrap(ctx, members); err != nil {
		return err
	}
	fmt.Fprintf(out, "mesh formed in %v\n", time.Since(t0).Round(time.Millisecond))

	// Subscribe before the first byte, so every member outputs the
	// stream from offset 0.
	var readers sync.WaitGroup
	rctx, stopReaders := context.WithCancel(ctx)
	defer func() { stopReaders(); readers.Wait() }()
	for _, m := range members[1:] {
		sub, err := m.Group.Subscribe()
		if err != nil {
			return err
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				r, err := sub.Next(rctx)
				if err != nil {
					return
				}
				m.mu.Lock()
				if r.IsGap() {
					m.gaps++
				} else {
					m.out.Write(r.Data)
				}
				m.mu.Unlock()
			}
		}()
	}

	network.SetDefaultLink(memnet.Link{Delay: o.delay, Loss: o.loss})
	stream := make([]byte, int(float64(o.rate)*o.duration.Seconds()))
	rand.NewChaCha8(seed32(o.seed)).Read(stream)
	fmt.Fprintf(out, "member 0 publishes %d bytes at %d bytes/s (links %v, loss %.3g%%)\n",
		len(stream), o.rate, o.delay, o.loss*100)
	if err := publish(ctx, members[0].Group, stream, o.rate); err != nil {
		return err
	}

	// Wait until every subscriber has output the whole stream or given
	// up on some of it; the window (4 s by default) bounds how long the
	// group keeps trying.
	drainEnd := time.Now().Add(8 * time.Second)
	for time.Now().Before(drainEnd) && !drained(members[1:], uint64(len(stream))) {
		if err := cli.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	stopReaders()
	readers.Wait()
	return report(out, members, stream)
}

// bootstrap joins every member through one of the members before it, in
// waves of 8 (a burst of joiners through one seed would hit its link
// limit), then waits until every member has a neighbour link.
func bootstrap(ctx context.Context, members []*member) error {
	const wave = 8
	r := rand.New(rand.NewPCG(1, 2))
	for lo := 1; lo < len(members); lo += wave {
		hi := min(lo+wave, len(members))
		errs := make(chan error, hi-lo)
		for i := lo; i < hi; i++ {
			seed := members[r.IntN(lo)].Host.Self()
			go func() { errs <- members[i].Group.Bootstrap(ctx, seed) }()
		}
		for range hi - lo {
			if err := <-errs; err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
		}
	}
	for {
		alone := 0
		for _, m := range members {
			if m.Group.Stats().Neighbours == 0 {
				alone++
			}
		}
		if alone == 0 {
			return nil
		}
		if err := cli.Sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("%d members have no neighbour link: %w", alone, err)
		}
	}
}

// publish writes stream into the group at rate bytes a second, in writes
// of 10 ms worth, and closes the last block.
func publish(ctx context.Context, g *group.Group, stream []byte, rate int) error {
	p, err := g.Publish()
	if err != nil {
		return err
	}
	chunk := max(rate/100, 100)
	start := time.Now()
	for off := 0; off < len(stream); {
		n := min(chunk, len(stream)-off)
		if _, err := p.Write(ctx, stream[off:off+n]); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		off += n
		due := start.Add(time.Duration(float64(off) / float64(rate) * float64(time.Second)))
		if err := cli.Sleep(ctx, time.Until(due)); err != nil {
			return err
		}
	}
	p.Sync()
	return nil
}

// drained reports whether every member output or gave up on total bytes.
func drained(members []*member, total uint64) bool {
	for _, m := range members {
		st := m.Group.Stats()
		if st.BytesOut+st.BytesLost < total {
			return false
		}
	}
	return true
}

// report prints one line per subscriber and a summary, and returns an
// error if any output is not the published stream.
func report(out io.Writer, members []*member, stream []byte) error {
	intact := 0
	var received, useful uint64
	for i, m := range members[1:] {
		m.mu.Lock()
		got := m.out.Bytes()
		gaps := m.gaps
		m.mu.Unlock()
		st := m.Group.Stats()
		received += st.Received.Total()
		useful += uint64(len(got))
		v := verdict(got, stream)
		if v == "intact" {
			intact++
		}
		fmt.Fprintf(out, "member %2d: %7d bytes %s, %d gaps, %d neighbours, latency p50 %v p99 %v\n",
			i+1, len(got), v, gaps, st.Neighbours,
			st.LatencyP50.Round(time.Millisecond), st.LatencyP99.Round(time.Millisecond))
	}
	pub := members[0].Group.Stats()
	subs := len(members) - 1
	fmt.Fprintf(out, "%d of %d members output the whole stream byte for byte\n", intact, subs)
	if useful > 0 {
		fmt.Fprintf(out, "bytes received per useful byte %.2f, publisher upload %.2f x the stream\n",
			float64(received)/float64(useful), float64(pub.Sent.Total())/float64(len(stream)))
	}
	if intact != subs {
		return fmt.Errorf("%d of %d members did not output the stream intact", subs-intact, subs)
	}
	return nil
}

// verdict compares a member's output with the published stream.
func verdict(got, stream []byte) string {
	switch {
	case bytes.Equal(got, stream):
		return "intact"
	case len(got) < len(stream) && bytes.Equal(got, stream[:len(got)]):
		return fmt.Sprintf("INCOMPLETE (%d bytes missing)", len(stream)-len(got))
	default:
		return "DIFFERENT from the stream"
	}
}

func seed32(s uint64) [32]byte {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(s >> (8 * i))
	}
	return b
}
