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
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], newEnv(os.Stdout, os.Stderr))
	stop()
	os.Exit(code)
}
