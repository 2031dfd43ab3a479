//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The addresses of the NAT lab: one public subnet on a bridge in the
// public namespace, one private subnet behind each router.
const (
	labRendezvousIP = "198.18.0.1" // the public namespace's bridge
	labGroup        = "strata:group/nat-test?posting"
)

// labSite is one home network: a router namespace doing source NAT on
// its public side and a host namespace behind it.
type labSite struct {
	router, host string // namespace names
	publicIP     string // the router's address on the public subnet
	hostIP       string // the host's private address
}

// natLab is a set of network namespaces: a public one holding the
// rendezvous and two sites, each behind its own port-restricted NAT.
type natLab struct {
	public string
	a, b   labSite
	fw     firewall
}

// firewall writes a router's rules with iptables or nft and reads the
// counter of the rule that drops unsolicited inbound packets.
type firewall interface {
	setup(ns string) error
	dropped(ns string) (int, error)
}

// TestRendezvousThroughNATs runs the built binary in network namespaces:
// a listener and a poster, each behind a NAT that keeps a mapping per
// local address and port, forwards nothing unsolicited from outside and
// answers nothing to it (the common home router). Dialling the
// listener's public mapping directly fails: the router drops it. Through
// the rendezvous, which introduces the poster to the listener, the post
// arrives.
func TestRendezvousThroughNATs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and sets up network namespaces")
	}
	fw := labPrerequisites(t)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "strata")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	lab := newNATLab(ctx, t, fw)

	rdv := startInNS(ctx, t, lab.public, bin, "rendezvous", "--listen", labRendezvousIP+":0", "--stats-interval", "0", "--log-level", "warn")
	var start struct{ Event, Addr string }
	if l := rdv.line(t, 10*time.Second); json.Unmarshal([]byte(l), &start) != nil || start.Event != "listening" {
		t.Fatalf("rendezvous start line %q", l)
	}
	listener := startInNS(ctx, t, lab.a.host, bin, "listen", "--rendezvous", start.Addr, "--group", labGroup,
		"--count", "1", "--format", "json", "--listen", "0.0.0.0:0", "--log-level", "warn")
	var ls startInfo
	if l := listener.line(t, 15*time.Second); json.Unmarshal([]byte(l), &ls) != nil || ls.Event != "listening" {
		t.Fatalf("listener start line %q", l)
	}
	local, err := netip.ParseAddrPort(ls.Addr)
	if err != nil {
		t.Fatalf("listener address %q: %v", ls.Addr, err)
	}
	mapped := lab.mapping(t, lab.a, local.Port(), start.Addr)

	// Control: the listener is registered, so its mapping exists, but
	// the router drops what a stranger sends to it.
	droppedBefore, err := fw.dropped(lab.a.router)
	if err != nil {
		t.Fatalf("reading %s's drop counter: %v", lab.a.router, err)
	}
	ctl := startInNS(ctx, t, lab.b.host, bin, "post", "--bootstrap", mapped.String(), "--group", labGroup,
		"--join-timeout", "3s", "--linger", "300ms", "--listen", "0.0.0.0:0", "--log-level", "warn", "dialled", "directly")
	if code := ctl.wait(t, 10*time.Second); code == 0 {
		t.Fatalf("a post from %s to %s's public mapping %s succeeded: the NAT lets strangers in", lab.b.host, lab.a.host, mapped)
	}
	if !strings.Contains(ctl.stderr.String(), "no bootstrap peer answered") {
		t.Errorf("the direct post failed for another reason than silence:\n%s", ctl.stderr)
	}
	if after, err := fw.dropped(lab.a.router); err != nil || after <= droppedBefore {
		t.Errorf("%s dropped %d packets before the direct post and %d after (%v): the post did not reach it", lab.a.router, droppedBefore, after, err)
	}

	// Through the rendezvous the post arrives: the listener's first
	// (and only) post is this one, not the direct one.
	const payload = "met behind two NATs"
	post := startInNS(ctx, t, lab.b.host, bin, "post", "--rendezvous", start.Addr, "--group", labGroup,
		"--linger", "300ms", "--listen", "0.0.0.0:0", "--log-level", "warn", payload)
	if code := post.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("post through the rendezvous exited %d:\n%s", code, post.stderr)
	}
	var got postLine
	if l := listener.line(t, 5*time.Second); json.Unmarshal([]byte(l), &got) != nil || got.Event != "post" || got.Payload != payload {
		t.Fatalf("listener printed %q, want the post %q", l, payload)
	}
	if code := listener.wait(t, 5*time.Second); code != 0 {
		t.Errorf("listener exited %d after its post:\n%s", code, listener.stderr)
	}

	if code := rdv.interrupt(t); code != 0 {
		t.Fatalf("rendezvous exited %d:\n%s", code, rdv.stderr)
	}
	var stopped struct {
		Event         string
		Registrations int
		Introductions int
	}
	var last string
	for l := range rdv.lines {
		last = l
	}
	if json.Unmarshal([]byte(last), &stopped) != nil || stopped.Event != "stopped" || stopped.Introductions < 1 {
		t.Fatalf("rendezvous' last line %q: want a stopped event with at least 1 introduction", last)
	}
	t.Logf("listener %s behind %s mapped to %s; rendezvous: %d registrations, %d introductions",
		local, lab.a.router, mapped, stopped.Registrations, stopped.Introductions)
}

// labPrerequisites skips the test unless this machine lets it build the
// lab: root, ip, network namespaces, and iptables or nft.
func labPrerequisites(t *testing.T) firewall {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
	if _, err := exec.LookPath("iptables"); err == nil {
		if out, err := exec.Command("iptables", "--version").CombinedOutput(); err == nil {
			return iptablesFirewall{}
		} else {
			t.Logf("iptables --version: %v: %s", err, out)
		}
	}
	if _, err := exec.LookPath("nft"); err == nil {
		return nftFirewall{}
	}
	t.Skip("needs iptables or nft for the routers' NAT (apt-get install iptables)")
	return nil
}

// newNATLab creates the namespaces and links, each name carrying a random
// suffix so that parallel runs never meet; all of it goes in t.Cleanup.
// It skips the test if the kernel refuses namespaces or NAT.
func newNATLab(ctx context.Context, t *testing.T, fw firewall) *natLab {
	t.Helper()
	var r [3]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	prefix := "strata-" + hex.EncodeToString(r[:]) + "-"
	lab := &natLab{
		public: prefix + "pub",
		a:      labSite{router: prefix + "nata", host: prefix + "hosta", publicIP: "198.18.0.2", hostIP: "192.168.1.2"},
		b:      labSite{router: prefix + "natb", host: prefix + "hostb", publicIP: "198.18.0.3", hostIP: "192.168.2.2"},
		fw:     fw,
	}
	for i, ns := range []string{lab.public, lab.a.router, lab.a.host, lab.b.router, lab.b.host} {
		if err := labCmd(ctx, "ip", "netns", "add", ns); err != nil {
			if i == 0 {
				t.Skipf("cannot create a network namespace: %v", err)
			}
			t.Fatal(err)
		}
		// Deleting a namespace deletes the veth ends in it, and with
		// them their peers.
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := labCmd(cctx, "ip", "netns", "delete", ns); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		if err := labCmd(ctx, "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			t.Fatal(err)
		}
	}
	steps := [][]string{
		{"ip", "-n", lab.public, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", lab.public, "addr", "add", labRendezvousIP + "/24", "dev", "br0"},
		{"ip", "-n", lab.public, "link", "set", "br0", "up"},
	}
	for i, s := range []labSite{lab.a, lab.b} {
		port := fmt.Sprintf("site%d", i)
		gw := strings.TrimSuffix(s.hostIP, ".2") + ".1"
		steps = append(steps, [][]string{
			{"ip", "-n", lab.public, "link", "add", port, "type", "veth", "peer", "name", "wan0", "netns", s.router},
			{"ip", "-n", lab.public, "link", "set", port, "master", "br0", "up"},
			{"ip", "-n", s.router, "addr", "add", s.publicIP + "/24", "dev", "wan0"},
			{"ip", "-n", s.router, "link", "set", "wan0", "up"},
			{"ip", "-n", s.router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", s.host},
			{"ip", "-n", s.router, "addr", "add", gw + "/24", "dev", "lan0"},
			{"ip", "-n", s.router, "link", "set", "lan0", "up"},
			{"ip", "-n", s.host, "addr", "add", s.hostIP + "/24", "dev", "eth0"},
			{"ip", "-n", s.host, "link", "set", "eth0", "up"},
			{"ip", "-n", s.host, "route", "add", "default", "via", gw},
			{"ip", "netns", "exec", s.router, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		}...)
	}
	for _, s := range steps {
		if err := labCmd(ctx, s[0], s[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []labSite{lab.a, lab.b} {
		if err := fw.setup(s.router); err != nil {
			t.Skipf("the kernel refuses NAT in a network namespace: %v", err)
		}
	}
	return lab
}

// labCmd runs one setup command, its output in the error.
func labCmd(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// conntrackReply matches a UDP entry of /proc/net/nf_conntrack: the
// original tuple, then the reply tuple, whose destination is the mapping.
var conntrackReply = regexp.MustCompile(`udp .*?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) .*?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)`)

// mapping returns the public address and port s's router gave the host's
// port in talking to the rendezvous, read from the router's connection
// tracking table; where that table cannot be read, the router's public
// address with the same port (Linux keeps the port when it is free).
func (lab *natLab) mapping(t *testing.T, s labSite, port uint16, rendezvous string) netip.AddrPort {
	t.Helper()
	guess := netip.AddrPortFrom(netip.MustParseAddr(s.publicIP), port)
	rdv := netip.MustParseAddrPort(rendezvous)
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command("ip", "netns", "exec", s.router, "cat", "/proc/net/nf_conntrack").Output()
		if err != nil {
			t.Logf("no connection tracking table in %s (%v): assuming the mapping keeps the port, %s", s.router, err, guess)
			return guess
		}
		for _, line := range strings.Split(string(out), "\n") {
			m := conntrackReply.FindStringSubmatch(line)
			if m == nil || m[1] != s.hostIP || m[3] != strconv.Itoa(int(port)) || m[2] != rdv.Addr().String() {
				continue
			}
			p, _ := strconv.Atoi(m[8])
			return netip.AddrPortFrom(netip.MustParseAddr(m[6]), uint16(p))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no connection from %s:%d to the rendezvous:\n%s", s.router, s.hostIP, port, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The router's rules: source NAT on the public side (wan0), forwarding
// from the private side (lan0) out, and from outside only what answers a
// connection from inside; anything else from outside, whether for the
// host or the router itself, is dropped (and counted) before connection
// tracking confirms it, so a stranger's packet leaves no state that
// would change the mapping.
type iptablesFirewall struct{}

func (iptablesFirewall) setup(ns string) error {
	for _, rule := range [][]string{
		{"-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"},
		{"-P", "FORWARD", "DROP"},
		{"-A", "FORWARD", "-i", "lan0", "-o", "wan0", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "wan0", "-o", "lan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "INPUT", "-i", "wan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "INPUT", "-i", "wan0", "-j", "DROP"},
	} {
		if err := labCmd(context.Background(), "ip", append([]string{"netns", "exec", ns, "iptables"}, rule...)...); err != nil {
			return err
		}
	}
	return nil
}

func (iptablesFirewall) dropped(ns string) (int, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "iptables", "-n", "-v", "-x", "-L", "INPUT").Output()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[2] == "DROP" && f[5] == "wan0" {
			return strconv.Atoi(f[0])
		}
	}
	return 0, errors.New("no DROP rule on wan0 in INPUT:\n" + string(out))
}

type nftFirewall struct{}

const nftRouter = `table ip strata_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" masquerade
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "lan0" oifname "wan0" accept
		iifname "wan0" oifname "lan0" ct state established,related accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan0" ct state established,related accept
		iifname "wan0" counter drop
	}
}
`

func (nftFirewall) setup(ns string) error {
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(nftRouter)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

var nftCounter = regexp.MustCompile(`counter packets (\d+)`)

func (nftFirewall) dropped(ns string) (int, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "chain", "ip", "strata_nat", "input").Output()
	if err != nil {
		return 0, err
	}
	m := nftCounter.FindSubmatch(out)
	if m == nil {
		return 0, errors.New("no counter in the input chain:\n" + string(out))
	}
	return strconv.Atoi(string(m[1]))
}

// nsProc is the built binary running in a namespace.
type nsProc struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line
	stderr *syncBuffer
	done   chan int
	code   *int
}

// startInNS runs bin in namespace ns ('ip netns exec' execs it, so the
// process is the binary itself); t.Cleanup kills it by PID if it still
// runs.
func startInNS(ctx context.Context, t *testing.T, ns, bin string, args ...string) *nsProc {
	t.Helper()
	p := &nsProc{lines: make(chan string, 100), stderr: new(syncBuffer), done: make(chan int, 1)}
	p.cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		err := p.cmd.Wait()
		code := 0
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		p.done <- code
	}()
	t.Cleanup(func() {
		if p.code == nil {
			p.cmd.Process.Kill()
			p.exit(t, 5*time.Second)
		}
	})
	return p
}

// line returns the next stdout line.
func (p *nsProc) line(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("%s: stdout ended; stderr:\n%s", p.cmd.Args[3:5], p.stderr)
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("%s: no stdout line within %s; stderr:\n%s", p.cmd.Args[3:5], timeout, p.stderr)
	}
	return ""
}

// wait waits for the process to exit by itself.
func (p *nsProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	code, ok := p.exit(t, timeout)
	if !ok {
		t.Fatalf("%s did not exit within %s; stderr:\n%s", p.cmd.Args[3:5], timeout, p.stderr)
	}
	return code
}

// interrupt sends SIGINT and waits for the exit.
func (p *nsProc) interrupt(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	return p.wait(t, 10*time.Second)
}

func (p *nsProc) exit(t *testing.T, timeout time.Duration) (int, bool) {
	t.Helper()
	if p.code != nil {
		return *p.code, true
	}
	select {
	case c := <-p.done:
		p.code = &c
		return c, true
	case <-time.After(timeout):
		return -1, false
	}
}
