package group

import (
	"crypto/ed25519"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/overlay"
)

// Defaults of Config. They follow the spirit of Flash Player's multicast
// settings (window of a few seconds, availability a few times a second,
// pushes spread over a handful of neighbours) scaled to Strata's blocks.
const (
	DefaultWindowDuration           = 4 * time.Second
	DefaultPushNeighbourLimit       = 10
	DefaultAvailabilityUpdatePeriod = 250 * time.Millisecond
	DefaultFetchPeriod              = 150 * time.Millisecond
	DefaultRelayMargin              = 500 * time.Millisecond
	DefaultK                        = 16
	DefaultM                        = 4
	DefaultFragmentSize             = 1024
	DefaultBlockDelay               = 250 * time.Millisecond
	DefaultSourcePushCopies         = 2
	DefaultManifestCarriers         = 2
	DefaultRelayPushCopies          = 4
	DefaultPostTTL                  = 16
	DefaultPostMemory               = 8192
	DefaultQueue                    = 4096
	DefaultLinkQueue                = 2048
	DefaultLatencySamples           = 4096
	DefaultStartMargin              = 8
)

// Config tunes one member of a group. Zero fields take the documented
// defaults; every member of a stream must use the same K, M and
// FragmentSize as the publisher (pieces that do not fit are rejected).
type Config struct {
	// Mux delivers this group's incoming flows: pass Mux.HandleFlow as
	// the host's overlay.HostConfig.OnFlow. Required.
	Mux *Mux
	// Overlay configures the overlay membership under the group.
	Overlay overlay.Config

	// WindowDuration is how long a member keeps a block after it first
	// saw it, relays and pulls its pieces, and waits for it before
	// reporting a gap (default 4 s). It bounds end-to-end latency and
	// memory (window × stream rate).
	WindowDuration time.Duration
	// PushNeighbourLimit is how many neighbours push new pieces to a
	// member: piece i of a block comes from the neighbour for class
	// i mod PushNeighbourLimit, so pushes never duplicate (default 10).
	// With (K+M)/PushNeighbourLimit ≤ M a whole silent pusher is
	// repaired by parity alone; with the defaults, two are. Measured on
	// the virtual clock with 100 members (20-60 ms links, 5 % loss): 5
	// classes left whole classes missing at 60 % of blocks when pulls
	// began (p99 1.2 s, 1.49 bytes received per useful byte); 10 gave
	// p99 0.62 s at 1.40; 20 p99 0.77 s at 1.48 (more pusher churn).
	// At most K+M (and 32). Every member of a group must use the same.
	PushNeighbourLimit int
	// AvailabilityUpdatePeriod is how often a member tells its neighbours
	// which pieces it holds and reconsiders its pushers (default 250 ms).
	AvailabilityUpdatePeriod time.Duration
	// FetchPeriod is how long a member waits for pushes of a block before
	// it pulls missing pieces, and between pull retries (default 150 ms;
	// on the virtual clock, 250 ms gave a p99 of 0.9-1.2 s in the
	// 20-member scenario with 5 push classes, 100 ms 0.24-0.51 s and
	// 150 ms 0.31-0.63 s, at the same overhead; the 200-member scenario
	// was measured with 150 ms).
	FetchPeriod time.Duration
	// RelayMargin stops relaying and pulling a block this long before its
	// window ends, so late data does not load links for nothing
	// (default 500 ms).
	RelayMargin time.Duration
	// K, M and FragmentSize are the FEC parameters: K data fragments of
	// FragmentSize bytes and M parity pieces per block (defaults 16, 4,
	// 1024).
	K, M, FragmentSize int
	// BlockDelay closes a publisher's block that is not full this long
	// after its first byte (default 250 ms; at 1 Mbit/s a block of 16 KiB fills in 131 ms, and a short block pays M parity pieces for fewer data pieces): the publisher's share of
	// latency.
	BlockDelay time.Duration

	// DataLanes is how many data flows carry pushed pieces to one
	// neighbour (default 1, at most 64): piece i goes on lane
	// i mod DataLanes, and manifests for pulls and pulled pieces on one
	// more. A lost message holds up the later messages of its own flow
	// until it is repaired, so lanes confine the delay; but measured on
	// memnet at 5 % loss, many flows in one session cost more than they
	// save (20 lanes: p50 350 ms against 110 ms for one), so one it is.
	DataLanes int

	// ManifestCarriers is how many push classes carry a block's manifest
	// (default 2; PushNeighbourLimit or more: every class). Pieces cannot
	// be checked, relayed or decoded before their manifest arrives, so
	// every relay holds them until it has it; a second carrier makes a
	// slow pusher hold a block up less often, at the price of a second
	// manifest (413 bytes, 2.5 % of a 16 KiB block) per member. In the
	// 200-member CI scenario (5 % loss) two carriers gave p50/p99
	// 304-316/548-606 ms against 404-426/858-1022 ms for one, at the same
	// bytes received per useful byte (1.385-1.387 against 1.387-1.390:
	// fewer blocks wait for pulls). Every class (10) takes the manifest
	// down with the pieces and trims the median by another 11-19 % at
	// about +0.18 bytes received per useful byte (docs/benchmarks.md §6).
	// A short block (closed by BlockDelay or Sync with fewer than K
	// fragments, so fewer pieces than push classes) has its carriers
	// among the classes that hold its pieces.
	ManifestCarriers int

	// ShortParity makes a publisher give a short block (closed by
	// BlockDelay or Sync with k' < K fragments: streams below about
	// K×FragmentSize per BlockDelay, 524 kbit/s by default) ceil(M·k'/K)
	// parity pieces instead of M (fec.Params.ShortParity). At 64 kbit/s
	// and 100 members members received 2.16-2.19 bytes per useful byte
	// instead of 3.71-3.80, with a p99 30-45 % higher (docs/group.md).
	// Members accept both whatever their own setting. Off by default.
	ShortParity bool

	// WholeBlocks makes a subscriber output each block in one record,
	// once the block is complete. By default a block's leading data
	// fragments go out as soon as they are in and verified (fragment i
	// once fragments 0..i are held), before the 16th of its pieces
	// arrives, and the rest when the block is rebuilt
	// (fec.DecoderConfig.Early); the bytes and their order are the same
	// either way. For comparisons (docs/benchmarks.md §6).
	WholeBlocks bool

	// EarlyFragments makes a publisher send each full data fragment
	// (FragmentSize bytes) as soon as it is written, with its own
	// signature, instead of with its block when the block closes; members
	// check the signature, output the fragment at once if it is next and
	// push it on. A byte then does not wait for the rest of its block (up
	// to K fragments or BlockDelay): in the dissemination bench the median
	// latency fell by about a third (docs/group.md "Fragments before their
	// block"). The price: 65 bytes more per fragment on every hop (the
	// signature, stamp and offset; 0.05-0.06 more bytes received per
	// useful byte measured at the default FragmentSize, which takes the
	// mean to the 1.15 × (1 + M/K) the default holds, or over it) and one
	// signature check per fragment at every member. Off by default; members take either.
	EarlyFragments bool

	// AllParity keeps every parity piece pushed to this member. By
	// default a member whose blocks keep completing on time, without a
	// pull and lacking at most two data pieces when their K-th piece
	// comes (16 in a row; with EarlyFragments at the publisher and little
	// loss, nearly all), asks its neighbours to push only each block's
	// first parity piece, and asks for all again at the first block that
	// does not (docs/group.md "Parity sparing").
	AllParity bool

	// BackupPushers has every push class pushed to this member by a
	// second neighbour as well as its pusher: the nearest other one (in
	// delay from the publisher) that is not below this member in the
	// class's tree and is not the publisher (whose upload stays bounded
	// by SourcePushCopies). Each piece is kept from whichever copy comes
	// first, so a piece lost or late on one path usually comes by the
	// other, without a pull or a wait for the block's parity: lower
	// latency under loss, for about twice the bytes received (each piece
	// comes twice). Off by default; members take either (docs/group.md
	// "Backup pushers").
	BackupPushers bool

	// SourcePullShare bounds the pulls the publisher serves, in bytes,
	// to this share of the bytes it published (default 0.1): its upload
	// is the scarcest resource, and members repair from each other.
	SourcePullShare float64
	// RelayPullShare bounds the pulls any other member serves, in bytes,
	// to this share of the bytes it received (default 1): the members
	// nearest the publisher hold pieces first, so early pulls all went to
	// them, and in long 1,000-member runs they served up to 10 × the
	// stream on top of their pushes, which then came late and caused more
	// pulls. A pull it does not serve is asked again of another holder.
	RelayPullShare float64

	// SourcePushCopies bounds the push subscriptions the publisher
	// accepts to this many copies of the stream (default 2), which
	// bounds its upload at about SourcePushCopies × (1+M/K) × rate.
	SourcePushCopies int
	// RelayPushCopies bounds the push subscriptions any other member
	// accepts, in copies of the stream (default 4).
	RelayPushCopies int

	// StartMargin is how many blocks before the first block whose
	// (verified) manifest reaches it a member starts its output at least
	// (default 8, about a second at 1 Mbit/s with the default K); more
	// if the publisher closed more in the last second (small blocks),
	// and the stream's first block if it is younger than that (by the
	// publisher's stamps): a member there when the stream began outputs
	// it from its first byte even if later blocks overtook the first
	// ones, and a member that joins or starts later begins this close to
	// the live edge and catches up on these blocks by pulls from
	// neighbours, which still hold them. Negative means 0. A member that
	// subscribes after its start outputs from the next block it delivers.
	StartMargin int

	// PublisherKey is the private key of the stream's publisher; a member
	// that publishes in a group whose specifier names a publisher key
	// must hold it.
	PublisherKey ed25519.PrivateKey

	// PostTTL is the hop limit of posts (default 16).
	PostTTL int
	// PostMemory is how many recent post IDs are remembered to drop
	// duplicates (default 8192).
	PostMemory int
	// Queue bounds posts and stream records waiting for the application
	// (default 4096 each); more are dropped and counted.
	Queue int
	// LinkQueue bounds messages waiting to be written on one neighbour
	// link (default 2048); more are dropped and counted.
	LinkQueue int
	// LatencySamples bounds the reservoir behind latency percentiles, in
	// fragments output (default 4096).
	LatencySamples int
	// Logger receives structured logs; the zero Logger discards them.
	Logger zerolog.Logger
}

// LowLatency returns c with the latency configuration (docs/group.md "A
// latency configuration"): the publisher pushes 8 copies of the stream
// (SourcePushCopies), the stream is cut into 5 push classes
// (PushNeighbourLimit), other members take up to 8 copies' worth of pushes
// (RelayPushCopies), and EarlyFragments and BackupPushers are on. Without
// loss the median latency is about gossipsub's with 1000-byte messages,
// for about 2.5 bytes received per useful byte and a publisher upload of
// about 10× the stream. Every member of the group should use it (the push
// classes must agree), and when the publisher writes records of a regular
// size every member should set FragmentSize to it (a fragment then leaves
// with its write; in the bench 2-11 ms of median). It is for short links:
// with members 150-200 ms apart and 1 % loss the publisher's 8 copies
// outran its sessions' windows and members lost part of the stream
// (docs/group.md), where the defaults delivered it whole.
func (c Config) LowLatency() Config {
	c.SourcePushCopies = 8
	c.PushNeighbourLimit = 5
	c.RelayPushCopies = 8
	c.EarlyFragments = true
	c.BackupPushers = true
	return c
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defi := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.WindowDuration, DefaultWindowDuration)
	defi(&c.PushNeighbourLimit, DefaultPushNeighbourLimit)
	def(&c.AvailabilityUpdatePeriod, DefaultAvailabilityUpdatePeriod)
	def(&c.FetchPeriod, DefaultFetchPeriod)
	def(&c.RelayMargin, DefaultRelayMargin)
	if c.RelayMargin >= c.WindowDuration {
		c.RelayMargin = c.WindowDuration / 4
	}
	defi(&c.K, DefaultK)
	defi(&c.M, DefaultM)
	defi(&c.FragmentSize, DefaultFragmentSize)
	def(&c.BlockDelay, DefaultBlockDelay)
	defi(&c.DataLanes, 1)
	defi(&c.ManifestCarriers, DefaultManifestCarriers)
	if c.SourcePullShare <= 0 {
		c.SourcePullShare = 0.1
	}
	if c.RelayPullShare <= 0 {
		c.RelayPullShare = 1
	}
	c.DataLanes = min(c.DataLanes, maxLanes)
	defi(&c.SourcePushCopies, DefaultSourcePushCopies)
	defi(&c.RelayPushCopies, DefaultRelayPushCopies)
	defi(&c.PostTTL, DefaultPostTTL)
	if c.PostTTL > 255 {
		c.PostTTL = 255
	}
	defi(&c.PostMemory, DefaultPostMemory)
	defi(&c.Queue, DefaultQueue)
	defi(&c.LinkQueue, DefaultLinkQueue)
	defi(&c.LatencySamples, DefaultLatencySamples)
	switch {
	case c.StartMargin == 0:
		c.StartMargin = DefaultStartMargin
	case c.StartMargin < 0:
		c.StartMargin = 0
	}
	// No more classes than a block has pieces: a class no piece falls
	// in would carry nothing, and its pushers, never seen fresh in it,
	// would be changed all the time (TestClassesWithinBlock).
	c.PushNeighbourLimit = min(c.PushNeighbourLimit, maxClasses, c.K+c.M)
	return c
}
