package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes shared by every command.
const (
	exitOK    = 0 // the command did what was asked
	exitFail  = 1 // it ran but failed (timeout, mismatch, network error)
	exitUsage = 2 // it was called wrongly (unknown command, bad flag or argument)
)

// env is what a command may touch of the outside world. Tests build one
// around buffers; main builds one around the process's stdout and stderr.
type env struct {
	stdout io.Writer
	stderr io.Writer
	// stderrIsTerminal decides the default log format.
	stderrIsTerminal bool
}

func newEnv(stdout, stderr io.Writer) *env {
	return &env{stdout: stdout, stderr: stderr, stderrIsTerminal: isTerminal(stderr)}
}

// isTerminal reports whether w is a character device (a terminal), without
// anything beyond the standard library.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// command is one node of the command tree: either a group with
// subcommands or a leaf with a run function. New command groups (node,
// publish, play, swarm, route, rendezvous, ...) are added to commands().
type command struct {
	name    string
	summary string
	// run executes a leaf command; path is the full command name
	// ("strata rtmfp ping") for messages.
	run func(ctx context.Context, e *env, path string, args []string) int
	sub []*command
}

// commands is the command tree's root.
func commands() []*command {
	return []*command{
		rtmfpCommand(),
		{name: "demo", summary: "run an echo server and a ping against it in one process", run: runDemo},
		{name: "version", summary: "print the version of this build", run: runVersion},
		{name: "node", summary: "run a long-lived group member (relays streams, logs posts, answers routes)", run: runNode},
		{name: "publish", summary: "publish stdin or a file as a group's stream", run: runPublish},
		{name: "play", summary: "write a group's stream to stdout or a file", run: runPlay},
		{name: "keygen", summary: "make a publisher key pair for publisher=KEY groups", run: runKeygen},
		{name: "post", summary: "post a message to every member of a group", run: runPost},
		{name: "listen", summary: "print the posts of a group", run: runListen},
		routeCommand(),
		{name: "swarm", summary: "run a local swarm carrying a live stream, with a web view", run: runSwarm},
		{name: "rendezvous", summary: "run a rendezvous that introduces group members behind NATs", run: runRendezvous},
	}
}

// run dispatches args to a command and returns the process exit code.
func run(ctx context.Context, args []string, e *env) int {
	return dispatch(ctx, e, "strata", commands(), args)
}

func dispatch(ctx context.Context, e *env, path string, cmds []*command, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(e.stderr, "%s: missing command\n\n", path)
		printCommands(e.stderr, path, cmds)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			// "strata help rtmfp ping" is "strata rtmfp ping --help".
			return dispatch(ctx, e, path, cmds, append(args[1:], "--help"))
		}
		printCommands(e.stdout, path, cmds)
		return exitOK
	}
	for _, c := range cmds {
		if c.name != name {
			continue
		}
		sub := path + " " + c.name
		if c.run != nil {
			return c.run(ctx, e, sub, args[1:])
		}
		return dispatch(ctx, e, sub, c.sub, args[1:])
	}
	fmt.Fprintf(e.stderr, "%s: unknown command %q\n\n", path, name)
	printCommands(e.stderr, path, cmds)
	return exitUsage
}

func printCommands(w io.Writer, path string, cmds []*command) {
	fmt.Fprintf(w, "Usage: %s <command> [flags] [args]\n\nCommands:\n", path)
	sorted := append([]*command(nil), cmds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for details.\n", path)
}

// usage describes a leaf command for --help: what it does and examples.
type usage struct {
	synopsis string // after the command path, e.g. "ADDR [flags]"
	about    string
	examples []string
}

// parseFlags parses args with fs, allowing positional arguments between
// flags ("ping 127.0.0.1:1935 --count 3" as well as "ping --count 3
// 127.0.0.1:1935"). It returns the positional arguments, or an exit code
// when the command must stop: exitOK after --help (usage printed on
// stdout), exitUsage after a flag error (message on stderr).
func parseFlags(e *env, path string, fs *flag.FlagSet, u usage, args []string) ([]string, int, bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printUsage(e.stdout, path, fs, u)
				return nil, exitOK, false
			}
			return nil, usageErr(e, path, "%v", err), false
		}
		rest = fs.Args()
		if len(rest) == 0 {
			return pos, exitOK, true
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), exitOK, true
		}
		pos = append(pos, rest[0])
		rest = rest[1:]
	}
}

// usageErr reports a usage error and returns exitUsage.
func usageErr(e *env, path, format string, a ...any) int {
	fmt.Fprintf(e.stderr, "%s: %s\nRun '%s --help' for usage.\n", path, fmt.Sprintf(format, a...), path)
	return exitUsage
}

// failErr reports a runtime failure and returns exitFail.
func failErr(e *env, path string, err error) int {
	fmt.Fprintf(e.stderr, "%s: %v\n", path, err)
	return exitFail
}

func printUsage(w io.Writer, path string, fs *flag.FlagSet, u usage) {
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n", path, u.synopsis, strings.TrimSpace(u.about))
	fmt.Fprintf(w, "\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if name != "" {
			head += " " + name
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n      %s%s\n", head, help, def)
	})
	if len(u.examples) > 0 {
		fmt.Fprintf(w, "\nExamples:\n")
		for _, ex := range u.examples {
			fmt.Fprintf(w, "  %s\n", ex)
		}
	}
}
