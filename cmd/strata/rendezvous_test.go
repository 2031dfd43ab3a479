package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A rendezvous, a listener that knows only the rendezvous and a post that
// knows only the rendezvous: the poster meets the listener through it
// (over UDP on 127.0.0.1) and the post arrives; the rendezvous counts the
// registrations and stops with exit 0.
func TestRendezvousCommand(t *testing.T) {
	rdv := startBg(t, "rendezvous", "--listen", "127.0.0.1:0", "--stats-interval", "0", "--log-level", "warn")
	var start struct {
		Event, Addr, PeerID string
	}
	if l := rdv.line(t, 10*time.Second); json.Unmarshal([]byte(l), &start) != nil || start.Event != "listening" || start.Addr == "" {
		t.Fatalf("rendezvous start line %q", l)
	}
	spec := "strata:group/rdv-test?posting"
	listener := startBg(t, "listen", "--rendezvous", start.Addr, "--group", spec, "--count", "1", "--format", "json", "--log-level", "warn")
	readStart(t, listener, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code, _, stderr := runArgs(ctx, "post", "--rendezvous", start.Addr, "--group", spec, "--linger", "300ms", "met", "through", "the", "rendezvous"); code != exitOK {
		t.Fatalf("post exited %d: %s", code, stderr)
	}
	var post postLine
	if l := listener.line(t, 10*time.Second); json.Unmarshal([]byte(l), &post) != nil || post.Payload != "met through the rendezvous" {
		t.Fatalf("listen printed %q, want the post", l)
	}
	if code := rdv.stop(t); code != exitOK {
		t.Fatalf("rendezvous exited %d: %s", code, rdv.stderr)
	}
	var stopped struct {
		Event         string
		Registrations int
		Members       int
	}
	var last string
	for l := range rdv.lines {
		last = l
	}
	if json.Unmarshal([]byte(last), &stopped) != nil || stopped.Event != "stopped" || stopped.Registrations < 2 {
		t.Fatalf("rendezvous' last line %q: want a stopped event with at least 2 registrations", last)
	}
}

func TestRendezvousUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rendezvous", "somewhere"}, "goes in --listen"},
		{[]string{"rendezvous", "--stats-interval", "-1s"}, "--stats-interval"},
		{[]string{"listen", "--group", "strata:group/x?posting", "--rendezvous", "nowhere"}, "--rendezvous"},
	} {
		code, _, stderr := runArgs(context.Background(), tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}
