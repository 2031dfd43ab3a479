package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/strata-net/strata/group"
)

var postUsage = usage{
	synopsis: "--group SPEC --bootstrap ADDR [--linger D] MESSAGE...",
	about: `
Joins the group, waits for a neighbour link, posts MESSAGE (the arguments
joined by spaces) to every member, waits --linger for the post to leave,
and exits 0. Posting is best effort: members that are not linked yet miss
the post. Members print posts with 'strata listen'; 'strata node' logs them.
The group's specifier must allow posting (option 'posting'); a post holds at
most 8 KiB.`,
	examples: []string{
		"strata post --group 'strata:group/demo?posting' --bootstrap 127.0.0.1:1935 hello everyone",
	},
}

func runPost(ctx context.Context, e *env, path string, args []string) int {
	var linger *time.Duration
	c := memberCmd{usage: postUsage, logLevel: "warn", needs: "posting",
		flags: func(fs *flag.FlagSet) {
			linger = fs.Duration("linger", time.Second, "stay `D` after posting so the post reaches the neighbours before this member leaves")
		},
		check: func(pos []string) error {
			msg := strings.Join(pos, " ")
			switch {
			case len(pos) == 0:
				return fmt.Errorf("missing MESSAGE (e.g. %s --group SPEC --bootstrap ADDR hello)", path)
			case len(msg) > group.MaxPostSize:
				return fmt.Errorf("message of %d bytes: a post holds at most %d", len(msg), group.MaxPostSize)
			}
			return nonNegative("linger", linger)
		},
	}
	a, code, ok := c.parse(ctx, e, path, args)
	if !ok {
		return code
	}
	s, msg := a.setup, strings.Join(a.pos, " ")
	m, err := startMember(ctx, s)
	if err != nil {
		return failErr(e, path, err)
	}
	defer m.close()
	g := m.groups[0]
	if err := waitNeighbours(ctx, g, 1, s.joinTimeout); err != nil {
		return failErr(e, path, err)
	}
	if err := g.Post(ctx, []byte(msg)); err != nil {
		return failErr(e, path, fmt.Errorf("posting: %w", err))
	}
	s.log.Info().Int("neighbours", g.Stats().Neighbours).Int("bytes", len(msg)).Msg("posted")
	select {
	case <-ctx.Done():
	case <-time.After(*linger):
	}
	return exitOK
}

var listenUsage = usage{
	synopsis: "--group SPEC [--bootstrap ADDR] [--count N]",
	about: `
Joins the group and prints every post it receives, one a line, until
interrupted (or --count posts). Text output (a terminal):

  listening ADDR / peer-id HEX / group ID address ADDRHEX SPEC
  from PEERID: MESSAGE

JSON lines otherwise: {"event":"listening",...}, then one
{"event":"post","id":HEX,"from":PEERID,"payload":MESSAGE} per post. "from" is
the neighbour that passed the post on (posts are not signed). A payload that
is not printable UTF-8 is shown Go-quoted. The group's specifier must allow
posting. Exits 0.`,
	examples: []string{
		"strata listen --group 'strata:group/demo?posting' --bootstrap 127.0.0.1:1935",
		"strata listen --group 'strata:group/demo?posting' --bootstrap 127.0.0.1:1935 --count 1 --format json",
	},
}

// postLine is one post as 'listen' prints it.
type postLine struct {
	Event   string `json:"event"` // "post"
	ID      string `json:"id"`
	From    string `json:"from"`
	Payload string `json:"payload"`
}

func runListen(ctx context.Context, e *env, path string, args []string) int {
	m, asJSON, count, code, ok := startListener(ctx, e, path, args, listenUsage, "posting")
	if !ok {
		return code
	}
	g := m.groups[0]
	for seen := 0; count == 0 || seen < count; seen++ {
		p, err := g.ReceivePost(ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				m.close()
				return failErr(e, path, err)
			}
			break
		}
		l := postLine{Event: "post", ID: hex.EncodeToString(p.ID[:]), From: p.From.String(), Payload: printable(p.Payload)}
		if asJSON {
			writeJSON(e.stdout, l)
		} else {
			fmt.Fprintf(e.stdout, "from %s: %s\n", l.From, l.Payload)
		}
	}
	if err := m.close(); err != nil {
		return failErr(e, path, err)
	}
	return exitOK
}

// printable returns b as a string if it is UTF-8 without control
// characters (tabs allowed), else Go-quoted, so a message cannot mess up a
// terminal or a line-oriented reader.
func printable(b []byte) string {
	if utf8.Valid(b) && strings.IndexFunc(string(b), func(r rune) bool { return r != '\t' && unicode.IsControl(r) }) < 0 {
		return string(b)
	}
	return strconv.Quote(string(b))
}

// startListener is the start of 'listen' and 'route listen' (no
// arguments, --count, --format): it parses args, starts the member and
// prints where it listens. When ok is false the command returns code.
func startListener(ctx context.Context, e *env, path string, args []string, u usage, needs string) (m *member, asJSON bool, count int, code int, ok bool) {
	c := memberCmd{usage: u, logLevel: "warn", format: true, needs: needs,
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&count, "count", 0, "exit after `N` messages (0: run until interrupted)")
		},
		check: func(pos []string) error {
			if err := noArgs("")(pos); err != nil {
				return err
			}
			return nonNegative("count", &count)
		},
	}
	a, code, ok := c.parse(ctx, e, path, args)
	if !ok {
		return nil, false, 0, code, false
	}
	m, err := startMember(ctx, a.setup)
	if err != nil {
		return nil, false, 0, failErr(e, path, err), false
	}
	printMemberStart(e.stdout, a.asJSON, m)
	return m, a.asJSON, count, exitOK, true
}
