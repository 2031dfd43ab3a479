package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-net/strata/examples/internal/cli"
)

// TestRun runs a short swarm and checks the report: every member output
// the whole stream, byte for byte.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"--nodes", "8", "--duration", "1s", "--rate", "32768", "--seed", "7"}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "7 of 7 members output the whole stream byte for byte") {
		t.Error("the summary does not say that all 7 subscribers got the whole stream")
	}
	lines := regexp.MustCompile(`(?m)^member +\d+: +32768 bytes intact,`).FindAllString(out.String(), -1)
	if len(lines) != 7 {
		t.Errorf("%d member lines report 32768 intact bytes, want 7", len(lines))
	}
}

func TestVerdict(t *testing.T) {
	stream := []byte("0123456789")
	for _, tc := range []struct {
		name, got, want string
	}{
		{"equal", "0123456789", "intact"},
		{"short", "01234", "INCOMPLETE (5 bytes missing)"},
		{"empty", "", "INCOMPLETE (10 bytes missing)"},
		{"changed", "0123X56789", "DIFFERENT from the stream"},
		{"long", "0123456789a", "DIFFERENT from the stream"},
		{"hole", "012789", "DIFFERENT from the stream"},
	} {
		if got := verdict([]byte(tc.got), stream); got != tc.want {
			t.Errorf("%s: verdict %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "1"},
		{"--nodes", "201"},
		{"--loss", "100%"},
		{"--loss", "x"},
		{"--duration", "0s"},
		{"--bogus"},
		{"extra"},
	} {
		err := run(context.Background(), args, &bytes.Buffer{})
		if !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%q: error %v, want a usage error", args, err)
		}
	}
}
