package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/group"
	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/overlay"
)

// This file holds what every group command shares: the member flags
// (listen, identity, bootstrap, group), starting a member (node, overlay
// host, group mux, joined groups) and stopping it in order, and the
// output helpers.

// listFlag is a flag that may be repeated and takes comma-separated
// values: "--bootstrap A,B --bootstrap C" is [A B C].
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// specFlag is a repeatable --group flag. Specifiers may contain commas
// (in percent-encoded form they do not, but a raw name might), so it is
// not split like listFlag.
type specFlag []string

func (s *specFlag) String() string     { return strings.Join(*s, " ") }
func (s *specFlag) Set(v string) error { *s = append(*s, v); return nil }

// defaultJoinTimeout bounds meeting the group through --bootstrap.
const defaultJoinTimeout = 10 * time.Second

// memberFlags are the flags of every command that runs a group member.
type memberFlags struct {
	listen      string
	identity    string
	bootstrap   listFlag
	rendezvous  listFlag
	groups      specFlag
	multiGroup  bool // node: --group may repeat
	joinTimeout time.Duration
	// backupPushers: group.Config.BackupPushers.
	backupPushers bool
	// lowLatency: group.Config.LowLatency.
	lowLatency bool
	logFlags
}

// register adds the member flags to fs. defaultListen "" means: chosen
// from the first bootstrap address (see memberSetup.listenAddr).
func (m *memberFlags) register(fs *flag.FlagSet, defaultListen, defaultLevel string, multiGroup bool) {
	m.multiGroup = multiGroup
	listenHelp := "UDP `ADDR` to listen on (port 0 picks a free one)"
	if defaultListen == "" {
		listenHelp += "; default: port 0 on 127.0.0.1 when the bootstrap address is loopback, else on every interface"
	}
	fs.StringVar(&m.listen, "listen", defaultListen, listenHelp)
	fs.StringVar(&m.identity, "identity", "", "`FILE` holding this node's identity (created if missing), so its peer ID and group addresses survive restarts; default: a fresh identity per run")
	fs.Var(&m.bootstrap, "bootstrap", "members to meet the group through: `ADDR[,ADDR]` (HOST:PORT, or PEERID@HOST:PORT to accept only that peer); may repeat")
	fs.Var(&m.rendezvous, "rendezvous", "rendezvous nodes ('strata rendezvous') to register with and be introduced through: `ADDR[,ADDR]`; may repeat")
	groupHelp := "the group `SPEC`ifier, e.g. 'strata:group/lobby?multicast&posting&routing' (required)"
	if multiGroup {
		groupHelp = "join the group with this `SPEC`ifier; repeat for several groups (at least one)"
	}
	fs.Var(&m.groups, "group", groupHelp)
	fs.DurationVar(&m.joinTimeout, "join-timeout", defaultJoinTimeout, "give up meeting the group through --bootstrap after `D`")
	fs.BoolVar(&m.backupPushers, "backup-pushers", false, "take each push class of a stream from a second neighbour too (each piece comes twice): lower latency under loss, about twice the bytes received")
	fs.BoolVar(&m.lowLatency, "low-latency", false, "run the latency configuration (docs/group.md \"A latency configuration\"; every member of the group must): 5 push classes, pushes for up to 8 copies of a stream, backup pushers, and at a publisher 8 copies and early fragments")
	m.logFlags.register(fs, defaultLevel)
}

// memberSetup is the validated form of memberFlags.
type memberSetup struct {
	listen      string
	identity    string
	peers       []overlay.Peer
	rendezvous  []netip.AddrPort
	specs       []group.Specifier
	joinTimeout time.Duration
	log         zerolog.Logger
	// publisherKey goes into every group's Config (publish only).
	publisherKey ed25519.PrivateKey
	// shortParity: group.Config.ShortParity (publish only).
	shortParity bool
	// earlyFragments: group.Config.EarlyFragments (publish only).
	earlyFragments bool
	// backupPushers: group.Config.BackupPushers.
	backupPushers bool
	// lowLatency: group.Config.LowLatency.
	lowLatency bool
	// subscribe subscribes to every group's stream as soon as it is
	// joined, before bootstrap, so no output is missed (play).
	subscribe bool
}

// setup validates the flags. Its error is a usage error: the message
// says what to change.
func (m *memberFlags) setup(ctx context.Context, e *env) (*memberSetup, error) {
	s := &memberSetup{identity: m.identity, joinTimeout: m.joinTimeout, backupPushers: m.backupPushers, lowLatency: m.lowLatency}
	switch {
	case len(m.groups) == 0 && m.multiGroup:
		return nil, errors.New("missing --group SPEC (e.g. --group 'strata:group/lobby?multicast&posting&routing'); repeat it to join several groups")
	case len(m.groups) == 0:
		return nil, errors.New("missing --group SPEC (e.g. --group 'strata:group/lobby?multicast&posting&routing')")
	case len(m.groups) > 1 && !m.multiGroup:
		return nil, fmt.Errorf("--group given %d times; this command works in one group (run 'strata node' to join several)", len(m.groups))
	case m.joinTimeout <= 0:
		return nil, fmt.Errorf("--join-timeout %s: want a positive duration such as 10s", m.joinTimeout)
	}
	seen := make(map[[32]byte]bool)
	for _, g := range m.groups {
		sp, err := group.ParseSpecifier(g)
		if err != nil {
			return nil, fmt.Errorf("--group: %v", err)
		}
		if seen[sp.ID()] {
			return nil, fmt.Errorf("--group %s given twice", sp.IDString())
		}
		seen[sp.ID()] = true
		s.specs = append(s.specs, sp)
	}
	for _, b := range m.bootstrap {
		p, err := parsePeer(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("--bootstrap: %v", err)
		}
		s.peers = append(s.peers, p)
	}
	for _, r := range m.rendezvous {
		ap, err := parseAddrPort(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("--rendezvous: %v", err)
		}
		s.rendezvous = append(s.rendezvous, ap)
	}
	s.listen = m.listen
	if s.listen == "" {
		s.listen = "127.0.0.1:0"
		if len(s.peers) > 0 {
			if a := s.peers[0].Addr.Addr(); !a.IsLoopback() {
				s.listen = localFor(s.peers[0].Addr)
			} else if a.Is6() {
				s.listen = "[::1]:0"
			}
		}
	}
	if err := validListenAddr(s.listen); err != nil {
		return nil, err
	}
	log, err := m.logger(e)
	if err != nil {
		return nil, err
	}
	s.log = log
	return s, nil
}

// parsePeer parses "HOST:PORT" or "PEERID@HOST:PORT".
func parsePeer(ctx context.Context, s string) (overlay.Peer, error) {
	var p overlay.Peer
	addr := s
	if id, rest, ok := strings.Cut(s, "@"); ok {
		pid, err := node.ParsePeerID(id)
		if err != nil {
			return p, fmt.Errorf("%q: the part before @ must be a peer ID (64 hex digits): %v", s, err)
		}
		p.PeerID, addr = pid, rest
	}
	ap, err := parseAddrPort(ctx, addr)
	if err != nil {
		return p, err
	}
	p.Addr = ap
	return p, nil
}

// member is one running group member: a node, its overlay host, the group
// mux and the joined groups.
type member struct {
	n      *node.Node
	host   *overlay.Host
	mux    *group.Mux
	groups []*group.Group
	subs   []*group.Subscription // with memberSetup.subscribe
	log    zerolog.Logger
}

// startMember opens the node, joins every group and, if there are
// bootstrap peers, meets each group through them (retrying until
// joinTimeout: the seed may be starting at the same time).
func startMember(ctx context.Context, s *memberSetup) (*member, error) {
	cfg, err := nodeConfig(false, s.identity, s.log)
	if err != nil {
		return nil, err
	}
	n, err := node.Listen(s.listen, cfg)
	if err != nil {
		return nil, err
	}
	m := &member{n: n, mux: group.NewMux(), log: s.log}
	m.host = overlay.NewHost(n, overlay.HostConfig{
		OnFlow:     m.mux.HandleFlow,
		Rendezvous: s.rendezvous,
		Logger:     s.log.With().Str("component", "overlay").Logger(),
	})
	for _, sp := range s.specs {
		g, err := group.Join(m.host, sp, s.groupConfig(m.mux, sp))
		if err != nil {
			m.close()
			return nil, fmt.Errorf("joining %s: %w", sp.IDString(), err)
		}
		m.groups = append(m.groups, g)
		if s.subscribe {
			sub, err := g.Subscribe()
			if err != nil {
				m.close()
				return nil, fmt.Errorf("subscribing to %s: %w", sp.IDString(), err)
			}
			m.subs = append(m.subs, sub)
		}
	}
	if len(s.peers) == 0 && len(s.rendezvous) == 0 {
		return m, nil
	}
	for _, g := range m.groups {
		if err := bootstrap(ctx, g, s.peers, s.rendezvous, s.joinTimeout, s.log); err != nil {
			m.close()
			return nil, err
		}
	}
	return m, nil
}

// bootstrap meets g through peers, retrying until timeout.
func bootstrap(ctx context.Context, g *group.Group, peers []overlay.Peer, rdv []netip.AddrPort, timeout time.Duration, log zerolog.Logger) error {
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := g.Bootstrap(bctx, peers...)
		if err == nil {
			log.Info().Str("group", shortHex(g.ID())).Int("attempts", attempt).
				Dur("took", time.Since(start)).Int("table", g.Overlay().Table().Size()).Msg("joined")
			return nil
		}
		log.Debug().Err(err).Int("attempt", attempt).Msg("bootstrap failed")
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while meeting the group")
		}
		select {
		case <-bctx.Done():
			addrs := make([]string, 0, len(peers)+len(rdv))
			for _, p := range peers {
				addrs = append(addrs, p.Addr.String())
			}
			for _, a := range rdv {
				addrs = append(addrs, "rendezvous "+a.String())
			}
			return fmt.Errorf("no bootstrap peer answered within %s at %s: is a strata member of this group (same --group specifier), or a strata rendezvous, running there? (%v)",
				timeout, strings.Join(addrs, ","), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitNeighbours waits until g has at least min neighbour links, or
// timeout.
func waitNeighbours(ctx context.Context, g *group.Group, min int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for g.Stats().Neighbours < min {
		if time.Now().After(deadline) {
			return fmt.Errorf("no neighbour link within %s (have %d, want %d): is another member of this group running, and did this one get --bootstrap ADDR?",
				timeout, g.Stats().Neighbours, min)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted while waiting for neighbours")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// close leaves the groups (telling neighbours), stops the overlay host,
// and closes the node in an orderly way within closeGrace.
func (m *member) close() error {
	for _, g := range m.groups {
		g.Close()
	}
	m.host.Close()
	return closeNode(m.n)
}

// shortHex is the first 8 bytes of an ID in hex, for logs.
func shortHex(id [32]byte) string { return fmt.Sprintf("%x", id[:8]) }

// outFormat is the --format flag of commands that print records on
// stdout: text for people, JSON lines for programs.
type outFormat struct{ value string }

func (o *outFormat) register(fs *flag.FlagSet) {
	fs.StringVar(&o.value, "format", "auto", "output `auto|text|json` (auto: text on a terminal, JSON lines otherwise)")
}

// json reports whether output goes as JSON lines; err is a usage error.
func (o *outFormat) json(e *env) (bool, error) {
	switch o.value {
	case "json":
		return true, nil
	case "text":
		return false, nil
	case "auto", "":
		return !isTerminal(e.stdout), nil
	}
	return false, fmt.Errorf("unknown --format %q (want auto, text or json)", o.value)
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// sizeFlag is a byte count with an optional K, M or G suffix (powers of
// 1024): "200K" is 204800.
type sizeFlag struct{ n int64 }

func (s *sizeFlag) String() string { return strconv.FormatInt(s.n, 10) }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	s.n = n
	return nil
}

func parseSize(v string) (int64, error) {
	mult := int64(1)
	num := strings.TrimSpace(v)
	if num != "" {
		switch num[len(num)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			num = num[:len(num)-1]
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("want a byte count such as 1048576, 200K, 1M or 2G")
	}
	return n * mult, nil
}

// memberCmd is the front half shared by every group command: its flags,
// their checks and the group's options, up to a memberSetup.
type memberCmd struct {
	usage         usage
	defaultListen string // "": chosen from --bootstrap
	logLevel      string // default --log-level
	multiGroup    bool   // --group may repeat (node)
	format        bool   // has --format
	// needs is the specifier option the command cannot work without
	// ("multicast", "posting", "routing"), or "".
	needs string
	// flags registers the command's own flags; check validates them and
	// the positional arguments (its error is a usage error).
	flags func(fs *flag.FlagSet)
	check func(pos []string) error
}

// memberArgs is what memberCmd.parse returns.
type memberArgs struct {
	pos    []string
	setup  *memberSetup
	asJSON bool
}

// parse parses args. When ok is false the command returns code: after
// --help, or a usage error already reported.
func (c memberCmd) parse(ctx context.Context, e *env, path string, args []string) (a memberArgs, code int, ok bool) {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	var mf memberFlags
	mf.register(fs, c.defaultListen, c.logLevel, c.multiGroup)
	var of outFormat
	if c.format {
		of.register(fs)
	}
	if c.flags != nil {
		c.flags(fs)
	}
	pos, code, ok := parseFlags(e, path, fs, c.usage, args)
	if !ok {
		return a, code, false
	}
	a.pos = pos
	if c.check != nil {
		if err := c.check(pos); err != nil {
			return a, usageErr(e, path, "%v", err), false
		}
	}
	var err error
	if c.format {
		if a.asJSON, err = of.json(e); err != nil {
			return a, usageErr(e, path, "%v", err), false
		}
	}
	if a.setup, err = mf.setup(ctx, e); err != nil {
		return a, usageErr(e, path, "%v", err), false
	}
	for _, sp := range a.setup.specs {
		if !specHas(sp, c.needs) {
			return a, usageErr(e, path, "the group %s lacks what this command needs: add the option '%s' to its specifier", sp.IDString(), c.needs), false
		}
	}
	return a, exitOK, true
}

// specHas reports whether sp has the option named opt ("" is always had).
func specHas(sp group.Specifier, opt string) bool {
	switch opt {
	case "multicast":
		return sp.Multicast
	case "posting":
		return sp.Posting
	case "routing":
		return sp.Routing
	}
	return true
}

// noArgs is a memberCmd.check for commands without positional arguments.
func noArgs(hint string) func(pos []string) error {
	return func(pos []string) error {
		if len(pos) > 0 {
			return fmt.Errorf("unexpected argument %q%s", pos[0], hint)
		}
		return nil
	}
}

// nonNegative checks duration and count flags, in order: the first
// negative one is the error. Each value is a *time.Duration or *int.
func nonNegative(flags ...any) error {
	for i := 0; i+1 < len(flags); i += 2 {
		name := flags[i].(string)
		switch v := flags[i+1].(type) {
		case *time.Duration:
			if *v < 0 {
				return fmt.Errorf("--%s %s: want 0 or a positive duration", name, *v)
			}
		case *int:
			if *v < 0 {
				return fmt.Errorf("--%s %d: want 0 or more", name, *v)
			}
		}
	}
	return nil
}

// groupConfig is the group.Config of every group a member joins.
func (s *memberSetup) groupConfig(mux *group.Mux, sp group.Specifier) group.Config {
	c := group.Config{
		Mux:            mux,
		PublisherKey:   s.publisherKey,
		ShortParity:    s.shortParity,
		EarlyFragments: s.earlyFragments,
		BackupPushers:  s.backupPushers,
		Logger:         s.log.With().Str("component", "group").Str("group", shortHex(sp.ID())).Logger(),
	}
	if s.lowLatency {
		c = c.LowLatency()
	}
	return c
}
