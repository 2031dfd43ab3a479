// Command strata is the command-line front end of Strata: it runs RTMFP
// endpoints (and, as the project grows, overlay and group nodes) and small
// tools to check them, against each other or against other RTMFP
// implementations.
//
// Usage:
//
//	strata <command> [<subcommand>] [flags] [args]
//
// Run "strata help" for the list of commands.
//
// STRATA_CPUPROFILE=dir makes the process write a CPU profile to
// dir/cpu-<pid>.pprof when the command returns (for `go tool pprof`).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	endProfile := startProfile(os.Getenv("STRATA_CPUPROFILE"))
	code := run(ctx, os.Args[1:], newEnv(os.Stdout, os.Stderr))
	endProfile()
	stop()
	os.Exit(code)
}

// startProfile starts a CPU profile into dir (nothing when dir is empty)
// and returns the function that ends it.
func startProfile(dir string) func() {
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", os.Getpid())))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "strata: STRATA_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
