package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/overlay"
)

var rendezvousUsage = usage{
	synopsis: "[--listen ADDR] [--identity FILE] [--stats-interval D]",
	about: `
Runs a rendezvous: a well-known node that remembers the recent members of
every group that registers with it and introduces members to each other
(RFC 7016 forwarded hellos), so that members behind NATs can connect.
Members use it with --rendezvous ADDR (strata node, publish, play, post,
listen, route): they register, meet the members it knows and ask it for an
introduction on every dial. A rendezvous joins no group itself.

On stdout it says where it listens, then every --stats-interval one line of
counters (JSON when stdout is not a terminal). SIGINT or SIGTERM closes its
sessions in an orderly way and exits 0.`,
	examples: []string{
		"strata rendezvous --listen 0.0.0.0:1935",
		"strata node --rendezvous 203.0.113.7:1935 --group 'strata:group/demo?multicast&posting&routing'",
	},
}

func runRendezvous(ctx context.Context, e *env, path string, args []string) int {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:1935", "UDP `ADDR` to listen on")
	identity := fs.String("identity", "", "`FILE` holding the node's identity (created if missing), so its peer ID survives restarts")
	interval := fs.Duration("stats-interval", 10*time.Second, "print counters every `D` (0: only at exit)")
	var lf logFlags
	lf.register(fs, "info")
	pos, code, ok := parseFlags(e, path, fs, rendezvousUsage, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageErr(e, path, "unexpected argument %q (the address goes in --listen)", pos[0])
	}
	if *interval < 0 {
		return usageErr(e, path, "--stats-interval %s: want 0 or a positive duration", *interval)
	}
	log, err := lf.logger(e)
	if err != nil {
		return usageErr(e, path, "%v", err)
	}
	cfg, err := nodeConfig(false, *identity, log)
	if err != nil {
		return failErr(e, path, err)
	}
	r := overlay.NewRendezvous(overlay.RendezvousConfig{Logger: log.With().Str("component", "rendezvous").Logger()})
	cfg.OnUnmatchedHello = r.HandleHello
	n, err := node.Listen(*listen, cfg)
	if err != nil {
		return failErr(e, path, fmt.Errorf("listen %s: %w", *listen, err))
	}
	asJSON := !isTerminal(e.stdout)
	emit := func(event string, extra map[string]any) {
		if asJSON {
			m := map[string]any{"event": event}
			for k, v := range extra {
				m[k] = v
			}
			json.NewEncoder(e.stdout).Encode(m)
			return
		}
		fmt.Fprintf(e.stdout, "%s", event)
		for _, k := range []string{"addr", "peer_id", "groups", "members", "registrations", "introductions", "unknown_hellos", "malformed"} {
			if v, ok := extra[k]; ok {
				fmt.Fprintf(e.stdout, " %s=%v", k, v)
			}
		}
		fmt.Fprintln(e.stdout)
	}
	stats := func() map[string]any {
		st := r.Stats()
		return map[string]any{"groups": st.Groups, "members": st.Members, "registrations": st.Registrations,
			"introductions": st.Introductions, "unknown_hellos": st.UnknownHellos, "malformed": st.DropMalformed}
	}
	emit("listening", map[string]any{"addr": n.AddrPort().String(), "peer_id": n.PeerID().String()})
	served := make(chan error, 1)
	go func() { served <- r.Serve(n) }()
	var tick <-chan time.Time
	if *interval > 0 {
		t := time.NewTicker(*interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			r.Close()
			<-served
			closeNode(n)
			emit("stopped", stats())
			return exitOK
		case err := <-served:
			closeNode(n)
			return failErr(e, path, err)
		case <-tick:
			emit("stats", stats())
		}
	}
}
