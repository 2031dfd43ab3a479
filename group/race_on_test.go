//go:build race

package group

// raceEnabled: the race detector slows real time several fold, so
// wall-clock latency bounds are looser under it (the exact target is
// asserted by a run without -race in .ci/run).
const raceEnabled = true
