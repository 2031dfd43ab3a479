package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/group"
)

const (
	testSpec     = "strata:group/cli-test?multicast&posting&routing"
	testAddrHex  = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	testPeerID   = "ab" // repeated below to 64 digits
	testBadSpec  = "strata:group/"
	plainStream  = "strata:group/s?multicast"
	postOnlySpec = "strata:group/p?posting"
)

func TestGroupCommandUsageErrors(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "k.pem")
	code, pubKey, stderr := runArgs(context.Background(), "keygen", "--out", keyFile)
	if code != exitOK {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	pubKey = strings.TrimSpace(pubKey)
	other := make([]byte, ed25519.PublicKeySize)
	keyedSpec := "strata:group/k?multicast&publisher=" + pubKey
	otherSpec := "strata:group/k?multicast&publisher=" + base64.RawURLEncoding.EncodeToString(other)
	peer := strings.Repeat(testPeerID, 32)
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"node without group", []string{"node"}, "missing --group SPEC"},
		{"node bad spec", []string{"node", "--group", testBadSpec}, "--group: "},
		{"node duplicate group", []string{"node", "--group", testSpec, "--group", testSpec}, "given twice"},
		{"node positional", []string{"node", "--group", testSpec, "127.0.0.1:1935"}, "goes in --listen"},
		{"node bad listen", []string{"node", "--group", testSpec, "--listen", "nowhere"}, "want HOST:PORT"},
		{"node negative interval", []string{"node", "--group", testSpec, "--stats-interval", "-1s"}, "--stats-interval -1s"},
		{"node bad format", []string{"node", "--group", testSpec, "--format", "xml"}, `unknown --format "xml"`},
		{"node bad log level", []string{"node", "--group", testSpec, "--log-level", "loud"}, "unknown log level"},
		{"node zero join timeout", []string{"node", "--group", testSpec, "--join-timeout", "0s"}, "--join-timeout 0s"},
		{"publish two groups", []string{"publish", "--group", testSpec, "--group", plainStream}, "works in one group"},
		{"publish without multicast", []string{"publish", "--group", postOnlySpec}, "add the option 'multicast'"},
		{"publish key without publisher option", []string{"publish", "--group", plainStream, "--key", keyFile}, "names no publisher key"},
		{"publish publisher option without key", []string{"publish", "--group", keyedSpec}, "give its private key with --key"},
		{"publish wrong key", []string{"publish", "--group", otherSpec, "--key", keyFile}, "is not the group's publisher key"},
		{"publish unreadable key", []string{"publish", "--group", keyedSpec, "--key", filepath.Join(dir, "none")}, "--key: "},
		{"publish bad rate", []string{"publish", "--group", plainStream, "--rate", "fast"}, "byte count"},
		{"publish negative linger", []string{"publish", "--group", plainStream, "--linger", "-1s"}, "--linger -1s"},
		{"publish positional", []string{"publish", "--group", plainStream, "file.ts"}, "--in FILE"},
		{"play bad gaps", []string{"play", "--group", plainStream, "--gaps", "fill"}, `--gaps "fill"`},
		{"play bad bytes", []string{"play", "--group", plainStream, "--bytes", "-5"}, "byte count"},
		{"play negative idle", []string{"play", "--group", plainStream, "--idle", "-1s"}, "--idle -1s"},
		{"play bad bootstrap", []string{"play", "--group", plainStream, "--bootstrap", "nonsense"}, "want HOST:PORT"},
		{"play bad bootstrap peer", []string{"play", "--group", plainStream, "--bootstrap", "zz@127.0.0.1:1"}, "must be a peer ID"},
		{"play without group", []string{"play"}, "missing --group SPEC"},
		{"post without message", []string{"post", "--group", testSpec}, "missing MESSAGE"},
		{"post without posting", []string{"post", "--group", plainStream, "hi"}, "add the option 'posting'"},
		{"post too big", []string{"post", "--group", testSpec, strings.Repeat("x", group.MaxPostSize+1)}, "at most 8192"},
		{"listen positional", []string{"listen", "--group", testSpec, "now"}, `unexpected argument "now"`},
		{"listen negative count", []string{"listen", "--group", testSpec, "--count", "-1"}, "--count -1"},
		{"route without subcommand", []string{"route"}, "strata route: missing command"},
		{"route unknown subcommand", []string{"route", "trace"}, `unknown command "trace"`},
		{"route send neither target", []string{"route", "send", "--group", testSpec, "hi"}, "exactly one of --to"},
		{"route send both targets", []string{"route", "send", "--group", testSpec, "--to", testAddrHex, "--to-peer", peer, "hi"}, "exactly one of --to"},
		{"route send bad address", []string{"route", "send", "--group", testSpec, "--to", "abc", "hi"}, "want 64 hex digits"},
		{"route send bad peer", []string{"route", "send", "--group", testSpec, "--to-peer", "abc", "hi"}, "--to-peer"},
		{"route send without message", []string{"route", "send", "--group", testSpec, "--to", testAddrHex}, "missing MESSAGE"},
		{"route send without routing", []string{"route", "send", "--group", plainStream, "--to", testAddrHex, "hi"}, "add the option 'routing'"},
		{"route listen without routing", []string{"route", "listen", "--group", plainStream}, "add the option 'routing'"},
		{"route lookup without address", []string{"route", "lookup", "--group", testSpec, "--bootstrap", "127.0.0.1:1"}, "missing ADDRHEX"},
		{"route lookup bad address", []string{"route", "lookup", "--group", testSpec, "--bootstrap", "127.0.0.1:1", "xyz"}, "want 64 hex digits"},
		{"route estimate without bootstrap", []string{"route", "estimate", "--group", testSpec}, "missing --bootstrap ADDR"},
		{"route neighbours positional", []string{"route", "neighbours", "--group", testSpec, "x"}, `unexpected argument "x"`},
		{"keygen without out", []string{"keygen"}, "missing --out FILE"},
		{"keygen positional", []string{"keygen", "--out", filepath.Join(dir, "x"), "y"}, "goes in --out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expectExit(t, exitUsage, tc.want, tc.args...) })
	}
}

// expectExit runs args and checks the exit code, that stderr contains
// want and that stdout is empty.
func expectExit(t *testing.T, wantCode int, want string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, stdout, stderr := runArgs(ctx, args...)
	if code != wantCode {
		t.Errorf("exit code %d, want %d (stderr %q)", code, wantCode, stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not contain %q", stderr, want)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
}

func TestGroupCommandFailures(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "exists.pem")
	if err := os.WriteFile(existing, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	dead := freeUDPPort(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"play with nobody at the bootstrap address", []string{"play", "--group", plainStream, "--bootstrap", dead, "--join-timeout", "600ms"}, "no bootstrap peer answered within 600ms"},
		{"play alone without data", []string{"play", "--group", plainStream, "--duration", "300ms"}, "no stream data within 300ms"},
		{"publish alone without neighbours", []string{"publish", "--group", plainStream, "--join-timeout", "300ms", "--in", existing}, "no neighbour link within 300ms"},
		{"publish missing input", []string{"publish", "--group", plainStream, "--in", filepath.Join(dir, "missing")}, "no such file"},
		{"keygen over an existing file", []string{"keygen", "--out", existing}, "add --force"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expectExit(t, exitFail, tc.want, tc.args...) })
	}
	if b, _ := os.ReadFile(existing); string(b) != "x" {
		t.Errorf("keygen overwrote %s without --force", existing)
	}
}

func TestGroupCommandHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"node", "publish", "play", "post", "listen", "route", "keygen"}},
		{[]string{"node", "--help"}, []string{"--group SPEC", "--bootstrap ADDR[,ADDR]", "--identity FILE", "--stats-interval D", "Examples:", "SIGINT"}},
		{[]string{"publish", "--help"}, []string{"--in FILE", "--key FILE", "--rate BYTES", "--linger D", "Examples:"}},
		{[]string{"play", "--help"}, []string{"--out FILE", "--gaps skip|zero", "--bytes N", "--duration D", "--idle D", "Examples:"}},
		{[]string{"keygen", "--help"}, []string{"--out FILE", "publisher=KEY", "Examples:"}},
		{[]string{"post", "--help"}, []string{"MESSAGE", "--linger D", "Examples:"}},
		{[]string{"listen", "--help"}, []string{"--count N", "--format auto|text|json", "Examples:"}},
		{[]string{"route", "help"}, []string{"send", "listen", "lookup", "neighbours", "estimate"}},
		{[]string{"route", "send", "--help"}, []string{"--to ADDRHEX", "--to-peer PEERID", "--timeout D", "Examples:"}},
		{[]string{"route", "listen", "-h"}, []string{"receipt", "Examples:"}},
		{[]string{"route", "lookup", "--help"}, []string{"ADDRHEX", "Examples:"}},
		{[]string{"route", "neighbours", "--help"}, []string{"--settle D", "Examples:"}},
		{[]string{"help", "route", "estimate"}, []string{"Usage: strata route estimate", "Examples:"}},
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

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pub.key")
	code, stdout, stderr := runArgs(context.Background(), "keygen", "--out", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	key := strings.TrimSuffix(stdout, "\n")
	sp, err := group.ParseSpecifier("strata:group/tv?multicast&publisher=" + key)
	if err != nil {
		t.Fatalf("printed key %q does not fit a specifier: %v", key, err)
	}
	priv, err := loadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.Public().(ed25519.PublicKey).Equal(sp.PublisherKey) {
		t.Fatal("the printed public key is not the saved private key's")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (%v), want 0600", fi.Mode(), err)
	}
	code, stdout2, _ := runArgs(context.Background(), "keygen", "--out", path, "--force")
	if code != exitOK || stdout2 == stdout {
		t.Errorf("keygen --force: exit %d, key %q (old %q): want a new key", code, stdout2, stdout)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false}, {"1048576", 1 << 20, false}, {"200K", 200 << 10, false}, {"200k", 200 << 10, false},
		{"2M", 2 << 20, false}, {"1G", 1 << 30, false}, {"", 0, true}, {"K", 0, true}, {"-1", 0, true},
		{"1.5M", 0, true}, {"10T", 0, true}, {"99999999999G", 0, true},
	}
	for _, tc := range tests {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello", "hello"}, {"tab\there", "tab\there"}, {"héllo", "héllo"},
		{"line\nbreak", `"line\nbreak"`}, {"\x1b[2J", `"\x1b[2J"`}, {"\xff", `"\xff"`},
	}
	for _, tc := range tests {
		if got := printable([]byte(tc.in)); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRouteEnvelope(t *testing.T) {
	env := &routeEnvelope{Kind: "receipt", Nonce: "0102", Path: []string{"a", "b"}, Target: testAddrHex}
	got := decodeEnvelope(encodeEnvelope(env))
	if got == nil || got.Kind != env.Kind || got.Nonce != env.Nonce || strings.Join(got.Path, ",") != "a,b" || got.Target != env.Target {
		t.Fatalf("round trip: %+v", got)
	}
	for _, p := range []string{"", "hello", routeMagic, routeMagic + "{", routeMagic + `{"kind":"other"}`} {
		if decodeEnvelope([]byte(p)) != nil {
			t.Errorf("decodeEnvelope(%q) is not nil", p)
		}
	}
}

// bgCmd is a command running in-process in the background.
type bgCmd struct {
	lines  chan string // stdout, line by line
	stderr *syncBuffer
	done   chan int
	exited time.Time // when run returned (read after done)
	cancel context.CancelFunc
	code   *int
}

func startBg(t *testing.T, args ...string) *bgCmd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	b := &bgCmd{lines: make(chan string, 1000), stderr: new(syncBuffer), done: make(chan int, 1), cancel: cancel}
	go func() {
		code := run(ctx, args, &env{stdout: pw, stderr: b.stderr})
		b.exited = time.Now()
		pw.Close()
		b.done <- code
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			b.lines <- sc.Text()
		}
		close(b.lines)
		io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() { b.stop(t) })
	return b
}

// line returns the next stdout line.
func (b *bgCmd) line(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-b.lines:
		if !ok {
			t.Fatalf("stdout ended; stderr:\n%s", b.stderr)
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("no stdout line within %s; stderr:\n%s", timeout, b.stderr)
	}
	return ""
}

// wait waits for the command to exit by itself.
func (b *bgCmd) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	return b.exit(t, timeout, "did not exit within %s")
}

// stop interrupts the command (as SIGINT would) and waits for it.
func (b *bgCmd) stop(t *testing.T) int {
	b.cancel()
	return b.exit(t, 10*time.Second, "did not exit within %s of its interruption")
}

func (b *bgCmd) exit(t *testing.T, timeout time.Duration, complaint string) int {
	t.Helper()
	if b.code != nil {
		return *b.code
	}
	select {
	case c := <-b.done:
		b.code = &c
		return c
	case <-time.After(timeout):
		t.Errorf(complaint+"; stderr:\n%s", timeout, b.stderr)
		return -1
	}
}

// waitLog waits until stderr holds s.
func (b *bgCmd) waitLog(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(b.stderr.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr lacks %q after %s:\n%s", s, timeout, b.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startInfo is the first JSON line of node, listen and route listen.
type startInfo struct {
	Event  string      `json:"event"`
	Addr   string      `json:"addr"`
	PeerID string      `json:"peer_id"`
	Groups []groupInfo `json:"groups"`
}

func readStart(t *testing.T, b *bgCmd, groups int) startInfo {
	t.Helper()
	var s startInfo
	l := b.line(t, 15*time.Second)
	if err := json.Unmarshal([]byte(l), &s); err != nil || s.Event != "listening" || len(s.Groups) != groups {
		t.Fatalf("start line %q: %v", l, err)
	}
	return s
}

// TestGroupEndToEnd runs a small group over UDP on 127.0.0.1, every
// member a command run in-process: a node as the seed, play, listen and
// route listen members, then publish (with a publisher key), post and
// route send/lookup/estimate/neighbours against them.
func TestGroupEndToEnd(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "publisher.key")
	code, pub, stderr := runArgs(context.Background(), "keygen", "--out", keyFile)
	if code != exitOK {
		t.Fatalf("keygen: %d %s", code, stderr)
	}
	// The stream and the messages go in two groups, which the seed both
	// joins. (Members that leave a multicast group are not forgotten at
	// once by the others, and then every join for a few seconds waits on
	// them: kept apart, the short-lived commands below join quickly.)
	streamSpec := "strata:group/e2e-stream?multicast&publisher=" + strings.TrimSpace(pub)
	msgSpec := "strata:group/e2e-messages?posting&routing"
	jsonLogs := []string{"--log-format", "json", "--log-level", "info"}

	seed := startBg(t, append([]string{"node", "--listen", "127.0.0.1:0", "--group", streamSpec, "--group", msgSpec, "--format", "json", "--stats-interval", "200ms"}, jsonLogs...)...)
	seedInfo := readStart(t, seed, 2)
	boot := seedInfo.Addr
	inGroup := func(spec string) func(args ...string) []string {
		return func(args ...string) []string {
			return append(append(args, "--group", spec, "--bootstrap", boot), jsonLogs...)
		}
	}
	streamMember, member := inGroup(streamSpec), inGroup(msgSpec)

	input := make([]byte, 200<<10)
	if _, err := rand.Read(input); err != nil {
		t.Fatal(err)
	}
	inFile, outFile := filepath.Join(dir, "in.bin"), filepath.Join(dir, "out.bin")
	if err := os.WriteFile(inFile, input, 0o600); err != nil {
		t.Fatal(err)
	}

	player := startBg(t, streamMember("play", "--out", outFile, "--bytes", "200K", "--duration", "40s")...)
	// A second player on stdout plays to the end of the stream: it must
	// close its output then and stay --linger before it exits.
	ender := startBg(t, streamMember("play", "--duration", "40s", "--linger", "3s")...)
	enderOut := make(chan time.Time, 1)
	go func() {
		for range ender.lines {
		}
		enderOut <- time.Now()
	}()
	listener := startBg(t, member("listen", "--count", "1", "--format", "json")...)
	router := startBg(t, member("route", "listen", "--count", "1", "--format", "json")...)
	readStart(t, listener, 1)
	routerInfo := readStart(t, router, 1)
	player.waitLog(t, `"message":"joined"`, 15*time.Second)
	ender.waitLog(t, `"message":"joined"`, 15*time.Second)

	// The stream: publish exits after its linger; play once it has 200 KiB.
	publisher := startBg(t, streamMember("publish", "--in", inFile, "--key", keyFile, "--linger", "2s")...)
	if code := player.wait(t, 30*time.Second); code != exitOK {
		t.Fatalf("play exited %d:\n%s", code, player.stderr)
	}
	got, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, input) {
		t.Fatalf("play wrote %d bytes that differ from the %d published (first difference at %d)", len(got), len(input), firstDiff(got, input))
	}
	if !strings.Contains(player.stderr.String(), `"end":"bytes"`) || strings.Contains(player.stderr.String(), `"message":"gap`) {
		t.Errorf("play's summary does not say it stopped at --bytes without gaps:\n%s", player.stderr)
	}
	if code := publisher.wait(t, 15*time.Second); code != exitOK {
		t.Fatalf("publish exited %d:\n%s", code, publisher.stderr)
	}
	if !strings.Contains(publisher.stderr.String(), `"bytes_published":204800`) {
		t.Errorf("publish's summary lacks the byte count:\n%s", publisher.stderr)
	}
	var outEnded time.Time
	select {
	case outEnded = <-enderOut:
	case <-time.After(20 * time.Second):
		t.Fatalf("the end-of-stream player's output did not end; stderr:\n%s", ender.stderr)
	}
	if code := ender.wait(t, 10*time.Second); code != exitOK {
		t.Fatalf("the end-of-stream player exited %d:\n%s", code, ender.stderr)
	}
	// Without the linger the output would end as play returns.
	if stayed := ender.exited.Sub(outEnded); stayed < 2*time.Second {
		t.Errorf("play exited %v after its output ended, want about its --linger 3s", stayed)
	}
	if e := ender.stderr.String(); !strings.Contains(e, `"end":"end of stream"`) || !strings.Contains(e, `"bytes":204800`) {
		t.Errorf("the end-of-stream player's summary lacks the end of stream or its 204800 bytes:\n%s", e)
	}

	// A post reaches the listener.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	runArgs := func(ctx context.Context, args ...string) (int, string, string) {
		start := time.Now()
		code, stdout, stderr := runArgs(ctx, args...)
		t.Logf("%s %s: %v", args[0], args[1], time.Since(start))
		return code, stdout, stderr
	}
	if code, _, stderr := runArgs(ctx, member("post", "--linger", "300ms", "hello", "group")...); code != exitOK {
		t.Fatalf("post exited %d: %s", code, stderr)
	}
	var post postLine
	if l := listener.line(t, 10*time.Second); json.Unmarshal([]byte(l), &post) != nil || post.Event != "post" || post.Payload != "hello group" {
		t.Fatalf("listen printed %q, want the post", l)
	}
	if code := listener.wait(t, 10*time.Second); code != exitOK {
		t.Errorf("listen --count 1 exited %d", code)
	}

	// A routed message reaches the member whose address it targets, and
	// its receipt names that member.
	code, stdout, stderr := runArgs(ctx, member("route", "send", "--format", "json", "--to", routerInfo.Groups[0].Address, "ping", "router")...)
	if code != exitOK {
		t.Fatalf("route send exited %d: %s", code, stderr)
	}
	var rc receiptLine
	if err := json.Unmarshal([]byte(stdout), &rc); err != nil || rc.Event != "delivered" {
		t.Fatalf("route send printed %q: %v", stdout, err)
	}
	if rc.Receiver != routerInfo.PeerID || rc.ReceiverAddress != routerInfo.Groups[0].Address || rc.Hops != len(rc.Path)-1 || rc.Hops < 1 {
		t.Errorf("receipt %+v, want receiver %s", rc, routerInfo.PeerID)
	}
	var dl deliveryRecord
	if l := router.line(t, 10*time.Second); json.Unmarshal([]byte(l), &dl) != nil || dl.Payload != "ping router" || dl.Envelope != "message" || dl.Hops != rc.Hops {
		t.Fatalf("route listen printed %q, want the message", l)
	}
	if code := router.wait(t, 10*time.Second); code != exitOK {
		t.Errorf("route listen --count 1 exited %d", code)
	}

	// A lookup of the seed's address finds the seed first.
	code, stdout, stderr = runArgs(ctx, member("route", "lookup", "--format", "json", seedInfo.Groups[1].Address)...)
	if code != exitOK {
		t.Fatalf("route lookup exited %d: %s", code, stderr)
	}
	var first contactLine
	if err := json.Unmarshal([]byte(strings.SplitN(stdout, "\n", 2)[0]), &first); err != nil || first.PeerID != seedInfo.PeerID || first.CommonPrefix != 256 {
		t.Errorf("lookup printed %q, want the seed first", stdout)
	}
	code, stdout, stderr = runArgs(ctx, member("route", "neighbours", "--format", "text", "--settle", "100ms")...)
	if code != exitOK || !strings.Contains(stdout, seedInfo.PeerID) {
		t.Errorf("route neighbours: exit %d, output %q, want the seed (%s)", code, stdout, stderr)
	}
	code, stdout, stderr = runArgs(ctx, member("route", "estimate", "--format", "json")...)
	var est struct {
		Members float64 `json:"members_estimate"`
		Table   int     `json:"table_size"`
	}
	if code != exitOK || json.Unmarshal([]byte(stdout), &est) != nil || est.Members < 1 || est.Table < 1 {
		t.Errorf("route estimate: exit %d, output %q (%s)", code, stdout, stderr)
	}

	// The seed stops cleanly on interruption, and its statistics saw the
	// stream and the post.
	if code := seed.stop(t); code != exitOK {
		t.Fatalf("node exited %d:\n%s", code, seed.stderr)
	}
	var last, stats struct {
		Event  string       `json:"event"`
		Groups []groupStats `json:"groups"`
	}
	for l := range seed.lines {
		json.Unmarshal([]byte(l), &last)
		if last.Event == "stats" {
			stats = last
		}
	}
	if last.Event != "stopped" || len(stats.Groups) != 2 {
		t.Fatalf("node's output did not end with stats of both groups and a stop: last %+v", last)
	}
	if g := stats.Groups[0]; g.BytesOut != uint64(len(input)) || g.BytesReceived == 0 {
		t.Errorf("node's last stats of the stream group %+v: want the whole stream out", g)
	}
	if g := stats.Groups[1]; g.PostsReceived != 1 {
		t.Errorf("node's last stats of the message group %+v: want one post", g)
	}
	if !strings.Contains(seed.stderr.String(), `"message":"post"`) {
		t.Errorf("node did not log the post:\n%s", seed.stderr)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestNodeSignal builds the binary and stops a node with real signals:
// SIGTERM and SIGINT each end it in order with exit status 0.
func TestNodeSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "strata")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "node", "--listen", "127.0.0.1:0", "--group", testSpec, "--format", "json", "--stats-interval", "0")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			lines := make(chan string, 16)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
				done <- cmd.Wait()
			}()
			select {
			case l := <-lines:
				if !strings.Contains(l, `"event":"listening"`) {
					t.Fatalf("first line %q", l)
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("no start line; stderr:\n%s", &stderr)
			}
			cmd.Process.Signal(sig)
			var last string
			for l := range lines {
				last = l
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit: %v; stderr:\n%s", err, &stderr)
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatal("no exit within 10 s of the signal")
			}
			if last != `{"event":"stopped"}` {
				t.Errorf("last line %q, want the stop event", last)
			}
		})
	}
}

// TestPlayRecords feeds play the records a subscription can return:
// data, gaps, a late start, and checks the output and the accounting.
func TestPlayRecords(t *testing.T) {
	data := func(off uint64, n int, fill byte) group.Record {
		return group.Record{Offset: off, Data: bytes.Repeat([]byte{fill}, n)}
	}
	gap := group.Record{Offset: 10, Lost: 1}
	endOfStream := group.Record{Offset: math.MaxUint64}
	tests := []struct {
		name     string
		records  []group.Record
		lim      playLimits
		want     []byte
		start    uint64
		lost     uint64
		gaps     uint64
		end      string
		wantDone bool // the records run out first: play ends at --idle
	}{
		{"in order", []group.Record{data(0, 10, 1), data(10, 5, 2)}, playLimits{idle: 50 * time.Millisecond},
			append(bytes.Repeat([]byte{1}, 10), 2, 2, 2, 2, 2), 0, 0, 0, "idle", true},
		{"gap skipped", []group.Record{data(0, 10, 1), gap, data(30, 10, 3)}, playLimits{idle: 50 * time.Millisecond},
			append(bytes.Repeat([]byte{1}, 10), bytes.Repeat([]byte{3}, 10)...), 0, 20, 1, "idle", true},
		{"gap zero-filled", []group.Record{data(0, 10, 1), gap, data(30, 10, 3)}, playLimits{idle: 50 * time.Millisecond, zeroGaps: true},
			append(append(bytes.Repeat([]byte{1}, 10), make([]byte, 20)...), bytes.Repeat([]byte{3}, 10)...), 0, 20, 1, "idle", true},
		{"late start is not a gap", []group.Record{data(1000, 4, 7)}, playLimits{idle: 50 * time.Millisecond, zeroGaps: true},
			[]byte{7, 7, 7, 7}, 1000, 0, 0, "idle", true},
		{"byte limit cuts a record", []group.Record{data(0, 10, 1), data(10, 10, 2)}, playLimits{bytes: 12},
			append(bytes.Repeat([]byte{1}, 10), 2, 2), 0, 0, 0, "bytes", false},
		{"byte limit inside zero fill", []group.Record{data(0, 10, 1), gap, data(30, 10, 3)}, playLimits{bytes: 15, zeroGaps: true},
			append(bytes.Repeat([]byte{1}, 10), make([]byte, 5)...), 0, 20, 1, "bytes", false},
		{"duration without data", nil, playLimits{duration: 50 * time.Millisecond}, nil, 0, 0, 0, "duration", true},
		{"publisher restart: the new run follows", []group.Record{data(0, 10, 1), {Offset: 10, Lost: 2, Restarted: true}, data(0, 3, 4), data(3, 2, 5)},
			playLimits{idle: 50 * time.Millisecond, zeroGaps: true},
			append(bytes.Repeat([]byte{1}, 10), 4, 4, 4, 5, 5), 0, 0, 2, "idle", true},
		{"restart joined mid-run is not padded", []group.Record{data(0, 10, 1), {Offset: 10, Restarted: true}, data(500, 3, 4)},
			playLimits{idle: 50 * time.Millisecond, zeroGaps: true},
			append(bytes.Repeat([]byte{1}, 10), 4, 4, 4), 0, 0, 0, "idle", true},
		{"end of stream", []group.Record{data(0, 10, 1), gap, data(30, 10, 3), endOfStream}, playLimits{idle: time.Hour},
			append(bytes.Repeat([]byte{1}, 10), bytes.Repeat([]byte{3}, 10)...), 0, 20, 1, "end of stream", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs := tc.records
			next := func(ctx context.Context) (group.Record, error) {
				if len(recs) == 0 {
					<-ctx.Done()
					return group.Record{}, ctx.Err()
				}
				r := recs[0]
				recs = recs[1:]
				if r.Offset == endOfStream.Offset {
					return group.Record{}, io.EOF // what Subscription.Next says at the end
				}
				return r, nil
			}
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := play(ctx, next, &out, tc.lim, time.Now(), &progress{}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), tc.want) {
				t.Errorf("output %v, want %v", out.Bytes(), tc.want)
			}
			if res.written != int64(len(tc.want)) || res.startOffset != tc.start || res.lost != tc.lost || res.gaps != tc.gaps || res.end != tc.end {
				t.Errorf("result %+v, want written %d start %d lost %d gaps %d end %s", res, len(tc.want), tc.start, tc.lost, tc.gaps, tc.end)
			}
			if tc.wantDone && len(recs) > 0 {
				t.Errorf("%d records left unread", len(recs))
			}
		})
	}
}

// publish --short-parity: a 16 KiB stream at 8K a second (blocks of two
// fragments, closed by the block delay) reaches a player byte for byte,
// and the publisher sends about as many parity bytes as it publishes (two
// copies of one parity piece per two fragments) instead of four times as
// many (two copies of the 4 pieces of every block).
func TestPublishShortParity(t *testing.T) {
	input := make([]byte, 16<<10)
	_, publisher := playPublished(t, "strata:group/short-parity?multicast", input, "", "--rate", "8K", "--short-parity")
	var leaving struct {
		Message   string `json:"message"`
		Published int    `json:"bytes_published"`
		Parity    int    `json:"parity_sent"`
	}
	for _, l := range strings.Split(publisher.stderr.String(), "\n") {
		var e = leaving
		if json.Unmarshal([]byte(l), &e) == nil && e.Message == "leaving" {
			leaving = e
		}
	}
	t.Logf("published %d bytes, sent %d bytes of parity", leaving.Published, leaving.Parity)
	if leaving.Published != len(input) || leaving.Parity == 0 || leaving.Parity > 2*len(input) {
		t.Errorf("publish's summary: %d bytes published, %d of parity sent; want %d, and parity within twice that", leaving.Published, leaving.Parity, len(input))
	}
}

// TestPublishEarlyFragments: with --early-fragments, in a group with a
// publisher key, 48 KiB published at 64 KiB/s over UDP on 127.0.0.1 reach
// a player byte for byte, most of its fragments taken before their blocks
// closed (each checked by its own signature: the player's summary counts
// them), against none without the flag.
func TestPublishEarlyFragments(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		early bool
	}{
		{"early fragments", []string{"--early-fragments"}, true},
		{"fragments with their blocks", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keyFile := filepath.Join(t.TempDir(), "pub.key")
			code, pubKey, stderr := runArgs(context.Background(), "keygen", "--out", keyFile)
			if code != exitOK {
				t.Fatalf("keygen: exit %d: %s", code, stderr)
			}
			spec := "strata:group/early?multicast&publisher=" + strings.TrimSpace(pubKey)
			player, _ := playPublished(t, spec, make([]byte, 48<<10), keyFile, append([]string{"--rate", "64K"}, tc.flags...)...)
			var played struct {
				Message string `json:"message"`
				Early   int    `json:"early_fragments"`
			}
			for _, l := range strings.Split(player.stderr.String(), "\n") {
				var e = played
				if json.Unmarshal([]byte(l), &e) == nil && e.Message == "played" {
					played = e
				}
			}
			t.Logf("%d fragments taken before their blocks closed", played.Early)
			// 48 fragments of 1024 bytes in 3 blocks: up to 45 early
			// (the 16th of a block closes it); publish reads 1 KiB at a
			// time at this rate with the flag.
			if tc.early && played.Early < 36 || !tc.early && played.Early != 0 {
				t.Errorf("the player took %d fragments before their blocks closed (early fragments: %v)", played.Early, tc.early)
			}
		})
	}
}

// playPublished starts a seed node, a player and a publisher of input
// (random bytes are written into it) in group spec, the publisher with
// --key keyFile (if not empty) and flags; it checks that the player wrote
// exactly input and that both exited 0, and returns them for their logs.
func playPublished(t *testing.T, spec string, input []byte, keyFile string, flags ...string) (player, publisher *bgCmd) {
	t.Helper()
	dir := t.TempDir()
	jsonLogs := []string{"--log-format", "json", "--log-level", "info"}
	seed := startBg(t, append([]string{"node", "--listen", "127.0.0.1:0", "--group", spec, "--format", "json", "--stats-interval", "200ms"}, jsonLogs...)...)
	boot := readStart(t, seed, 1).Addr
	member := func(args ...string) []string {
		return append(append(args, "--group", spec, "--bootstrap", boot), jsonLogs...)
	}
	if _, err := rand.Read(input); err != nil {
		t.Fatal(err)
	}
	inFile, outFile := filepath.Join(dir, "in.bin"), filepath.Join(dir, "out.bin")
	if err := os.WriteFile(inFile, input, 0o600); err != nil {
		t.Fatal(err)
	}
	player = startBg(t, member("play", "--out", outFile, "--bytes", strconv.Itoa(len(input)), "--duration", "30s")...)
	player.waitLog(t, `"message":"joined"`, 15*time.Second)
	args := member("publish", "--in", inFile, "--linger", "1s")
	if keyFile != "" {
		args = append(args, "--key", keyFile)
	}
	publisher = startBg(t, append(args, flags...)...)
	if code := player.wait(t, 25*time.Second); code != exitOK {
		t.Fatalf("play exited %d:\n%s", code, player.stderr)
	}
	if got, err := os.ReadFile(outFile); err != nil || !bytes.Equal(got, input) {
		t.Fatalf("play wrote %d bytes that differ from the %d published (%v)", len(got), len(input), err)
	}
	if code := publisher.wait(t, 15*time.Second); code != exitOK {
		t.Fatalf("publish exited %d:\n%s", code, publisher.stderr)
	}
	return player, publisher
}
