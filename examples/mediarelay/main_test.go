package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-net/strata/examples/internal/cli"
)

// TestRelay runs the relay with real processes on 127.0.0.1 (3 s of
// video, 2 players) and checks the files itself: each player's file is
// the input byte for byte and ffprobe finds a video stream in it.
func TestRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and builds strata; skipped with -short")
	}
	ffprobe, err := exec.LookPath("ffprobe")
	if _, err2 := exec.LookPath("ffmpeg"); err != nil || err2 != nil {
		t.Skip("ffmpeg or ffprobe is missing (Debian: apt-get install ffmpeg); the media relay is not tested")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	var out bytes.Buffer
	err = run(ctx, []string{"--seconds", "3", "--players", "2", "--idle", "2s", "--dir", dir, "--timeout", "80s"}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		for _, name := range []string{"seed", "player-1", "player-2", "publish", "ffmpeg"} {
			b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			t.Logf("%s.log:\n%s", name, b)
		}
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "2 of 2 players wrote the input byte for byte, and ffprobe decodes it") {
		t.Error("the report does not say that both players relayed the stream intact")
	}
	input, err := os.ReadFile(filepath.Join(dir, "input.ts"))
	if err != nil {
		t.Fatal(err)
	}
	// 3 s of 320x240 video and sound: tens of kilobytes at least.
	if len(input) < 20000 || len(input)%188 != 0 {
		t.Fatalf("input.ts has %d bytes, want an MPEG-TS stream (188-byte packets) of at least 20000", len(input))
	}
	for i := 1; i <= 2; i++ {
		file := filepath.Join(dir, fmt.Sprintf("player-%d.ts", i))
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, input) {
			t.Errorf("player-%d.ts (%d bytes) differs from input.ts (%d bytes)", i, len(got), len(input))
		}
		b, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", file).CombinedOutput()
		if err != nil || !strings.Contains(string(b), "video") {
			t.Errorf("ffprobe player-%d.ts: %v, output %q (want a video stream)", i, err, b)
		}
	}

	// probe itself rejects what is not media.
	junk := filepath.Join(dir, "junk.ts")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not a transport stream "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if streams, err := probe(ctx, ffprobe, junk); err == nil {
		t.Errorf("probe accepted junk: streams %v", streams)
	}
}

func TestLineWriter(t *testing.T) {
	var lines []string
	var all bytes.Buffer
	w := &lineWriter{w: &all, onLine: func(s string) { lines = append(lines, s) }}
	for _, chunk := range []string{"a", "b\nc", "\n", "\nd\ne", "f"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if want := []string{"ab", "c", "", "d"}; strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", lines, want)
	}
	if all.String() != "ab\nc\n\nd\nef" {
		t.Errorf("passed through %q", all.String())
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--players", "0"},
		{"--players", "17"},
		{"--seconds", "0"},
		{"--idle", "0s"},
		{"extra"},
	} {
		if err := run(context.Background(), args, &bytes.Buffer{}); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%q: error %v, want a usage error", args, err)
		}
	}
}
