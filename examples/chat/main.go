// Command chat is a group chat over posting: every line typed is posted
// to a posting group and flooded to every member; every member prints the
// posts of the others.
//
//	go run ./examples/chat --listen 127.0.0.1:7000 --name alice
//	go run ./examples/chat --bootstrap 127.0.0.1:7000 --name bob
//	go run ./examples/chat --demo
//
// --demo runs three chatters in this process on 127.0.0.1, lets them
// exchange a few lines and exits.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/strata-net/strata/examples/internal/cli"
	"github.com/strata-net/strata/group"
	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/overlay"
)

func main() {
	cli.Main("chat", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Stdin, os.Stdout) })
}

// options of one run.
type options struct {
	listen    string
	bootstrap []overlay.Peer
	name      string
	room      string
	demo      bool
	linger    time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "UDP address to listen on (port 0 picks a free port)")
	fs.Func("bootstrap", "a member to join through: IP:PORT, or PEERID@IP:PORT to accept only that peer; may repeat or be a comma-separated list (omit it on the first member)", func(s string) error {
		for _, a := range strings.Split(s, ",") {
			p, err := parsePeer(strings.TrimSpace(a))
			if err != nil {
				return err
			}
			o.bootstrap = append(o.bootstrap, p)
		}
		return nil
	})
	fs.StringVar(&o.name, "name", "", "your name, shown with your lines (required, except with --demo)")
	fs.StringVar(&o.room, "room", "chat", "the room: the posting group strata:group/ROOM?posting")
	fs.BoolVar(&o.demo, "demo", false, "run three chatters in this process, let them talk, exit")
	fs.DurationVar(&o.linger, "linger", time.Second, "after the end of input, stay this long so the last line leaves")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: chat --name NAME [--listen ADDR] [--bootstrap ADDR] [--room ROOM]\n       chat --demo\n\n"+
			"Posts every line of stdin to the room and prints the others' lines.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args); err != nil {
		return o, err
	}
	bad := func(format string, a ...any) (options, error) {
		return o, cli.Usagef(stderr, "chat", format, a...)
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q (lines to post come on stdin)", fs.Arg(0))
	}
	if !o.demo && o.name == "" {
		return bad("--name is required (or --demo)")
	}
	if _, err := group.ParseSpecifier("strata:group/" + o.room + "?posting"); err != nil {
		return bad("--room %q: %v", o.room, err)
	}
	return o, nil
}

// parsePeer reads IP:PORT or PEERID@IP:PORT.
func parsePeer(s string) (overlay.Peer, error) {
	var p overlay.Peer
	if id, addr, ok := strings.Cut(s, "@"); ok {
		pid, err := node.ParsePeerID(id)
		if err != nil {
			return p, fmt.Errorf("peer ID %q: %v", id, err)
		}
		p.PeerID = pid
		s = addr
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return p, fmt.Errorf("%q: want IP:PORT such as 127.0.0.1:7000", s)
	}
	p.Addr = ap
	return p, nil
}

func run(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	w := &lockedWriter{w: out}
	if o.demo {
		return demo(ctx, o.room, w)
	}
	return chat(ctx, o, in, w)
}

// line is what a chatter posts: its name and the text.
type line struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

// chatter is one member of the room.
type chatter struct {
	name string
	n    *node.Node
	h    *overlay.Host
	g    *group.Group
}

// join starts a node on listen and joins the room's posting group (the
// meeting with other members is Bootstrap's).
func join(name, listen, room string) (*chatter, error) {
	spec, err := group.ParseSpecifier("strata:group/" + room + "?posting")
	if err != nil {
		return nil, err
	}
	n, err := node.Listen(listen, node.Config{})
	if err != nil {
		return nil, err
	}
	// Posts travel on the group's own flows: the host hands them to the
	// group's multiplexer.
	mux := group.NewMux()
	h := overlay.NewHost(n, overlay.HostConfig{OnFlow: mux.HandleFlow})
	g, err := group.Join(h, spec, group.Config{Mux: mux})
	if err != nil {
		h.Close()
		n.Close(context.Background())
		return nil, err
	}
	return &chatter{name: name, n: n, h: h, g: g}, nil
}

// close leaves the room (the neighbours are told) and stops the node.
func (c *chatter) close() {
	c.g.Close()
	c.h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	c.n.Close(ctx)
	cancel()
}

// say posts one line to the room.
func (c *chatter) say(ctx context.Context, text string) error {
	b, err := json.Marshal(line{Name: c.name, Text: text})
	if err != nil {
		return err
	}
	return c.g.Post(ctx, b)
}

// hear waits for the next post and returns who said what. Posts that are
// not chat lines (from 'strata post', say) are shown as they are, from the
// neighbour that passed them on: posts are not signed.
func (c *chatter) hear(ctx context.Context) (line, error) {
	p, err := c.g.ReceivePost(ctx)
	if err != nil {
		return line{}, err
	}
	var l line
	if json.Unmarshal(p.Payload, &l) != nil || l.Name == "" {
		l = line{Name: "peer " + p.From.String()[:8], Text: string(p.Payload)}
	}
	return l, nil
}

// chat is the interactive mode: stdin lines are posted, the others' lines
// printed, until stdin ends or ctx is cancelled.
func chat(ctx context.Context, o options, in io.Reader, out *lockedWriter) error {
	c, err := join(o.name, o.listen, o.room)
	if err != nil {
		return err
	}
	defer c.close()
	self := c.h.Self()
	out.printf("* %s in room %q, listening %s; others join with --bootstrap %s\n",
		o.name, o.room, self.Addr, self.Addr)
	if len(o.bootstrap) > 0 {
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.g.Bootstrap(jctx, o.bootstrap...)
		cancel()
		if err != nil {
			return fmt.Errorf("could not join through %v: %w", o.bootstrap[0].Addr, err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			l, err := c.hear(ctx)
			if err != nil {
				return
			}
			out.printf("%s: %s\n", l.Name, l.Text)
		}
	}()
	// A line when the number of members linked to changes, so the user
	// knows whether anyone will read what they type.
	go func() {
		defer wg.Done()
		last := 0
		for cli.Sleep(ctx, 200*time.Millisecond) == nil {
			if n := c.g.Stats().Neighbours; n != last {
				out.printf("* linked to %d members\n", n)
				last = n
			}
		}
	}()

	lines := make(chan string)
	readErr := make(chan error, 1)
	// The reader is not stopped by ctx (a read of stdin cannot be
	// interrupted); it ends with the input, or with the process.
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			// The end of input: stay a moment so the last line leaves.
			_ = cli.Sleep(ctx, o.linger)
			return err
		case text := <-lines:
			text = strings.TrimSpace(text)
			if text == "" {
				continue
			}
			if c.g.Stats().Neighbours == 0 {
				out.printf("* nobody is linked yet: this line reaches no one\n")
			}
			if err := c.say(ctx, text); err != nil {
				return fmt.Errorf("post: %w", err)
			}
		}
	}
}

// demoScript is the demo's conversation: each line is said once everyone
// has heard the lines before it.
var demoScript = []line{
	{"alice", "hi, anyone here?"},
	{"bob", "bob here, hello alice"},
	{"carol", "carol too; this room is a group of three"},
	{"alice", "bye for now"},
}

// demo runs three chatters on 127.0.0.1 in this process: alice first,
// bob and carol join through her, and they say demoScript.
func demo(ctx context.Context, room string, out *lockedWriter) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	names := []string{"alice", "bob", "carol"}
	chatters := make(map[string]*chatter)
	defer func() {
		var wg sync.WaitGroup
		for _, c := range chatters {
			wg.Add(1)
			go func() { defer wg.Done(); c.close() }()
		}
		wg.Wait()
	}()
	for _, name := range names {
		c, err := join(name, "127.0.0.1:0", room)
		if err != nil {
			return err
		}
		chatters[name] = c
		out.printf("* %s listening %s\n", name, c.h.Self().Addr)
	}
	seed := chatters["alice"].h.Self()
	for _, name := range names[1:] {
		if err := chatters[name].g.Bootstrap(ctx, seed); err != nil {
			return fmt.Errorf("%s could not join through alice: %w", name, err)
		}
	}
	// Posts reach the members linked at the time: wait until everyone
	// is linked to both others.
	for _, name := range names {
		for chatters[name].g.Stats().Neighbours < len(names)-1 {
			if err := cli.Sleep(ctx, 20*time.Millisecond); err != nil {
				return fmt.Errorf("%s is linked to %d of %d members: %w", name, chatters[name].g.Stats().Neighbours, len(names)-1, err)
			}
		}
	}
	out.printf("* all linked\n")

	var mu sync.Mutex
	heard := make(map[string]int) // lines heard, per chatter
	var wg sync.WaitGroup
	rctx, stopHearing := context.WithCancel(ctx)
	defer func() { stopHearing(); wg.Wait() }()
	for _, name := range names {
		c := chatters[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				l, err := c.hear(rctx)
				if err != nil {
					return
				}
				out.printf("[%s] %s: %s\n", c.name, l.Name, l.Text)
				mu.Lock()
				heard[c.name]++
				mu.Unlock()
			}
		}()
	}
	// want[name] is how many lines name should have heard after the
	// first i lines of the script.
	want := make(map[string]int)
	waitHeard := func() error {
		for {
			mu.Lock()
			done := true
			for _, name := range names {
				if heard[name] < want[name] {
					done = false
				}
			}
			mu.Unlock()
			if done {
				return nil
			}
			if err := cli.Sleep(ctx, 20*time.Millisecond); err != nil {
				mu.Lock()
				defer mu.Unlock()
				return fmt.Errorf("lines heard %v, want %v: %w", heard, want, err)
			}
		}
	}
	total := 0
	for _, l := range demoScript {
		if err := waitHeard(); err != nil {
			return err
		}
		if err := chatters[l.Name].say(ctx, l.Text); err != nil {
			return err
		}
		for _, name := range names {
			if name != l.Name {
				want[name]++
				total++
			}
		}
	}
	if err := waitHeard(); err != nil {
		return err
	}
	mu.Lock()
	got := 0
	for _, n := range heard {
		got += n
	}
	mu.Unlock()
	out.printf("* %d chatters said %d lines and heard %d of the %d they should\n", len(names), len(demoScript), got, total)
	return nil
}

// lockedWriter serialises the output of several goroutines, line by line.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, a...)
}
