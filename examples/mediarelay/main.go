// Command mediarelay relays live media through a group of real strata
// processes on 127.0.0.1: it builds the strata command, starts a seed
// (strata node) and players (strata play, each writing a file), and pipes
// an MPEG-TS stream that ffmpeg makes in real time into strata publish.
// Then it checks that every player's file is the input byte for byte and
// that ffprobe decodes it.
//
//	go run ./examples/mediarelay
//	go run ./examples/mediarelay --players 4 --seconds 10 --dir /tmp/relay
//
// It needs ffmpeg and ffprobe (Debian: apt-get install ffmpeg).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/strata-net/strata/examples/internal/cli"
)

func main() {
	cli.Main("mediarelay", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Stdout) })
}

// errNoFFmpeg means ffmpeg or ffprobe is not installed.
var errNoFFmpeg = errors.New("ffmpeg and ffprobe are needed (Debian: apt-get install ffmpeg)")

// spec is the group the stream goes through.
const spec = "strata:group/example-mediarelay?multicast"

// options of one run.
type options struct {
	players int
	seconds int
	dir     string // work directory; "" for a temporary one, removed at the end
	strata  string // a strata binary; "" to build one
	idle    time.Duration
	timeout time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("mediarelay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.players, "players", 2, "strata play processes (1..16)")
	fs.IntVar(&o.seconds, "seconds", 5, "seconds of video and sound ffmpeg makes, in real time (1..600)")
	fs.StringVar(&o.dir, "dir", "", "keep the files (input.ts, player-N.ts, logs, the strata binary) in this directory; default: a temporary one, removed")
	fs.StringVar(&o.strata, "strata", "", "the strata binary to run; default: build it with go build")
	fs.DurationVar(&o.idle, "idle", 3*time.Second, "players stop this long after the last data (strata play --idle)")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "stop everything and fail after this long")
	if err := cli.Parse(fs, args); err != nil {
		return o, err
	}
	bad := func(format string, a ...any) (options, error) {
		return o, cli.Usagef(stderr, "mediarelay", format, a...)
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected argument %q", fs.Arg(0))
	case o.players < 1 || o.players > 16:
		return bad("--players %d: want 1..16", o.players)
	case o.seconds < 1 || o.seconds > 600:
		return bad("--seconds %d: want 1..600", o.seconds)
	case o.idle <= 0 || o.timeout <= 0:
		return bad("--idle and --timeout must be positive")
	}
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	ffmpeg, err1 := exec.LookPath("ffmpeg")
	ffprobe, err2 := exec.LookPath("ffprobe")
	if err1 != nil || err2 != nil {
		return errNoFFmpeg
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mediarelay-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bin := o.strata
	if bin == "" {
		bin = filepath.Join(dir, "strata")
		t0 := time.Now()
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/strata-net/strata/cmd/strata")
		if b, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/strata: %v\n%s", err, b)
		}
		fmt.Fprintf(out, "built strata in %v\n", time.Since(t0).Round(100*time.Millisecond))
	}

	var procs processes
	defer procs.stopAll()

	// The seed: the first member; everyone else meets the group through
	// it. It says where it listens on its first line of stdout.
	listening := make(chan string, 1)
	seed, err := procs.start(ctx, dir, "seed", bin, []string{"node", "--listen", "127.0.0.1:0", "--group", spec,
		"--format", "json", "--stats-interval", "0", "--log-format", "json"}, nil,
		func(line string) {
			var ev struct{ Event, Addr string }
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Event == "listening" {
				select {
				case listening <- ev.Addr:
				default:
				}
			}
		}, nil)
	if err != nil {
		return err
	}
	var seedAddr string
	select {
	case seedAddr = <-listening:
	case <-seed.done:
		return fmt.Errorf("the seed exited: %v (log: %s)", seed.err, seed.log)
	case <-ctx.Done():
		return fmt.Errorf("the seed did not say where it listens: %w", ctx.Err())
	}
	fmt.Fprintf(out, "seed      strata node     pid %d listening %s\n", seed.cmd.Process.Pid, seedAddr)

	// The players subscribe before they meet the group, so those that
	// have joined when the publisher starts get the stream from byte 0.
	players := make([]*process, o.players)
	summaries := make([]map[string]any, o.players)
	joined := make(chan int, o.players)
	var summaryMu sync.Mutex
	for i := range players {
		name := fmt.Sprintf("player-%d", i+1)
		players[i], err = procs.start(ctx, dir, name, bin, []string{"play", "--group", spec, "--bootstrap", seedAddr,
			"--out", filepath.Join(dir, name+".ts"), "--idle", o.idle.String(), "--duration", o.timeout.String(),
			"--log-format", "json"}, nil, nil,
			func(line string) {
				var ev map[string]any
				if json.Unmarshal([]byte(line), &ev) != nil {
					return
				}
				switch ev["message"] {
				case "joined":
					select {
					case joined <- i:
					default:
					}
				case "played":
					summaryMu.Lock()
					summaries[i] = ev
					summaryMu.Unlock()
				}
			})
		if err != nil {
			return err
		}
	}
	for range players {
		select {
		case i := <-joined:
			fmt.Fprintf(out, "player-%d  strata play     pid %d joined\n", i+1, players[i].cmd.Process.Pid)
		case <-ctx.Done():
			return fmt.Errorf("the players did not all join: %w", ctx.Err())
		}
	}

	// The publisher reads what ffmpeg makes, as ffmpeg makes it (-re:
	// in real time, as a camera would); --rate 0 because the source
	// paces itself. A copy goes to input.ts for the comparison.
	input, err := os.Create(filepath.Join(dir, "input.ts"))
	if err != nil {
		return err
	}
	defer input.Close()
	publish, err := procs.prepare(ctx, dir, "publish", bin, []string{"publish", "--group", spec, "--bootstrap", seedAddr,
		"--rate", "0", "--linger", "2s", "--log-format", "json"}, nil, nil, nil)
	if err != nil {
		return err
	}
	pubIn, err := publish.cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := procs.launch(publish); err != nil {
		return err
	}
	video, codecs := videoArgs(ctx, ffmpeg)
	ffArgs := []string{"-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(o.seconds)}
	ffArgs = append(append(ffArgs, video...), "-f", "mpegts", "-")
	enc, err := procs.start(ctx, dir, "ffmpeg", ffmpeg, ffArgs, io.MultiWriter(input, pubIn), nil, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "publish   strata publish  pid %d, reading ffmpeg pid %d (%s MPEG-TS, 320x240, %d s in real time)\n",
		publish.cmd.Process.Pid, enc.cmd.Process.Pid, codecs, o.seconds)
	<-enc.done
	pubIn.Close()
	if enc.err != nil {
		return fmt.Errorf("ffmpeg: %v (log: %s)", enc.err, enc.log)
	}
	<-publish.done
	if publish.err != nil {
		return fmt.Errorf("strata publish: %v (log: %s)", publish.err, publish.log)
	}
	for i, p := range players {
		<-p.done
		if p.err != nil {
			return fmt.Errorf("player-%d: %v (log: %s)", i+1, p.err, p.log)
		}
	}
	procs.stopAll()
	if seed.err != nil {
		return fmt.Errorf("the seed did not stop cleanly: %v (log: %s)", seed.err, seed.log)
	}

	want, err := os.ReadFile(input.Name())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "input     %d bytes\n", len(want))
	good := 0
	for i := range players {
		name := fmt.Sprintf("player-%d", i+1)
		got, err := os.ReadFile(filepath.Join(dir, name+".ts"))
		if err != nil {
			return err
		}
		same := "identical to the input"
		if !bytes.Equal(got, want) {
			same = "DIFFERENT from the input"
		}
		streams, perr := probe(ctx, ffprobe, filepath.Join(dir, name+".ts"))
		decoded := "ffprobe: " + strings.Join(streams, ", ")
		if perr != nil {
			decoded = "ffprobe FAILED: " + perr.Error()
		}
		fmt.Fprintf(out, "%-9s %d bytes, %s; %s; %s\n", name, len(got), same, decoded, playSummary(summaries[i]))
		if bytes.Equal(got, want) && perr == nil {
			good++
		}
	}
	fmt.Fprintf(out, "%d of %d players wrote the input byte for byte, and ffprobe decodes it\n", good, len(players))
	if len(want) == 0 {
		return fmt.Errorf("ffmpeg made no data")
	}
	if good != len(players) {
		return fmt.Errorf("%d of %d players did not relay the stream intact (files and logs in %s)", len(players)-good, len(players), dir)
	}
	return nil
}

// videoArgs are ffmpeg's encoding options: H.264 and AAC when ffmpeg has
// libx264, else MPEG-2 video and MPEG-1 layer II audio, which every build
// has.
func videoArgs(ctx context.Context, ffmpeg string) (args []string, codecs string) {
	b, _ := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-encoders").Output()
	if bytes.Contains(b, []byte(" libx264 ")) {
		return []string{"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac"}, "H.264 + AAC"
	}
	return []string{"-c:v", "mpeg2video", "-g", "25", "-c:a", "mp2"}, "MPEG-2 + MP2"
}

// probe runs ffprobe on file and returns its streams ("video h264", ...);
// an error if ffprobe fails or finds no video stream.
func probe(ctx context.Context, ffprobe, file string) ([]string, error) {
	cmd := exec.CommandContext(ctx, ffprobe, "-v", "error", "-show_entries", "stream=index,codec_type,codec_name", "-of", "csv=p=0", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	// A stream is listed again under its program: "index,name,type"
	// lines are kept once per index.
	var streams []string
	seen := make(map[string]bool)
	video := false
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(strings.TrimSpace(l), ",")
		if len(f) != 3 || seen[f[0]] {
			continue
		}
		seen[f[0]] = true
		streams = append(streams, f[2]+" "+f[1])
		video = video || f[2] == "video"
	}
	if !video {
		return streams, fmt.Errorf("no video stream (streams: %v)", streams)
	}
	return streams, nil
}

// playSummary is the gist of strata play's last log line.
func playSummary(ev map[string]any) string {
	if ev == nil {
		return "no summary from strata play"
	}
	return fmt.Sprintf("play stopped at %v, gaps %v, latency p50 %vms p99 %vms",
		ev["end"], ev["gaps"], roundMS(ev["latency_p50"]), roundMS(ev["latency_p99"]))
}

func roundMS(v any) any {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return v
}

// process is one child process, its stderr going to a log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string // the stderr log file
	done chan struct{}
	err  error // Wait's result, once done is closed
}

// processes are the children of one run: each is started with a context
// whose end sends it SIGTERM (by PID), and is killed if it has not exited
// 5 s later (strata closes its sessions within 3 s).
type processes struct {
	mu   sync.Mutex
	list []*process
}

// prepare makes a process that is not started yet. stdout (if not nil)
// receives its stdout; onOut and onErr (if not nil) each line of stdout
// and stderr.
func (ps *processes) prepare(ctx context.Context, dir, name, path string, args []string, stdout io.Writer, onOut, onErr func(string)) (*process, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stderr = &lineWriter{w: logf, onLine: onErr}
	switch {
	case stdout != nil:
		cmd.Stdout = stdout
	case onOut != nil:
		cmd.Stdout = &lineWriter{w: io.Discard, onLine: onOut}
	}
	return &process{name: name, cmd: cmd, log: logf.Name(), done: make(chan struct{})}, nil
}

// launch starts p and a goroutine that waits for it.
func (ps *processes) launch(p *process) error {
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		if f, ok := p.cmd.Stderr.(*lineWriter).w.(*os.File); ok {
			f.Close()
		}
		close(p.done)
	}()
	return nil
}

// start is prepare and launch.
func (ps *processes) start(ctx context.Context, dir, name, path string, args []string, stdout io.Writer, onOut, onErr func(string)) (*process, error) {
	p, err := ps.prepare(ctx, dir, name, path, args, stdout, onOut, onErr)
	if err != nil {
		return nil, err
	}
	return p, ps.launch(p)
}

// stopAll sends SIGTERM to every child still running, and waits for them
// (each is killed 5 s after its SIGTERM at the latest).
func (ps *processes) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.mu.Unlock()
	for _, p := range list {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range list {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// lineWriter passes what is written to w and each complete line to
// onLine.
type lineWriter struct {
	w      io.Writer
	onLine func(string)
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	if l.onLine != nil {
		l.buf = append(l.buf, p...)
		for {
			i := bytes.IndexByte(l.buf, '\n')
			if i < 0 {
				break
			}
			l.onLine(string(l.buf[:i]))
			l.buf = l.buf[i+1:]
		}
	}
	return l.w.Write(p)
}
