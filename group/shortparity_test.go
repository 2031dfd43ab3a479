package group

import (
	"testing"
	"testing/synctest"
)

// A publisher with ShortParity streams at 64 kbit/s (blocks of 2
// fragments) to members with the default setting: they accept its blocks
// of 1 parity piece, output the whole stream, and receive far fewer bytes
// per useful byte than the 3.7 of M=4 parity pieces per short block.
func TestShortParityStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res, src := lowRateStream(t, Config{ShortParity: true})
		if res.missing > 0 {
			t.Errorf("a member misses %.2f%% of the stream", res.missing*100)
		}
		src.mu.Lock()
		st := src.st.enc.Stats()
		src.mu.Unlock()
		t.Logf("%d blocks (%d short), %d parity pieces; members received %.3f bytes per useful byte (mean)", st.Blocks, st.ShortBlocks, st.ParityPieces, res.meanOverhead)
		if st.ShortBlocks < st.Blocks/2 || st.ParityPieces > st.Blocks+st.Blocks/4 {
			t.Errorf("%d of %d blocks short, %d parity pieces: want mostly short blocks of 1 parity piece", st.ShortBlocks, st.Blocks, st.ParityPieces)
		}
		if res.meanOverhead > 2.6 {
			t.Errorf("members received %.3f bytes per useful byte (limit 2.6; about 3.7 with M parity pieces per short block)", res.meanOverhead)
		}
	})
}
