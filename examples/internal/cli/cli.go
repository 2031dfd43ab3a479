// Package cli is the command-line plumbing the examples share, so that
// each example's main.go shows the strata API rather than exit codes.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ErrUsage marks a bad command line; the reason has been printed.
var ErrUsage = errors.New("usage error")

// Main runs run with a context that SIGINT and SIGTERM cancel, and exits
// 0 when it returns nil (or after --help), 2 on ErrUsage, 1 on any other
// error, which it prints.
func Main(name string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, ErrUsage):
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Parse parses args into fs (which must be ContinueOnError) and maps a
// parse failure to ErrUsage; flag.ErrHelp passes through.
func Parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return ErrUsage
	}
	return err
}

// Usagef prints "name: message" to w and returns ErrUsage.
func Usagef(w io.Writer, name, format string, a ...any) error {
	fmt.Fprintf(w, name+": "+format+"\n", a...)
	return ErrUsage
}

// Sleep waits d or until ctx ends, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
