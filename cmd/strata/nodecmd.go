package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/group"
	"github.com/strata-net/strata/overlay"
)

var nodeUsage = usage{
	synopsis: "--group SPEC [--group SPEC]... [--listen ADDR] [--identity FILE] [--bootstrap ADDR[,ADDR]] [--stats-interval D]",
	about: `
Runs a long-lived group member: it joins every --group, meets each group
through --bootstrap (omit it on the first member, the seed), relays the
groups' streams and posts, and answers 'strata route send' with a receipt in
groups that allow routing. Posts it receives are logged.

On stdout it first says where it listens and its address in each group,
then every --stats-interval one line of statistics per group. With text
output (a terminal) that is:

  listening ADDR
  peer-id HEX
  group ID address ADDRHEX SPEC
  <a status line, rewritten in place on a terminal>

With JSON output (the default when stdout is not a terminal), one object a
line: {"event":"listening",...}, then {"event":"stats",...} objects, and
{"event":"stopped"} at the end.

SIGINT or SIGTERM leaves the groups (neighbours are told), closes every
session in an orderly way and exits 0.`,
	examples: []string{
		"strata node --listen 127.0.0.1:1935 --group 'strata:group/demo?multicast&posting&routing'",
		"strata node --listen 127.0.0.1:1936 --bootstrap 127.0.0.1:1935 --identity n2.id --group 'strata:group/demo?multicast&posting&routing'",
	},
}

func runNode(ctx context.Context, e *env, path string, args []string) int {
	var interval *time.Duration
	c := memberCmd{usage: nodeUsage, defaultListen: "127.0.0.1:1935", logLevel: "info", multiGroup: true, format: true,
		flags: func(fs *flag.FlagSet) {
			interval = fs.Duration("stats-interval", 5*time.Second, "print statistics every `D` (0: only at exit)")
		},
		check: func(pos []string) error {
			if err := noArgs(" (the address goes in --listen, groups in --group)")(pos); err != nil {
				return err
			}
			return nonNegative("stats-interval", interval)
		},
	}
	a, code, ok := c.parse(ctx, e, path, args)
	if !ok {
		return code
	}
	s, asJSON := a.setup, a.asJSON
	m, err := startMember(ctx, s)
	if err != nil {
		return failErr(e, path, err)
	}
	st := &nodeStatus{m: m, w: e.stdout, json: asJSON, live: !asJSON && isTerminal(e.stdout), last: make(map[[32]byte]uint64), lastAt: time.Now()}
	printMemberStart(e.stdout, asJSON, m)

	// Each group's posts and routed messages are served until the groups
	// close; the WaitGroup makes sure no goroutine outlives the command.
	var wg sync.WaitGroup
	for _, g := range m.groups {
		log := s.log.With().Str("group", shortHex(g.ID())).Logger()
		if g.Specifier().Posting {
			wg.Add(1)
			go func() {
				defer wg.Done()
				logPosts(ctx, g, log)
			}()
		}
		if g.Specifier().Routing {
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveRoutes(ctx, g.Overlay(), func(d overlay.Delivery, env *routeEnvelope) {
					logDelivery(log, d, env)
				})
			}()
		}
	}

	var tick <-chan time.Time
	if *interval > 0 {
		t := time.NewTicker(*interval)
		defer t.Stop()
		tick = t.C
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick:
			st.printStats()
		}
	}
	st.printStats()
	s.log.Info().Msg("shutting down")
	err = m.close()
	wg.Wait()
	st.printStop()
	if err != nil {
		return failErr(e, path, err)
	}
	return exitOK
}

// logPosts logs every post g receives until g closes or ctx ends.
func logPosts(ctx context.Context, g *group.Group, log zerolog.Logger) {
	for {
		p, err := g.ReceivePost(ctx)
		if err != nil {
			return
		}
		log.Info().Hex("id", p.ID[:]).Str("from", p.From.String()).Str("payload", printable(p.Payload)).Msg("post")
	}
}

// nodeStatus prints the node command's stdout.
type nodeStatus struct {
	m      *member
	w      io.Writer
	json   bool
	live   bool                // rewrite one status line in place (a terminal)
	last   map[[32]byte]uint64 // bytes received at lastAt
	lastAt time.Time
}

type groupInfo struct {
	ID      string `json:"id"`
	Spec    string `json:"spec"`
	Address string `json:"address"`
}

// printMemberStart prints where m listens and its address in each group:
// the first output of the commands that keep running.
func printMemberStart(w io.Writer, asJSON bool, m *member) {
	var gs []groupInfo
	for _, g := range m.groups {
		id := g.ID()
		gs = append(gs, groupInfo{ID: fmt.Sprintf("%x", id), Spec: g.Specifier().IDString(), Address: g.Overlay().Address().String()})
	}
	if asJSON {
		writeJSON(w, struct {
			Event  string      `json:"event"`
			Addr   string      `json:"addr"`
			PeerID string      `json:"peer_id"`
			Groups []groupInfo `json:"groups"`
		}{"listening", m.n.AddrPort().String(), m.n.PeerID().String(), gs})
		return
	}
	fmt.Fprintf(w, "listening %s\npeer-id %s\n", m.n.AddrPort(), m.n.PeerID())
	for _, g := range gs {
		fmt.Fprintf(w, "group %s address %s %s\n", g.ID, g.Address, g.Spec)
	}
}

// groupStats is one group's line of statistics.
type groupStats struct {
	ID             string  `json:"id"`
	Neighbours     int     `json:"neighbours"`
	Members        float64 `json:"members_estimate"`
	BytesReceived  uint64  `json:"bytes_received"`
	BytesSent      uint64  `json:"bytes_sent"`
	ReceiveRate    float64 `json:"receive_bytes_per_second"`
	BytesOut       uint64  `json:"stream_bytes_out"`
	BytesLost      uint64  `json:"stream_bytes_lost"`
	DeliveryRatio  float64 `json:"delivery_ratio"`
	LatencyP50Ms   float64 `json:"latency_p50_ms"`
	LatencyP99Ms   float64 `json:"latency_p99_ms"`
	PostsReceived  uint64  `json:"posts_received"`
	RoutedIn       uint64  `json:"routed_delivered"`
	RoutedForwards uint64  `json:"routed_forwarded"`
}

func (st *nodeStatus) collect() []groupStats {
	var out []groupStats
	now := time.Now()
	elapsed := now.Sub(st.lastAt)
	st.lastAt = now
	for _, g := range st.m.groups {
		s := g.Stats()
		ost := g.Overlay().Stats()
		recv := s.Received.Total()
		var rate float64
		if elapsed > 0 {
			rate = float64(recv-st.last[g.ID()]) / elapsed.Seconds()
		}
		st.last[g.ID()] = recv
		out = append(out, groupStats{
			ID:             shortHex(g.ID()),
			Neighbours:     s.Neighbours,
			Members:        g.Overlay().EstimateMembers(),
			BytesReceived:  recv,
			BytesSent:      s.Sent.Total(),
			ReceiveRate:    rate,
			BytesOut:       s.BytesOut,
			BytesLost:      s.BytesLost,
			DeliveryRatio:  s.DeliveryRatio(),
			LatencyP50Ms:   float64(s.LatencyP50) / float64(time.Millisecond),
			LatencyP99Ms:   float64(s.LatencyP99) / float64(time.Millisecond),
			PostsReceived:  s.PostsReceived,
			RoutedIn:       ost.Delivered,
			RoutedForwards: ost.Forwarded,
		})
	}
	return out
}

func (st *nodeStatus) printStats() {
	gs := st.collect()
	if st.json {
		writeJSON(st.w, struct {
			Event  string       `json:"event"`
			Time   string       `json:"time"`
			Groups []groupStats `json:"groups"`
		}{"stats", time.Now().Format(time.RFC3339Nano), gs})
		return
	}
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = fmt.Sprintf("%s: %d neighbours, ~%.0f members, in %s/s, out %s, delivered %.1f%%, posts %d, routed %d",
			g.ID[:8], g.Neighbours, g.Members, humanBytes(g.ReceiveRate), humanBytes(float64(g.BytesSent)),
			100*g.DeliveryRatio, g.PostsReceived, g.RoutedIn)
	}
	line := strings.Join(parts, " | ")
	if st.live {
		fmt.Fprintf(st.w, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(st.w, line)
}

func (st *nodeStatus) printStop() {
	if st.json {
		writeJSON(st.w, struct {
			Event string `json:"event"`
		}{"stopped"})
		return
	}
	if st.live {
		fmt.Fprintln(st.w)
	}
}

// humanBytes formats a byte count with a binary unit.
func humanBytes(b float64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%.0f B", b)
	}
	div, exp := float64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", b/div, "KMGTP"[exp])
}
