// Command routing explores direct routing in a group: N members in one
// process on the in-memory network, and messages routed hop by hop to the
// member nearest a 256-bit address (random ones, or those given with
// --to). For each message it prints the member that received it, whether
// that is truly the member nearest the address, the path and the hops.
//
//	go run ./examples/routing
//	go run ./examples/routing --nodes 40 --count 20 --members
//	go run ./examples/routing --to 00 --to ff --from 3
package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strata-net/strata/examples/internal/cli"
	"github.com/strata-net/strata/examples/internal/memgroup"
	"github.com/strata-net/strata/group"
	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
	"github.com/strata-net/strata/overlay"
)

func main() {
	cli.Main("routing", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Stdout) })
}

// options of one run.
type options struct {
	nodes   int
	k       int
	count   int               // random targets
	to      []overlay.Address // given targets
	from    int               // sending member, -1: a random one per message
	members bool              // list the members first
	delay   time.Duration
	seed    uint64
	timeout time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("routing", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.nodes, "nodes", 24, "members in the group (2..200)")
	fs.IntVar(&o.k, "k", 6, "bucket size of the routing tables (the overlay's default is 20): below the member count, tables are partial, as in a large group, and routes take several hops")
	fs.IntVar(&o.count, "count", 8, "messages to random addresses (default 8, or 0 when --to is given)")
	fs.Func("to", "route to this address: up to 64 hex digits, a shorter one is a prefix padded with zeros; may repeat", func(s string) error {
		a, err := parseAddress(s)
		if err == nil {
			o.to = append(o.to, a)
		}
		return err
	})
	fs.IntVar(&o.from, "from", -1, "the member that sends every message (-1: a random member for each)")
	fs.BoolVar(&o.members, "members", false, "list the members' addresses first")
	fs.DurationVar(&o.delay, "delay", 5*time.Millisecond, "one-way delay of every link")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the random targets and senders")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up after this long")
	if err := cli.Parse(fs, args); err != nil {
		return o, err
	}
	countSet := false
	fs.Visit(func(f *flag.Flag) { countSet = countSet || f.Name == "count" })
	if len(o.to) > 0 && !countSet {
		o.count = 0
	}
	bad := func(format string, a ...any) (options, error) {
		return o, cli.Usagef(stderr, "routing", format, a...)
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected argument %q (targets are given with --to)", fs.Arg(0))
	case o.nodes < 2 || o.nodes > 200:
		return bad("--nodes %d: want 2..200", o.nodes)
	case o.k < 1 || o.k > 64:
		return bad("--k %d: want 1..64", o.k)
	case o.count < 0 || o.count > 10000:
		return bad("--count %d: want 0..10000", o.count)
	case o.count == 0 && len(o.to) == 0:
		return bad("nothing to route: give --count N or --to ADDRESS")
	case o.from < -1 || o.from >= o.nodes:
		return bad("--from %d: want a member 0..%d, or -1", o.from, o.nodes-1)
	case o.timeout <= 0 || o.delay < 0:
		return bad("--timeout must be positive and --delay not negative")
	}
	return o, nil
}

// parseAddress reads up to 64 hex digits; fewer are the address's first
// digits, the rest zero.
func parseAddress(s string) (overlay.Address, error) {
	var a overlay.Address
	if len(s) == 0 || len(s) > 2*len(a) {
		return a, fmt.Errorf("address %q: want 1 to 64 hex digits", s)
	}
	if len(s)%2 == 1 {
		s += "0"
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return a, fmt.Errorf("address %q: not hex", s)
	}
	copy(a[:], b)
	return a, nil
}

// member is one node of the group.
type member struct {
	*memgroup.Member
	idx int
}

// explorer is the group and the messages under way.
type explorer struct {
	members []*member
	byPeer  map[node.PeerID]int

	mu      sync.Mutex
	waiting map[uint64]chan arrival // by message nonce
}

// arrival is a routed message's delivery at a member.
type arrival struct {
	member int
	d      overlay.Delivery
	at     time.Time
}

// payloadPrefix starts every message this program routes; a nonce
// follows, which tells which message arrived.
const payloadPrefix = "routing example "

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	network := memnet.New(memnet.Config{Link: memnet.Link{Delay: o.delay}})
	defer network.Close()
	spec := group.Specifier{Name: "example-routing", Routing: true}
	ocfg := overlay.LocalConfig()
	ocfg.K = o.k
	x := &explorer{byPeer: make(map[node.PeerID]int), waiting: make(map[uint64]chan arrival)}
	var receivers sync.WaitGroup
	rctx, stopReceivers := context.WithCancel(ctx)
	defer func() {
		stopReceivers()
		all := make([]*memgroup.Member, len(x.members))
		for i, m := range x.members {
			all[i] = m.Member
		}
		memgroup.CloseAll(all)
		receivers.Wait()
	}()
	for i := range o.nodes {
		mg, err := memgroup.Start(network, spec, group.Config{Overlay: ocfg})
		if err != nil {
			return err
		}
		m := &member{Member: mg, idx: i}
		x.members = append(x.members, m)
		x.byPeer[mg.Node.PeerID()] = i
		// The group layer does not read the overlay's deliveries, so
		// this is their only reader.
		receivers.Add(1)
		go func() { defer receivers.Done(); x.receive(rctx, m) }()
	}
	fmt.Fprintf(out, "%d members of %s on the in-memory network (%v links)\n", o.nodes, spec, o.delay)

	// Each member joins through member 0 and a random other member,
	// 8 at a time (a crowd of joiners at once would hit the seed's link
	// limit); then every member refreshes its table, so that tables hold
	// the members a lookup would find.
	t0 := time.Now()
	r := rand.New(rand.NewPCG(o.seed, 1))
	errs := make(chan error, len(x.members))
	slots := make(chan struct{}, 8)
	for i, m := range x.members[1:] {
		seeds := []overlay.Peer{x.members[0].Host.Self(), x.members[1+r.IntN(i+1)].Host.Self()}
		slots <- struct{}{}
		go func() {
			defer func() { <-slots }()
			if err := m.Group.Bootstrap(ctx, seeds...); err != nil {
				errs <- fmt.Errorf("member %d bootstrap: %w", m.idx, err)
			}
		}()
	}
	for range cap(slots) {
		slots <- struct{}{}
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	var wg sync.WaitGroup
	for _, m := range x.members {
		wg.Add(1)
		go func() { defer wg.Done(); m.Group.Overlay().Refresh(ctx) }()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintf(out, "mesh formed in %v\n", time.Since(t0).Round(time.Millisecond))
	if o.members {
		x.listMembers(out)
	}

	targets := slices.Clone(o.to)
	for range o.count {
		var a overlay.Address
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		targets = append(targets, a)
	}
	var hops []int
	nearest := 0
	for i, target := range targets {
		from := o.from
		if from < 0 {
			from = r.IntN(len(x.members))
		}
		res, err := x.route(ctx, from, target)
		fmt.Fprintf(out, "#%d to %s from member %d\n", i+1, short(target), from)
		if err != nil {
			fmt.Fprintf(out, "   NOT DELIVERED: %v\n", err)
			continue
		}
		verdict := "yes"
		if res.to == res.nearest {
			nearest++
		} else {
			verdict = fmt.Sprintf("NO, member %d is nearer", res.nearest)
		}
		hops = append(hops, res.hops)
		var path []string
		for _, p := range res.path {
			path = append(path, fmt.Sprint(p))
		}
		fmt.Fprintf(out, "   received by member %d (address %s, %d leading bits in common with the target)\n",
			res.to, short(x.address(res.to)), overlay.CommonPrefixLen(x.address(res.to), target))
		fmt.Fprintf(out, "   the true nearest: %s; %d hops: %s; %v\n",
			verdict, res.hops, strings.Join(path, " > "), res.took.Round(10*time.Microsecond))
	}
	slices.Sort(hops)
	fmt.Fprintf(out, "%d of %d messages reached the member nearest their address", nearest, len(targets))
	if len(hops) > 0 {
		fmt.Fprintf(out, "; hops median %d, max %d", hops[len(hops)/2], hops[len(hops)-1])
	}
	fmt.Fprintln(out)
	if nearest != len(targets) {
		return fmt.Errorf("%d of %d messages did not reach the member nearest their address", len(targets)-nearest, len(targets))
	}
	return nil
}

// receive hands member m's deliveries to the route waiting for them.
func (x *explorer) receive(ctx context.Context, m *member) {
	for {
		d, err := m.Group.Overlay().Receive(ctx)
		if err != nil {
			return
		}
		rest, ok := strings.CutPrefix(string(d.Payload), payloadPrefix)
		if !ok || len(rest) != 8 {
			continue
		}
		x.mu.Lock()
		ch := x.waiting[binary.BigEndian.Uint64([]byte(rest))]
		x.mu.Unlock()
		if ch != nil {
			select {
			case ch <- arrival{member: m.idx, d: d, at: time.Now()}:
			default:
			}
		}
	}
}

// result is where one routed message arrived.
type result struct {
	to, nearest int
	path        []int // members it went through, the sender first
	hops        int
	took        time.Duration
}

// route sends a message from member from to the member nearest target and
// waits for its delivery. Route itself returns once the first hop has the
// message; the delivery says where it ended and how.
func (x *explorer) route(ctx context.Context, from int, target overlay.Address) (result, error) {
	res := result{nearest: x.nearest(target)}
	nonce := rand.Uint64()
	ch := make(chan arrival, 1)
	x.mu.Lock()
	x.waiting[nonce] = ch
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		delete(x.waiting, nonce)
		x.mu.Unlock()
	}()
	payload := binary.BigEndian.AppendUint64([]byte(payloadPrefix), nonce)
	t0 := time.Now()
	if err := x.members[from].Group.Overlay().Route(ctx, target, payload); err != nil {
		return res, err
	}
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	select {
	case a := <-ch:
		res.took = a.at.Sub(t0)
		res.to = a.member
		res.hops = a.d.Hops
		for _, p := range a.d.Path {
			i, ok := x.byPeer[p]
			if !ok {
				i = -1
			}
			res.path = append(res.path, i)
		}
		return res, nil
	case <-wait.Done():
		return res, fmt.Errorf("no member received it within 5 s")
	}
}

func (x *explorer) address(i int) overlay.Address { return x.members[i].Group.Overlay().Address() }

// nearest is the member whose address is nearest target by XOR distance:
// where routing should end.
func (x *explorer) nearest(target overlay.Address) int {
	addrs := make([]overlay.Address, len(x.members))
	for i := range addrs {
		addrs[i] = x.address(i)
	}
	return nearestOf(addrs, target)
}

// nearestOf is the index of the address nearest target.
func nearestOf(addrs []overlay.Address, target overlay.Address) int {
	best := 0
	for i, a := range addrs {
		if overlay.Closer(a, addrs[best], target) {
			best = i
		}
	}
	return best
}

// listMembers prints the members in address order.
func (x *explorer) listMembers(out io.Writer) {
	idx := make([]int, len(x.members))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		aa, ba := x.address(a), x.address(b)
		return slices.Compare(aa[:], ba[:])
	})
	for _, i := range idx {
		m := x.members[i]
		fmt.Fprintf(out, "member %3d address %s peer %s neighbours %d table %d\n",
			i, x.address(i), m.Node.PeerID().String()[:8], len(m.Group.Overlay().Neighbours()), m.Group.Overlay().Table().Size())
	}
}

// short is an address's first 16 hex digits.
func short(a overlay.Address) string { return hex.EncodeToString(a[:8]) + "…" }
