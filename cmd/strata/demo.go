package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/strata-net/strata/node"
)

var demoUsage = usage{
	synopsis: "[--count N] [--size BYTES] [--strict] [--log-level LEVEL]",
	about: `
Starts an RTMFP echo server and a client in this one process, on two UDP
sockets on 127.0.0.1, and pings the server from the client (the same as
'strata rtmfp echo' in one terminal and 'strata rtmfp ping' in another).
It prints the server's address and peer ID, then ping's summary line, and
exits 0 when every echo came back intact.`,
	examples: []string{
		"strata demo",
		"strata demo --count 1000 --size 4096 --strict",
	},
}

func runDemo(ctx context.Context, e *env, path string, args []string) int {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	count := fs.Int("count", 10, "send `N` messages")
	size := fs.Int("size", 1024, "send messages of `BYTES` bytes each")
	strict := fs.Bool("strict", false, "use packet HMACs and session sequence numbers on both sides")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the connection and for each echo")
	var lf logFlags
	lf.register(fs, "warn")
	pos, code, ok := parseFlags(e, path, fs, demoUsage, args)
	if !ok {
		return code
	}
	switch {
	case len(pos) > 0:
		return usageErr(e, path, "unexpected argument %q", pos[0])
	case *count < 1 || *count > maxPingCount:
		return usageErr(e, path, "--count %d: want 1..%d", *count, maxPingCount)
	case *size < 1 || *size > maxPingSize:
		return usageErr(e, path, "--size %d: want 1..%d bytes", *size, maxPingSize)
	case *timeout <= 0:
		return usageErr(e, path, "--timeout %s: want a positive duration", *timeout)
	}
	log, err := lf.logger(e)
	if err != nil {
		return usageErr(e, path, "%v", err)
	}

	srvCfg, _ := nodeConfig(*strict, "", log.With().Str("side", "echo").Logger())
	srv, err := startEcho("127.0.0.1:0", srvCfg, log.With().Str("side", "echo").Logger())
	if err != nil {
		return failErr(e, path, err)
	}
	sctx, stopServer := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.serve(sctx)
	}()
	fmt.Fprintf(e.stdout, "echo server listening %s peer-id %s\n", srv.n.AddrPort(), srv.n.PeerID())

	cliLog := log.With().Str("side", "ping").Logger()
	cliCfg, _ := nodeConfig(*strict, "", cliLog)
	cli, err := node.Listen("127.0.0.1:0", cliCfg)
	if err != nil {
		stopServer()
		<-served
		srv.close()
		return failErr(e, path, err)
	}
	id := srv.n.PeerID()
	opt := pingOptions{target: srv.n.AddrPort(), peerID: &id, count: *count, size: *size, timeout: *timeout}
	res, perr := ping(ctx, cli, opt, cliLog)
	logStats(cliLog, cli.Stats())
	logStats(log.With().Str("side", "echo").Logger(), srv.n.Stats())
	closeNode(cli)
	stopServer()
	<-served
	srv.close()
	fmt.Fprintln(e.stdout, res.summary(opt.target))
	if perr != nil {
		return failErr(e, path, perr)
	}
	if !res.ok(opt.count) {
		return failErr(e, path, fmt.Errorf("%d of %d echoes differed from what was sent", res.mismatches, res.sent))
	}
	return exitOK
}
