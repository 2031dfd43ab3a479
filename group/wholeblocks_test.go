package group

import (
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// By default a subscriber outputs a block's first data fragments as they
// come, before the block is complete (fec.DecoderConfig.Early); with
// Config.WholeBlocks each block goes out in one record. The output is the
// same stream either way (the harness checks every byte), and the
// latency samples are per fragment in both.
func TestBlocksOutputInParts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		whole bool
	}{
		{"in parts", false},
		{"whole blocks", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res result
			runVirtual(t, func(t *testing.T) {
				res = partsScenario(Config{WholeBlocks: tc.whole}).run(t)
			})
			t.Logf("%.2f fragments per data record; latency p50 %v p99 %v", res.perRecord, res.poolP50, res.poolP99)
			switch {
			case tc.whole && res.perRecord < 15:
				// Every block but the last is 16 fragments.
				t.Errorf("%.2f fragments per record with WholeBlocks, want whole blocks (16)", res.perRecord)
			case !tc.whole && res.perRecord > 8:
				t.Errorf("%.2f fragments per record: blocks do not go out in parts", res.perRecord)
			}
		})
	}
}

// partsScenario is the stream of TestBlocksOutputInParts: 12 members, 2 %
// loss, 1 Mbit/s for 3.2 s, with cfg.
func partsScenario(cfg Config) streamScenario {
	return streamScenario{
		members:  12,
		link:     memnet.Link{Delay: 10 * time.Millisecond, Jitter: 20 * time.Millisecond, Loss: 0.02},
		bytes:    400_000,
		rate:     125_000,
		drain:    6 * time.Second,
		deadline: 40 * time.Second,
		cfg:      cfg,
	}
}
