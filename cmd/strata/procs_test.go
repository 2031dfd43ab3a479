package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestManyProcesses streams through a group of separate strata processes
// on 127.0.0.1: one `node` as the seed, STRATA_PROCS-2 `play` members and
// one `publish`, each its own OS process with its own UDP socket. The
// publisher ends the stream at the end of its input; every player must
// exit 0 by itself with a file equal to the input. STRATA_PROCS=100 go
// test ./cmd/strata -run ManyProcesses -v -timeout 30m (skipped without
// the variable; STRATA_PROCS_RATE and STRATA_PROCS_SECONDS set the stream,
// default 32 KiB/s for 20 s; STRATA_PROCS_LOGS keeps the logs).
//
// Each process runs with GOMAXPROCS=1 unless STRATA_PROCS_GOMAXPROCS says
// otherwise ("default" leaves the Go runtime's own choice, one per CPU):
// a hundred processes on two CPUs with two Ps each spend their time waking
// each other's threads (docs/benchmarks.md §7).
func TestManyProcesses(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("STRATA_PROCS"))
	if n < 3 {
		t.Skip("set STRATA_PROCS (at least 3) to run a group of strata processes")
	}
	rate, secs := 32<<10, 20
	if v, err := strconv.Atoi(os.Getenv("STRATA_PROCS_RATE")); err == nil && v > 0 {
		rate = v
	}
	if v, err := strconv.Atoi(os.Getenv("STRATA_PROCS_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "strata")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	spec := "strata:group/procs?multicast"
	logs := []string{"--log-format", "json", "--log-level", "info"}

	type proc struct {
		cmd    *exec.Cmd
		stderr *syncBuffer
		done   chan error
		first  chan string // its first stdout line
	}
	procsEnv := os.Environ()
	switch v := os.Getenv("STRATA_PROCS_GOMAXPROCS"); v {
	case "":
		procsEnv = append(procsEnv, "GOMAXPROCS=1")
	case "default":
		procsEnv = slices.DeleteFunc(procsEnv, func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
	default:
		procsEnv = append(procsEnv, "GOMAXPROCS="+v)
	}
	var procs []*proc
	start := func(args ...string) *proc {
		p := &proc{cmd: exec.Command(bin, args...), stderr: new(syncBuffer), done: make(chan error, 1)}
		p.cmd.Env = procsEnv
		p.cmd.Stderr = p.stderr
		stdout, err := p.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("starting process %d: %v", len(procs), err)
		}
		procs = append(procs, p)
		lines := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			first := true
			for sc.Scan() {
				if first {
					lines <- sc.Text()
					first = false
				}
			}
			close(lines)
			p.done <- p.cmd.Wait()
		}()
		p.first = lines
		return p
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.cmd.Process.Kill() // only the processes this test started
		}
		// STRATA_PROCS_LOGS=dir keeps every process's log (seed, players in
		// order, publisher last) for a look after the run.
		if keep := os.Getenv("STRATA_PROCS_LOGS"); keep != "" {
			if err := os.MkdirAll(keep, 0o755); err != nil {
				t.Errorf("STRATA_PROCS_LOGS: %v", err)
				return
			}
			for i, p := range procs {
				if err := os.WriteFile(filepath.Join(keep, fmt.Sprintf("proc-%03d.log", i)), []byte(p.stderr.String()), 0o644); err != nil {
					t.Errorf("STRATA_PROCS_LOGS: %v", err)
					return
				}
			}
		}
	})

	seed := start(append([]string{"node", "--listen", "127.0.0.1:0", "--group", spec, "--format", "json", "--stats-interval", "0"}, logs...)...)
	var info startInfo
	select {
	case l := <-seed.first:
		if err := json.Unmarshal([]byte(l), &info); err != nil || info.Addr == "" {
			t.Fatalf("seed's first line %q: %v", l, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the seed did not start: %s", seed.stderr)
	}
	boot := info.Addr
	input := make([]byte, rate*secs)
	rand.Read(input)
	inFile := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(inFile, input, 0o600); err != nil {
		t.Fatal(err)
	}
	member := func(args ...string) []string {
		return append(append(args, "--listen", "127.0.0.1:0", "--group", spec, "--bootstrap", boot), logs...)
	}
	players := n - 2
	outs := make([]string, players)
	began := time.Now()
	for i := range players {
		outs[i] = filepath.Join(dir, fmt.Sprintf("out-%03d.bin", i))
		start(member("play", "--out", outs[i], "--duration", fmt.Sprintf("%ds", secs+300), "--idle", "60s")...)
	}
	// Every player joined before the stream starts (a late one would
	// start mid-stream, which is not what this test checks).
	for _, p := range procs[1:] {
		deadline := time.Now().Add(3 * time.Minute)
		for !strings.Contains(p.stderr.String(), `"message":"joined"`) {
			if time.Now().After(deadline) {
				t.Fatalf("a player did not join within 3 min:\n%s", p.stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("%d players joined in %v", players, time.Since(began).Round(time.Millisecond))
	began = time.Now()
	pub := start(member("publish", "--in", inFile, "--rate", strconv.Itoa(rate), "--linger", "10s", "--min-neighbours", "1")...)

	ok := 0
	for i, p := range procs[1 : 1+players] {
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("player %d: %v\n%s", i, err, lastLines(p.stderr.String(), 5))
				continue
			}
		case <-time.After(time.Duration(secs)*time.Second + 5*time.Minute):
			t.Fatalf("player %d did not exit", i)
		}
		got, err := os.ReadFile(outs[i])
		switch {
		case err != nil:
			t.Errorf("player %d: %v", i, err)
		case !bytes.Equal(got, input):
			t.Errorf("player %d wrote %d bytes that differ from the %d published (first difference at %d)", i, len(got), len(input), firstDiff(got, input))
		case !strings.Contains(p.stderr.String(), `"end":"end of stream"`):
			t.Errorf("player %d did not stop at the end of the stream:\n%s", i, lastLines(p.stderr.String(), 3))
		default:
			ok++
		}
	}
	t.Logf("%d of %d players wrote the %d-byte stream byte for byte and exited at its end, %v after the publisher started",
		ok, players, len(input), time.Since(began).Round(time.Millisecond))
	if err := <-pub.done; err != nil {
		t.Errorf("publish: %v\n%s", err, lastLines(pub.stderr.String(), 5))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
