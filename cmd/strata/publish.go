package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/strata-net/strata/group"
)

var publishUsage = usage{
	synopsis: "--group SPEC [--bootstrap ADDR[,ADDR]] [--in FILE] [--key FILE] [--rate BYTES] [--short-parity] [--early-fragments] [--linger D]",
	about: `
Joins the group as its publisher and publishes stdin (or --in FILE) as the
group's stream, paced to at most --rate bytes a second. When the input
ends it sends the last block at once and ends the stream (players exit once
they have written every byte), and stays --linger, so that members can
still fetch the tail from it, then leaves and exits 0. SIGINT or SIGTERM
stops reading, and the command leaves at once (exit 0).

Before it publishes it waits (within --join-timeout) for --min-neighbours
neighbour links, or the first bytes would go nowhere; without --bootstrap it
is the group's first member and waits for others to join through it.

The group's specifier must allow multicast. If it names a publisher key
(publisher=KEY), --key must hold the matching private key (see
'strata keygen'); every block is then signed and members drop anything
else. Members run 'strata play' (or 'strata node' to relay only).
Progress is shown on stderr when it is a terminal; a summary is logged at
the end.`,
	examples: []string{
		"strata publish --group 'strata:group/demo?multicast' --bootstrap 127.0.0.1:1935 < video.ts",
		"ffmpeg -re -i in.mp4 -c copy -f mpegts - | strata publish --group 'strata:group/demo?multicast' --bootstrap 127.0.0.1:1935 --rate 0",
		"strata publish --key publisher.key --group \"strata:group/tv?multicast&publisher=$KEY\" --bootstrap 127.0.0.1:1935 --in video.ts",
	},
}

// publishChunk is how much publish reads and writes at once: one block of
// the default FEC parameters.
const publishChunk = group.DefaultK * group.DefaultFragmentSize

// minPublishChunk is the least publish reads at once when --rate paces it.
const minPublishChunk = 512

func runPublish(ctx context.Context, e *env, path string, args []string) int {
	var in, keyPath *string
	var linger *time.Duration
	var minNb *int
	var shortParity, earlyFragments *bool
	rate := sizeFlag{n: 1 << 20}
	c := memberCmd{usage: publishUsage, logLevel: "info", needs: "multicast",
		flags: func(fs *flag.FlagSet) {
			in = fs.String("in", "-", "read the stream from `FILE` (-: stdin)")
			keyPath = fs.String("key", "", "`FILE` with the publisher's Ed25519 private key, for a group whose specifier names publisher=KEY")
			fs.Var(&rate, "rate", "publish at most `BYTES` per second, e.g. 250K or 2M (0: as fast as the input comes, for a live source); a whole file at once overruns the members' window")
			linger = fs.Duration("linger", 5*time.Second, "after the input ends, stay `D` so members can fetch the tail")
			minNb = fs.Int("min-neighbours", 1, "wait for `N` neighbour links before publishing (0: publish at once)")
			shortParity = fs.Bool("short-parity", false, "give blocks closed short (streams under about 64K bytes a second) parity in proportion to their data, not 4 pieces each: fewer bytes, a longer latency tail")
			earlyFragments = fs.Bool("early-fragments", false, "send each full 1024-byte fragment, signed, as soon as it is read, not with its block: a third less latency, about 4 % more bytes received")
		},
		check: func(pos []string) error {
			if err := noArgs(" (the input goes in --in FILE, or on stdin)")(pos); err != nil {
				return err
			}
			return nonNegative("linger", linger, "min-neighbours", minNb)
		},
	}
	a, code, ok := c.parse(ctx, e, path, args)
	if !ok {
		return code
	}
	s := a.setup
	sp := s.specs[0]
	switch {
	case len(sp.PublisherKey) > 0 && *keyPath == "":
		return usageErr(e, path, "the group names a publisher key: give its private key with --key FILE")
	case len(sp.PublisherKey) == 0 && *keyPath != "":
		return usageErr(e, path, "--key given, but the group's specifier names no publisher key: add publisher=KEY (printed by 'strata keygen') or drop --key")
	case *keyPath != "":
		priv, err := loadPrivateKey(*keyPath)
		if err != nil {
			return usageErr(e, path, "--key: %v", err)
		}
		if !priv.Public().(ed25519.PublicKey).Equal(sp.PublisherKey) {
			return usageErr(e, path, "--key %s is not the group's publisher key %s", *keyPath, base64.RawURLEncoding.EncodeToString(sp.PublisherKey))
		}
		s.publisherKey = priv
	}
	s.shortParity = *shortParity
	s.earlyFragments = *earlyFragments
	input, err := openInput(*in)
	if err != nil {
		return failErr(e, path, err)
	}
	defer input.Close()

	m, err := startMember(ctx, s)
	if err != nil {
		return failErr(e, path, err)
	}
	defer m.close()
	g := m.groups[0]
	if *minNb > 0 {
		if err := waitNeighbours(ctx, g, *minNb, s.joinTimeout); err != nil {
			return failErr(e, path, err)
		}
	}
	pub, err := g.Publish()
	if err != nil {
		return failErr(e, path, fmt.Errorf("publishing: %w", err))
	}
	prog := startProgress(e, "published", func() string { return fmt.Sprintf("%d neighbours", g.Stats().Neighbours) })
	err = publishStream(ctx, pub, input, rate.n, *earlyFragments, prog)
	interrupted := ctx.Err() != nil
	if err == nil && !interrupted {
		pub.Close() // the end of the input ends the stream: players exit
	} else {
		pub.Sync()
	}
	prog.end()
	if err != nil && !interrupted {
		return failErr(e, path, err)
	}
	s.log.Info().Int64("bytes", prog.bytes()).Dur("took", time.Since(prog.start)).Bool("interrupted", interrupted).Msg("input published")
	if !interrupted && *linger > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(*linger):
		}
	}
	st := g.Stats()
	s.log.Info().Uint64("bytes_published", st.BytesPublished).Uint64("bytes_sent", st.Sent.Total()).
		Uint64("parity_sent", st.Sent.Parity).Uint64("pulls_served", st.PullsServed).Int("neighbours", st.Neighbours).Msg("leaving")
	return exitOK
}

// openInput opens FILE, or stdin for "-".
func openInput(name string) (io.ReadCloser, error) {
	if name == "-" || name == "" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(name)
}

// publishStream copies in to pub, paced to rate bytes a second (0: no
// pacing), until in ends or ctx does. Reads happen in a goroutine so a
// blocked read (stdin) does not delay the reaction to ctx; it ends with
// the input (the caller closes a file; stdin ends with the process).
func publishStream(ctx context.Context, pub *group.Publisher, in io.Reader, rate int64, early bool, prog *progress) error {
	type chunk struct {
		b   []byte
		err error
	}
	chunks := make(chan chunk, 4)
	stop := make(chan struct{})
	defer close(stop)
	// At a low --rate, an eighth of a second's worth at a time: a whole
	// block at once every few seconds would reach the members in bursts.
	// With early fragments, a sixty-fourth: a fragment goes out as soon
	// as it is full, so a byte should not wait in a large read first.
	size := publishChunk
	if rate > 0 {
		per := int64(8)
		if early {
			per = 64
		}
		size = int(min(max(rate/per, minPublishChunk), int64(publishChunk)))
	}
	go func() {
		for {
			b := make([]byte, size)
			// Read, not ReadFull: a live source's bytes go out as they
			// come (the publisher closes blocks after BlockDelay).
			n, err := in.Read(b)
			select {
			case chunks <- chunk{b[:n], err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	start := time.Now()
	var sent int64
	for {
		var c chunk
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c = <-chunks:
		}
		if len(c.b) > 0 {
			if _, err := pub.Write(ctx, c.b); err != nil {
				return fmt.Errorf("publishing: %w", err)
			}
			sent += int64(len(c.b))
			prog.add(len(c.b))
			if rate > 0 {
				due := start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Until(due)):
				}
			}
		}
		if errors.Is(c.err, io.EOF) {
			return nil
		}
		if c.err != nil {
			return fmt.Errorf("reading the input: %w", c.err)
		}
	}
}
