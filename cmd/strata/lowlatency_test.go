package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"testing"

	"github.com/strata-net/strata/group"
)

// --low-latency on a member command (publish, play, node) gives every
// group it joins the latency configuration; without it the defaults stay.
func TestMemberLowLatencyFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--group", "strata:group/lat?multicast"}, false},
		{[]string{"--group", "strata:group/lat?multicast", "--low-latency"}, true},
	} {
		var m memberFlags
		fs := flag.NewFlagSet("play", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		m.register(fs, "", "error", false)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		s, err := m.setup(context.Background(), newEnv(&out, &errb))
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		c := s.groupConfig(group.NewMux(), s.specs[0])
		want := group.Config{}
		if tc.want {
			want = want.LowLatency()
		}
		if c.SourcePushCopies != want.SourcePushCopies || c.PushNeighbourLimit != want.PushNeighbourLimit ||
			c.RelayPushCopies != want.RelayPushCopies || c.EarlyFragments != want.EarlyFragments || c.BackupPushers != want.BackupPushers {
			t.Errorf("%v: config copies %d, classes %d, relay copies %d, early %v, backups %v; want %d, %d, %d, %v, %v", tc.args,
				c.SourcePushCopies, c.PushNeighbourLimit, c.RelayPushCopies, c.EarlyFragments, c.BackupPushers,
				want.SourcePushCopies, want.PushNeighbourLimit, want.RelayPushCopies, want.EarlyFragments, want.BackupPushers)
		}
	}
}
