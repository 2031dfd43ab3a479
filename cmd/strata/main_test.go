package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-net/strata/node"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runArgs runs the strata command line in-process.
func runArgs(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb syncBuffer
	code = run(ctx, args, newEnv(&out, &errb))
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "missing command"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"group without subcommand", []string{"rtmfp"}, "strata rtmfp: missing command"},
		{"unknown subcommand", []string{"rtmfp", "pong"}, `unknown command "pong"`},
		{"ping without address", []string{"rtmfp", "ping"}, "missing server address"},
		{"ping two addresses", []string{"rtmfp", "ping", "127.0.0.1:1", "127.0.0.1:2"}, "expected one server address"},
		{"ping no port", []string{"rtmfp", "ping", "127.0.0.1"}, "want HOST:PORT"},
		{"ping port zero", []string{"rtmfp", "ping", "127.0.0.1:0"}, "port 0"},
		{"ping bad port", []string{"rtmfp", "ping", "localhost:99999"}, "not a number in 1..65535"},
		{"ping count zero", []string{"rtmfp", "ping", "--count", "0", "127.0.0.1:1"}, "--count 0"},
		{"ping size zero", []string{"rtmfp", "ping", "127.0.0.1:1", "--size", "0"}, "--size 0"},
		{"ping size too big", []string{"rtmfp", "ping", "127.0.0.1:1", "--size", "300000"}, "--size 300000"},
		{"ping timeout zero", []string{"rtmfp", "ping", "127.0.0.1:1", "--timeout", "0s"}, "--timeout 0s"},
		{"ping timeout not a duration", []string{"rtmfp", "ping", "127.0.0.1:1", "--timeout", "5"}, "invalid value \"5\" for flag -timeout"},
		{"ping bad peer id", []string{"rtmfp", "ping", "127.0.0.1:1", "--peer-id", "abc"}, "want 64 hex digits"},
		{"ping unknown flag", []string{"rtmfp", "ping", "--bogus", "127.0.0.1:1"}, "flag provided but not defined: -bogus"},
		{"ping bad log level", []string{"rtmfp", "ping", "127.0.0.1:1", "--log-level", "loud"}, "unknown log level"},
		{"echo bad listen", []string{"rtmfp", "echo", "--listen", "nonsense"}, "want HOST:PORT"},
		{"echo positional", []string{"rtmfp", "echo", "127.0.0.1:1935"}, "goes in --listen"},
		{"echo bad log format", []string{"rtmfp", "echo", "--log-format", "xml"}, `unknown log format "xml"`},
		{"version argument", []string{"version", "now"}, "unexpected argument"},
		{"demo count zero", []string{"demo", "--count", "0"}, "--count 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			code, stdout, stderr := runArgs(ctx, tc.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing on a usage error", stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string // in stdout
	}{
		{[]string{"help"}, []string{"rtmfp", "demo", "version"}},
		{[]string{"--help"}, []string{"Commands:"}},
		{[]string{"rtmfp", "help"}, []string{"echo", "ping"}},
		{[]string{"rtmfp", "echo", "--help"}, []string{"--listen ADDR", "--strict", "--identity FILE", "Examples:", "peer-id <64 hex digits>"}},
		{[]string{"rtmfp", "ping", "-h"}, []string{"--peer-id HEX", "--count N", "--size BYTES", "--timeout D", "Examples:"}},
		{[]string{"help", "rtmfp", "ping"}, []string{"Usage: strata rtmfp ping ADDR"}},
		{[]string{"demo", "--help"}, []string{"Examples:", "strata demo"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runArgs(context.Background(), tc.args...)
			if code != exitOK {
				t.Fatalf("exit code %d, want 0 (stderr %q)", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout does not contain %q:\n%s", w, stdout)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runArgs(context.Background(), "version")
	if code != exitOK || !regexp.MustCompile(`^strata \S+.* go\d`).MatchString(stdout) {
		t.Fatalf("version: code %d, output %q", code, stdout)
	}
}

// startEchoCmd runs "strata rtmfp echo" in-process and returns its address,
// peer ID, a stop function returning its exit code, and its stderr.
func startEchoCmd(t *testing.T, extra ...string) (addr string, peer string, stop func() int, logs *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs = new(syncBuffer)
	done := make(chan int, 1)
	args := append([]string{"rtmfp", "echo", "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug"}, extra...)
	go func() {
		code := run(ctx, args, &env{stdout: pw, stderr: logs})
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "listening "); ok {
			addr = v
		}
		if v, ok := strings.CutPrefix(line, "peer-id "); ok {
			peer = v
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if addr == "" || peer == "" {
		cancel()
		t.Fatalf("echo did not print its address and peer ID (got %q, %q); stderr:\n%s", addr, peer, logs)
	}
	var once sync.Once
	var code int
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("echo did not exit within 10 s of its context ending")
				code = -1
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return addr, peer, stop, logs
}

var summaryRE = regexp.MustCompile(`^ping (\S+) peer ([0-9a-f]{64}): sent (\d+), echoed (\d+), mismatches (\d+), rtt min/avg/max ([\d.]+)/([\d.]+)/([\d.]+) ms, time ([\d.]+) ms\n$`)

func TestEchoAndPing(t *testing.T) {
	addr, peer, stop, logs := startEchoCmd(t)
	tests := []struct {
		name  string
		args  []string
		count int
	}{
		{"any server", []string{addr}, 5},
		{"by peer id", []string{addr, "--peer-id", peer, "--count", "3", "--size", "10"}, 3},
		{"strict, fragmented", []string{"--strict", "--count", "4", "--size", "5000", addr}, 4},
		{"one byte", []string{addr, "--count", "300", "--size", "1"}, 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			start := time.Now()
			code, stdout, stderr := runArgs(ctx, append([]string{"rtmfp", "ping"}, tc.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			// The orderly close at the end is acknowledged at once on
			// loopback; ping must not wait out its close grace period.
			if d := time.Since(start); d > closeGrace/2 {
				t.Errorf("ping took %s", d)
			}
			m := summaryRE.FindStringSubmatch(stdout)
			if m == nil {
				t.Fatalf("summary %q does not match %s", stdout, summaryRE)
			}
			if m[1] != addr || m[2] != peer {
				t.Errorf("summary names %s %s, want %s %s", m[1], m[2], addr, peer)
			}
			n := strconv.Itoa(tc.count)
			if m[3] != n || m[4] != n || m[5] != "0" {
				t.Errorf("sent/echoed/mismatches = %s/%s/%s, want %s/%s/0", m[3], m[4], m[5], n, n)
			}
			lo, _ := strconv.ParseFloat(m[6], 64)
			avg, _ := strconv.ParseFloat(m[7], 64)
			hi, _ := strconv.ParseFloat(m[8], 64)
			if !(lo > 0 && lo <= avg && avg <= hi) {
				t.Errorf("rtt min/avg/max %v/%v/%v not ordered", lo, avg, hi)
			}
		})
	}
	if code := stop(); code != exitOK {
		t.Fatalf("echo exited %d, want 0; stderr:\n%s", code, logs)
	}
	// The server logged every flow with its counts: 5+3+4+300 messages.
	var msgs int64
	var flowEnds, sessions int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var ev struct {
			Message  string `json:"message"`
			Messages int64  `json:"messages"`
			PeerID   string `json:"peer_id"`
			Addr     string `json:"addr"`
			Comp     string `json:"component"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if ev.Comp != "" {
			continue // the node's own logs
		}
		switch ev.Message {
		case "flow end":
			flowEnds++
			msgs += ev.Messages
		case "session open":
			sessions++
			if len(ev.PeerID) != 64 || ev.Addr == "" {
				t.Errorf("session log lacks peer ID or address: %q", line)
			}
		}
	}
	if sessions != len(tests) || flowEnds != len(tests) || msgs != 5+3+4+300 {
		t.Errorf("server logged %d sessions, %d flow ends, %d messages; want %d, %d, %d", sessions, flowEnds, msgs, len(tests), len(tests), 5+3+4+300)
	}
}

// freeUDPPort returns a port that nothing listens on (just closed).
func freeUDPPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

func TestPingTimeout(t *testing.T) {
	addr := freeUDPPort(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"any server", []string{addr}, "is an RTMFP server running there"},
		{"by peer id", []string{addr, "--peer-id", strings.Repeat("ab", 32)}, "is --peer-id its current peer ID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const timeout = 700 * time.Millisecond
			start := time.Now()
			code, stdout, stderr := runArgs(context.Background(), append([]string{"rtmfp", "ping", "--timeout", timeout.String()}, tc.args...)...)
			elapsed := time.Since(start)
			if code != exitFail {
				t.Errorf("exit %d, want %d", code, exitFail)
			}
			if !strings.Contains(stderr, "timeout: no RTMFP session with "+addr+" within 700ms") || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q lacks the timeout explanation", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want no summary when nothing was sent", stdout)
			}
			// The dial gives up at the timeout; closing the node adds little.
			if elapsed < timeout || elapsed > timeout+500*time.Millisecond {
				t.Errorf("took %s, want about %s", elapsed, timeout)
			}
		})
	}
}

// TestPingDetectsMismatch runs ping against a server that corrupts every
// second echo: ping must count the mismatches and exit 1.
func TestPingDetectsMismatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	srv, err := node.Listen("127.0.0.1:0", node.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNode(srv)
	go func() {
		s, err := srv.Accept(ctx)
		if err != nil {
			return
		}
		rf, err := s.AcceptFlow(ctx)
		if err != nil {
			return
		}
		back, err := rf.OpenReturnFlow([]byte("bad echo"), node.PriorityRoutine)
		if err != nil {
			return
		}
		for i := 0; ; i++ {
			m, err := rf.Read(ctx)
			if err != nil {
				back.Close()
				return
			}
			if i%2 == 1 {
				m[len(m)-1] ^= 1
			}
			back.Write(ctx, m, node.WriteOptions{})
		}
	}()
	code, stdout, stderr := runArgs(ctx, "rtmfp", "ping", "--count", "4", srv.AddrPort().String())
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	if !strings.Contains(stdout, "sent 4, echoed 4, mismatches 2,") {
		t.Errorf("summary %q, want 2 mismatches of 4", stdout)
	}
	if !strings.Contains(stderr, "2 of 4 echoes differed") {
		t.Errorf("stderr %q does not explain the failure", stderr)
	}
}

func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	code, stdout, stderr := runArgs(ctx, "demo", "--count", "20", "--size", "3000", "--strict")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.SplitAfter(stdout, "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "echo server listening 127.0.0.1:") {
		t.Fatalf("output %q", stdout)
	}
	if m := summaryRE.FindStringSubmatch(lines[1]); m == nil || m[3] != "20" || m[4] != "20" || m[5] != "0" {
		t.Fatalf("summary %q", lines[1])
	}
}

func TestPingPayload(t *testing.T) {
	for _, size := range []int{1, 2, 7, 8, 9, 64, 5000} {
		seen := make(map[string]uint64)
		for seq := uint64(0); seq < 200; seq++ {
			p := pingPayload(seq, size)
			if len(p) != size {
				t.Fatalf("size %d seq %d: len %d", size, seq, len(p))
			}
			if !bytes.Equal(p, pingPayload(seq, size)) {
				t.Fatalf("size %d seq %d: not deterministic", size, seq)
			}
			if prev, dup := seen[string(p)]; dup && size > 1 {
				t.Fatalf("size %d: messages %d and %d are equal", size, prev, seq)
			}
			seen[string(p)] = seq
		}
	}
	// Content differs beyond the sequence-number header too.
	a, b := pingPayload(1, 64), pingPayload(2, 64)
	if bytes.Equal(a[8:], b[8:]) {
		t.Fatal("payload bodies are equal")
	}
}

func TestParseAddrPort(t *testing.T) {
	tests := []struct {
		in      string
		want    netip.AddrPort
		wantErr string
	}{
		{"127.0.0.1:1935", netip.MustParseAddrPort("127.0.0.1:1935"), ""},
		{"[::1]:1935", netip.MustParseAddrPort("[::1]:1935"), ""},
		{"[::ffff:127.0.0.1]:9", netip.MustParseAddrPort("127.0.0.1:9"), ""},
		{"localhost:1935", netip.MustParseAddrPort("127.0.0.1:1935"), ""},
		{"127.0.0.1", netip.AddrPort{}, "want HOST:PORT"},
		{"127.0.0.1:0", netip.AddrPort{}, "port 0"},
		{":1935", netip.AddrPort{}, "missing host"},
		{"host:http", netip.AddrPort{}, "not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseAddrPort(context.Background(), tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestLogFlags(t *testing.T) {
	tests := []struct {
		format, level string
		wantJSON      bool
		wantErr       bool
	}{
		{"json", "info", true, false},
		{"auto", "info", true, false}, // a buffer is not a terminal
		{"console", "info", false, false},
		{"json", "nope", false, true},
		{"yaml", "info", false, true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.format, "/", tc.level), func(t *testing.T) {
			var buf bytes.Buffer
			lf := logFlags{format: tc.format, level: tc.level}
			log, err := lf.logger(newEnv(io.Discard, &buf))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			log.Info().Str("k", "v").Msg("hello")
			log.Debug().Msg("hidden")
			out := buf.String()
			if strings.Contains(out, "hidden") {
				t.Errorf("debug event logged at level info: %q", out)
			}
			var m map[string]any
			isJSON := json.Unmarshal(buf.Bytes(), &m) == nil
			if isJSON != tc.wantJSON || !strings.Contains(out, "hello") {
				t.Errorf("output %q: JSON %v, want %v", out, isJSON, tc.wantJSON)
			}
			if isJSON && !regexp.MustCompile(`T\d\d:\d\d:\d\d\.\d{3}`).MatchString(fmt.Sprint(m["time"])) {
				t.Errorf("timestamp %v lacks milliseconds", m["time"])
			}
		})
	}
}
