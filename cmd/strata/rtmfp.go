package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/node"
)

func rtmfpCommand() *command {
	return &command{
		name:    "rtmfp",
		summary: "RTMFP endpoint tools: an echo server and a ping client",
		sub: []*command{
			{name: "echo", summary: "run an RTMFP echo server (sink that echoes every flow back)", run: runEcho},
			{name: "ping", summary: "send messages to an RTMFP echo server and check the echoes", run: runPing},
		},
	}
}

// returnSuffix is appended to an incoming flow's metadata to name its
// return flow, as the reference echoserver does.
const returnSuffix = " return"

// pingMetadata names the flow strata rtmfp ping opens.
const pingMetadata = "strata ping"

// Limits on ping's flags. The size cap keeps one message well inside the
// default flow receive buffer (1 MiB), so a single message never stalls on
// flow control.
const (
	maxPingCount = 1_000_000
	maxPingSize  = 256 << 10
)

var echoUsage = usage{
	synopsis: "[--listen ADDR] [--strict] [--identity FILE] [--log-format auto|console|json] [--log-level LEVEL]",
	about: `
Runs an RTMFP echo server: it accepts every session and every flow, opens a
return flow for each incoming flow (metadata = the flow's metadata + " return")
and writes every received message back on it. A peer that refuses the return
flow still gets all its data acknowledged. At start it prints two lines on
stdout:

  listening <ADDR:PORT>
  peer-id <64 hex digits>

and then logs sessions and per-flow message/byte counts on stderr.
SIGINT or SIGTERM closes every session in an orderly way and exits 0.`,
	examples: []string{
		"strata rtmfp echo --listen 127.0.0.1:1935",
		"strata rtmfp echo --listen :1935 --strict --identity echo.id --log-format json",
	},
}

func runEcho(ctx context.Context, e *env, path string, args []string) int {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:1935", "UDP `ADDR` to listen on (port 0 picks a free one)")
	strict := fs.Bool("strict", false, "require a packet HMAC and session sequence numbers on every session, as the reference implementation does by default")
	identity := fs.String("identity", "", "`FILE` holding this server's identity (created if missing), so its peer ID survives restarts; default: a fresh identity per run")
	var lf logFlags
	lf.register(fs, "info")
	pos, code, ok := parseFlags(e, path, fs, echoUsage, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageErr(e, path, "unexpected argument %q (the address goes in --listen)", pos[0])
	}
	if err := validListenAddr(*listen); err != nil {
		return usageErr(e, path, "%v", err)
	}
	log, err := lf.logger(e)
	if err != nil {
		return usageErr(e, path, "%v", err)
	}
	cfg, err := nodeConfig(*strict, *identity, log)
	if err != nil {
		return failErr(e, path, err)
	}
	srv, err := startEcho(*listen, cfg, log)
	if err != nil {
		return failErr(e, path, err)
	}
	fmt.Fprintf(e.stdout, "listening %s\npeer-id %s\n", srv.n.AddrPort(), srv.n.PeerID())
	srv.serve(ctx)
	log.Info().Msg("shutting down")
	if err := srv.close(); err != nil {
		return failErr(e, path, err)
	}
	return exitOK
}

// echoServer is the echo service around one node.
type echoServer struct {
	n   *node.Node
	log zerolog.Logger
	wg  sync.WaitGroup
}

func startEcho(listen string, cfg node.Config, log zerolog.Logger) (*echoServer, error) {
	n, err := node.Listen(listen, cfg)
	if err != nil {
		return nil, err
	}
	return &echoServer{n: n, log: log}, nil
}

// serve accepts sessions until ctx ends.
func (s *echoServer) serve(ctx context.Context) {
	for {
		sess, err := s.n.Accept(ctx)
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveSession(ctx, sess)
		}()
	}
}

// close closes the node, then waits for the session goroutines, which end
// once their flows fail with the node.
func (s *echoServer) close() error {
	err := closeNode(s.n)
	s.wg.Wait()
	return err
}

// flowStats are one flow's counters.
type flowStats struct {
	messages, bytes, echoed int64
}

func (s *echoServer) serveSession(ctx context.Context, sess *node.Session) {
	log := s.log.With().Str("peer_id", sess.PeerID().String()).Str("addr", sess.RemoteAddr().String()).Logger()
	log.Info().Msg("session open")
	var (
		mu    sync.Mutex
		total flowStats
		flows int
		wg    sync.WaitGroup
	)
	for {
		rf, err := sess.AcceptFlow(ctx)
		if err != nil {
			break
		}
		flows++
		id := flows
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s.echoFlow(ctx, log.With().Int("flow", id).Logger(), rf)
			mu.Lock()
			total.messages += st.messages
			total.bytes += st.bytes
			total.echoed += st.echoed
			mu.Unlock()
		}()
	}
	wg.Wait()
	ev := log.Info()
	if err := sess.Err(); err != nil && !errors.Is(err, node.ErrSessionClosed) {
		ev = log.Warn().Err(err)
	}
	ev.Int("flows", flows).Int64("messages", total.messages).Int64("bytes", total.bytes).Int64("echoes_queued", total.echoed).Msg("session closed")
}

// echoFlow reads rf to its end, echoing each message on a return flow. If
// the peer refuses the return flow (or it fails), the rest is still read,
// so the peer's data keeps being acknowledged.
func (s *echoServer) echoFlow(ctx context.Context, log zerolog.Logger, rf *node.RecvFlow) flowStats {
	var st flowStats
	meta := rf.Metadata()
	log = log.With().Bytes("metadata", meta).Logger()
	log.Info().Msg("flow open")
	retMeta := append(append([]byte(nil), meta...), returnSuffix...)
	back, err := rf.OpenReturnFlow(retMeta, node.PriorityRoutine)
	if err != nil {
		log.Warn().Err(err).Msg("cannot open return flow; receiving without echo")
	}
	for {
		m, err := rf.Read(ctx)
		if err != nil {
			ev := log.Info()
			if !errors.Is(err, io.EOF) {
				ev = log.Warn().Err(err)
			}
			ev.Int64("messages", st.messages).Int64("bytes", st.bytes).Int64("echoes_queued", st.echoed).Msg("flow end")
			break
		}
		st.messages++
		st.bytes += int64(len(m))
		log.Debug().Int("len", len(m)).Msg("message")
		if back == nil {
			continue
		}
		if _, err := back.Write(ctx, m, node.WriteOptions{}); err != nil {
			if ctx.Err() == nil {
				log.Warn().Err(err).Msg("return flow closed by peer; still receiving and acknowledging, no more echoes")
			}
			back = nil
			continue
		}
		st.echoed++
	}
	if back != nil {
		back.Close()
	}
	return st
}

var pingUsage = usage{
	synopsis: "ADDR [--peer-id HEX] [--count N] [--size BYTES] [--timeout D] [--strict]",
	about: `
Connects to the RTMFP echo server at ADDR (HOST:PORT), opens a flow, sends
--count messages of --size bytes (each with distinct content), one at a time,
and waits for each echo on the server's return flow, checking it byte for byte.
It prints one summary line:

  ping ADDR peer PEERID: sent N, echoed N, mismatches 0, rtt min/avg/max A/B/C ms, time T ms

and exits 0 only if every echo came back identical; 1 on a mismatch, a timeout
or a network error; 2 on bad usage.

Without --peer-id it accepts whichever server answers at ADDR (an endpoint
discriminator that any Flash-profile server accepts). --timeout bounds the
connection and each single echo.`,
	examples: []string{
		"strata rtmfp ping 127.0.0.1:1935",
		"strata rtmfp ping 127.0.0.1:1935 --count 100 --size 4096",
		"strata rtmfp ping 127.0.0.1:19350 --strict --peer-id 2407...eecf   # reference echoserver",
	},
}

// pingOptions are ping's validated settings.
type pingOptions struct {
	target  netip.AddrPort
	peerID  *node.PeerID // nil: any server
	count   int
	size    int
	timeout time.Duration
}

// pingResult is what a ping observed.
type pingResult struct {
	peer       node.PeerID
	sent       int
	echoed     int
	mismatches int
	rttMin     time.Duration
	rttMax     time.Duration
	rttSum     time.Duration
	elapsed    time.Duration
}

func (r pingResult) ok(count int) bool {
	return r.sent == count && r.echoed == count && r.mismatches == 0
}

func (r pingResult) summary(target netip.AddrPort) string {
	var avg time.Duration
	if r.echoed > 0 {
		avg = r.rttSum / time.Duration(r.echoed)
	}
	return fmt.Sprintf("ping %s peer %s: sent %d, echoed %d, mismatches %d, rtt min/avg/max %s/%s/%s ms, time %s ms",
		target, r.peer, r.sent, r.echoed, r.mismatches, ms(r.rttMin), ms(avg), ms(r.rttMax), ms(r.elapsed))
}

func runPing(ctx context.Context, e *env, path string, args []string) int {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	peerHex := fs.String("peer-id", "", "connect only to the server with this peer ID (`HEX`, 64 digits, as printed by 'strata rtmfp echo')")
	count := fs.Int("count", 5, "send `N` messages")
	size := fs.Int("size", 64, fmt.Sprintf("send messages of `BYTES` bytes each (1..%d)", maxPingSize))
	timeout := fs.Duration("timeout", 5*time.Second, "wait at most `D` (e.g. 500ms, 5s) for the connection and for each echo")
	strict := fs.Bool("strict", false, "require a packet HMAC and session sequence numbers, as the reference implementation does by default")
	var lf logFlags
	lf.register(fs, "warn")
	pos, code, ok := parseFlags(e, path, fs, pingUsage, args)
	if !ok {
		return code
	}
	switch {
	case len(pos) == 0:
		return usageErr(e, path, "missing server address (e.g. %s 127.0.0.1:1935)", path)
	case len(pos) > 1:
		return usageErr(e, path, "expected one server address, got %d arguments: %q", len(pos), pos)
	case *count < 1 || *count > maxPingCount:
		return usageErr(e, path, "--count %d: want 1..%d", *count, maxPingCount)
	case *size < 1 || *size > maxPingSize:
		return usageErr(e, path, "--size %d: want 1..%d bytes", *size, maxPingSize)
	case *timeout <= 0:
		return usageErr(e, path, "--timeout %s: want a positive duration such as 5s", *timeout)
	}
	target, err := parseAddrPort(ctx, pos[0])
	if err != nil {
		return usageErr(e, path, "%v", err)
	}
	opt := pingOptions{target: target, count: *count, size: *size, timeout: *timeout}
	if *peerHex != "" {
		id, err := node.ParsePeerID(*peerHex)
		if err != nil {
			return usageErr(e, path, "--peer-id %q: want 64 hex digits (the peer-id line printed by the server): %v", *peerHex, err)
		}
		opt.peerID = &id
	}
	log, err := lf.logger(e)
	if err != nil {
		return usageErr(e, path, "%v", err)
	}
	cfg, err := nodeConfig(*strict, "", log)
	if err != nil {
		return failErr(e, path, err)
	}
	n, err := node.Listen(localFor(target), cfg)
	if err != nil {
		return failErr(e, path, err)
	}
	res, perr := ping(ctx, n, opt, log)
	closeNode(n)
	if res.sent > 0 {
		fmt.Fprintln(e.stdout, res.summary(target))
	}
	if perr != nil {
		return failErr(e, path, perr)
	}
	if !res.ok(opt.count) {
		return failErr(e, path, fmt.Errorf("%d of %d echoes differed from what was sent", res.mismatches, res.sent))
	}
	return exitOK
}

// ping runs one ping over n. The result is valid even with an error (it
// says how far the ping got).
func ping(ctx context.Context, n *node.Node, opt pingOptions, log zerolog.Logger) (res pingResult, err error) {
	start := time.Now()
	// elapsed runs from the dial to the last echo (or the failure), not
	// through the courteous close at the end.
	defer func() {
		if res.elapsed == 0 {
			res.elapsed = time.Since(start)
		}
	}()

	dctx, cancel := context.WithTimeout(ctx, opt.timeout)
	var sess *node.Session
	if opt.peerID != nil {
		sess, err = n.Dial(dctx, opt.target, *opt.peerID)
	} else {
		sess, err = n.DialAny(dctx, opt.target)
	}
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("interrupted while connecting to %s", opt.target)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			hint := "is an RTMFP server running there, and reachable over UDP? (a server that only answers requests naming it, such as the reference echoserver with -N, needs --peer-id)"
			if opt.peerID != nil {
				hint = "is a server running there, and is --peer-id its current peer ID? (the reference echoserver makes a new one at each start)"
			}
			return res, fmt.Errorf("timeout: no RTMFP session with %s within %s: %s", opt.target, opt.timeout, hint)
		}
		return res, fmt.Errorf("connecting to %s: %w", opt.target, err)
	}
	res.peer = sess.PeerID()
	log.Info().Str("peer_id", res.peer.String()).Str("addr", sess.RemoteAddr().String()).Msg("session open")

	f, err := sess.OpenFlow([]byte(pingMetadata), node.PriorityRoutine)
	if err != nil {
		return res, fmt.Errorf("opening a flow: %w", err)
	}
	var back *node.RecvFlow
	for i := 0; i < opt.count; i++ {
		msg := pingPayload(uint64(i), opt.size)
		t0 := time.Now()
		wctx, cancel := context.WithTimeout(ctx, opt.timeout)
		got, err := pingOne(wctx, f, &back, msg)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return res, fmt.Errorf("interrupted after %d of %d messages", res.sent, opt.count)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return res, fmt.Errorf("timeout: echo of message %d not received within %s (sent %d, echoed %d)", i+1, opt.timeout, res.sent, res.echoed)
			}
			return res, fmt.Errorf("message %d: %w", i+1, err)
		}
		rtt := time.Since(t0)
		res.sent++
		res.echoed++
		if !bytes.Equal(got, msg) {
			res.mismatches++
			log.Warn().Int("message", i+1).Int("sent_len", len(msg)).Int("echo_len", len(got)).Msg("echo differs")
		}
		if res.echoed == 1 || rtt < res.rttMin {
			res.rttMin = rtt
		}
		if rtt > res.rttMax {
			res.rttMax = rtt
		}
		res.rttSum += rtt
	}
	res.elapsed = time.Since(start)
	// Finish our flow; the server then finishes its return flow. Waiting
	// for that is a courtesy (it lets the server log a clean end), bounded.
	f.Close()
	cctx, cancel := context.WithTimeout(ctx, min(opt.timeout, time.Second))
	defer cancel()
	for back != nil {
		if _, err := back.Read(cctx); err != nil {
			if !errors.Is(err, io.EOF) {
				log.Debug().Err(err).Msg("return flow did not end cleanly")
			}
			break
		}
	}
	return res, nil
}

// pingOne writes msg and reads one echo. The return flow is accepted on the
// first call (the server opens it when our first message arrives).
func pingOne(ctx context.Context, f *node.SendFlow, back **node.RecvFlow, msg []byte) ([]byte, error) {
	if _, err := f.Write(ctx, msg, node.WriteOptions{}); err != nil {
		return nil, fmt.Errorf("sending: %w", err)
	}
	if *back == nil {
		rf, err := f.AcceptReturn(ctx)
		if err != nil {
			return nil, fmt.Errorf("waiting for the return flow: %w", err)
		}
		*back = rf
	}
	m, err := (*back).Read(ctx)
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the server ended its return flow early")
	}
	return m, err
}

// pingPayload is message seq's content: the sequence number (big endian,
// as much of it as fits) followed by bytes from a generator seeded with it,
// so messages differ in content, not only in their first bytes.
func pingPayload(seq uint64, size int) []byte {
	b := make([]byte, size)
	x := seq*0x9e3779b97f4a7c15 + 0x2545f4914f6cdd1d
	for i := range b {
		// xorshift64
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], seq)
	if size >= 8 {
		copy(b, hdr[:])
	} else {
		copy(b, hdr[8-size:])
	}
	return b
}
