package group

import (
	"sync"
	"time"

	"github.com/strata-net/strata/node"
)

// outMsg is a message waiting to be written on a link.
type outMsg struct {
	data     bool
	b        []byte
	deadline time.Time
	lane     int
	// A pushed piece of block seq, not sent if the neighbour says it
	// holds the whole block by the time the piece leaves the queue; its
	// bytes are then taken back from the counter t.
	push  bool
	seq   uint64
	t     *uint64
	at    time.Time // queued (diagnostics, only while tracing)
	trace uint8     // traceRequest, traceAnswer or 0 (diagnostics)
}

// link is this member's connection to one neighbour in the group: our
// control and data flows to it (its flows to us are read separately) and
// what the stream knows about it. Fields below the queue are guarded by
// the group's mutex.
type link struct {
	peer      node.PeerID
	sess      *node.Session
	ctrl      *node.SendFlow
	data      []*node.SendFlow // lanes, then the manifest and pull lane
	q         *fifo[outMsg]
	done      chan struct{}
	closeOnce sync.Once
	// Blocks it said it holds whole (have messages): read by the send
	// loop for every push it writes, so under a lock of its own rather
	// than the group's mutex. Written with the group's mutex held too.
	wholeMu   sync.Mutex
	whole     map[uint64]bool
	stopWatch func() bool // unregisters the session-end callback

	// stream state
	know         map[uint64][]byte // pieces the neighbour holds (advertised, sent or received)
	sentUs       map[uint64][]byte // pieces it sent us (made only with Config.BackupPushers: see owe)
	spare        bool              // it wants only the first parity piece of each block pushed (ctlParity)
	hasManifest  map[uint64]bool   // blocks whose manifest it has (we sent it, it sent it, or it advertised the block)
	newest       []int64           // per push class: newest block it holds a piece of (-1: none)
	depth        []int             // per push class: its advertised hops from the publisher
	delay        []time.Duration   // per push class: its advertised delay from the publisher (-1: not told)
	rank         []uint64          // per push class: its tie-break among candidate pushers (stableRank, inverted)
	halfRTT      time.Duration     // half the session's smoothed round trip, refreshed every availability period
	provenSource bool              // its node is the publisher's, by the publisher's signature (Node)
	authentic    bool              // the session authenticates its peer ID (node.Session.PeerAuthenticated)
	nodeSigSent  int               // availability messages that carried our Node signature to it
	// The Depth and Delay of the last availability message queued to
	// it with them, and the messages queued since, that one included (0:
	// none yet): later ones with the same leave them out
	// (control.SameRoutes).
	sentDepth, sentDelay []byte
	routesSent           int
	late                 []time.Duration // per push class: smoothed lateness of its pushes to us
	subs                 []bool          // push classes it wants from us
	refused              []time.Time     // per class: it refused to push to us until then
	backupRefused        []time.Time     // per class: it refused to be our backup pusher until then
	source               bool            // it says it is the publisher
	busyUntil            time.Time       // it answered a pull busy: not asked before then
	slowUntil            time.Time       // it left a pull unanswered: asked after others until then
	hold                 func()          // ends our hold on its session (nil: none); see holdPushLinks
	carriedAt            time.Time       // when it last carried pushes either way

	// misbehaviour
	strikes     int         // see Group.strike
	availTokens float64     // availability maps it may still send now
	availAt     time.Time   // when availTokens was last refilled
	pushedAt    []time.Time // per push class: its last push to us (or when we subscribed)
	parentAt    []time.Time // per push class: when we made it our pusher
	// asks numbers our subscriptions that ask for an answer; tryAsk is
	// the last one that asked it for a class it is trying (stream.trying).
	asks, tryAsk uint64
	// Pieces of the classes it pushes to us that it advertised holding
	// while we lacked them: it owes them by the deadline (see owe).
	owed                       map[pieceKey]time.Time
	pushed, pulled, owedMissed int // pieces it pushed, pieces it sent for our pulls; owed ones that never came
}

// pieceKey names one piece of one block.
type pieceKey struct {
	seq   uint64
	index int
}

// Availability maps: a member sends one every AvailabilityUpdatePeriod
// and at most availRate-1 more when its routes change; availRate a period are
// allowed, availBurst at once. The burst is large because the control
// flow delivers in order: after a loss, or while congestion control holds
// the flow back, the maps sent meanwhile arrive together (the 1,000-member
// stream banned honest members with a burst of 12).
const (
	availRate  = 3
	availBurst = 40
)

// availAllowed takes a token for one availability map from l, reporting
// false if l sends them faster than availRate per period.
func (l *link) availAllowed(now time.Time, period time.Duration) bool {
	if l.availAt.IsZero() {
		l.availTokens, l.availAt = availBurst, now
	}
	l.availTokens = min(availBurst, l.availTokens+availRate*float64(now.Sub(l.availAt))/float64(period))
	l.availAt = now
	if l.availTokens < 1 {
		return false
	}
	l.availTokens--
	return true
}

func newLink(p node.PeerID, s *node.Session, ctrl *node.SendFlow, data []*node.SendFlow, queue int) *link {
	return &link{
		peer: p, sess: s, ctrl: ctrl, data: data,
		authentic:   s != nil && s.PeerAuthenticated(),
		q:           newFIFO[outMsg](queue),
		done:        make(chan struct{}),
		know:        make(map[uint64][]byte),
		hasManifest: make(map[uint64]bool),
		whole:       make(map[uint64]bool),
	}
}

// refreshRTT reads the session's smoothed round trip (links made by tests
// have no session).
func (l *link) refreshRTT() {
	if l.sess != nil {
		l.halfRTT = l.sess.RTT() / 2
	}
}

// enqueue queues m without blocking; false if the queue is full or the
// link closed.
func (l *link) enqueue(m outMsg) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	return l.q.push(m)
}

func (l *link) close() {
	l.closeOnce.Do(func() {
		if l.stopWatch != nil {
			l.stopWatch()
		}
		close(l.done)
		if l.ctrl != nil { // (links made by tests have no flows)
			l.ctrl.Close()
		}
		for _, f := range l.data {
			if f != nil {
				f.Close()
			}
		}
	})
}

func (l *link) knows(seq uint64, i int) bool { return bitSet(l.know[seq], i) }

// learnAll notes that the neighbour holds every piece of block seq.
func (l *link) learnAll(seq uint64) {
	m := l.know[seq]
	if m == nil {
		m = make([]byte, 32)
		l.know[seq] = m
	}
	for i := range m {
		m[i] = 0xff
	}
}

func (l *link) learn(seq uint64, i int) { markPiece(l.know, seq, i) }

// markPiece sets piece i of block seq in a per-block piece bitmap.
func markPiece(m map[uint64][]byte, seq uint64, i int) {
	b := m[seq]
	if b == nil {
		b = make([]byte, 32)
		m[seq] = b
	}
	setBit(b, i)
}
