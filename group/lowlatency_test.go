package group

import "testing"

// LowLatency sets the latency configuration's fields, keeps the others,
// and survives withDefaults (5 classes fit the default block).
func TestLowLatencyConfig(t *testing.T) {
	in := Config{K: 8, M: 2, FragmentSize: 1000, ShortParity: true, SourcePushCopies: 3}
	c := in.LowLatency().withDefaults()
	for _, f := range []struct {
		name      string
		got, want int
	}{
		{"SourcePushCopies", c.SourcePushCopies, 8},
		{"PushNeighbourLimit", c.PushNeighbourLimit, 5},
		{"RelayPushCopies", c.RelayPushCopies, 8},
		{"K", c.K, 8},
		{"M", c.M, 2},
		{"FragmentSize", c.FragmentSize, 1000},
	} {
		if f.got != f.want {
			t.Errorf("%s %d, want %d", f.name, f.got, f.want)
		}
	}
	if !c.EarlyFragments || !c.BackupPushers || !c.ShortParity {
		t.Errorf("EarlyFragments %v, BackupPushers %v, ShortParity %v: want all on", c.EarlyFragments, c.BackupPushers, c.ShortParity)
	}
	if d := (Config{}).withDefaults(); d.SourcePushCopies != DefaultSourcePushCopies || d.EarlyFragments {
		t.Errorf("the default Config changed: %d copies, early fragments %v", d.SourcePushCopies, d.EarlyFragments)
	}
}
