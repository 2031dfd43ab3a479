package group

import (
	"slices"
	"time"
)

// Traffic counts bytes of group messages (RTMFP message payloads) by
// purpose.
type Traffic struct {
	Push    uint64 // data pieces pushed
	Pull    uint64 // data pieces pulled
	Parity  uint64 // parity pieces, pushed or pulled
	Control uint64 // availability, subscriptions, pull requests, manifests, posts
}

// Total is the sum of all purposes.
func (t Traffic) Total() uint64 { return t.Push + t.Pull + t.Parity + t.Control }

// Stats are one member's counters since it joined, and measures of its
// stream output.
type Stats struct {
	// Neighbours is the number of neighbour links now.
	Neighbours int
	// Sent and Received count message bytes by purpose.
	Sent, Received Traffic

	// BytesPublished counts stream bytes this member published.
	BytesPublished uint64
	// BytesOut counts stream bytes output in order; BytesLost the bytes
	// of blocks given up on (reported as gaps) before the latest output.
	BytesOut, BytesLost uint64
	// BlocksOut and BlocksLost count blocks output and given up on.
	BlocksOut, BlocksLost uint64
	// Restarts counts the publisher's restarts this member followed (a
	// new run of the stream; see Record.Restarted).
	Restarts uint64
	// LatencyP50 and LatencyP99 are percentiles of the time from the
	// publisher's stamp on a block (or on a fragment sent before its
	// block closed) to the output here of each of its data fragments (a block output in parts has several), over a
	// bounded random sample of fragments (LatencySamples of them).
	LatencyP50, LatencyP99 time.Duration
	LatencySamples         int

	// Pieces: stored (verified and new), duplicates (already held),
	// rebuilt locally from parity, and refused as old or out of range.
	Pieces, Duplicates, Reconstructed, OutOfWindow uint64
	// ForgedDropped counts manifests with a bad signature and pieces that
	// do not match their signed manifest; Banned the bans of neighbours:
	// for good for forged data, for a while (30 s, doubling with each
	// repeat) for the misbehaviour below.
	ForgedDropped, Banned uint64
	// MalformedDropped counts undecodable or invalid messages;
	// FloodDropped availability maps beyond a neighbour's allowance (a few
	// per AvailabilityUpdatePeriod). A neighbour that keeps sending either
	// is banned (Banned).
	MalformedDropped, FloodDropped uint64
	// QueueDropped counts messages not sent because a link's queue was
	// full; StaleDropped those whose deadline passed in the queue.
	QueueDropped, StaleDropped uint64
	// EarlyRelayed counts pieces relayed before their block's manifest
	// arrived: pieces pushed by the publisher's own node (its node proven
	// by the publisher's signature), which need no check to be genuine,
	// and fragments sent before their block closed (Config.EarlyFragments,
	// each checked by its own signature).
	EarlyRelayed uint64
	// EarlyFragments counts data fragments taken before their block's
	// manifest, checked by the publisher's signature on each: the
	// publisher sends full fragments as they fill (Config.EarlyFragments),
	// and they go out here before their block is complete.
	EarlyFragments uint64
	// PushesSkipped counts pushed pieces not sent because the neighbour
	// said it holds the whole block (it rebuilt it) before they left, or
	// because it asked for only the first parity piece of each block
	// (ParitySparing).
	PushesSkipped uint64
	// ParitySparing counts the times this member asked its neighbours to
	// push it only the first parity piece of each block: its blocks had
	// kept completing on time, without pulls, lacking at most two data
	// pieces at completion (Config.EarlyFragments at the publisher,
	// little loss; Config.AllParity). It asks for every piece again at
	// the first block that did not.
	ParitySparing uint64
	// PusherChanges counts push classes moved to another neighbour;
	// PushersShunned the pushers dropped for being late or for pushing
	// nothing of a class they took on; Withholding counts the latter.
	PusherChanges, PushersShunned, Withholding uint64
	// BackupClasses is how many push classes have a backup pusher now
	// (Config.BackupPushers), of PushNeighbourLimit.
	BackupClasses int
	// PusherTriesRefused counts pusher changes that did not happen: the
	// neighbour asked to take a class refused it, and the class stayed
	// with its pusher, which kept pushing while the neighbour was asked.
	PusherTriesRefused uint64
	// WithheldPieces counts pieces a pusher advertised holding while this
	// member lacked them and never pushed; a pusher that withholds most
	// of what it owes is banned (Banned).
	WithheldPieces uint64
	// PullsSent counts pull requests; PullsServed pieces sent for pulls.
	PullsSent, PullsServed uint64
	// PullsRefused counts pull requests not served because this member's
	// share was spent (SourcePullShare for the publisher, RelayPullShare
	// for the others); each is answered busy. PullsBusy counts the busy
	// answers this member got (it asks another holder).
	PullsRefused, PullsBusy uint64
	// ManifestsPastShare counts manifests sent for pulls past that share:
	// to a neighbour that asked again for one it was refused (once per
	// neighbour and block; the manifest may be nowhere else).
	ManifestsPastShare uint64
	// PullsUnanswered counts pieces asked for that did not come within
	// two fetch periods; the neighbour asked is then asked after the
	// others for a second.
	PullsUnanswered uint64
	// OutputDropped counts stream records the application did not read
	// in time (queue full).
	OutputDropped uint64

	// Posting.
	PostsSent, PostsReceived, PostDuplicates, PostsDropped uint64
}

// DeliveryRatio is BytesOut over the bytes that should have been output
// by now (BytesOut + BytesLost); 1 when nothing was due.
func (s Stats) DeliveryRatio() float64 {
	if s.BytesOut+s.BytesLost == 0 {
		return 1
	}
	return float64(s.BytesOut) / float64(s.BytesOut+s.BytesLost)
}

// reservoir keeps a uniform random sample of at most limit
// durations out of all those offered.
type reservoir struct {
	samples []time.Duration // grows to limit
	limit   int
	seen    uint64
	sorted  bool // samples are in order
}

func (r *reservoir) add(d time.Duration, rnd func(uint64) uint64) {
	r.seen++
	if len(r.samples) < r.limit {
		r.samples = append(r.samples, d)
		r.sorted = false
		return
	}
	if j := rnd(r.seen); j < uint64(len(r.samples)) {
		r.samples[j] = d
		r.sorted = false
	}
}

// percentile returns the q-quantile (0..1) of the sample. It sorts the
// samples in place: which one a later sample replaces is drawn at random
// anyway, so their order does not matter.
func (r *reservoir) percentile(q float64) time.Duration {
	if len(r.samples) == 0 {
		return 0
	}
	if !r.sorted {
		slices.Sort(r.samples)
		r.sorted = true
	}
	i := int(q * float64(len(r.samples)-1))
	return r.samples[i]
}
