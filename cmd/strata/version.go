package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the release version; "dev" unless set at build time with
// -ldflags "-X main.version=v0.1.0".
var version = "dev"

func runVersion(ctx context.Context, e *env, path string, args []string) int {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	pos, code, ok := parseFlags(e, path, fs, usage{about: "Prints the version, the VCS revision it was built from (if known) and the Go version."}, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageErr(e, path, "unexpected argument %q", pos[0])
	}
	fmt.Fprintf(e.stdout, "strata %s%s %s\n", version, buildRevision(), runtime.Version())
	return exitOK
}

// buildRevision is " (rev abcdef123456[+dirty])" when the binary was built
// from a VCS checkout, else "".
func buildRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return " (rev " + rev + dirty + ")"
}
