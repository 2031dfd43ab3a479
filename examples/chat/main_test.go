package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-net/strata/examples/internal/cli"
)

// TestDemo runs --demo and checks that every chatter heard every line of
// the others, and no line of its own.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"--demo", "--room", "demo-test"}, strings.NewReader(""), &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, l := range demoScript {
		for _, hearer := range []string{"alice", "bob", "carol"} {
			want := fmt.Sprintf("[%s] %s: %s\n", hearer, l.Name, l.Text)
			n := strings.Count(got, want)
			if hearer == l.Name && n != 0 {
				t.Errorf("%s heard its own line %q", hearer, l.Text)
			}
			if hearer != l.Name && n != 1 {
				t.Errorf("%q appears %d times, want once", want, n)
			}
		}
	}
	if !strings.Contains(got, "* 3 chatters said 4 lines and heard 8 of the 8 they should\n") {
		t.Error("the summary is missing or wrong")
	}
}

// TestChat runs two interactive chatters over UDP on 127.0.0.1, types a
// line into each, and checks that the other prints it.
func TestChat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	type chatRun struct {
		in  *io.PipeWriter
		out *syncBuffer
		err chan error
	}
	start := func(args ...string) chatRun {
		r, w := io.Pipe()
		c := chatRun{in: w, out: &syncBuffer{}, err: make(chan error, 1)}
		go func() {
			c.err <- run(ctx, append(args, "--room", "chat-test", "--linger", "300ms"), r, c.out)
			r.Close()
		}()
		return c
	}
	waitFor := func(c chatRun, re string) []string {
		t.Helper()
		rx := regexp.MustCompile(re)
		for {
			if m := rx.FindStringSubmatch(c.out.String()); m != nil {
				return m
			}
			select {
			case err := <-c.err:
				t.Fatalf("the chatter stopped (%v) before printing %q; output:\n%s", err, re, c.out.String())
			case <-ctx.Done():
				t.Fatalf("no %q in time; output:\n%s", re, c.out.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	alice := start("--name", "alice")
	addr := waitFor(alice, `listening (127\.0\.0\.1:\d+);`)[1]
	bob := start("--name", "bob", "--bootstrap", addr)
	waitFor(alice, `(?m)^\* linked to 1 members$`)
	waitFor(bob, `(?m)^\* linked to 1 members$`)

	fmt.Fprintln(alice.in, "hello from alice")
	waitFor(bob, `(?m)^alice: hello from alice$`)
	fmt.Fprintln(bob.in, "  hi alice  ")
	waitFor(alice, `(?m)^bob: hi alice$`)

	// The end of input ends the chatter (after --linger), with no error.
	alice.in.Close()
	if err := <-alice.err; err != nil {
		t.Errorf("alice: %v", err)
	}
	bob.in.Close()
	if err := <-bob.err; err != nil {
		t.Errorf("bob: %v", err)
	}
	if strings.Contains(alice.out.String(), "alice: hello") {
		t.Errorf("alice's own line was printed back to her:\n%s", alice.out.String())
	}
}

func TestParsePeer(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in   string
		addr string
		id   bool
		ok   bool
	}{
		{"127.0.0.1:7000", "127.0.0.1:7000", false, true},
		{"[::1]:7000", "[::1]:7000", false, true},
		{id + "@127.0.0.1:7000", "127.0.0.1:7000", true, true},
		{"127.0.0.1:0", "", false, false},
		{"127.0.0.1", "", false, false},
		{"localhost:7000", "", false, false},
		{"zz@127.0.0.1:7000", "", false, false},
	} {
		p, err := parsePeer(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: error %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if p.Addr.String() != tc.addr {
			t.Errorf("%q: address %v, want %s", tc.in, p.Addr, tc.addr)
		}
		if tc.id && p.PeerID.String() != id {
			t.Errorf("%q: peer ID %v, want %s", tc.in, p.PeerID, id)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{},                                  // no --name
		{"--name", "a", "extra"},            // an argument
		{"--name", "a", "--bootstrap", "x"}, // a bad address
		{"--name", "a", "--room", ""},       // an empty room
		{"--bogus"},
	} {
		err := run(context.Background(), args, strings.NewReader(""), io.Discard)
		if !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%q: error %v, want a usage error", args, err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
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
