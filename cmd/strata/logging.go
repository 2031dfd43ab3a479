package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// logFlags are the logging flags every long-running command shares.
type logFlags struct {
	format string
	level  string
}

func (l *logFlags) register(fs *flag.FlagSet, defaultLevel string) {
	fs.StringVar(&l.format, "log-format", "auto", "log format: `auto|console|json` (auto: console on a terminal, JSON otherwise)")
	fs.StringVar(&l.level, "log-level", defaultLevel, "minimum log `level`: trace, debug, info, warn, error or disabled")
}

// logger builds the zerolog logger the flags ask for, writing to e.stderr.
// Each logger has its own level (no zerolog global state is touched).
func (l *logFlags) logger(e *env) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(l.level))
	if err != nil || l.level == "" {
		return zerolog.Nop(), fmt.Errorf("unknown log level %q (want trace, debug, info, warn, error or disabled)", l.level)
	}
	var w io.Writer
	switch l.format {
	case "json":
		w = e.stderr
	case "console":
		w = zerolog.ConsoleWriter{Out: e.stderr, TimeFormat: "15:04:05.000", NoColor: !e.stderrIsTerminal}
	case "auto", "":
		if e.stderrIsTerminal {
			w = zerolog.ConsoleWriter{Out: e.stderr, TimeFormat: "15:04:05.000"}
		} else {
			w = e.stderr
		}
	default:
		return zerolog.Nop(), fmt.Errorf("unknown log format %q (want auto, console or json)", l.format)
	}
	return zerolog.New(w).Level(lvl).Hook(millisTimestamp{}), nil
}

// millisTimestamp stamps each event with millisecond precision. zerolog's
// own Timestamp() uses a package-global format (whole seconds by default),
// and this program keeps away from zerolog's global settings.
type millisTimestamp struct{}

func (millisTimestamp) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().Format("2006-01-02T15:04:05.000Z07:00"))
}

// ms formats a duration as milliseconds with three decimals, the unit of
// every RTT this tool prints.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond))
}
