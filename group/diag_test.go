package group

import (
	"slices"
	"testing"
	"time"
)

// diag logs the four members with the worst median latency and a median
// one: their links, the depth of each push class's pusher, pulls, pusher
// changes and duplicates. In the 200-member run the worst are members that
// joined last and live on pulls (1,000-2,500 pulls and as many duplicates
// against about 100 for the median member).
func (m *mesh) diag(t *testing.T) {
	type row struct {
		i   int
		p50 time.Duration
	}
	var rows []row
	for i, mb := range m.members[1:] {
		rows = append(rows, row{i + 1, mb.g.Stats().LatencyP50})
	}
	if len(rows) == 0 {
		return
	}
	slices.SortFunc(rows, func(a, b row) int { return int(b.p50 - a.p50) })
	// (Clip: appending the median must not overwrite the fifth worst.)
	for _, r := range append(slices.Clip(rows[:min(4, len(rows))]), rows[len(rows)/2]) {
		mb := m.members[r.i]
		st := mb.g.Stats()
		mb.g.mu.Lock()
		var depths []int
		for c, p := range mb.g.st.parents {
			if p == nil {
				depths = append(depths, -1)
			} else {
				depths = append(depths, p.depth[c])
			}
		}
		nl := len(mb.g.links)
		mb.g.mu.Unlock()
		t.Logf("member %d p50 %v p99 %v links %d parents-depth %v pulls %d changes %d shunned %d dups %d ovNeigh %d",
			r.i, st.LatencyP50, st.LatencyP99, nl, depths, st.PullsSent, st.PusherChanges, st.PushersShunned, st.Duplicates, len(mb.g.Overlay().Neighbours()))
	}
}
