package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/overlay"
)

func routeCommand() *command {
	return &command{
		name:    "route",
		summary: "direct routing in a group: send to an address, lookups, neighbours, size",
		sub: []*command{
			{name: "send", summary: "send a message to the member nearest a group address and report who got it", run: runRouteSend},
			{name: "listen", summary: "print routed messages this member receives (and answer each with a receipt)", run: runRouteListen},
			{name: "lookup", summary: "find the members nearest a group address", run: runRouteLookup},
			{name: "neighbours", summary: "list the neighbours a member keeps", run: runRouteNeighbours},
			{name: "estimate", summary: "estimate how many members the group has", run: runRouteEstimate},
		},
	}
}

// routeMagic starts the payload of the messages 'route send' and the
// receivers' receipts exchange; the rest is a JSON routeEnvelope. Routed
// messages without it (from other programs) are printed as they are.
const routeMagic = "strata-route/1 "

// maxRoutePayload bounds a routed message's payload: the overlay's
// message limit (64 KiB) minus room for the envelope and the path.
const maxRoutePayload = 32 << 10

// routeEnvelope is a 'route send' message or its receipt.
type routeEnvelope struct {
	Kind  string `json:"kind"`  // "message" or "receipt"
	Nonce string `json:"nonce"` // the sender's, copied into the receipt
	// Data is the message's payload.
	Data []byte `json:"data,omitempty"`
	// Receipt: the path the message took (peer IDs, sender first) and the
	// group address it was sent to.
	Path   []string `json:"path,omitempty"`
	Target string   `json:"target,omitempty"`
}

func encodeEnvelope(env *routeEnvelope) []byte {
	b, _ := json.Marshal(env)
	return append([]byte(routeMagic), b...)
}

// decodeEnvelope returns nil when payload is not an envelope.
func decodeEnvelope(payload []byte) *routeEnvelope {
	rest, ok := bytes.CutPrefix(payload, []byte(routeMagic))
	if !ok {
		return nil
	}
	env := new(routeEnvelope)
	if json.Unmarshal(rest, env) != nil || (env.Kind != "message" && env.Kind != "receipt") {
		return nil
	}
	return env
}

func pathStrings(p []node.PeerID) []string {
	s := make([]string, len(p))
	for i, id := range p {
		s[i] = id.String()
	}
	return s
}

// serveRoutes receives og's messages until it closes or ctx ends,
// answers every routed 'route send' message with a receipt routed back
// to its sender's address, and hands each delivery to handle (env is nil
// when the payload is not an envelope).
func serveRoutes(ctx context.Context, og *overlay.Group, handle func(d overlay.Delivery, env *routeEnvelope)) {
	self := og.Table().Self()
	for {
		d, err := og.Receive(ctx)
		if err != nil {
			return
		}
		env := decodeEnvelope(d.Payload)
		if env != nil && env.Kind == "message" && d.Kind == overlay.Routed && overlay.AddressOf(og.ID(), d.From) != self {
			rc := &routeEnvelope{Kind: "receipt", Nonce: env.Nonce, Path: pathStrings(d.Path), Target: d.Target.String()}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			// A failed receipt only means the sender hears nothing; it
			// reports that itself.
			og.Route(rctx, overlay.AddressOf(og.ID(), d.From), encodeEnvelope(rc))
			cancel()
		}
		handle(d, env)
	}
}

// deliveryRecord is a received message as printed by 'route listen'.
type deliveryRecord struct {
	Event   string   `json:"event"` // "message"
	Kind    string   `json:"kind"`  // "routed" or "direct"
	From    string   `json:"from"`
	Target  string   `json:"target,omitempty"`
	Hops    int      `json:"hops"`
	Path    []string `json:"path,omitempty"`
	Payload string   `json:"payload"`
	// Envelope says the payload came from 'route send' (Payload is then
	// its data, not the envelope).
	Envelope string `json:"envelope,omitempty"`
}

func newDeliveryRecord(d overlay.Delivery, env *routeEnvelope) deliveryRecord {
	r := deliveryRecord{Event: "message", Kind: "routed", From: d.From.String(), Hops: d.Hops, Path: pathStrings(d.Path), Payload: printable(d.Payload)}
	if d.Kind == overlay.Direct {
		r.Kind = "direct"
	} else {
		r.Target = d.Target.String()
	}
	if env != nil {
		r.Envelope = env.Kind
		r.Payload = printable(env.Data)
	}
	return r
}

func logDelivery(log zerolog.Logger, d overlay.Delivery, env *routeEnvelope) {
	r := newDeliveryRecord(d, env)
	log.Info().Str("kind", r.Kind).Str("from", r.From).Int("hops", r.Hops).Strs("path", r.Path).
		Str("envelope", r.Envelope).Str("payload", r.Payload).Msg("routed message")
}

// parseAddress parses a 256-bit group address (64 hex digits).
func parseAddress(s string) (overlay.Address, error) {
	var a overlay.Address
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(a) {
		return a, fmt.Errorf("address %q: want 64 hex digits (a 256-bit group address, as printed by 'strata node' or 'strata route listen')", s)
	}
	copy(a[:], b)
	return a, nil
}

var routeSendUsage = usage{
	synopsis: "--group SPEC (--to ADDRHEX | --to-peer PEERID) [--bootstrap ADDR] [--timeout D] MESSAGE...",
	about: `
Joins the group, routes MESSAGE (the arguments joined by spaces) hop by hop
to the member whose address is nearest --to, and waits for that member's
receipt: members running 'strata route listen' or 'strata node' answer every
message with the path it took. It prints one line:

  delivered to PEERID address ADDRHEX in N hops: PEER > PEER > PEER

(or a JSON object with --format json, the default when stdout is not a
terminal) and exits 0; 1 if no receipt came within --timeout. With
--timeout 0 it returns as soon as the first hop took the message, without a
receipt. The group's specifier must allow routing (option 'routing').
--to-peer PEERID targets the address of that member in this group.`,
	examples: []string{
		"strata route send --group 'strata:group/demo?routing' --bootstrap 127.0.0.1:1935 --to 9f3a...e1 hello",
		"strata route send --group 'strata:group/demo?routing' --bootstrap 127.0.0.1:1935 --to-peer 0e28...9b7f 'hello there'",
	},
}

// receiptLine is what 'route send' prints.
type receiptLine struct {
	Event           string   `json:"event"` // "delivered" or "sent"
	Target          string   `json:"target"`
	Receiver        string   `json:"receiver,omitempty"`
	ReceiverAddress string   `json:"receiver_address,omitempty"`
	Hops            int      `json:"hops"`
	Path            []string `json:"path,omitempty"`
	RTTMs           float64  `json:"rtt_ms,omitempty"`
}

func runRouteSend(ctx context.Context, e *env, path string, args []string) int {
	var to, toPeer *string
	var timeout *time.Duration
	var target overlay.Address
	var toPID *node.PeerID
	c := memberCmd{usage: routeSendUsage, logLevel: "warn", format: true, needs: "routing",
		flags: func(fs *flag.FlagSet) {
			to = fs.String("to", "", "the group address to send to (`ADDRHEX`, 64 hex digits)")
			toPeer = fs.String("to-peer", "", "send to the address of the member with this peer ID (`PEERID`)")
			timeout = fs.Duration("timeout", 5*time.Second, "wait `D` for the receiver's receipt (0: do not wait)")
		},
		check: func(pos []string) error {
			msg := strings.Join(pos, " ")
			switch {
			case (*to == "") == (*toPeer == ""):
				return errors.New("give exactly one of --to ADDRHEX and --to-peer PEERID")
			case len(pos) == 0:
				return fmt.Errorf("missing MESSAGE (e.g. %s --to ADDRHEX hello)", path)
			case len(msg) > maxRoutePayload:
				return fmt.Errorf("message of %d bytes: at most %d fit in one routed message", len(msg), maxRoutePayload)
			case *to != "":
				var err error
				if target, err = parseAddress(*to); err != nil {
					return fmt.Errorf("--to: %v", err)
				}
			default:
				pid, err := node.ParsePeerID(*toPeer)
				if err != nil {
					return fmt.Errorf("--to-peer %q: want 64 hex digits: %v", *toPeer, err)
				}
				toPID = &pid
			}
			return nonNegative("timeout", timeout)
		},
	}
	a, code, ok := c.parse(ctx, e, path, args)
	if !ok {
		return code
	}
	s, asJSON, msg := a.setup, a.asJSON, strings.Join(a.pos, " ")
	if toPID != nil {
		target = overlay.AddressOf(s.specs[0].ID(), *toPID)
	}
	m, err := startMember(ctx, s)
	if err != nil {
		return failErr(e, path, err)
	}
	defer m.close()
	og := m.groups[0].Overlay()

	var nb [8]byte
	rand.Read(nb[:])
	nonce := hex.EncodeToString(nb[:])
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = og.Route(rctx, target, encodeEnvelope(&routeEnvelope{Kind: "message", Nonce: nonce, Data: []byte(msg)}))
	cancel()
	if err != nil {
		return failErr(e, path, fmt.Errorf("routing to %s: %w", target, err))
	}
	out := receiptLine{Event: "sent", Target: target.String()}
	if *timeout == 0 {
		printReceipt(e.stdout, asJSON, out)
		return exitOK
	}
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	for {
		d, err := og.Receive(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return failErr(e, path, errors.New("interrupted while waiting for the receipt"))
			}
			return failErr(e, path, fmt.Errorf("the first hop took the message to %s, but no receipt came within %s: does the member nearest that address run 'strata route listen' or 'strata node'?", target, *timeout))
		}
		env := decodeEnvelope(d.Payload)
		if env == nil || env.Nonce != nonce {
			continue
		}
		out.Event, out.RTTMs = "delivered", float64(time.Since(start))/float64(time.Millisecond)
		switch env.Kind {
		case "receipt":
			out.Path = env.Path
		case "message":
			// This member is itself the nearest to the target.
			out.Path = pathStrings(d.Path)
		}
		if len(out.Path) > 0 {
			out.Receiver = out.Path[len(out.Path)-1]
			out.Hops = len(out.Path) - 1
			if pid, err := node.ParsePeerID(out.Receiver); err == nil {
				out.ReceiverAddress = overlay.AddressOf(og.ID(), pid).String()
			}
		}
		printReceipt(e.stdout, asJSON, out)
		return exitOK
	}
}

func printReceipt(w io.Writer, asJSON bool, r receiptLine) {
	if asJSON {
		writeJSON(w, r)
		return
	}
	if r.Event == "sent" {
		fmt.Fprintf(w, "sent towards %s (not waiting for a receipt)\n", r.Target)
		return
	}
	fmt.Fprintf(w, "delivered to %s address %s in %d hops: %s\n", r.Receiver, r.ReceiverAddress, r.Hops, strings.Join(r.Path, " > "))
}

var routeListenUsage = usage{
	synopsis: "--group SPEC [--bootstrap ADDR] [--identity FILE] [--count N]",
	about: `
Joins the group and prints every message routed or sent to this member, one
a line, until interrupted (or --count messages). Messages from
'strata route send' are answered with a receipt carrying the path they
took. Text output (a terminal):

  listening ADDR / peer-id HEX / group ID address ADDRHEX SPEC
  from PEERID via N hops (PEER > PEER): PAYLOAD

JSON lines otherwise: {"event":"listening",...}, then one
{"event":"message","from":...,"hops":...,"path":[...],"payload":...} per
message. The group's specifier must allow routing. Exits 0.`,
	examples: []string{
		"strata route listen --group 'strata:group/demo?routing' --bootstrap 127.0.0.1:1935",
	},
}

func runRouteListen(ctx context.Context, e *env, path string, args []string) int {
	m, asJSON, count, code, ok := startListener(ctx, e, path, args, routeListenUsage, "routing")
	if !ok {
		return code
	}
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	seen := 0
	serveRoutes(lctx, m.groups[0].Overlay(), func(d overlay.Delivery, env *routeEnvelope) {
		if env != nil && env.Kind == "receipt" {
			return // a receipt for someone else's message that ended here
		}
		r := newDeliveryRecord(d, env)
		if asJSON {
			writeJSON(e.stdout, r)
		} else {
			fmt.Fprintf(e.stdout, "from %s via %d hops (%s): %s\n", r.From, r.Hops, strings.Join(r.Path, " > "), r.Payload)
		}
		if seen++; count > 0 && seen >= count {
			stop()
		}
	})
	if err := m.close(); err != nil {
		return failErr(e, path, err)
	}
	return exitOK
}

// contactLine is one member as 'route lookup' and 'route neighbours'
// print it.
type contactLine struct {
	Address string `json:"address"`
	PeerID  string `json:"peer_id"`
	Addr    string `json:"addr,omitempty"`
	// CommonPrefix is how many leading bits the member's address shares
	// with the target (lookup) or with this member (neighbours).
	CommonPrefix int  `json:"common_prefix_bits"`
	Self         bool `json:"self,omitempty"`
}

func printContacts(w io.Writer, asJSON bool, cs []overlay.Contact, ref overlay.Address, self node.PeerID) {
	for _, c := range cs {
		l := contactLine{Address: c.Address.String(), PeerID: c.PeerID.String(), CommonPrefix: overlay.CommonPrefixLen(c.Address, ref), Self: c.PeerID == self}
		if c.Addr.IsValid() {
			l.Addr = c.Addr.String()
		}
		if asJSON {
			writeJSON(w, l)
			continue
		}
		mark := ""
		if l.Self {
			mark = " (this member)"
		}
		fmt.Fprintf(w, "%s %s %s %d%s\n", l.Address, l.PeerID, l.Addr, l.CommonPrefix, mark)
	}
}

var routeLookupUsage = usage{
	synopsis: "--group SPEC --bootstrap ADDR ADDRHEX",
	about: `
Joins the group and looks up the members nearest the group address ADDRHEX
(64 hex digits), nearest first, one a line:

  ADDRESS PEERID HOST:PORT COMMON-PREFIX-BITS

(JSON lines when stdout is not a terminal). This short-lived member is among
them if its own random address is near enough; it is marked. Exits 0.`,
	examples: []string{
		"strata route lookup --group 'strata:group/demo?routing' --bootstrap 127.0.0.1:1935 9f3a...e1",
	},
}

// routeQuery runs the common part of lookup, neighbours and estimate:
// flags, member start, then query; posArgs is how many positional
// arguments the command takes (0 or 1).
func routeQuery(ctx context.Context, e *env, path string, args []string, u usage, posArgs int,
	extra func(fs *flag.FlagSet), query func(ctx context.Context, m *member, pos []string, asJSON bool) error) int {
	c := memberCmd{usage: u, logLevel: "warn", format: true, flags: extra,
		check: func(pos []string) error {
			switch {
			case len(pos) < posArgs:
				return errors.New("missing ADDRHEX (64 hex digits, a group address)")
			case len(pos) > posArgs:
				return fmt.Errorf("unexpected argument %q", pos[posArgs])
			case posArgs > 0:
				_, err := parseAddress(pos[0])
				return err
			}
			return nil
		},
	}
	a, code, ok := c.parse(ctx, e, path, args)
	if !ok {
		return code
	}
	if len(a.setup.peers) == 0 {
		return usageErr(e, path, "missing --bootstrap ADDR: a member to ask")
	}
	m, err := startMember(ctx, a.setup)
	if err != nil {
		return failErr(e, path, err)
	}
	err = query(ctx, m, a.pos, a.asJSON)
	if cerr := m.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return failErr(e, path, err)
	}
	return exitOK
}

func runRouteLookup(ctx context.Context, e *env, path string, args []string) int {
	return routeQuery(ctx, e, path, args, routeLookupUsage, 1, nil, func(ctx context.Context, m *member, pos []string, asJSON bool) error {
		target, _ := parseAddress(pos[0])
		og := m.groups[0].Overlay()
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cs, err := og.Lookup(lctx, target)
		if err != nil {
			return fmt.Errorf("lookup: %w", err)
		}
		printContacts(e.stdout, asJSON, cs, target, m.n.PeerID())
		return nil
	})
}

var routeNeighboursUsage = usage{
	synopsis: "--group SPEC --bootstrap ADDR [--settle D]",
	about: `
Joins the group, lets the neighbour set form for --settle, and prints the
members this (short-lived) member keeps as neighbours, in the format of
'strata route lookup' (common prefix with this member's own address).
Exits 0; 1 if no neighbour link formed.`,
	examples: []string{
		"strata route neighbours --group 'strata:group/demo?routing' --bootstrap 127.0.0.1:1935",
	},
}

func runRouteNeighbours(ctx context.Context, e *env, path string, args []string) int {
	var settle *time.Duration
	return routeQuery(ctx, e, path, args, routeNeighboursUsage, 0, func(fs *flag.FlagSet) {
		settle = fs.Duration("settle", 2*time.Second, "wait `D` after joining for the neighbour set to form")
	}, func(ctx context.Context, m *member, _ []string, asJSON bool) error {
		g := m.groups[0]
		if err := waitNeighbours(ctx, g, 1, defaultJoinTimeout); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.New("interrupted")
		case <-time.After(*settle):
		}
		printContacts(e.stdout, asJSON, g.Overlay().Neighbours(), g.Overlay().Address(), m.n.PeerID())
		return nil
	})
}

var routeEstimateUsage = usage{
	synopsis: "--group SPEC --bootstrap ADDR",
	about: `
Joins the group (which looks up this member's own address and refreshes
every bucket) and prints the estimate of the group's member count from how
densely the members it met fill the address space, and the size of its
routing table:

  ~N members (table of M contacts)

or {"members_estimate":N,"table_size":M} when stdout is not a terminal.`,
	examples: []string{
		"strata route estimate --group 'strata:group/demo?routing' --bootstrap 127.0.0.1:1935",
	},
}

func runRouteEstimate(ctx context.Context, e *env, path string, args []string) int {
	return routeQuery(ctx, e, path, args, routeEstimateUsage, 0, nil, func(ctx context.Context, m *member, _ []string, asJSON bool) error {
		og := m.groups[0].Overlay()
		est, size := og.EstimateMembers(), og.Table().Size()
		if asJSON {
			return writeJSON(e.stdout, struct {
				Members float64 `json:"members_estimate"`
				Table   int     `json:"table_size"`
			}{est, size})
		}
		_, err := fmt.Fprintf(e.stdout, "~%.0f members (table of %d contacts)\n", est, size)
		return err
	})
}
