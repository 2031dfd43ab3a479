package main

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-net/strata/examples/internal/cli"
	"github.com/strata-net/strata/overlay"
)

// TestRun routes to random and given addresses and checks every message's
// lines: delivered to the true nearest, a path from the sender to the
// receiver, hops = path length - 1.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"--nodes", "16", "--k", "4", "--count", "10", "--to", "00", "--to", "ffff", "--from", "2", "--seed", "5"}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "12 of 12 messages reached the member nearest their address") {
		t.Error("the summary does not say 12 of 12")
	}
	msg := regexp.MustCompile(`#(\d+) to ([0-9a-f]{16})… from member (\d+)\n` +
		`   received by member (\d+) \(address [0-9a-f]{16}…, \d+ leading bits in common with the target\)\n` +
		`   the true nearest: (.*?); (\d+) hops: ([\d >]+); `)
	ms := msg.FindAllStringSubmatch(got, -1)
	if len(ms) != 12 {
		t.Fatalf("%d messages reported, want 12", len(ms))
	}
	for _, m := range ms {
		if m[3] != "2" {
			t.Errorf("message %s sent from member %s, want 2 (--from)", m[1], m[3])
		}
		if m[5] != "yes" {
			t.Errorf("message %s: true nearest %q", m[1], m[5])
		}
		path := strings.Split(m[7], " > ")
		hops, _ := strconv.Atoi(m[6])
		if len(path) != hops+1 || path[0] != m[3] || path[len(path)-1] != m[4] {
			t.Errorf("message %s: path %q with %d hops from %s to %s", m[1], m[7], hops, m[3], m[4])
		}
	}
	if ms[0][2] != "0000000000000000" || ms[1][2] != "ffff000000000000" {
		t.Errorf("the given targets are reported as %s and %s", ms[0][2], ms[1][2])
	}
}

func TestNearestOf(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randAddr := func() overlay.Address {
		var a overlay.Address
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		return a
	}
	for range 200 {
		addrs := make([]overlay.Address, 1+r.IntN(30))
		for i := range addrs {
			addrs[i] = randAddr()
		}
		target := randAddr()
		if r.IntN(4) == 0 {
			target = addrs[r.IntN(len(addrs))]
		}
		got := nearestOf(addrs, target)
		// By brute force: the smallest XOR distance as a big-endian number.
		want := 0
		for i := range addrs {
			di, dw := overlay.Xor(addrs[i], target), overlay.Xor(addrs[want], target)
			if bytes.Compare(di[:], dw[:]) < 0 {
				want = i
			}
		}
		if got != want {
			t.Fatalf("nearestOf = %d, want %d", got, want)
		}
	}
}

func TestParseAddress(t *testing.T) {
	full := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		in, want string // want: hex of the address, "" for an error
	}{
		{full, full},
		{"ff", "ff" + strings.Repeat("0", 62)},
		{"abc", "abc" + strings.Repeat("0", 61)},
		{"ABC", "abc" + strings.Repeat("0", 61)},
		{"", ""},
		{full + "0", ""},
		{"xyz", ""},
	} {
		a, err := parseAddress(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%q: no error", tc.in)
		case tc.want != "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.want != "" && a.String() != tc.want:
			t.Errorf("%q: %s, want %s", tc.in, a, tc.want)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "1"},
		{"--count", "0"},
		{"--from", "24"},
		{"--k", "0"},
		{"--to", "zz"},
		{"extra"},
	} {
		if err := run(context.Background(), args, &bytes.Buffer{}); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%q: error %v, want a usage error", args, err)
		}
	}
}
