package group

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/strata-net/strata/fec"
	"github.com/strata-net/strata/node"
)

// sourcePullFloor is how many blocks' worth of pulls the publisher serves
// whatever its SourcePullShare allows.
const sourcePullFloor = 4

// maxAhead bounds how far past the oldest undelivered block a piece or
// advertisement may name a block, which bounds the blocks a neighbour can
// make a member track.
const maxAhead = 256

// A block's number carries the run of the stream it belongs to: a
// publisher numbers its blocks from run<<runShift, run being the time it
// started publishing in units of runUnit. A publisher that restarts with
// the same key therefore numbers its blocks above everything it sent
// before, without knowing what that was, and members that see a verified
// manifest of a later run follow it (stream.restart). A run holds up to
// 2^28 blocks (a year at 8 blocks a second).
const (
	runShift = 28
	runUnit  = time.Second / 8
)

func runOf(seq uint64) uint64 { return seq >> runShift }

// startSpan is the least stretch of stream a member starts behind its
// first verified manifest (startFor), beyond Config.StartMargin blocks: a
// second, plus runUnit since a run's start is known only to that.
const startSpan = time.Second + runUnit

// startFor is where a member whose first verified manifest (or fragment)
// is of block seq, stamped by the publisher at stamp (Unix ns), starts its
// output: StartMargin blocks earlier, or as many as the publisher closed
// in the last startSpan if that is more, but not before its run's first
// block. The blocks closed in the last startSpan are estimated from the
// run's mean: the run began at runOf(seq)·runUnit on the publisher's
// clock, the stamp is on the same clock, so the run's age needs no clock
// of this member's. With tiny blocks (K=4 at 1 Mbit/s, 30 a second) a
// member there when the stream began whose first manifest came 300 ms in
// started at the second block with the 8-block margin alone. The margin
// stays under maxAhead/4, so that seq and the blocks after it are in
// range.
func (s *stream) startFor(seq uint64, stamp int64) uint64 {
	off := seq & (1<<runShift - 1)
	margin := uint64(s.g.cfg.StartMargin)
	age := stamp - int64(runOf(seq))*int64(runUnit)
	switch {
	case age <= int64(startSpan):
		margin = max(margin, off) // the run is younger: all of it
	default:
		margin = max(margin, off*uint64(startSpan)/uint64(age))
	}
	return seq - min(off, margin, maxAhead/4)
}

// runStart is the first block of a run starting at now.
func runStart(now time.Time) uint64 { return uint64(now.UnixNano()/int64(runUnit)) << runShift }

// ErrStreamTooLong is returned by Publisher.Write once the stream has
// used up its run's block numbers.
var ErrStreamTooLong = errors.New("group: the stream reached its block limit (2^28 blocks)")

// block is one FEC block in a member's window.
type block struct {
	seq    uint64
	sm     *signedManifest // nil until a verified manifest arrives
	pieces [][]byte        // pieces' data by index, nil if not held (piece)
	// The shards of the pieces received or rebuilt here, by index, as
	// the decoder lays them out (length prefix, data, zero padding; a
	// parity piece is its shard): pieces[i] lies in it, so a rebuild
	// copies nothing. Nil for a block published here.
	slab      []byte
	have      []byte // bitmap of held pieces
	count     int
	pending   []pendingPiece // pieces received before the manifest
	fragHave  []byte         // bitmap of the fragments (p.K 0) among them
	fragStamp []int64        // and their publisher's stamps, by index
	// fragsOnly: only fragments sent before the block closed are known
	// of it (no piece, manifest or advertisement): it is not pulled yet,
	// and first is set by the first other sign of it.
	fragsOnly  bool
	pendFrom   *link
	first      time.Time // first evidence of the block here
	firstPiece time.Time // first piece of it here
	deadline   time.Time // last moment to relay or pull it
	expire     time.Time // end of its window
	rebuilt    bool
	// made: the pieces rebuilt here (with Config.BackupPushers only:
	// pushers are not owed them, see owe).
	made []byte
	// gotAt: when each piece held here was stored, in Unix nanoseconds
	// (with Config.BackupPushers only: see owe).
	gotAt    []int64
	nextPull time.Time // next manifest pull
	// A push class of it changed pusher while it was short of pieces:
	// from switchPull on, the pieces of switchClasses it lacks are pulled
	// without waiting for the fetch period (switchedPusher).
	switchPull    time.Time
	switchClasses uint32
	asked         []time.Time // when each piece was last pulled
	askedOf       []*link     // and of whom
	pulls         int         // pull requests sent for it
	busy          int         // of them answered busy
	asks          []ask       // the first pull requests for it (diagnostics)
	// Neighbours this member pushed pieces of it to before its manifest
	// came (relay), with the classes pushed (a bit each): those sent a
	// carrier class get the manifest from us once it comes.
	earlyTo map[*link]uint32
	// Pull requests for it that came before its manifest (handlePull):
	// answered when the manifest comes, not dropped, since the askers
	// learnt of the block from pieces we relayed before it.
	deferred []deferredPull
	// Neighbours refused its manifest past our pull share (handlePull):
	// asked again, we send it anyway, once each.
	manifestRefused []*link
}

// piece is piece i of b as received (b's manifest is known): pieces are
// kept as their data only, the header being the manifest's (Verify
// checked it).
func (b *block) piece(i int) fec.Piece {
	mf := b.sm.Manifest
	return fec.Piece{Block: mf.Block, Offset: mf.Offset, K: mf.K, M: mf.M, Index: i, ShardSize: mf.ShardSize, Data: b.pieces[i]}
}

// deferredPull is a pull request waiting for its block's manifest.
type deferredPull struct {
	l *link
	c control
}

// maxDeferred bounds the pull requests one block keeps waiting for its
// manifest (one per neighbour; the later are dropped, and retried by
// their askers).
const maxDeferred = 16

// ask is one pull request: to whom, when (diagnostics).
type ask struct {
	l  *link
	at time.Time
}

const maxAsks = 16

type pendingPiece struct {
	p    fec.Piece
	from *link
}

// Reasons a class lost or changed its pusher (stream.why).
const (
	whyRefused = iota // the pusher refused the class
	whyGone           // its link closed
	whySilent         // shunned: silent while advertising the class
	whyLate           // shunned: much later than the other pushers
	whyFill           // a class without pusher got one
	whyStale          // the pusher fell 4 blocks behind the freshest
	whyDeeper         // another neighbour is nearer the publisher (switchMargin)
	whyReasons
)

// stream is a member's share of the group's multicast stream. All fields
// are guarded by the group's mutex.
type stream struct {
	g      *Group
	params fec.Params
	P      int

	blocks map[uint64]*block
	low    uint64 // blocks below are forgotten
	dec    *fec.Decoder
	// Slabs of forgotten blocks, for new ones (at most maxSpareSlabs):
	// blocks come as fast as they are forgotten.
	slabs [][]byte

	// Where a member that is not the publisher starts (see anchor):
	// anchored once a verified manifest fixed the start block, feeding
	// once the decoder was given the start block's first piece.
	anchored, feeding bool
	start             uint64

	parents []*link // per class: the neighbour asked to push it
	// backup, per class: the second neighbour asked to push it
	// (Config.BackupPushers), never parents[c].
	backup []*link
	// Per class: a neighbour asked to push it in place of parents[c],
	// which keeps pushing until the candidate answers (tryAnswered), the
	// time it was asked and the reason (why*) the change will count.
	trying    []*link
	tryingAt  []time.Time
	tryingWhy []int
	// why counts pusher changes and losses by reason (diagnostics).
	why [whyReasons]uint64

	// publisher
	enc          *fec.Encoder
	source       bool
	pulledParity uint64 // parity bytes sent for pulls (counted as Parity)
	// pulledManifests: manifest bytes sent for pulls (counted as Control)
	pulledManifests uint64
	published       uint64 // blocks emitted

	// end of the stream: the publisher's verified word, when it came, and
	// endCh closed once this member's output has reached it
	end   *control
	endAt time.Time
	endCh chan struct{}

	// subscriber
	out        *fifo[Record]
	subscribed bool
	flowing    bool // a data record was output since Subscribe
	gapFrom    uint64
	inGap      bool
	lat        reservoir
	// Parity sparing (noteComplete): spare says the neighbours were
	// asked to push only each block's first parity piece; cleanRun
	// counts the clean blocks in a row; spareNeed is how many start
	// sparing (0: spareAfter); spareOffAt is when sparing last ended.
	spare      bool
	cleanRun   int
	spareNeed  int
	spareOffAt time.Time

	dirty bool // a neighbour's hops changed since the last choice
	// rooted: the push trees start here. The publisher; also, from Join,
	// a member holding the publisher key (Config.PublisherKey) until it
	// learns of a stream it did not publish, so that the trees form
	// before the stream does instead of with its first blocks.
	rooted bool
	// extraAdvertised counts advertisements for route changes since the
	// last periodic one
	extraAdvertised int

	// fill and fillDev smooth how long pushes take to bring a block from
	// its first piece to k' pieces here, and its deviation.
	fill, fillDev time.Duration

	// idle advertisements: the last one sent without blocks, and how
	// many identical ones were skipped since
	idleDepth  []byte
	nodeSig    []byte // the publisher's signature naming this node (with a key)
	idleSource bool
	idleSkips  int
	idleDelay  []byte // the delays of the last idle advertisement sent

	// inFragment is set while a fragment sent before its block closed
	// is taken in (handleFragment): blocks it makes or finds stay
	// fragsOnly.
	inFragment bool
	// tamper, set by tests only, alters every piece this member sends and
	// makes it push to every neighbour: a forging member.
	tamper func(to *link, msg []byte) []byte
	// withhold, set by tests only, makes this member push nothing while
	// it takes on push classes and advertises what it holds.
	withhold bool
	// quietRefusal, set by tests only, refuses pulls past the share
	// without a busy answer (as before busy answers; for side-by-side
	// runs).
	quietRefusal bool

	// per push class: the newest block a piece of it reached this member
	// of (-1: none), and when
	classNewest   []int64
	classNewestAt []time.Time

	// lost describes the first blocks this member gave up on
	// (diagnostics, at most maxLostNotes).
	lost []lostNote
	// pullWait counts pulled pieces by how long after their last ask they
	// came, in waitBucket's buckets (diagnostics).
	pullWait [waitBuckets]uint64
	pullMiss [pullMisses]uint64
}

// Diagnostic times are counted in waitBuckets buckets: under
// waitBase, under twice that, ..., and the rest.
const (
	waitBase    = 50 * time.Millisecond
	waitBuckets = 7
)

// waitBucket is the bucket of a time d.
func waitBucket(d time.Duration) int {
	i := 0
	for i < waitBuckets-1 && d >= waitBase<<i {
		i++
	}
	return i
}

// Pulls this member could not serve in full (stream.pullMiss, diagnostics).
const (
	pullGone         = iota // the block was forgotten here
	pullUnknown             // the block or its manifest never came
	pullDeferred            // asked before the manifest came: answered when it did
	pullNotHeld             // a piece asked for is not held (per piece)
	pullPastDeadline        // a piece sent after the block's deadline here (dropped stale)
	pullMisses
)

// lostNote is what a member knew of a block when it gave up on it.
type lostNote struct {
	seq      uint64
	seen     bool          // any evidence of the block arrived
	manifest bool          // its manifest arrived
	count, k int           // pieces held, pieces needed
	pulls    int           // pull requests sent for it
	busy     int           // of them answered busy
	holders  int           // neighbours known to hold a piece it lacked
	source   bool          // the publisher was one of them
	firstAge time.Duration // first evidence, after the publisher stamped it
	asks     []lostAsk     // its first pull requests
	sent     uint64        // bytes this member had sent
}

// lostAsk is one pull request for a lost block, seen when it was given up.
type lostAsk struct {
	after    time.Duration // after the block's first evidence
	pushedTo int           // classes this member pushes to the neighbour
	pushes   int           // classes the neighbour pushes to this member
	open     bool          // the link is still open
	queued   int           // messages in its queue
}

const maxLostNotes = 32

// noteLost records what this member knew of blocks [seq, seq+n).
func (s *stream) noteLost(seq, n uint64, now time.Time) {
	for q := seq; q < seq+n && len(s.lost) < maxLostNotes; q++ {
		ln := lostNote{seq: q}
		if b := s.blocks[q]; b != nil {
			ln.seen, ln.pulls, ln.busy, ln.count = true, b.pulls, b.busy, b.count
			ln.sent = s.g.stats.Sent.Total()
			for _, a := range b.asks {
				subs, parent := 0, 0
				for k, on := range a.l.subs {
					if on {
						subs++
					}
					if s.parents[k] == a.l {
						parent++
					}
				}
				open := s.g.links[a.l.peer] == a.l
				ln.asks = append(ln.asks, lostAsk{a.at.Sub(b.first), subs, parent, open, a.l.q.len()})
			}
			if b.sm != nil {
				ln.manifest, ln.k = true, b.sm.Manifest.K
				ln.firstAge = b.first.Sub(time.Unix(0, b.sm.Stamp))
			}
			for _, l := range s.g.links {
				m := l.know[q]
				if m == nil {
					continue
				}
				if b.pieces == nil {
					ln.holders++
					ln.source = ln.source || l.source
					continue
				}
				for i := range b.pieces {
					if bitSet(m, i) && !bitSet(b.have, i) {
						ln.holders++
						ln.source = ln.source || l.source
						break
					}
				}
			}
		}
		s.lost = append(s.lost, ln)
	}
}

// maxTime returns the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// withholdShun is how many availability periods a class is taken from a
// pusher found withholding it (15 s by default).
const withholdShun = 60

// withholdAfter is how long a pusher may send nothing of a class it took
// on, while the class's pieces reach this member otherwise, before it is
// taken for withholding them: eight availability periods (2 s by
// default). An honest pusher can be silent for a while without fault (it
// skips pieces this member rebuilt from parity or pulled first and
// advertised), which is why it is shunned, not banned.
func (s *stream) withholdAfter() time.Duration {
	return 8 * s.g.cfg.AvailabilityUpdatePeriod
}

// Record is one in-order piece of a subscriber's output: stream bytes, or
// a gap of blocks that could not be recovered before their deadline.
type Record struct {
	// Offset is the stream offset of Data; for a gap, where the missing
	// bytes begin.
	Offset uint64
	// Data is the stream bytes [Offset, Offset+len(Data)); nil for a gap.
	Data []byte
	// Lost is the number of blocks given up on (gap records only).
	Lost uint64
	// Latency is the time from the publisher's stamp on the block (its
	// close) to this output, or, for a fragment sent before its block
	// closed (Config.EarlyFragments), from the stamp on that
	// fragment: of the record's first fragment (data records only).
	Latency time.Duration
	// Fragments is the number of the block's data fragments in Data: the
	// whole block's, or (unless Config.WholeBlocks) the part of it that
	// was in, its first fragments as soon as they come. A record holds
	// bytes of one block only. Weigh a record's Latency by it to sample
	// the latency of the stream's bytes rather than of records.
	Fragments int
	// Restarted reports that the publisher restarted (with the same key):
	// the output goes on with a new run of the stream, whose offsets start
	// again at 0. Lost then counts the blocks of the previous run this
	// member knew of and did not output, and Offset is where its output
	// of that run stopped. Blocks of the previous run that never reached
	// this member are not known, so not counted.
	Restarted bool
}

// IsGap reports whether r reports lost blocks or a restart: a record
// without data.
func (r Record) IsGap() bool { return r.Lost > 0 || r.Restarted }

// newDecoder is a member's FEC decoder. It starts at the block of the
// first piece it is given; begin gives it the start block's first.
func newDecoder(g *Group, params fec.Params) (*fec.Decoder, error) {
	return fec.NewDecoder(fec.DecoderConfig{Params: params, Window: 128, Timeout: g.cfg.WindowDuration, StartAnywhere: true, Early: !g.cfg.WholeBlocks,
		Recycle: true}) // drain copies each output before the next Add
}

func newStream(g *Group, params fec.Params) (*stream, error) {
	dec, err := newDecoder(g, params)
	if err != nil {
		return nil, err
	}
	s := &stream{
		g: g, params: params, P: g.cfg.PushNeighbourLimit,
		blocks:    make(map[uint64]*block),
		dec:       dec,
		parents:   make([]*link, g.cfg.PushNeighbourLimit),
		backup:    make([]*link, g.cfg.PushNeighbourLimit),
		trying:    make([]*link, g.cfg.PushNeighbourLimit),
		tryingAt:  make([]time.Time, g.cfg.PushNeighbourLimit),
		tryingWhy: make([]int, g.cfg.PushNeighbourLimit),

		classNewest:   slices.Repeat([]int64{-1}, g.cfg.PushNeighbourLimit),
		classNewestAt: make([]time.Time, g.cfg.PushNeighbourLimit),
		out:           newFIFO[Record](g.cfg.Queue),
		endCh:         make(chan struct{}),
		lat:           reservoir{limit: g.cfg.LatencySamples},
	}
	if ownsPublisherKey(g.spec, g.cfg.PublisherKey) {
		s.root()
	}
	return s, nil
}

// ownsPublisherKey reports whether key is the private half of spec's
// publisher key.
func ownsPublisherKey(spec Specifier, key ed25519.PrivateKey) bool {
	if len(spec.PublisherKey) == 0 || len(key) != ed25519.PrivateKeySize {
		return false
	}
	pk, ok := key.Public().(ed25519.PublicKey)
	return ok && pk.Equal(spec.PublisherKey)
}

// root makes this member the push trees' root: its hops are 0, it
// chooses no pushers, takes SourcePushCopies subscribers per class, and
// proves its node to its neighbours (Node), who relay its pushes without
// waiting for manifests.
func (s *stream) root() {
	s.rooted = true
	if len(s.g.spec.PublisherKey) > 0 && s.nodeSig == nil {
		s.nodeSig = ed25519.Sign(s.g.cfg.PublisherKey, nodeSigningBytes(s.g.id, s.g.host.Node().PeerID()))
	}
}

// unroot ends a key holder's root role before it published: it learnt
// of a stream (another instance of the publisher runs it), where it is a
// member like any other. Its neighbours see its hops change with its next
// advertisement.
func (s *stream) unroot() {
	if s.source || !s.rooted {
		return
	}
	s.rooted = false
	s.dirty = true
}

func (s *stream) linkAdded(l *link) {
	l.newest = make([]int64, s.P)
	l.depth = make([]int, s.P)
	l.delay = make([]time.Duration, s.P)
	l.late = make([]time.Duration, s.P)
	l.rank = make([]uint64, s.P)
	self := s.g.host.Node().PeerID()
	for i := range l.newest {
		l.rank[i] = ^stableRank(self, l.peer, i)
		l.newest[i] = -1
		l.depth[i] = noRoute
		l.delay[i] = -1
	}
	l.refreshRTT()
	l.subs = make([]bool, s.P)
	l.refused = make([]time.Time, s.P)
	l.backupRefused = make([]time.Time, s.P)
	if s.g.cfg.BackupPushers {
		l.sentUs = make(map[uint64][]byte)
	}
	l.pushedAt = make([]time.Time, s.P)
	l.parentAt = make([]time.Time, s.P)
	l.owed = make(map[pieceKey]time.Time)
	if s.end != nil {
		s.g.sendControl(l, s.end) // a neighbour that missed the flood
	}
	if s.spare {
		s.g.sendControl(l, &control{Type: ctlParity, Spare: true})
	}
}

func (s *stream) linkRemoved(l *link) {
	for c, p := range s.parents {
		if p == l {
			s.why[whyGone]++
			s.parents[c] = nil
		}
		if s.backup[c] == l {
			s.backup[c] = nil
		}
	}
	s.selectParents(time.Now())
}

// getBlock returns the block seq, making it if seq is in range. Before a
// member's start is fixed (anchor) nothing is in range; pushed pieces
// still wait for their manifests in provisional blocks (pieceBlock).
func (s *stream) getBlock(seq uint64, now time.Time) *block {
	if b := s.blocks[seq]; b != nil {
		if b.fragsOnly && !s.inFragment {
			// The first sign of the block other than fragments sent
			// before it closed: its pull timers start now.
			b.fragsOnly, b.first = false, now
		}
		return b
	}
	head := max(s.dec.Head(), s.low)
	switch {
	case s.source:
		head = s.low
	case !s.anchored:
		return nil
	}
	if seq < s.low || seq < head || seq >= head+maxAhead {
		return nil
	}
	return s.newBlock(seq, now)
}

// pieceBlock returns the block of a piece just received: as getBlock,
// but before the start is fixed, a provisional block (at most maxAhead of
// them, like the blocks of a started member), so that the first blocks'
// pieces that overtake their manifests are not lost.
func (s *stream) pieceBlock(seq uint64, now time.Time) *block {
	if b := s.getBlock(seq, now); b != nil || s.source || s.anchored || len(s.blocks) >= maxAhead {
		return b
	}
	return s.newBlock(seq, now)
}

func (s *stream) newBlock(seq uint64, now time.Time) *block {
	w := s.g.cfg.WindowDuration
	b := &block{seq: seq, first: now, deadline: now.Add(w - s.g.cfg.RelayMargin), expire: now.Add(w), fragsOnly: s.inFragment}
	s.blocks[seq] = b
	return b
}

// Parity sparing. A block is clean here when it became complete (its
// K-th piece came) lacking at most two data pieces, on time (within the
// smoothed time pushes take to fill a block, plus four deviations and
// 10 ms, of its first piece) and without a pull. Once spareAfter blocks
// in a row were clean (with Config.EarlyFragments at the publisher and
// little loss, nearly every fragment is in before its block closes), a
// member asks its neighbours to push it only each block's first parity
// piece (ctlParity): the other M-1, which it would receive and throw
// away, were a fifth of its bytes. The closing fragment or that parity
// piece completes such a block. At the first block that is not clean (two
// pieces lost: it waited for a retransmission or a pull) or is lost, it
// asks for every piece again, and the clean blocks it takes to start
// again double (up to spareMax) unless sparing lasted four times as many:
// under steady loss a member seldom tries, and each failed try costs a
// block a wait. A neighbour applies the request to every piece it pushes
// from then on (relay). The parity pieces asked not to be pushed are not
// counted as withheld (owe) while sparing and for a window after.
const (
	spareAfter = 16
	spareMax   = 1024
)

// noteComplete judges block b, which just became complete, clean or not
// (above).
func (s *stream) noteComplete(b *block, now time.Time) {
	k, data := b.sm.Manifest.K, 0
	for i := range k {
		if bitSet(b.have, i) {
			data++
		}
	}
	late := s.fill > 0 && !b.firstPiece.IsZero() && now.Sub(b.firstPiece) > s.fill+4*s.fillDev+10*time.Millisecond
	s.noteClean(k-data <= 2 && !late && b.pulls == 0, now)
}

// noteClean counts a clean block or not, and starts or ends sparing.
func (s *stream) noteClean(clean bool, now time.Time) {
	if s.source || s.g.cfg.AllParity {
		return
	}
	if s.spareNeed == 0 {
		s.spareNeed = spareAfter
	}
	if clean {
		if s.cleanRun++; s.cleanRun >= s.spareNeed && !s.spare {
			s.setSpare(true, now)
			s.cleanRun = 0 // now counts the clean blocks while sparing
		}
		return
	}
	if s.spare {
		s.setSpare(false, now)
		if s.cleanRun >= 4*s.spareNeed {
			s.spareNeed = spareAfter // it lasted: the loss was a blip
		} else {
			s.spareNeed = min(2*s.spareNeed, spareMax)
		}
	}
	s.cleanRun = 0
}

// setSpare starts or ends sparing: every neighbour is told.
func (s *stream) setSpare(on bool, now time.Time) {
	s.spare = on
	if on {
		s.g.stats.ParitySparing++
	} else {
		s.spareOffAt = now
	}
	for _, l := range s.g.links {
		s.g.sendControl(l, &control{Type: ctlParity, Spare: on})
	}
}

// handleManifest takes a block's manifest from l.
func (s *stream) handleManifest(l *link, sm *signedManifest, now time.Time) {
	g := s.g
	seq := sm.Manifest.Block
	if s.anchored && !s.source && s.end == nil && (runOf(seq) > runOf(s.start) || seq >= max(s.dec.Head(), s.low)+maxAhead) {
		// A later run (the publisher restarted), or the stream is far
		// past this member's window (a long partition, or its start
		// was an old manifest replayed): move there. Only the
		// publisher's word moves a member.
		if !verifyManifest(g.spec, g.id, sm) {
			g.stats.ForgedDropped++
			g.ban(l)
			return
		}
		s.restart(seq, sm.Stamp, now)
	}
	if !s.source && !s.anchored {
		// Only the publisher's word fixes where this member starts.
		if !verifyManifest(g.spec, g.id, sm) {
			g.stats.ForgedDropped++
			g.ban(l)
			return
		}
		s.anchor(seq, sm.Stamp, now)
	}
	b := s.getBlock(seq, now)
	l.hasManifest[seq] = true
	if b == nil {
		g.stats.OutOfWindow++
		return
	}
	if b.sm != nil {
		return
	}
	if !verifyManifest(g.spec, g.id, sm) {
		g.stats.ForgedDropped++
		g.ban(l)
		return
	}
	mf := sm.Manifest
	if mf.K > s.params.K || !s.params.ParityOK(mf.K, mf.M) || mf.ShardSize > s.params.FragmentSize+2 {
		g.stats.MalformedDropped++
		return
	}
	b.sm = sm
	b.pieces = make([][]byte, mf.K+mf.M)
	b.have = make([]byte, 32)
	pend := b.pending
	b.pending = nil
	for _, pp := range pend {
		if g.isBanned(pp.from.peer) {
			continue
		}
		if pp.p.K == 0 { // a fragment sent before its block closed
			pp.p.K, pp.p.M, pp.p.ShardSize = mf.K, mf.M, mf.ShardSize
		}
		s.accept(b, pp.p, pp.from, now)
	}
	s.manifestToEarly(b)
	// Pulls that came before the manifest are answered now (those
	// whose asker got the manifest from us meanwhile do not get it
	// twice).
	deferred := b.deferred
	b.deferred = nil
	for _, d := range deferred {
		if g.links[d.l.peer] != d.l {
			continue
		}
		if d.l.hasManifest[seq] {
			d.c.Manifest = false
		}
		s.handlePull(d.l, &d.c)
	}
}

// handlePiece takes one piece from l, pushed or pulled.
func (s *stream) handlePiece(l *link, p fec.Piece, pushed bool, now time.Time) {
	g := s.g
	b := s.notePiece(l, p, pushed, now)
	if b == nil {
		g.stats.OutOfWindow++
		return
	}
	if b.sm == nil {
		if len(b.pending) >= fec.MaxShards {
			g.stats.OutOfWindow++
			return
		}
		p.Data = append([]byte(nil), p.Data...)
		b.pending = append(b.pending, pendingPiece{p: p, from: l})
		b.pendFrom = l
		if pushed && l.provenSource && !s.source {
			s.relay(b, p, nil, l, now)
		}
		return
	}
	s.accept(b, p, l, now)
}

// handleFragment takes from l a data fragment the publisher sent before
// its block closed, with the publisher's signature over it. Before the
// block's manifest it is checked by its signature, output if it is next,
// and pushed on with the signature; once the manifest is here it is a
// piece like any other. Like a manifest, a fragment of a later run or far
// past this member's window moves the member there, and the first one
// fixes where its output starts.
func (s *stream) handleFragment(l *link, f *fragment, now time.Time) {
	g := s.g
	p := f.p
	if len(p.Data) != s.params.FragmentSize || p.Index >= s.params.K {
		g.malformed(l)
		return
	}
	verified := false
	if !s.source && (!s.anchored || s.end == nil && (runOf(p.Block) > runOf(s.start) || p.Block >= max(s.dec.Head(), s.low)+maxAhead)) {
		if !verifyFragment(g.spec, g.id, f) {
			g.stats.ForgedDropped++
			g.ban(l)
			return
		}
		verified = true
		if s.anchored {
			s.restart(p.Block, f.stamp, now)
		} else {
			s.anchor(p.Block, f.stamp, now)
		}
	}
	s.inFragment = true
	b := s.notePiece(l, p, true, now)
	s.inFragment = false
	if b == nil {
		g.stats.OutOfWindow++
		return
	}
	if b.sm != nil {
		mf := b.sm.Manifest
		p.K, p.M, p.ShardSize = mf.K, mf.M, mf.ShardSize
		had := bitSet(b.have, p.Index)
		s.accept(b, p, l, now) // a mismatch fails Verify
		if !had && bitSet(b.have, p.Index) && p.Index < s.params.K {
			if b.fragStamp == nil {
				b.fragStamp = make([]int64, s.params.K)
			}
			b.fragStamp[p.Index] = f.stamp
		}
		return
	}
	if bitSet(b.fragHave, p.Index) && !verified {
		for _, pp := range b.pending {
			if pp.p.K == 0 && pp.p.Index == p.Index && bytes.Equal(pp.p.Data, p.Data) {
				g.stats.Duplicates++
				return
			}
		}
	}
	if !verified && !verifyFragment(g.spec, g.id, f) {
		g.stats.ForgedDropped++
		g.ban(l)
		return
	}
	if bitSet(b.fragHave, p.Index) {
		g.stats.Duplicates++ // the same bytes, signed again: not forged
		return
	}
	if len(b.pending) >= fec.MaxShards {
		g.stats.OutOfWindow++
		return
	}
	if b.fragHave == nil {
		b.fragHave = make([]byte, 32)
		b.fragStamp = make([]int64, s.params.K)
	}
	setBit(b.fragHave, p.Index)
	b.fragStamp[p.Index] = f.stamp
	p.Data = append([]byte(nil), p.Data...)
	b.pending = append(b.pending, pendingPiece{p: p, from: l})
	b.pendFrom = l
	g.stats.EarlyFragments++
	switch {
	case s.feeding:
		s.dec.AddFragment(asFragment(p), now)
		s.drain(now)
	case s.anchored && p.Block == s.start:
		s.begin(now)
	}
	s.relay(b, p, f, l, now)
}

// asFragment is p, a fragment sent before its block closed (K 0), as the
// decoder takes it.
func asFragment(p fec.Piece) fec.Fragment {
	return fec.Fragment{Block: p.Block, Offset: p.Offset, Index: p.Index, Data: p.Data}
}

// notePiece does what every piece from l tells, whatever becomes of it:
// what l holds, the pusher's lateness and pushes, pull answers. It
// returns the piece's block, nil if out of range.
func (s *stream) notePiece(l *link, p fec.Piece, pushed bool, now time.Time) *block {
	b := s.pieceBlock(p.Block, now)
	if b != nil {
		// (Not of a block out of range: a neighbour could make us
		// remember any number of them.)
		l.learn(p.Block, p.Index)
	}
	if b != nil && b.firstPiece.IsZero() && !s.inFragment {
		b.firstPiece = now
	}
	if k := p.Index % s.P; int64(p.Block) > s.classNewest[k] {
		s.classNewest[k], s.classNewestAt[k] = int64(p.Block), now
	}
	if b != nil && s.parents[p.Index%s.P] == l {
		// Smoothed lateness of this pusher against the block's first
		// piece here: a pusher much later than the others is replaced.
		// A fragment sent before its block closed is late only by how
		// long it comes after the block's first piece sent at its close.
		k := p.Index % s.P
		var late time.Duration
		if !b.firstPiece.IsZero() {
			late = now.Sub(b.firstPiece)
		}
		l.late[k] += (late - l.late[k]) / 8
		l.pushedAt[k] = now
	}
	if pushed {
		// Every push counts, also one that arrives after l stopped
		// being the class's pusher: on a starved link (15 % loss)
		// honest pushes come late, after their class moved on.
		l.pushed++
	} else {
		l.pulled++
		if b != nil && p.Index < len(b.asked) && !b.asked[p.Index].IsZero() && !bitSet(b.have, p.Index) {
			s.pullWait[waitBucket(now.Sub(b.asked[p.Index]))]++
		}
	}
	delete(l.owed, pieceKey{p.Block, p.Index})
	if b != nil && l.sentUs != nil {
		markPiece(l.sentUs, p.Block, p.Index)
	}
	return b
}

// manifestToEarly sends b's manifest, just come, to the neighbours we
// pushed pieces of b to before it (relay skips the pieces they hold, so
// the manifest would not go with them) if we carry it for their class.
func (s *stream) manifestToEarly(b *block) {
	for l, classes := range b.earlyTo {
		if s.g.links[l.peer] != l || l.hasManifest[b.seq] {
			continue
		}
		for c := range s.P {
			if classes&(1<<c) != 0 && s.carriesManifest(b.seq, c, len(b.pieces)) {
				s.sendManifest(l, b, c)
				break
			}
		}
	}
	b.earlyTo = nil
}

// accept verifies and stores a piece of a block whose manifest is known,
// feeds the decoder, relays it and rebuilds the block's other pieces once
// it can.
func (s *stream) accept(b *block, p fec.Piece, from *link, now time.Time) {
	g := s.g
	// Duplicates are checked too: a forger is caught even when what it
	// sends is redundant here.
	if err := b.sm.Manifest.Verify(p); err != nil {
		g.stats.ForgedDropped++
		if from != nil {
			g.ban(from)
		}
		return
	}
	if bitSet(b.have, p.Index) {
		g.stats.Duplicates++
		return
	}
	if k := p.Index % s.P; from != nil && int64(b.seq) > from.newest[k] {
		// A verified piece shows what its sender holds as surely as its
		// advertisement, and sooner: a pusher whose pushes keep this
		// member current is not judged stale on an advertisement up to
		// a period old.
		from.newest[k] = int64(b.seq)
	}
	p.Data = s.keep(b, p)
	s.store(b, p, from, now)
	if b.count == b.sm.Manifest.K {
		s.noteComplete(b, now)
	}
	if b.count == b.sm.Manifest.K && b.asked == nil && !b.firstPiece.IsZero() {
		// How long pushes take to fill a block here sets how long to
		// wait before pulling (like an RTO from RTT samples).
		d := now.Sub(b.firstPiece)
		if s.fill == 0 {
			s.fill, s.fillDev = d, d/2
		} else {
			diff := d - s.fill
			s.fill += diff / 8
			s.fillDev += (max(diff, -diff) - s.fillDev) / 4
		}
	}
	if !b.rebuilt && b.count >= b.sm.Manifest.K && b.count < len(b.pieces) {
		s.rebuild(b, now)
	}
}

// keep copies verified piece p of b into its shard of b's slab and
// returns the copy of its data.
func (s *stream) keep(b *block, p fec.Piece) []byte {
	ss := b.sm.Manifest.ShardSize
	if b.slab == nil {
		b.slab = s.newSlab(len(b.pieces) * ss)
	}
	sh := b.slab[p.Index*ss : (p.Index+1)*ss : (p.Index+1)*ss]
	if p.IsParity() {
		copy(sh, p.Data) // Verify checked its length is ss
		return sh
	}
	n := copy(sh[2:], p.Data) // and that it fits
	binary.BigEndian.PutUint16(sh, uint16(n))
	clear(sh[2+n:]) // a failed rebuild may have written there
	return sh[2 : 2+n : 2+n]
}

// newSlab returns n zeroed bytes for a block's pieces: a forgotten
// block's slab if one is large enough.
func (s *stream) newSlab(n int) []byte {
	if k := len(s.slabs); k > 0 {
		sl := s.slabs[k-1]
		s.slabs[k-1] = nil
		s.slabs = s.slabs[:k-1]
		if cap(sl) >= n {
			sl = sl[:n]
			clear(sl)
			return sl
		}
	}
	return make([]byte, n)
}

// maxSpareSlabs bounds the slabs kept for reuse.
const maxSpareSlabs = 2

func (s *stream) store(b *block, p fec.Piece, from *link, now time.Time) {
	b.pieces[p.Index] = p.Data
	setBit(b.have, p.Index)
	if s.g.cfg.BackupPushers {
		if b.gotAt == nil {
			b.gotAt = make([]int64, len(b.pieces))
		}
		b.gotAt[p.Index] = now.UnixNano()
	}
	b.count++
	s.g.stats.Pieces++
	switch {
	case s.source:
	case s.feeding:
		s.dec.Add(p, now)
		s.drain(now)
	case p.Block == s.start:
		s.begin(now)
	}
	s.relay(b, p, nil, from, now)
}

// anchor fixes where this member's output starts, at its first verified
// manifest (or fragment), of block seq stamped at stamp: startFor, a
// second or StartMargin blocks earlier (the run's first block if the
// stream is younger), so that a member that was there when the stream
// began outputs it from its first byte even if a later block's manifest
// overtook the first ones, and a member that joins a running stream
// starts near the live edge and catches up on those few blocks by pulls
// (neighbours still hold them, as complete blocks).
func (s *stream) anchor(seq uint64, stamp int64, now time.Time) {
	s.anchored = true
	s.unroot()
	s.start = s.startFor(seq, stamp)
	s.low = s.start
	for q := range s.blocks {
		if q < s.start || q >= s.start+maxAhead {
			delete(s.blocks, q) // provisional, out of range
		}
	}
	for q := s.start; q < seq; q++ {
		s.getBlock(q, now) // pulled from neighbours that advertise them
	}
}

// restart moves this member to block seq, whose verified manifest just
// came: of a new run of the stream (the publisher restarted), or of this
// run but beyond the member's window. The blocks held are dropped, the
// output reports the move (a Restarted record, or a gap of the blocks
// skipped) and starts again as for a member that joins a running stream
// (startFor: a second or StartMargin blocks before seq, the run's first
// block if the run is younger).
func (s *stream) restart(seq uint64, stamp int64, now time.Time) {
	g := s.g
	newRun := runOf(seq) > runOf(s.start)
	wasFeeding := s.feeding
	head := max(s.dec.Head(), s.low)
	var lost uint64
	switch {
	case !newRun:
		next := s.startFor(seq, stamp)
		lost = next - min(next, head)
	case wasFeeding:
		// The previous run's blocks this member knew of, not output.
		for q := range s.blocks {
			if q >= head && runOf(q) == runOf(s.start) {
				lost = max(lost, q+1-head)
			}
		}
	}
	if newRun {
		g.stats.Restarts++
	}
	if wasFeeding {
		g.stats.BlocksLost += lost
	}
	pos := s.dec.Pos()
	dec, err := newDecoder(g, s.params)
	if err != nil {
		return // cannot happen: the same parameters made the first
	}
	s.dec = dec
	clear(s.blocks)
	s.anchored, s.feeding, s.inGap = false, false, false
	for k := range s.classNewest {
		s.classNewest[k], s.classNewestAt[k] = -1, time.Time{}
	}
	for _, l := range g.links {
		clear(l.know)
		clear(l.hasManifest)
	}
	if newRun || wasFeeding && lost > 0 {
		s.emit(Record{Offset: pos, Lost: lost, Restarted: newRun})
	}
	s.anchor(seq, stamp, now)
}

// begin starts the decoder at the start block once a piece of it is here,
// then gives it every piece held of later blocks. A start block that got
// no piece by its deadline is passed over for the next block held: the
// output starts there, and what came before is not reported as a gap.
func (s *stream) begin(now time.Time) {
	for range maxAhead {
		b := s.blocks[s.start]
		if b != nil && (b.count > 0 || b.fragHave != nil) {
			s.feed(now)
			return
		}
		if b != nil && !now.After(b.deadline) {
			return
		}
		next, ok := uint64(0), false
		for seq := range s.blocks {
			if seq > s.start && (!ok || seq < next) {
				next, ok = seq, true
			}
		}
		if !ok {
			return
		}
		delete(s.blocks, s.start)
		s.start, s.low = next, next
	}
}

// feed gives the decoder, from the start block on, every piece held.
func (s *stream) feed(now time.Time) {
	s.feeding = true
	var held []uint64
	for seq := range s.blocks {
		if seq >= s.start {
			held = append(held, seq)
		}
	}
	slices.Sort(held)
	for _, seq := range held {
		b := s.blocks[seq]
		for i := range b.pieces {
			if bitSet(b.have, i) {
				s.dec.Add(b.piece(i), now)
			}
		}
		if b.sm == nil {
			for _, pp := range b.pending {
				if p := pp.p; p.K == 0 { // sent before the block closed
					s.dec.AddFragment(asFragment(p), now)
				}
			}
		}
	}
	s.drain(now)
}

// nodeSigCopies is how many availability messages carry the publisher's
// Node signature to each neighbour (control flows are reliable; the
// copies cover a message dropped from a full queue).
const nodeSigCopies = 3

// relay pushes p to the neighbours that subscribed to its class. A piece
// of a block whose manifest has not come yet (b.sm nil) came from the
// publisher's own node (provenSource, handlePiece), so it is genuine
// without a check, and holding it for the manifest would delay every tree
// below this member: it goes to the subscribers at once, who check it
// once the manifest reaches them; those of the block's carrier classes get
// the manifest from us when it comes here (handleManifest, earlyTo).
//
// A fragment the publisher sent before its block closed (f, p its piece
// with K 0) goes the same way, with its stamp and signature, to those that
// lack it.
func (s *stream) relay(b *block, p fec.Piece, f *fragment, from *link, now time.Time) {
	if now.After(b.deadline) || s.withhold {
		return
	}
	class := p.Index % s.P
	var msg []byte
	targets := 0
	for _, l := range s.g.links {
		if l.subs[class] {
			targets++
		}
	}
	// The publisher sends every piece to SourcePushCopies neighbours even
	// while subscriptions change: a piece only the publisher holds could
	// otherwise be recovered only by pulls from it.
	var extra map[*link]bool
	if s.source && targets < s.g.cfg.SourcePushCopies && len(s.g.links) > 0 {
		extra = make(map[*link]bool)
		peers := make([]*link, 0, len(s.g.links))
		for _, l := range s.g.links {
			if !l.subs[class] {
				peers = append(peers, l)
			}
		}
		slices.SortFunc(peers, func(a, b *link) int { return bytes.Compare(a.peer[:], b.peer[:]) })
		for i := 0; i < len(peers) && targets+len(extra) < s.g.cfg.SourcePushCopies; i++ {
			extra[peers[int((b.seq*uint64(s.P)+uint64(class+i))%uint64(len(peers)))]] = true
		}
	}
	early := b.sm == nil
	frag := p.K == 0
	for _, l := range s.g.links {
		pushTo := l.subs[class] || (!early || frag) && (extra[l] || s.tamper != nil)
		if l == from || !pushTo || l.knows(b.seq, p.Index) {
			continue
		}
		if l.spare && p.K > 0 && p.Index > p.K {
			s.g.stats.PushesSkipped++ // it wants only the first parity piece (sparing)
			continue
		}
		switch {
		case early:
			if b.earlyTo == nil {
				b.earlyTo = make(map[*link]uint32)
			}
			b.earlyTo[l] |= 1 << class
			s.g.stats.EarlyRelayed++
		case !l.hasManifest[b.seq] && (s.carriesManifest(b.seq, class, len(b.pieces)) || extra[l]):
			s.sendManifest(l, b, p.Index)
		}
		switch {
		case msg != nil:
		case frag:
			msg = appendFragmentMsg(nil, f)
		default:
			msg, _ = appendPieceMsg(nil, viaPush, p)
		}
		l.learn(b.seq, p.Index)
		s.sendPiece(l, b, p, msg)
	}
}

func (s *stream) sendPiece(l *link, b *block, p fec.Piece, msg []byte) {
	st := &s.g.stats.Sent
	t := &st.Push
	pull := msg[0] == dataPiece && msg[1] == viaPull
	switch {
	case p.K > 0 && p.IsParity():
		t = &st.Parity
	case pull:
		t = &st.Pull
	}
	lane := p.Index % s.g.cfg.DataLanes
	if pull {
		lane = s.g.cfg.DataLanes
	}
	if s.tamper != nil {
		msg = s.tamper(l, msg)
	}
	m := outMsg{data: true, lane: lane, b: msg, deadline: b.deadline, push: !pull, seq: b.seq}
	if pull {
		m.trace = traceAnswer
	}
	s.g.enqueueData(l, m, t)
}

// carriesManifest reports whether the pushers of class send the manifest
// of block seq, of n pieces, with its pieces: ManifestCarriers classes in
// a row from one that turns with the block, so that one slow pusher does
// not hold a block up; every class when ManifestCarriers is P or more.
// A short block (n < P: closed by BlockDelay or Sync with few fragments)
// has pieces in classes 0..n-1 only, so its carriers are chosen among
// those: a carrier class without a piece of the block would push nothing,
// and the manifest would be left to pulls from the publisher.
func (s *stream) carriesManifest(seq uint64, class, n int) bool {
	p := min(s.P, max(n, 1))
	if class >= p {
		return false
	}
	c0 := int(seq % uint64(p))
	return (class-c0+p)%p < s.g.cfg.ManifestCarriers
}

// sendManifest sends b's manifest to l ahead of piece index (on its lane;
// index < 0 means the pull lane).
func (s *stream) sendManifest(l *link, b *block, index int) {
	l.hasManifest[b.seq] = true
	lane := s.g.cfg.DataLanes
	if index >= 0 {
		lane = index % s.g.cfg.DataLanes
	}
	s.g.sendData(l, lane, appendManifestMsg(nil, b.sm), b.expire, &s.g.stats.Sent.Control)
}

// rebuild recomputes the pieces of b it lacks from the k' it holds, checks
// each against the manifest and stores and relays them as if received, so
// a member that missed a pusher still serves its own subscribers.
func (s *stream) rebuild(b *block, now time.Time) {
	b.rebuilt = true
	mf := b.sm.Manifest
	rs, err := fec.Codec(mf.K, mf.M)
	if err != nil {
		return
	}
	// Every piece held came through accept, so it is in the slab; the
	// missing shards are rebuilt in their place there.
	ss := mf.ShardSize
	shards := make([][]byte, len(b.pieces))
	for i := range shards {
		sh := b.slab[i*ss : (i+1)*ss : (i+1)*ss]
		if !bitSet(b.have, i) {
			sh = sh[:0]
		}
		shards[i] = sh
	}
	if err := rs.Reconstruct(shards); err != nil {
		return
	}
	s.tellWhole(b)
	for i := range b.pieces {
		if bitSet(b.have, i) {
			continue
		}
		p := fec.Piece{Block: mf.Block, Offset: mf.Offset, K: mf.K, M: mf.M, Index: i, ShardSize: mf.ShardSize, Data: shards[i]}
		if i < mf.K {
			n := int(binary.BigEndian.Uint16(shards[i]))
			if n > mf.ShardSize-2 {
				return
			}
			p.Data = shards[i][2 : 2+n : 2+n]
		}
		if mf.Verify(p) != nil {
			return
		}
		s.g.stats.Reconstructed++
		if s.g.cfg.BackupPushers {
			if b.made == nil {
				b.made = make([]byte, 32)
			}
			setBit(b.made, i)
		}
		s.store(b, p, nil, now)
	}
}

// tellWhole tells the pushers of the pieces b still lacks that this
// member holds the whole block (it is rebuilding them), so that they skip
// those pieces: without it they arrive anyway as duplicates (a quarter of
// what members received at 300 members), and on a congested link they
// hold up the pieces behind them.
func (s *stream) tellWhole(b *block) {
	var told []*link
	for i := range b.pieces {
		p := s.parents[i%s.P]
		if bitSet(b.have, i) || p == nil || slices.Contains(told, p) ||
			s.spare && i > b.sm.Manifest.K { // not pushed anyway (sparing)
			continue
		}
		told = append(told, p)
		s.g.sendData(p, s.g.cfg.DataLanes, appendHaveMsg(nil, b.seq), b.deadline, &s.g.stats.Sent.Control)
	}
}

// handleHave notes that l holds block seq whole: pieces of it not yet
// pushed to l are not sent.
func (s *stream) handleHave(l *link, seq uint64) {
	if s.blocks[seq] == nil {
		return // out of the window: nothing to skip
	}
	l.wholeMu.Lock()
	l.whole[seq] = true
	l.wholeMu.Unlock()
	l.learnAll(seq)
}

// drain moves decoder output to the subscriber.
func (s *stream) drain(now time.Time) {
	g := s.g
	for {
		o, ok := s.dec.Next()
		if !ok {
			return
		}
		if o.IsGap() {
			g.stats.BlocksLost += o.Lost
			s.noteLost(o.Block, o.Lost, now)
			s.noteClean(false, now)
			if !s.inGap {
				s.inGap, s.gapFrom = true, o.Offset
			}
			s.emit(Record{Offset: o.Offset, Lost: o.Lost})
			continue
		}
		if s.inGap {
			g.stats.BytesLost += o.Offset - s.gapFrom
			s.inGap = false
		}
		if !o.More {
			g.stats.BlocksOut++
		}
		g.stats.BytesOut += uint64(o.Len())
		var lat time.Duration
		if b := s.blocks[o.Block]; b != nil {
			// One sample per fragment: a block output in parts weighs
			// what it weighs output whole. A fragment sent before its
			// block closed counts from its own stamp.
			for j := range o.Fragments {
				var stamp int64
				if i := o.Index + j; i < len(b.fragStamp) && b.fragStamp[i] != 0 {
					stamp = b.fragStamp[i]
				} else if b.sm != nil {
					stamp = b.sm.Stamp
				} else {
					continue
				}
				d := now.Sub(time.Unix(0, stamp))
				if j == 0 {
					lat = d
				}
				s.lat.add(d, func(n uint64) uint64 { return g.rnd.Uint64N(n) })
			}
		}
		data := make([]byte, 0, o.Len())
		for _, f := range o.Fragments {
			data = append(data, f...)
		}
		s.emit(Record{Offset: o.Offset, Data: data, Latency: lat, Fragments: len(o.Fragments)})
	}
}

func (s *stream) emit(r Record) {
	// A subscription's output starts with data: blocks lost (or a
	// restart) before it are not its concern.
	if !s.subscribed || r.IsGap() && !s.flowing {
		return
	}
	s.flowing = true
	if !s.out.push(r) {
		s.g.stats.OutputDropped++
	}
}

// tick runs the stream's timers; periodic is true once per
// AvailabilityUpdatePeriod.
func (s *stream) tick(now time.Time, periodic bool) {
	if s.enc != nil {
		s.enc.Flush(now)
		s.emitBlocks(now)
	}
	if !s.source {
		if s.anchored && !s.feeding {
			s.begin(now)
		}
		s.dec.Advance(now)
		s.drain(now)
		s.checkEnd(now)
		s.pull(now)
	}
	switch {
	case periodic:
		s.prune(now)
		s.checkWithholding(now)
		s.checkOwed(now)
		for _, l := range s.g.links {
			l.refreshRTT()
		}
		s.selectParents(now)
		s.holdPushLinks(now)
		s.advertise()
		s.dirty, s.extraAdvertised = false, 0
	case s.dirty:
		s.reroute(now)
	}
}

// reroute chooses pushers again after a neighbour's routes changed and,
// if this member's own hops changed, tells the neighbours now, so that
// trees form in a hop's time per level rather than an availability
// period. It runs as the availability message that changed the routes is
// read (handleControl), not at the next tick: at 50 ms a tick per level
// held trees back for a quarter second or more when a stream started.
func (s *stream) reroute(now time.Time) {
	s.dirty = false
	before := make([]int, s.P)
	for k := range before {
		before[k] = s.myDepth(k)
	}
	s.selectParents(now)
	for k := range before {
		if s.myDepth(k) != before[k] {
			s.extraAdvertise()
			return
		}
	}
}

// routeMatters says whether l's new hops in class k can change this
// member's pusher for k now: k has no pusher, l is its pusher (or the one
// being asked), or l is now nearer than the pusher by the switch margin.
// Other changes wait for the next tick (stream.dirty): selectParents
// would choose as before, and at a thousand members rerouting on every
// availability message that moved some class's hops was 5 % of the CPU.
func (s *stream) routeMatters(l *link, k int) bool {
	cur := s.parents[k]
	if cur == nil || cur == l || s.trying[k] == l || s.g.links[cur.peer] != cur {
		return true
	}
	d := cost(l, k)
	return cost(cur, k) > d+switchMargin(d)
}

// prune forgets blocks whose window has passed.
func (s *stream) prune(now time.Time) {
	head := s.dec.Head()
	for seq, b := range s.blocks {
		if now.After(b.expire) && (s.source || seq < head || !s.anchored) {
			delete(s.blocks, seq)
			// Nothing holds its pieces now: messages carry copies of
			// them, and so does the decoder.
			if b.slab != nil && len(s.slabs) < maxSpareSlabs {
				s.slabs = append(s.slabs, b.slab)
			}
			if seq >= s.low {
				s.low = seq + 1
			}
		}
	}
	for _, l := range s.g.links {
		// Besides the blocks gone, a neighbour's maps can name blocks
		// far ahead of any this member tracks (an honest one names
		// the window's): past maxLinkBlocks, those untracked go.
		crowded := len(l.know) > maxLinkBlocks || len(l.hasManifest) > maxLinkBlocks
		for seq := range l.know {
			if seq < s.low || crowded && s.blocks[seq] == nil {
				delete(l.know, seq)
			}
		}
		for seq := range l.hasManifest {
			if seq < s.low || crowded && s.blocks[seq] == nil {
				delete(l.hasManifest, seq)
			}
		}
		for seq := range l.sentUs {
			if seq < s.low {
				delete(l.sentUs, seq)
			}
		}
		l.wholeMu.Lock()
		for seq := range l.whole {
			if seq < s.low {
				delete(l.whole, seq)
			}
		}
		l.wholeMu.Unlock()
	}
}

// maxLinkBlocks bounds the blocks remembered per neighbour (what it holds,
// whether it has their manifests) beyond those this member tracks.
const maxLinkBlocks = 2 * maxAhead

// routesRefresh: an availability message in this many to a neighbour
// carries its routes (Depth, Delay) even when they did not change.
const routesRefresh = 16

// advertise tells every neighbour which pieces this member holds.
func (s *stream) advertise() {
	var lo, hi uint64
	first := true
	for seq, b := range s.blocks {
		if b.sm == nil || b.count == 0 {
			continue
		}
		if first || seq < lo {
			lo = seq
		}
		if first || seq > hi {
			hi = seq
		}
		first = false
	}
	c := &control{Type: ctlAvail, Block: lo, Source: s.rooted, Depth: make([]byte, s.P)}
	if !s.rooted {
		// (The publisher's delay is 0, which its depth says.)
		c.Delay = make([]byte, s.P)
	}
	for k := range c.Depth {
		c.Depth[k] = byte(s.myDepth(k))
		if c.Delay != nil {
			c.Delay[k] = noDelay
			if d, ok := s.myDelay(k); ok {
				c.Delay[k] = byte(min((d+delayUnit/2)/delayUnit, noDelay-1))
			}
		}
	}
	// With no stream, an unchanged advertisement goes out only every
	// eighth time: an idle group costs little. Delays that moved by more
	// than idleDelaySlack since the last one sent count as a change: the
	// trees form before the stream (stream.root), and their members must
	// learn the delays to choose by them when the stream starts.
	if first {
		same := bytes.Equal(c.Depth, s.idleDepth) && s.idleSource == s.rooted && !delaysMoved(c.Delay, s.idleDelay)
		s.idleDepth, s.idleSource = c.Depth, s.rooted
		if same && s.idleSkips < 7 {
			s.idleSkips++
			return
		}
		s.idleSkips, s.idleDelay = 0, c.Delay
	}
	if !first {
		if hi-lo >= maxAvailBlocks {
			lo = hi - maxAvailBlocks + 1
			c.Block = lo
		}
		// Complete blocks at the start are one count, not bitmaps: in a
		// healthy stream that is nearly every block.
		for seq := lo; seq < hi; seq++ {
			b := s.blocks[seq]
			if b == nil || b.sm == nil || b.count < len(b.pieces) {
				break
			}
			c.Full++
		}
		for seq := lo + c.Full; seq <= hi; seq++ {
			b := s.blocks[seq]
			if b == nil || b.sm == nil {
				c.Maps = append(c.Maps, nil)
				continue
			}
			n := (len(b.pieces) + 7) / 8
			c.Maps = append(c.Maps, b.have[:n])
		}
	}
	lc := new(control) // each link's copy (encoded before the next)
	for _, l := range s.g.links {
		// Poison reverse: a member never offers its own pusher a route
		// through itself, which would make a two-member loop.
		*lc = *c
		for k, p := range s.parents {
			if p == l {
				if &lc.Depth[0] == &c.Depth[0] {
					lc.Depth = slices.Clone(c.Depth)
					lc.Delay = slices.Clone(c.Delay)
				}
				lc.Depth[k] = noRoute
				if lc.Delay != nil {
					lc.Delay[k] = noDelay
				}
			}
		}
		if s.nodeSig != nil && l.nodeSigSent < nodeSigCopies {
			lc.Node = s.nodeSig
			l.nodeSigSent++
		}
		// Routes the neighbour already has are left out (delays that
		// moved by idleDelaySlack at most count as the same: pushers
		// are chosen with a wider margin, switchMargin), but sent in
		// full every routesRefresh messages all the same.
		same := l.routesSent > 0 && l.routesSent < routesRefresh && bytes.Equal(lc.Depth, l.sentDepth) && !delaysMoved(lc.Delay, l.sentDelay)
		depth, delay := lc.Depth, lc.Delay
		if same {
			lc.Depth, lc.Delay, lc.SameRoutes = nil, nil, true
		}
		switch {
		case !s.g.sendControl(l, lc):
		case same:
			l.routesSent++
		default:
			l.sentDepth = append(l.sentDepth[:0], depth...)
			l.sentDelay = append(l.sentDelay[:0], delay...)
			l.routesSent = 1
		}
	}
}

func (s *stream) handleControl(l *link, c *control, now time.Time) {
	switch c.Type {
	case ctlParity:
		l.spare = c.Spare
	case ctlAvail:
		l.source = c.Source
		// The signature names a peer ID; only a session that
		// authenticates the peer ID ties it to this neighbour.
		if len(c.Node) > 0 && !l.provenSource && l.authentic && len(s.g.spec.PublisherKey) > 0 {
			if !ed25519.Verify(s.g.spec.PublisherKey, nodeSigningBytes(s.g.id, l.peer), c.Node) {
				s.g.stats.ForgedDropped++
				s.g.ban(l)
				return
			}
			l.provenSource = true
		}
		urgent := false // a change of hops that can move a pusher now
		classes := len(l.depth)
		if c.SameRoutes {
			classes = 0 // the routes l sent last stand
		}
		for k := range classes {
			d := noRoute
			if k < len(c.Depth) {
				d = min(int(c.Depth[k]), noRoute)
			}
			moved := d != l.depth[k]
			l.depth[k] = d
			l.delay[k] = -1
			if k < len(c.Delay) && c.Delay[k] != noDelay {
				l.delay[k] = time.Duration(c.Delay[k]) * delayUnit
			}
			if moved {
				s.dirty = true
				urgent = urgent || s.routeMatters(l, k)
			}
		}
		for seq := c.Block; seq < c.Block+c.Full; seq++ {
			if seq+maxAhead < s.low {
				continue // long gone here
			}
			l.learnAll(seq)
			l.hasManifest[seq] = true // advertised: it has the manifest
			if !s.source {
				// A block that is whole at the neighbour and of which
				// no piece reached us (no pusher yet: a member that
				// just started, or lost its pushers) is pulled like
				// any other. Without this a joiner that started at the
				// live edge lost the next block in about one run in
				// fifteen: its neighbours advertised it whole before
				// any push tree reached the joiner.
				s.getBlock(seq, now)
			}
		}
		if c.Full > 0 {
			for cl := range l.newest {
				l.newest[cl] = max(l.newest[cl], int64(c.Block+c.Full-1))
			}
		}
		for i, m := range c.Maps {
			seq := c.Block + c.Full + uint64(i)
			for j := 0; j < len(m)*8; j++ {
				if bitSet(m, j) {
					l.learn(seq, j)
					if cl := j % s.P; int64(seq) > l.newest[cl] {
						l.newest[cl] = int64(seq)
					}
				}
			}
			if len(m) > 0 {
				l.hasManifest[seq] = true // advertised: it has the manifest
				if !s.source {
					s.getBlock(seq, now) // learn of blocks no piece of reached us yet
				}
			}
		}
		if seq, ok := c.newest(); ok && !s.source && !s.anchored {
			// A stream this member did not publish runs: a key holder
			// stops being the root (unroot).
			s.unroot()
			// Not started: no verified manifest came yet, so no block
			// is in range (getBlock). The newest block a neighbour
			// holds is pulled, manifest first, which starts this
			// member as a pushed one would: a stream with nothing
			// pushed to this member yet (trees still forming, or a
			// block every few seconds) is not passed over. Provisional
			// like a pushed piece's block (pieceBlock): the manifest's
			// signature decides.
			s.pieceBlock(seq, now)
		}
		s.owe(l, c, now)
		if urgent && !s.rooted {
			s.reroute(now)
		}
	case ctlSubscribe:
		s.handleSubscribe(l, c)
	case ctlRefuse:
		if int(c.Modulus) != s.P {
			return
		}
		var refused uint64
		for _, k := range c.Classes {
			refused |= 1 << k
		}
		s.tryAnswered(l, refused, c.Ask, now)
		for _, k := range c.Classes {
			if s.backup[k] == l {
				// Refused as a backup: it may still push the class
				// as a pusher.
				s.backup[k] = nil
				l.backupRefused[k] = now.Add(8 * s.g.cfg.AvailabilityUpdatePeriod)
				continue
			}
			l.refused[k] = now.Add(8 * s.g.cfg.AvailabilityUpdatePeriod)
			if s.parents[k] == l {
				s.why[whyRefused]++
				s.parents[k] = nil
			}
		}
		s.selectParents(now)
	case ctlPull:
		s.handlePull(l, c)
	case ctlBusy:
		s.handleBusy(l, c, now)
	case ctlEnd:
		s.handleEnd(l, c, now)
	}
}

// handleEnd takes the publisher's end of the stream from l and floods it
// on.
func (s *stream) handleEnd(l *link, c *control, now time.Time) {
	if s.end != nil || s.source {
		return
	}
	if !verifyEnd(s.g.spec, s.g.id, c) {
		s.g.stats.ForgedDropped++
		s.g.ban(l)
		return
	}
	s.end, s.endAt = c, now
	for _, o := range s.g.links {
		if o != l {
			s.g.sendControl(o, c)
		}
	}
	s.checkEnd(now)
}

// checkEnd ends the output once it has passed the stream's last block, or
// a window after the end if this member never started (it joined after
// the stream's last blocks were gone).
func (s *stream) checkEnd(now time.Time) {
	if s.end == nil || s.ended() {
		return
	}
	late := now.Sub(s.endAt) > s.g.cfg.WindowDuration
	if s.feeding && s.dec.Head() < s.end.Count && late {
		// The last blocks did not come within a window of the end. The
		// decoder gives up on a block only once a later one is here,
		// and after the last there is none: they are lost.
		lost := s.end.Count - s.dec.Head()
		s.g.stats.BlocksLost += lost
		s.emit(Record{Offset: s.dec.Pos(), Lost: lost})
		close(s.endCh)
		return
	}
	if s.source || s.feeding && s.dec.Head() >= s.end.Count || !s.feeding && late {
		close(s.endCh)
	}
}

func (s *stream) ended() bool {
	select {
	case <-s.endCh:
		return true
	default:
		return false
	}
}

// handleSubscribe accepts the push classes l asks for as long as this
// member's push load stays within its limit, and refuses the rest.
func (s *stream) handleSubscribe(l *link, c *control) {
	if int(c.Modulus) != s.P {
		s.g.sendControl(l, &control{Type: ctlRefuse, Classes: c.Classes, Modulus: c.Modulus, Ask: c.Ask})
		return
	}
	copies := s.g.cfg.RelayPushCopies
	if s.rooted {
		copies = s.g.cfg.SourcePushCopies
	}
	// The publisher bounds each class to its copies, so every class
	// leaves it equally often; relays bound their total.
	load := 0
	perClass := make([]int, s.P)
	for _, o := range s.g.links {
		if o == l {
			continue
		}
		for k, on := range o.subs {
			if on {
				load++
				perClass[k]++
			}
		}
	}
	for i := range l.subs {
		l.subs[i] = false
	}
	var refused []byte
	for _, k := range c.Classes {
		if load < copies*s.P && (!s.rooted || perClass[k] < copies) {
			l.subs[k] = true
			load++
			perClass[k]++
		} else {
			refused = append(refused, k)
		}
	}
	if len(refused) > 0 || c.Ask != 0 {
		s.g.sendControl(l, &control{Type: ctlRefuse, Classes: refused, Modulus: uint8(s.P), Ask: c.Ask})
	}
}

func (s *stream) handlePull(l *link, c *control) {
	b := s.blocks[c.Block]
	if b != nil && b.sm == nil && len(b.pending) > 0 {
		// We relayed pieces of it before its manifest (relay), so the
		// asker counts us a holder: it is answered when the manifest
		// comes (handleManifest), not left to its retry period.
		for i, d := range b.deferred {
			if d.l == l {
				b.deferred[i].c = *c
				return
			}
		}
		if len(b.deferred) < maxDeferred {
			s.pullMiss[pullDeferred]++
			b.deferred = append(b.deferred, deferredPull{l, *c})
			return
		}
	}
	if b == nil || b.sm == nil {
		if b == nil && c.Block < s.low {
			s.pullMiss[pullGone]++
		} else {
			s.pullMiss[pullUnknown]++
		}
		return
	}
	// At least sourcePullFloor blocks' worth: early in a stream the
	// share is tiny, and a block that a dropped forger or a dead relay
	// was the only carrier of has nobody else to come from. Manifests
	// count: at 1,000 members the manifests sent with refused pulls cost
	// the publisher 0.4 × the stream.
	floor := float64(sourcePullFloor * s.g.cfg.K * s.g.cfg.FragmentSize)
	budget := s.g.cfg.RelayPullShare * float64(s.g.stats.Received.Total())
	if s.source {
		budget = s.g.cfg.SourcePullShare * float64(s.g.stats.BytesPublished)
	}
	if float64(s.g.stats.Sent.Pull+s.pulledParity+s.pulledManifests) > max(budget, floor) {
		refuse := c.Manifest
		if c.Manifest {
			switch asked := slices.Contains(b.manifestRefused, l); {
			case asked && !l.hasManifest[b.seq]:
				// Asked again after our busy answer: for busyFor the
				// asker found no other holder. A manifest is a few
				// hundred bytes, the block's pieces cannot be checked
				// without it, and we may be its only honest holder (the
				// publisher, when the carriers it pushed the manifest to
				// were forgers, dropped): it goes past the share, once
				// per neighbour and block (sendManifest marks it had).
				s.sendPulledManifest(l, b)
				s.g.stats.ManifestsPastShare++
				refuse = false
			case !asked && len(b.manifestRefused) < maxManifestRefused:
				b.manifestRefused = append(b.manifestRefused, l)
			}
		}
		if !refuse && !slices.ContainsFunc(c.Want, func(x byte) bool { return x != 0 }) {
			return
		}
		// Said, not left silent: the asker turns to another holder at
		// once instead of waiting out its retry period.
		s.g.stats.PullsRefused++
		if !s.quietRefusal {
			s.g.sendControl(l, &control{Type: ctlBusy, Block: c.Block, Want: c.Want, Manifest: refuse})
		}
		return
	}
	if c.Manifest {
		s.sendPulledManifest(l, b)
	}
	late := !time.Now().Before(b.deadline)
	for i := range b.pieces {
		if !bitSet(c.Want, i) {
			continue
		}
		if !bitSet(b.have, i) {
			s.pullMiss[pullNotHeld]++
			continue
		}
		if late {
			s.pullMiss[pullPastDeadline]++
		}
		p := b.piece(i)
		msg, _ := appendPieceMsg(nil, viaPull, p)
		l.learn(b.seq, i)
		s.g.stats.PullsServed++
		if p.IsParity() {
			s.pulledParity += uint64(len(msg))
		}
		s.sendPiece(l, b, p, msg)
	}
}

// sendPulledManifest answers a pull for b's manifest, counting it against
// the pull share.
func (s *stream) sendPulledManifest(l *link, b *block) {
	before := s.g.stats.Sent.Control
	s.sendManifest(l, b, -1)
	s.pulledManifests += s.g.stats.Sent.Control - before
}

// maxManifestRefused bounds the neighbours a block remembers refusing its
// manifest (handlePull): past it, a refused asker is refused again.
const maxManifestRefused = 64

// busyFor is how long a neighbour that answered a pull busy is not asked
// for pulls (while others hold what is wanted): its share grows with what
// it receives, about a block's worth in this time.
const busyFor = time.Second

// handleBusy takes l's refusal of a pull: what it refused is asked again
// of another holder at the next tick.
func (s *stream) handleBusy(l *link, c *control, now time.Time) {
	s.g.stats.PullsBusy++
	l.busyUntil = now.Add(busyFor)
	b := s.blocks[c.Block]
	if b == nil {
		return
	}
	b.busy++
	if c.Manifest && b.sm == nil {
		b.nextPull = time.Time{}
	}
	for i := range b.asked {
		if bitSet(c.Want, i) && !bitSet(b.have, i) {
			b.asked[i], b.askedOf[i] = time.Time{}, nil
		}
	}
}

// pull asks neighbours for what blocks still lack once pushes had
// FetchPeriod to arrive: the manifest, then just enough pieces to reach
// k', from neighbours that advertised them. A piece asked for is not asked
// again for 2 FetchPeriods, so a slow link is not answered with more load;
// the publisher is asked only when nobody else has a piece.
func (s *stream) pull(now time.Time) {
	g := s.g
	// Pushes get FetchPeriod, or longer where they measurably take
	// longer (deep trees, long links), up to a quarter of the window.
	fp := min(max(g.cfg.FetchPeriod, s.fill+2*s.fillDev), g.cfg.WindowDuration/4)
	retry := 2 * fp
	for _, b := range s.blocks {
		if now.After(b.deadline) || b.seq < s.dec.Head() {
			continue
		}
		if b.fragsOnly {
			continue // not closed at the publisher yet, as far as we know
		}
		if b.sm == nil {
			// Pieces wait for the manifest, so it is pulled early.
			if now.Before(b.first.Add(fp/3)) || now.Before(b.nextPull) {
				continue
			}
			l := s.manifestHolder(b.seq, now)
			if l != nil {
				b.nextPull = now.Add(askWait(l, retry))
				b.pulls++
				g.stats.PullsSent++
				g.sendControl(l, &control{Type: ctlPull, Block: b.seq, Manifest: true})
			}
			continue
		}
		need := b.sm.Manifest.K - b.count
		// Before the fetch period, only the classes whose pusher
		// changed are pulled (switchedPusher).
		early := now.Before(b.first.Add(fp))
		if need <= 0 || early && (b.switchPull.IsZero() || now.Before(b.switchPull)) {
			continue
		}
		if b.asked == nil {
			b.asked = make([]time.Time, len(b.pieces))
			b.askedOf = make([]*link, len(b.pieces))
		}
		for i, t := range b.asked {
			if bitSet(b.have, i) || t.IsZero() {
				continue
			}
			if now.Sub(t) < askWait(b.askedOf[i], retry) {
				need--
			} else if l := b.askedOf[i]; l != nil {
				// Unanswered: its session may be backing off after
				// losses; others are asked first for a while.
				g.stats.PullsUnanswered++
				l.slowUntil = now.Add(busyFor)
				b.askedOf[i] = nil
			}
		}
		// The publisher's upload is the scarcest: ask it only for blocks
		// that are late.
		late := now.After(b.first.Add(retry))
		var want map[*link][]byte
		for i := 0; i < len(b.pieces) && need > 0; i++ {
			if bitSet(b.have, i) || (!b.asked[i].IsZero() && now.Sub(b.asked[i]) < askWait(b.askedOf[i], retry)) {
				continue
			}
			if early && b.switchClasses&(1<<(i%s.P)) == 0 {
				continue
			}
			l := s.holder(b.seq, i, late, now)
			if l == nil {
				continue
			}
			if want == nil {
				want = make(map[*link][]byte)
			}
			w := want[l]
			if w == nil {
				w = make([]byte, (len(b.pieces)+7)/8)
				want[l] = w
			}
			setBit(w, i)
			b.asked[i], b.askedOf[i] = now, l
			need--
		}
		for l, w := range want {
			if len(b.asks) < maxAsks {
				b.asks = append(b.asks, ask{l, now})
			}
			b.pulls++
			g.stats.PullsSent++
			g.sendControl(l, &control{Type: ctlPull, Block: b.seq, Want: w})
		}
	}
}

// askWait is how long a pull to l waits for its answer before it counts
// as unanswered and the pieces are asked again: retry, or two of l's
// round trips if longer (a pull and its answer take one, plus the queue
// in front of the answer). With a fixed wait, every pull over a 400 ms
// round trip was judged unanswered before its answer could come.
func askWait(l *link, retry time.Duration) time.Duration {
	if l == nil {
		return retry
	}
	return max(retry, 4*l.halfRTT)
}

// holder picks a random neighbour known to hold piece i of block seq (any
// piece if i < 0), preferring members other than the publisher, which it
// picks only if source is true, then one that did not leave a pull
// unanswered lately; never one that answered a pull busy less than
// busyFor ago (asked again at once, it would only say busy again).
func (s *stream) holder(seq uint64, i int, source bool, now time.Time) *link {
	return s.pick(now, func(l *link) int {
		m := l.know[seq]
		switch {
		case m == nil || (i >= 0 && !bitSet(m, i)) || (l.source && !source):
			return -1
		case l.source:
			return 0
		}
		return 1
	})
}

// manifestHolder picks whom to ask for block seq's manifest: a neighbour
// known to hold it (it advertised the block or exchanged the manifest with
// us), else the publisher if it is a neighbour, else one that sent us
// pieces of the block (relayed before the manifest, so it answers once
// the manifest reaches it: handlePull). The publisher comes before mere
// piece holders: those that got pieces before the manifest are its own
// neighbours, and two of them asking each other would wait until both
// gave up.
func (s *stream) manifestHolder(seq uint64, now time.Time) *link {
	return s.pick(now, func(l *link) int {
		switch {
		case l.hasManifest[seq] && !l.source:
			return 2
		case l.hasManifest[seq] || l.source:
			return 1
		case l.know[seq] != nil:
			return 0
		}
		return -1
	})
}

// pick returns a neighbour of the highest rank (rank < 0: never), among
// those one that did not leave a pull unanswered lately, at random among
// equals; never one that answered a pull busy less than busyFor ago.
func (s *stream) pick(now time.Time, rank func(*link) int) *link {
	var best *link
	var bestRank int
	var bestScore uint64
	for _, l := range s.g.links {
		r := rank(l)
		if r < 0 || now.Before(l.busyUntil) {
			continue
		}
		score := s.g.rnd.Uint64() >> 1
		if !now.Before(l.slowUntil) {
			score |= 1 << 63
		}
		if best == nil || r > bestRank || r == bestRank && score > bestScore {
			best, bestRank, bestScore = l, r, score
		}
	}
	return best
}

// routeWait is how long, before the stream, a pusher may stay without a
// route in its class before the class goes to a neighbour that has one
// over the load limit (selectParents): longer than the trees take to
// form through distinct neighbours (about 2 s for 16 members).
const routeWait = 3 * time.Second

// idleDelaySlack is how far (in delayUnit steps) an idle member's delay
// from the publisher may move before it advertises at once: round-trip
// samples move it a little all the time.
const idleDelaySlack = 2

// delaysMoved reports whether advertised delays a and b differ: in
// length, in which classes have one, or by more than idleDelaySlack.
func delaysMoved(a, b []byte) bool {
	if len(a) != len(b) {
		return true
	}
	for i := range a {
		switch {
		case (a[i] == noDelay) != (b[i] == noDelay):
			return true
		case max(a[i], b[i])-min(a[i], b[i]) > idleDelaySlack:
			return true
		}
	}
	return false
}

// myDepth is this member's hops from the publisher in class k's tree.
func (s *stream) myDepth(k int) int {
	if s.rooted {
		return 0
	}
	if p := s.parents[k]; p != nil {
		return min(p.depth[k]+1, noRoute)
	}
	return noRoute
}

// myDelay is this member's delay from the publisher in class k's tree:
// its pusher's, plus the hop from it; ok is false without a route.
func (s *stream) myDelay(k int) (time.Duration, bool) {
	if s.rooted {
		return 0, true
	}
	if p := s.parents[k]; p != nil {
		return p.via(k)
	}
	return 0, false
}

// minHop is the least a hop counts for in the delay from the publisher,
// however short its round trip: each relay adds its own handling, and
// trees chosen on fast links (a LAN, or the test harness's 1 ms links
// before the stream) would otherwise be as deep as chance made them, the
// switch margin (at least 20 ms) hiding the extra hops.
const minHop = 10 * time.Millisecond

// defaultHop stands for the delay of a hop whose round trip is not
// measured yet.
const defaultHop = 50 * time.Millisecond

// via is how long class k's pieces take from the publisher to this member
// through l: l's advertised delay (its hops times this hop's, if it told
// none) plus half l's round trip. ok is false when l has no route.
func (l *link) via(k int) (time.Duration, bool) {
	if l.depth[k] >= noRoute {
		return 0, false
	}
	hop := l.halfRTT
	if hop <= 0 {
		hop = defaultHop
	}
	hop = max(hop, minHop)
	d := l.delay[k]
	if d < 0 {
		d = time.Duration(l.depth[k]) * hop
	}
	return d + hop, true
}

// Withheld pieces. A pusher relays every piece of its classes as it
// gets it (received, pulled or rebuilt), unless it knows this member
// holds it or the block's deadline passed; only then can it advertise the
// piece. So a piece of a pusher's class that it advertises while this
// member lacks it is owed: it is on its way. One that never comes within
// oweGrace was withheld. An honest pusher misses a few (a congested link
// holds pushes back past their deadline, a queue overflows) among the
// many it pushes; a pusher that withholds at least oweMinMissed pieces
// and more than oweRatio times as many as it pushed is banned.
const (
	oweGrace     = time.Second
	oweMinMissed = 8
	oweRatio     = 4
	maxOwed      = 1024 // per link: bounds what a neighbour's maps cost
)

// owe records the pieces l's availability map c shows it holds, of the
// classes it pushes to this member, that this member lacks.
func (s *stream) owe(l *link, c *control, now time.Time) {
	if s.source {
		return
	}
	var classes []int
	for k, p := range s.parents {
		// A pusher chosen a moment ago may not have our request yet.
		if p == l && now.Sub(l.parentAt[k]) > oweGrace {
			classes = append(classes, k)
		}
	}
	if len(classes) == 0 {
		return
	}
	// Pieces are owed until a quarter of the window before this
	// member's relay deadline for their block, not until the deadline
	// itself: a pusher relays a piece only until its own deadline, which
	// runs from when the block reached it, possibly well before it
	// reached here. Judged until our own deadline, honest pushers were
	// banned as withholders (2 of 1,000 members did so in a 60 s run at
	// 5 % loss).
	slack := s.g.cfg.WindowDuration / 4
	// With backup pushers this member seldom lacks what a pusher owes
	// (the backup brought it), so a piece that came here from another
	// neighbour is owed too unless the pusher itself sent it, also in a
	// block rebuilt here; the pieces rebuilt here are not (the pusher,
	// told the block is whole, skips them). Nor is a piece that came
	// here a round trip or more before l's map: l may have known we held
	// it (our map or our notice that the block is whole) before it had
	// it, and an honest pusher skips what it knows we hold. A pusher
	// slower than the backup skips most of its pieces so, and with them
	// counted it was banned as a withholder (1 honest member of 27 in 1
	// of 6 runs of the hostile test); a withholder holds its pieces
	// sooner than we get them from the backup and sends none.
	backups := s.g.cfg.BackupPushers
	// settled: piece i of b, held here, is not owed by l.
	settled := func(b *block, i int) bool {
		return !backups || bitSet(l.sentUs[b.seq], i) || bitSet(b.made, i) ||
			b.gotAt == nil || now.Sub(time.Unix(0, b.gotAt[i])) >= 2*l.halfRTT
	}
	check := func(seq uint64, held func(i int) bool) {
		b := s.blocks[seq]
		if b == nil || b.sm == nil || b.rebuilt && !backups || !now.Add(oweGrace+slack).Before(b.deadline) {
			return
		}
		for _, k := range classes {
			for i := k; i < len(b.pieces); i += s.P {
				key := pieceKey{seq, i}
				if bitSet(b.have, i) && settled(b, i) || !held(i) || len(l.owed) >= maxOwed ||
					i > b.sm.Manifest.K && (s.spare || now.Sub(s.spareOffAt) < s.g.cfg.WindowDuration) {
					continue // (a parity piece we asked not to get)
				}
				if _, ok := l.owed[key]; !ok {
					l.owed[key] = now.Add(oweGrace)
				}
			}
		}
	}
	for seq := c.Block; seq < c.Block+c.Full; seq++ {
		check(seq, func(int) bool { return true })
	}
	for i, m := range c.Maps {
		check(c.Block+c.Full+uint64(i), func(j int) bool { return bitSet(m, j) })
	}
}

// checkOwed counts the owed pieces whose time is up and bans a pusher
// that withholds them.
func (s *stream) checkOwed(now time.Time) {
	for _, l := range s.g.links {
		for key, due := range l.owed {
			if now.After(due) {
				delete(l.owed, key)
				l.owedMissed++
				s.g.stats.WithheldPieces++
			}
		}
		// A pusher that never pushed a piece but serves our pulls (so
		// its link carries data, unlike an honest pusher starved by
		// heavy loss) is judged on fewer.
		if l.owedMissed >= oweMinMissed && l.owedMissed > oweRatio*l.pushed ||
			l.owedMissed >= oweMinMissed/2 && l.pushed == 0 && l.pulled >= oweMinMissed/2 {
			s.g.banFor(l, "withheld the pieces it pushes", false)
		}
	}
}

// checkWithholding shuns every pusher that sends nothing of a class it
// took on while it advertises the class's newest block and that block's
// piece reached this member otherwise a while ago: the class is taken
// from it for withholdShun availability periods.
func (s *stream) checkWithholding(now time.Time) {
	for c, p := range s.parents {
		if p == nil || s.classNewest[c] < 0 || p.newest[c] < s.classNewest[c] {
			continue
		}
		quiet := now.Sub(p.pushedAt[c])
		if quiet <= s.withholdAfter() || now.Sub(s.classNewestAt[c]) <= s.g.cfg.FetchPeriod || !s.classNewestAt[c].After(p.pushedAt[c]) {
			continue
		}
		// Shunned, not banned: a pusher deep in its tree can be silent
		// for as long without fault (its pieces arrive after this member
		// rebuilt them from parity, so it skips them); banning on this
		// banned honest members at 200 members over 20-60 ms links.
		s.g.stats.PushersShunned++
		s.g.stats.Withholding++
		s.why[whySilent]++
		p.refused[c] = now.Add(withholdShun * s.g.cfg.AvailabilityUpdatePeriod)
		s.parents[c] = nil
		s.subscribe(p)
	}
}

// holdPushLinks keeps open the sessions that carry pushes, to this member
// or from it, while they do and for a window after (overlay.Host.Hold):
// the overlay closes a session once it has no more use for it (a
// neighbour replaced by a nearer one, a link it evicted), and each time
// a push tree lost a branch under a member that had done nothing wrong.
func (s *stream) holdPushLinks(now time.Time) {
	flowing := s.source || s.anchored // (members choose pushers before data comes)
	for _, l := range s.g.links {
		if flowing && (slices.Contains(s.parents, l) || slices.Contains(s.backup, l) || slices.Contains(l.subs, true)) {
			l.carriedAt = now
			if l.hold == nil {
				l.hold = s.g.host.Hold(l.sess)
			}
		} else if l.hold != nil && now.Sub(l.carriedAt) > s.g.cfg.WindowDuration {
			s.g.releaseHold(l)
		}
	}
}

// subscribe tells l the push classes this member now wants from it.
func (s *stream) subscribe(l *link) {
	var classes []byte
	ask := false
	for c, p := range s.parents {
		if p == l || s.trying[c] == l || s.backup[c] == l {
			classes = append(classes, byte(c))
			ask = ask || s.trying[c] == l
		}
	}
	m := &control{Type: ctlSubscribe, Classes: classes, Modulus: uint8(s.P)}
	if ask {
		l.asks++
		l.tryAsk, m.Ask = l.asks, l.asks
	}
	s.g.sendControl(l, m)
}

// tryWait is how long a neighbour asked to take a class (trying) has to
// answer before it is taken to accept in silence, as members that
// predate answers do.
func tryWait(l *link) time.Duration {
	return 4*max(l.halfRTT, defaultHop) + 250*time.Millisecond
}

// tryAnswered takes l's answer to our subscriptions: the classes it
// refused (a bitmap) stay with their pushers, and if ask answers the last
// subscription that asked, l takes the other classes it was asked for.
func (s *stream) tryAnswered(l *link, refused uint64, ask uint64, now time.Time) {
	moved := false
	for c, t := range s.trying {
		switch {
		case t != l:
		case refused&(1<<c) != 0:
			s.trying[c] = nil
			s.g.stats.PusherTriesRefused++
		case ask != 0 && ask >= l.tryAsk:
			moved = s.commitTry(c, now) || moved
		}
	}
	if moved {
		s.extraAdvertise()
	}
}

// commitTry makes class c's candidate (trying) its pusher and releases
// the old one. It reports whether this member's hops in c changed.
func (s *stream) commitTry(c int, now time.Time) bool {
	t, cur := s.trying[c], s.parents[c]
	s.trying[c] = nil
	depth := s.myDepth(c)
	s.takeClass(c, t, s.tryingWhy[c], now)
	if cur != nil && s.g.links[cur.peer] == cur {
		s.subscribe(cur)
	}
	return s.myDepth(c) != depth
}

// takeClass makes l class c's pusher in place of the current one (or of
// none), counting the change under why; telling the neighbours is the
// caller's.
func (s *stream) takeClass(c int, l *link, why int, now time.Time) {
	cur := s.parents[c]
	s.why[why]++
	s.g.stats.PusherChanges++
	l.late[c] = 0
	l.pushedAt[c] = now // its pushes are judged from here
	l.parentAt[c] = now
	s.parents[c] = l
	s.switchedPusher(c, cur, l, now)
}

// extraAdvertise advertises now, beyond the periodic advertisement, if
// this period's allowance is not spent: availRate-1 extra ones a period
// at most, since neighbours allow availRate a period, and where routes
// flap (large groups) an honest member must not look like a flooder. The
// periodic one carries later changes.
func (s *stream) extraAdvertise() {
	if s.extraAdvertised < availRate-1 {
		s.advertise()
		s.extraAdvertised++
	}
}

// switchedPusher marks the blocks still short of pieces when class c
// moved from old (nil: it had none) to its new pusher: the new one pushes
// only what reaches it after our subscription, and the old one stops
// when it reads that we left, so pieces of c that reached the new pusher
// before and the old one after never come. Once anything either could
// still send has had time to arrive (a round trip to the slower of the
// two), the pieces of c these blocks lack are pulled, instead of a fetch
// period after the block began.
func (s *stream) switchedPusher(c int, old, next *link, now time.Time) {
	rtt := 2 * next.halfRTT
	if old != nil {
		rtt = max(rtt, 2*old.halfRTT)
	}
	at := now.Add(max(rtt, 0) + switchSlack)
	for _, b := range s.blocks {
		if b.sm == nil || b.count >= b.sm.Manifest.K || now.After(b.deadline) {
			continue
		}
		lacks := false
		for i := c; i < len(b.pieces); i += s.P {
			lacks = lacks || !bitSet(b.have, i)
		}
		if !lacks {
			continue
		}
		if b.switchPull.IsZero() || at.Before(b.switchPull) {
			b.switchPull = at
		}
		b.switchClasses |= 1 << c
	}
}

// switchSlack is what switchedPusher waits beyond the round trip.
const switchSlack = 10 * time.Millisecond

// candScore orders a class's candidate pushers (selectParents): lower
// is better, field by field.
type candScore struct {
	stale, over int
	cost        time.Duration
	rank        uint64
}

func (a candScore) less(b candScore) bool {
	if a.stale != b.stale {
		return a.stale < b.stale
	}
	if a.over != b.over {
		return a.over < b.over
	}
	if a.cost != b.cost {
		return a.cost < b.cost
	}
	return a.rank < b.rank
}

// cost is how long class c's pieces take from the publisher through l
// (noRouteCost without a route).
func cost(l *link, c int) time.Duration {
	if d, ok := l.via(c); ok {
		return d
	}
	return noRouteCost
}

const noRouteCost = time.Hour

// switchMargin is how much nearer than the current pusher another must be
// to take its place: a fifth of the delay, at least 20 ms, so delays that
// move with every round-trip sample do not make the trees flap.
func switchMargin(best time.Duration) time.Duration {
	return max(20*time.Millisecond, best/5)
}

// selectParents chooses, for every push class, the neighbour to push it:
// the one nearest the publisher in that class's tree, in time (the delay
// it advertises plus half our round trip to it; hops times that half for
// a neighbour that advertises no delay), spreading classes over distinct
// neighbours while there are enough (one session cannot always carry the
// whole stream under loss). It keeps the current pusher unless another is
// nearer by switchMargin or the current one's pushes come late (then it
// is shunned for a while), and tells the neighbours whose set changed.
func (s *stream) selectParents(now time.Time) {
	if s.rooted || s.g.closed {
		return
	}
	perLink := (s.P + len(s.g.links) - 1) / max(len(s.g.links), 1)
	for c, t := range s.trying {
		switch {
		case t == nil:
		case s.g.links[t.peer] != t:
			s.trying[c] = nil
		case now.Sub(s.tryingAt[c]) > tryWait(t):
			// No answer: a member older than answers accepts in silence.
			s.commitTry(c, now)
		}
	}
	before := slices.Clone(s.parents)
	// A pusher whose pushes come a quarter of the window late, or four
	// of its link's one-way delays if more (its session to this member
	// has collapsed: they arrive long after the member pulled the
	// pieces), is shunned in every class at once, for
	// as long as a withholder. Shunned one class a round, as below, it
	// kept its other classes, took the shunned one back or another in
	// its place, and the member lived on pulls.
	for c, p := range s.parents {
		if p == nil || p.late[c] <= max(s.g.cfg.WindowDuration/4, 4*p.halfRTT) {
			continue
		}
		until := now.Add(withholdShun * s.g.cfg.AvailabilityUpdatePeriod)
		for k := range p.refused {
			p.refused[k] = maxTime(p.refused[k], until)
			p.late[k] = 0
			if s.trying[k] == p {
				s.trying[k] = nil // not taken either
			}
			if s.parents[k] == p {
				s.parents[k] = nil
				s.g.stats.PushersShunned++
				s.why[whyLate]++
			}
		}
	}
	load := make(map[*link]int)
	var lates []time.Duration
	worst := -1
	for c, p := range s.parents {
		switch {
		case p == nil:
		case s.g.links[p.peer] != p || now.Before(p.refused[c]):
			s.parents[c] = nil
		default:
			load[p]++
			lates = append(lates, p.late[c])
			if worst < 0 || p.late[c] > s.parents[worst].late[worst] {
				worst = c
			}
		}
	}
	// Shun the latest pusher for a while if it is much later than the
	// others: it is deep in its tree or its path is slow. Later means by
	// more than FetchPeriod or two of its link's one-way delays, whichever
	// is more: where every link takes 200 ms, a class one hop deeper than
	// the others comes 200 ms late, and shunning it (past FetchPeriod,
	// 150 ms) churned the trees (TestLongLinks).
	if len(lates) >= 3 {
		slices.Sort(lates)
		med := lates[len(lates)/2]
		if p := s.parents[worst]; p.late[worst] > max(s.g.cfg.FetchPeriod, 2*p.halfRTT) && p.late[worst] > 3*med {
			p.refused[worst] = now.Add(10 * s.g.cfg.AvailabilityUpdatePeriod)
			s.g.stats.PushersShunned++
			s.why[whyLate]++
			p.late[worst] = 0
			load[p]--
			s.parents[worst] = nil
		}
	}
	changed := make(map[*link]bool)
	for c := 0; c < s.P; c++ {
		cur := s.parents[c]
		if t := s.trying[c]; t != nil {
			if cur != nil {
				load[t]++ // waiting for its answer
				continue
			}
			// The pusher went (refused, shunned, gone): the class is
			// given now, maybe to the same candidate.
			s.trying[c] = nil
			changed[t] = true
		}
		// Candidates hold the newest pieces of the class (within a
		// block); among them the nearest the publisher wins.
		newest := int64(-1)
		for _, l := range s.g.links {
			newest = max(newest, l.newest[c])
		}
		// Candidates are ordered by a score: fresh first, then within
		// the load limit, then nearest the publisher (in delay), then a
		// stable random rank. Each link's score is worked out once.
		var best, routed *link
		var bestScore, routedScore candScore
		for _, l := range s.g.links {
			if now.Before(l.refused[c]) {
				continue
			}
			sc := candScore{cost: cost(l, c), rank: l.rank[c]}
			if l.newest[c]+2 < newest {
				sc.stale = 1
			}
			if l != cur && load[l] >= perLink {
				sc.over = 1
			}
			if best == nil || sc.less(bestScore) {
				best, bestScore = l, sc
			}
			if !s.anchored && sc.cost < noRouteCost && (routed == nil || sc.cost < routedScore.cost) {
				// (Only read before the stream, below.)
				routed, routedScore = l, sc
			}
		}
		if !s.anchored && cur != nil && cost(cur, c) == noRouteCost && now.Sub(cur.parentAt[c]) > routeWait &&
			bestScore.cost == noRouteCost && routed != nil {
			// Before the stream no freshness ranks the candidates,
			// and by load alone a class whose routes all run through
			// neighbours already pushing another class here went to
			// neighbours without a route, which chose each other: no
			// member had a route in it until the stream began. A
			// pusher still without a route after routeWait gives the
			// class to the nearest neighbour with one, over the load
			// limit (at once, classes would pile on the few
			// neighbours with routes while the trees form).
			best, bestScore = routed, routedScore
		}
		if cur != nil && (best == nil || (cur.newest[c]+4 >= newest && cost(cur, c) <= cost(best, c)+switchMargin(cost(best, c)))) {
			continue
		}
		if best == cur || best == nil {
			continue
		}
		if cur != nil {
			// Make before break: cur keeps pushing until best answers
			// (tryAnswered); a refusal then costs nothing.
			why := whyDeeper
			if cur.newest[c]+4 < newest {
				why = whyStale
			}
			s.trying[c], s.tryingAt[c], s.tryingWhy[c] = best, now, why
			changed[best] = true
			load[best]++
			continue
		}
		changed[best] = true
		load[best]++
		s.takeClass(c, best, whyFill, now)
	}
	if s.g.cfg.BackupPushers {
		s.selectBackups(now, changed)
	}
	// Every neighbour whose set of classes changed is told, including
	// one dropped above for refusing or for being late.
	for c, p := range before {
		if p != s.parents[c] {
			if p != nil {
				changed[p] = true
			}
			if s.parents[c] != nil {
				changed[s.parents[c]] = true
			}
		}
	}
	for l := range changed {
		if s.g.links[l.peer] != l {
			continue
		}
		s.subscribe(l)
	}
}

// selectBackups chooses, for every push class, a second neighbour to
// push it (Config.BackupPushers): among those that are not its pusher
// (or the candidate for it), not the publisher, not refusing, and not
// below this member in the class's tree (their depth at most ours: a
// member below us would get the class through us), the nearest the
// publisher, within the same load limit per neighbour as the pushers.
// The current backup stays unless it no longer qualifies or another is
// nearer by switchMargin. Neighbours whose set changed go into changed.
func (s *stream) selectBackups(now time.Time, changed map[*link]bool) {
	perLink := (s.P + len(s.g.links) - 1) / max(len(s.g.links), 1)
	load := make(map[*link]int)
	for _, b := range s.backup {
		if b != nil {
			load[b]++
		}
	}
	for c := 0; c < s.P; c++ {
		cur := s.backup[c]
		mine := s.myDepth(c)
		fit := func(l *link) bool {
			return l != s.parents[c] && l != s.trying[c] && s.g.links[l.peer] == l &&
				l.depth[c] > 0 && l.depth[c] <= mine && l.depth[c] < noRoute &&
				!now.Before(l.refused[c]) && !now.Before(l.backupRefused[c])
		}
		if cur != nil && !fit(cur) {
			load[cur]--
			s.backup[c] = nil
			changed[cur] = true
			cur = nil
		}
		var best *link
		var bestCost time.Duration
		for _, l := range s.g.links {
			if !fit(l) || l != cur && load[l] >= perLink {
				continue
			}
			if d := cost(l, c); best == nil || d < bestCost || d == bestCost && l.rank[c] < best.rank[c] {
				best, bestCost = l, d
			}
		}
		if best == nil || best == cur || cur != nil && cost(cur, c) <= bestCost+switchMargin(bestCost) {
			continue
		}
		if cur != nil {
			load[cur]--
			changed[cur] = true
		}
		load[best]++
		s.backup[c] = best
		changed[best] = true
	}
}

func (s *stream) fillStats(st *Stats) {
	st.LatencySamples = len(s.lat.samples)
	st.LatencyP50 = s.lat.percentile(0.50)
	st.LatencyP99 = s.lat.percentile(0.99)
	for _, b := range s.backup {
		if b != nil {
			st.BackupClasses++
		}
	}
	// Bytes of blocks given up on whose end is not known yet (inGap) are
	// counted in BytesLost once the next data arrives (drain).
}

// Publisher writes a stream into the group.
type Publisher struct {
	g *Group
}

// ErrStreamEnded is returned by Publisher.Write after Close.
var ErrStreamEnded = errors.New("group: the stream has ended")

// Publish makes this member the group's publisher. In a group whose
// specifier names a publisher key, Config.PublisherKey must be its private
// key: every block's manifest is signed with it.
func (g *Group) Publish() (*Publisher, error) {
	if g.st == nil {
		return nil, ErrMulticastOff
	}
	if len(g.spec.PublisherKey) > 0 && !ownsPublisherKey(g.spec, g.cfg.PublisherKey) {
		return nil, ErrNotPublisher
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.st
	if s.enc != nil {
		return nil, ErrAlreadyPublished
	}
	enc, err := fec.NewEncoder(s.params)
	if err != nil {
		return nil, err
	}
	// Blocks are numbered from the run's start (see runShift): above
	// whatever this key published before a restart.
	if err := enc.StartAt(runStart(time.Now())); err != nil {
		return nil, err
	}
	s.enc, s.source = enc, true
	s.start, s.low = enc.NextSeq(), enc.NextSeq()
	s.root()
	// A publisher needs no pushers: cancel any chosen (or being asked)
	// before it published.
	for c, l := range s.parents {
		if t := s.trying[c]; t != nil {
			s.trying[c] = nil
			g.sendControl(t, &control{Type: ctlSubscribe, Modulus: uint8(s.P)})
		}
		if l != nil {
			s.parents[c] = nil
			g.sendControl(l, &control{Type: ctlSubscribe, Modulus: uint8(s.P)})
		}
	}
	// Subscriptions accepted before this member became the publisher
	// were within a relay's limits: trim them to the publisher's.
	perClass := make([]int, s.P)
	for _, l := range g.links {
		var refused []byte
		for k, on := range l.subs {
			if !on {
				continue
			}
			if perClass[k] >= g.cfg.SourcePushCopies {
				l.subs[k] = false
				refused = append(refused, byte(k))
				continue
			}
			perClass[k]++
		}
		if len(refused) > 0 {
			g.sendControl(l, &control{Type: ctlRefuse, Classes: refused, Modulus: uint8(s.P)})
		}
	}
	// Tell the neighbours at once that the trees start here.
	s.advertise()
	return &Publisher{g: g}, nil
}

// Write publishes b. Bytes are sent when their block closes: when it holds
// K fragments or BlockDelay after its first byte.
func (p *Publisher) Write(ctx context.Context, b []byte) (int, error) {
	g := p.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, ErrClosed
	}
	if g.st.end != nil {
		return 0, ErrStreamEnded
	}
	if runOf(g.st.enc.NextSeq()+uint64(len(b)/g.st.params.FragmentSize/g.st.params.K)+1) != runOf(g.st.start) {
		return 0, ErrStreamTooLong
	}
	now := time.Now()
	g.st.enc.Write(now, b)
	g.stats.BytesPublished += uint64(len(b))
	g.st.emitBlocks(now)
	if g.cfg.EarlyFragments {
		g.st.emitFragments(now)
	}
	return len(b), ctx.Err()
}

// Sync closes the open block now and sends it.
func (p *Publisher) Sync() {
	g := p.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.st.enc.Sync()
	g.st.emitBlocks(time.Now())
}

// Close ends the stream: the open block is sent, then the end (signed
// like the blocks) floods the group, and every subscriber's Next returns
// io.EOF once its output has passed the last block. Later writes fail
// with ErrStreamEnded. The member stays in the group, relaying and
// serving pulls while the stream's last blocks are in the window.
func (p *Publisher) Close() error {
	g := p.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	s := g.st
	if s.end != nil {
		return nil
	}
	now := time.Now()
	s.enc.Sync()
	s.emitBlocks(now)
	c := &control{Type: ctlEnd, Count: s.published, End: g.stats.BytesPublished, Stamp: now.UnixNano()}
	if len(g.spec.PublisherKey) > 0 {
		c.Sig = ed25519.Sign(g.cfg.PublisherKey, endSigningBytes(g.id, c))
	}
	s.end, s.endAt = c, now
	for _, l := range g.links {
		g.sendControl(l, c)
	}
	s.checkEnd(now)
	return nil
}

// emitFragments signs and sends the full fragments of the open block
// (Config.EarlyFragments): each goes down its class's tree now, and
// its block's other pieces and manifest when the block closes.
func (s *stream) emitFragments(now time.Time) {
	g := s.g
	for {
		f, ok := s.enc.Filled()
		if !ok {
			return
		}
		b := s.getBlock(f.Block, now)
		if b == nil || b.sm != nil {
			continue
		}
		fr := &fragment{p: fec.Piece{Block: f.Block, Offset: f.Offset, Index: f.Index, Data: f.Data}, stamp: now.UnixNano()}
		if len(g.spec.PublisherKey) > 0 {
			fr.sig = ed25519.Sign(g.cfg.PublisherKey, fragmentSigningBytes(g.id, fr))
		}
		s.relay(b, fr.p, fr, nil, now)
	}
}

// emitBlocks signs and sends the encoder's closed blocks.
func (s *stream) emitBlocks(now time.Time) {
	g := s.g
	for {
		blk, ok := s.enc.Next()
		if !ok {
			return
		}
		mf, err := blk.Manifest()
		if err != nil {
			continue
		}
		raw, err := mf.MarshalBinary()
		if err != nil {
			continue
		}
		sm := &signedManifest{Stamp: now.UnixNano(), Manifest: mf, raw: raw}
		if len(g.spec.PublisherKey) > 0 {
			sm.Sig = ed25519.Sign(g.cfg.PublisherKey, signingBytes(g.id, sm.Stamp, raw))
		}
		s.published = blk.Seq + 1
		b := s.getBlock(blk.Seq, now)
		if b == nil {
			continue
		}
		b.sm = sm
		b.pieces = make([][]byte, len(blk.Pieces))
		b.have = make([]byte, 32)
		b.rebuilt = true
		for _, p := range blk.Pieces {
			s.store(b, p, nil, now)
		}
		s.manifestToEarly(b)
	}
}

// Subscribe returns the stream's output at this member: records in stream
// order, data or gaps. Records not read in time are dropped (counted in
// Stats.OutputDropped). There is one subscription per member.
//
// A member does not start at the stream's first byte unless it was there
// when the stream began: its output starts a second, or
// Config.StartMargin blocks if more, before the first block whose manifest
// reached it (a member that joins a running stream catches up on those
// from its neighbours; one there from the stream's first second starts at
// its first byte), and a member
// that subscribes after that starts at the next block it delivers. The
// first record is data; its Offset tells where in the stream it is, and
// gap records report only blocks lost after it.
func (g *Group) Subscribe() (*Subscription, error) {
	if g.st == nil {
		return nil, ErrMulticastOff
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.st.subscribed {
		return nil, ErrSubscribed
	}
	g.st.subscribed = true
	return &Subscription{g: g}, nil
}

// Subscription is a member's view of the stream's output.
type Subscription struct {
	g *Group
}

// Next waits for the next record. Once the publisher has ended the stream
// (Publisher.Close) and this member's output has passed its last block,
// Next returns io.EOF.
func (s *Subscription) Next(ctx context.Context) (Record, error) {
	return s.g.st.out.wait(ctx, s.g.ctx.Done(), ErrClosed, s.g.st.endCh)
}

var _ = node.PriorityData
