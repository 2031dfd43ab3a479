package core

import (
	"time"

	"github.com/strata-net/strata/node/internal/wire"
)

// Priority orders flows within a session; 4 and above are time critical
// (RFC 7016 §3.5.4: they may preempt and mark packets TC).
type Priority int

// Priorities, lowest to highest (the reference implementation's names).
const (
	PriorityBackground Priority = iota
	PriorityBulk
	PriorityData
	PriorityRoutine
	PriorityPriority
	PriorityImmediate
	PriorityFlash
	PriorityFlashOverride
	numPriorities = 8
)

type sfState int

const (
	sfOpen sfState = iota
	sfClosing
	sfCompleteLinger
	sfClosed
)

// ReceiptState is the fate of a written message.
type ReceiptState int

// Receipt states.
const (
	ReceiptPending ReceiptState = iota
	ReceiptDelivered
	ReceiptAbandoned
)

// Receipt tracks one written message: its deadlines, and whether it was
// delivered (every fragment acknowledged) or abandoned (a deadline passed, or
// the flow ended first).
type Receipt struct {
	flow     *SendFlow
	startBy  time.Time // zero: no deadline
	finishBy time.Time
	started  bool
	// Retransmit false makes lost fragments abandon the message instead of
	// resending it (for data that is useless late).
	retransmit bool
	uses       int
	refs       int  // fragments still pointing here
	pooled     bool // nobody holds it: no events, recycled when refs is 0
	state      ReceiptState
	// Tag is the caller's: the driver uses it to find its waiter.
	Tag any
}

// State is the receipt's current state.
func (r *Receipt) State() ReceiptState { return r.state }

func (r *Receipt) abandon() {
	if r.state != ReceiptPending {
		return
	}
	r.state = ReceiptAbandoned
	if r.flow != nil && r.flow.session != nil {
		r.flow.session.e.stats.Abandoned++
		if r.pooled {
			return
		}
		r.flow.session.e.emit(Event{Kind: EventReceipt, Receipt: r, SendFlow: r.flow})
	}
}

func (r *Receipt) abandonIfNeeded(now time.Time) {
	if r.state != ReceiptPending {
		return
	}
	if (!r.finishBy.IsZero() && now.After(r.finishBy)) || (!r.started && !r.startBy.IsZero() && now.After(r.startBy)) {
		r.abandon()
	}
}

func (r *Receipt) useDown() {
	r.uses--
	if r.uses == 0 && r.state == ReceiptPending {
		r.state = ReceiptDelivered
		if r.flow != nil && r.flow.session != nil && !r.pooled {
			r.flow.session.e.emit(Event{Kind: EventReceipt, Receipt: r, SendFlow: r.flow})
		}
	}
}

type sendFrag struct {
	owner   *SendFlow
	seq     uint64
	fra     uint8
	data    []byte
	receipt *Receipt

	inFlight, everSent, sentAbandoned bool
	resent                            bool // the last transmission was a retransmission
	naks                              int
	sentAt                            time.Time
	txSize                            int
	tsn                               uint64

	// session outstanding list
	outPrev, outNext *sendFrag
	outstanding      bool
}

// SendFlow is the sending half of a flow (RFC 7016 §3.6.2).
type SendFlow struct {
	session  *Session
	id       uint64
	priority Priority
	metadata []byte
	assoc    *RecvFlow
	state    sfState
	err      error

	startupOptions []byte // metadata + return association, until first ack

	queue       []*sendFrag // unacknowledged fragments in sequence order
	queuedBytes int
	nextSeq     uint64
	finalSeq    uint64
	outBytes    int // bytes of this flow in flight
	rxWindow    int // receiver's advertised buffer
	exception   bool
	scanFrom    int // queue index to resume scanning for unsent fragments

	persistAt       time.Time
	persistInterval time.Duration
	lingerUntil     time.Time
	expireAt        time.Time // earliest receipt deadline of unsent data

	queuedReady  bool
	wantWritable bool

	// Tag is the caller's (the driver keeps its own flow object here).
	Tag any
}

func newSendFlow(s *Session, metadata []byte, pri Priority, assoc *RecvFlow) *SendFlow {
	if pri < 0 {
		pri = 0
	}
	if pri >= numPriorities {
		pri = numPriorities - 1
	}
	f := &SendFlow{
		session:  s,
		priority: pri,
		metadata: clone(metadata),
		assoc:    assoc,
		nextSeq:  1,
		rxWindow: 65536, // until the first ack tells us (reference INITIAL_RECV_BUFFER)
	}
	opts := wire.AppendUserMetadataOption(nil, metadata)
	if assoc != nil {
		opts = wire.AppendReturnFlowOption(opts, assoc.id)
	}
	f.startupOptions = wire.AppendOptionMarker(opts)
	return f
}

// Session is the flow's session.
func (f *SendFlow) Session() *Session { return f.session }

// ID is the flow's identifier within its session (0 before the session opens).
func (f *SendFlow) ID() uint64 { return f.id }

// Metadata is the flow's metadata.
func (f *SendFlow) Metadata() []byte { return f.metadata }

// Priority is the flow's priority.
func (f *SendFlow) Priority() Priority { return f.priority }

// Err is why the flow ended, if it did abnormally.
func (f *SendFlow) Err() error { return f.err }

// IsOpen reports whether messages may still be written.
func (f *SendFlow) IsOpen() bool { return f.state == sfOpen && f.err == nil }

// Buffered is the number of bytes queued and not yet acknowledged.
func (f *SendFlow) Buffered() int { return f.queuedBytes }

// Writable reports whether the send buffer has room.
func (f *SendFlow) Writable() bool {
	return f.IsOpen() && f.queuedBytes < f.session.e.cfg.SendBuffer
}

// NotifyWritable asks for an EventFlowWritable when the buffer drains.
func (f *SendFlow) NotifyWritable() { f.wantWritable = true }

// SetPriority changes the flow's priority.
func (f *SendFlow) SetPriority(p Priority) {
	if p < 0 || p >= numPriorities {
		return
	}
	f.priority = p
	f.queuedReady = false
	f.scheduleForTransmission()
}

// WriteOptions control one message's delivery.
type WriteOptions struct {
	// StartWithin abandons the message if none of it was sent in time.
	StartWithin time.Duration
	// FinishWithin abandons the message if it is not delivered in time
	// (partial reliability: live data never waits behind stale data).
	FinishWithin time.Duration
	// NoRetransmit abandons the message on its first loss.
	NoRetransmit bool
	// NoReceipt: the caller does not want a Receipt (Write returns nil), so
	// the engine recycles its bookkeeping and the write allocates nothing.
	NoReceipt bool
}

// Write queues one message. It fails when the flow is closed; callers check
// Writable for flow control.
func (f *SendFlow) Write(msg []byte, opt WriteOptions) (*Receipt, error) {
	if !f.IsOpen() {
		if f.err != nil {
			return nil, f.err
		}
		return nil, ErrFlowClosed
	}
	return f.write(msg, opt, f.session.e.now), nil
}

func (f *SendFlow) write(msg []byte, opt WriteOptions, now time.Time) *Receipt {
	f.session.e.touch(f.session) // deadlines and expiry may move
	var r *Receipt
	if opt.NoReceipt {
		r = f.session.e.pool.receipt()
		*r = Receipt{flow: f, retransmit: !opt.NoRetransmit, pooled: true}
	} else {
		r = &Receipt{flow: f, retransmit: !opt.NoRetransmit}
	}
	if opt.StartWithin > 0 {
		r.startBy = now.Add(opt.StartWithin)
	}
	if opt.FinishWithin > 0 {
		r.finishBy = now.Add(opt.FinishWithin)
	}
	max := maxFragment - len(f.startupOptions)
	fra := uint8(fraWhole)
	rest := msg
	for {
		n := len(rest)
		if n > max {
			n = max
			if fra == fraWhole {
				fra = fraBegin
			} else {
				fra = fraMiddle
			}
		} else if fra != fraWhole {
			fra = fraEnd
		}
		fr := f.session.e.pool.frag()
		*fr = sendFrag{owner: f, seq: f.nextSeq, fra: fra, data: f.session.e.pool.buf(rest[:n]), receipt: r}
		f.nextSeq++
		f.queue = append(f.queue, fr)
		f.queuedBytes += n + fragmentSizeBias
		r.uses++
		r.refs++
		rest = rest[n:]
		if len(rest) == 0 {
			break
		}
	}
	f.noteDeadline(r)
	f.scheduleForTransmission()
	if r.pooled {
		return nil
	}
	return r
}

// noteDeadline arms the flow's expiry timer for the receipt's next
// deadline still in the future (a started message has only its finish
// deadline left).
func (f *SendFlow) noteDeadline(r *Receipt) {
	now := f.session.e.now
	consider := func(t time.Time) {
		if t.IsZero() {
			return
		}
		t = t.Add(time.Millisecond)
		if !t.After(now) {
			return
		}
		if f.expireAt.IsZero() || t.Before(f.expireAt) {
			f.expireAt = t
			f.session.flowTimersChanged()
		}
	}
	if !r.started {
		consider(r.startBy)
	}
	consider(r.finishBy)
}

// Close finishes the flow after what was written is delivered (§3.6.2.7).
func (f *SendFlow) Close() {
	if f.state != sfOpen {
		return
	}
	s := f.session
	if s != nil {
		s.e.touch(s)
	}
	if s == nil || s.state != stateOpen || f.id == 0 {
		if s != nil && s.state < stateOpen {
			// not bound yet: drop it from the waiters
			for i, w := range s.waiters {
				if w == f {
					s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
					break
				}
			}
		}
		f.gotoClosed(nil)
		return
	}
	if f.nextSeq > 1 {
		last := f.lastFrag()
		if last == nil || last.everSent || last.seq != f.nextSeq-1 {
			// A marker fragment to carry FIN: sent abandoned and empty, so
			// the receiver delivers no spurious empty message.
			r := &Receipt{flow: f, state: ReceiptAbandoned, uses: 1, refs: 1}
			f.queue = append(f.queue, &sendFrag{owner: f, seq: f.nextSeq, fra: fraWhole, data: []byte{}, receipt: r})
			f.queuedBytes += fragmentSizeBias
			f.nextSeq++
			f.scheduleForTransmission()
		}
		f.finalSeq = f.lastFrag().seq
		f.state = sfClosing
		return
	}
	f.gotoClosed(nil)
}

func (f *SendFlow) lastFrag() *sendFrag {
	if len(f.queue) == 0 {
		return nil
	}
	return f.queue[len(f.queue)-1]
}

func (f *SendFlow) gotoClosed(err error) {
	if f.state == sfClosed {
		return
	}
	f.state = sfClosed
	if f.err == nil {
		f.err = err
	}
	for _, fr := range f.queue {
		if fr == nil {
			continue
		}
		fr.receipt.abandon()
		if fr.outstanding {
			f.session.removeOutstanding(fr)
		}
		f.session.e.pool.free(fr)
	}
	f.queue = nil
	f.queuedBytes = 0
	if s := f.session; s != nil && s.sendFlows[f.id] == f {
		delete(s.sendFlows, f.id)
		s.flowTimersChanged()
		s.lastIdle = s.e.now
	}
	if f.session != nil {
		f.session.e.emit(Event{Kind: EventSendFlowClosed, SendFlow: f, Session: f.session, Err: err})
	}
}

// fail ends the flow because of err (session gone, peer rejected).
func (f *SendFlow) fail(err error) {
	if f.err == nil {
		f.err = err
	}
	f.gotoClosed(err)
}

func (f *SendFlow) onException(code uint64) {
	f.exception = true
	f.fail(ErrFlowRejected)
}

func (f *SendFlow) readyToSend() bool {
	if len(f.queue) == 0 || f.state >= sfCompleteLinger {
		return false
	}
	return f.exception || f.rxWindow > f.outBytes
}

func (f *SendFlow) scheduleForTransmission() {
	s := f.session
	if s == nil || s.state != stateOpen || f.id == 0 || !f.readyToSend() {
		return
	}
	if !f.queuedReady {
		f.queuedReady = true
		s.readyFlows[f.priority].push(f)
	}
	s.e.markReady(s)
}

// forwardSeq computes the forward sequence number (§3.6.2.3): everything at
// or below it is abandoned or acknowledged, so the receiver may skip it.
func (f *SendFlow) forwardSeq(now time.Time) uint64 {
	first := f.queue[0]
	if !first.inFlight {
		first.receipt.abandonIfNeeded(now)
	}
	if first.receipt.state != ReceiptAbandoned {
		return first.seq - 1
	}
	if first.inFlight && !first.sentAbandoned {
		return first.seq - 1
	}
	return first.seq
}

// trim drops abandoned, not-in-flight fragments from the head of the queue
// but the last of them, which goes out (empty, flagged abandoned) and so
// tells the receiver the forward sequence number: a later fragment already
// in flight carries an older one, and once that is acknowledged nothing
// else would, leaving the receiver waiting for the dropped fragments for
// good (the flow's last messages never delivered, its end never seen).
func (f *SendFlow) trim(now time.Time) {
	gone := func(fr *sendFrag) bool {
		if fr.inFlight {
			return false
		}
		fr.receipt.abandonIfNeeded(now)
		return fr.receipt.state == ReceiptAbandoned
	}
	n := 0
	for n+1 < len(f.queue) && gone(f.queue[n]) && gone(f.queue[n+1]) {
		f.queuedBytes -= len(f.queue[n].data) + fragmentSizeBias
		n++
	}
	if n > 0 {
		for _, fr := range f.queue[:n] {
			f.session.e.pool.free(fr)
		}
		clear(f.queue[:n])
		f.queue = f.queue[n:]
		f.scanFrom -= n
		if f.scanFrom < 0 {
			f.scanFrom = 0
		}
		f.notifyWritable()
	}
}

// appendData adds data chunks for this flow to the packet. sent says whether
// any were added; full says the packet had no room for the next one (the
// flow stays scheduled for the next packet).
func (f *SendFlow) appendData(b []byte, limit int, pri int) (out []byte, sent, full bool) {
	if Priority(pri) != f.priority {
		f.queuedReady = false
		return b, false, false
	}
	if !f.readyToSend() {
		f.queuedReady = false
		return b, false, false
	}
	s := f.session
	now := s.e.now
	f.trim(now)
	fsn := f.forwardSeq(now)
	first := true
	var prevSeq uint64
	if f.scanFrom >= len(f.queue) || f.scanFrom < 0 {
		f.scanFrom = 0
	}
	for i := f.scanFrom; i < len(f.queue); i++ {
		if f.outBytes >= f.rxWindow && !f.exception {
			break
		}
		fr := f.queue[i]
		if fr.inFlight {
			continue
		}
		if fr.everSent && !fr.receipt.retransmit {
			fr.receipt.abandon()
		}
		fr.receipt.abandonIfNeeded(now)
		abandoned := fr.receipt.state == ReceiptAbandoned
		final := f.finalSeq != 0 && fr.seq == f.finalSeq
		withOpts := first && len(f.startupOptions) > 0
		data := fr.data
		if abandoned {
			data = nil // an abandoned fragment goes out empty, only to move the receiver along
		}
		next := !first && fr.seq == prevSeq+1
		// size check
		need := 3 + 1 + len(data)
		if withOpts {
			need += len(f.startupOptions)
		}
		if !next {
			need += wire.VLULen(f.id) + wire.VLULen(fr.seq) + wire.VLULen(fr.seq-fsn)
		}
		if len(b)+need > limit {
			full = true
			break
		}
		pre := len(b)
		if next {
			c := wire.NextUserData{Fragmentation: wire.Fragmentation(fr.fra), Abandon: abandoned, Final: final, Data: data}
			if withOpts {
				c.Options = f.startupOptions
			}
			b = c.Append(b)
		} else {
			c := wire.UserData{Fragmentation: wire.Fragmentation(fr.fra), Abandon: abandoned, Final: final, FlowID: f.id, SequenceNumber: fr.seq, FSNOffset: fr.seq - fsn, Data: data}
			if withOpts {
				c.Options = f.startupOptions
			}
			b = c.Append(b)
		}
		if fr.everSent {
			s.e.stats.Retransmits++
		}
		first = false
		prevSeq = fr.seq
		fr.receipt.started = true
		fr.sentAbandoned = abandoned
		fr.txSize = len(b) - pre
		fr.tsn = s.nextTSN
		fr.resent = fr.everSent
		fr.inFlight = true
		fr.everSent = true
		fr.naks = 0
		fr.sentAt = now
		s.addOutstanding(fr)
		f.outBytes += fr.txSize
		f.scanFrom = i
	}
	if first {
		if !full {
			f.queuedReady = false
		}
		return b, false, full
	}
	s.rescheduleTimeout()
	return b, true, full
}

func (f *SendFlow) onAck(avail int, cum uint64, ranges []byte) {
	if f.state >= sfCompleteLinger {
		return
	}
	f.startupOptions = nil
	f.rxWindow = avail
	s := f.session
	if avail == 0 {
		if f.persistAt.IsZero() {
			f.persistInterval = persistInitial
			if s.cc.erto() > f.persistInterval {
				f.persistInterval = s.cc.erto()
			}
			f.persistAt = s.e.now.Add(f.persistInterval)
			s.flowTimersChanged()
		}
	} else if !f.persistAt.IsZero() {
		f.persistAt = time.Time{}
		s.flowTimersChanged()
	}
	f.ackRange(0, cum)
	it := wire.AckRanges{CumulativeAck: cum, Ranges: ranges}.Iter()
	for {
		from, to, ok := it.Next()
		if !ok {
			break
		}
		f.ackRange(from, to)
	}
	f.compact()
	if f.state == sfClosing && len(f.queue) == 0 {
		f.state = sfCompleteLinger
		f.lingerUntil = s.e.now.Add(fCompleteLinger)
		s.flowTimersChanged()
		return
	}
	f.scheduleForTransmission()
	f.notifyWritable()
}

// ackRange marks fragments in [from, to] acknowledged (nil in the queue until
// compact removes them).
func (f *SendFlow) ackRange(from, to uint64) {
	s := f.session
	// the queue is in sequence order: binary search for the start
	lo, hi := 0, len(f.queue)
	for lo < hi {
		m := (lo + hi) / 2
		if f.queue[m] == nil || f.queue[m].seq < from {
			// nil entries only exist transiently after earlier ranges; they
			// are all below from because ranges ascend
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo; i < len(f.queue); i++ {
		fr := f.queue[i]
		if fr == nil {
			continue
		}
		if fr.seq > to {
			break
		}
		if fr.inFlight {
			if fr.tsn > s.maxTSNAck {
				s.maxTSNAck = fr.tsn
			}
			s.removeOutstanding(fr)
			f.outBytes -= fr.txSize
		}
		f.queuedBytes -= len(fr.data) + fragmentSizeBias
		fr.receipt.useDown()
		f.queue[i] = nil
		s.e.pool.free(fr)
	}
}

// compact removes the acknowledged (nil) entries from the queue, keeping
// scanFrom on the same fragment. It starts at the first hole, which for
// cumulative acks is the head, so it costs only what was acknowledged.
func (f *SendFlow) compact() {
	first := -1
	for i, fr := range f.queue {
		if fr == nil {
			first = i
			break
		}
	}
	if first < 0 {
		return
	}
	removedBefore := 0
	j := first
	for i := first; i < len(f.queue); i++ {
		if fr := f.queue[i]; fr != nil {
			f.queue[j] = fr
			j++
		} else if i < f.scanFrom {
			removedBefore++
		}
	}
	clear(f.queue[j:])
	f.queue = f.queue[:j]
	f.scanFrom -= removedBefore
	if f.scanFrom < 0 {
		f.scanFrom = 0
	}
}

func (f *SendFlow) onLoss(fr *sendFrag) {
	fr.inFlight = false
	f.outBytes -= fr.txSize
	f.scanFrom = 0
	if !fr.receipt.retransmit {
		fr.receipt.abandon()
	}
	f.scheduleForTransmission()
}

func (f *SendFlow) notifyWritable() {
	if f.wantWritable && f.Writable() {
		f.wantWritable = false
		f.session.e.emit(Event{Kind: EventFlowWritable, SendFlow: f, Session: f.session})
	}
}

func (f *SendFlow) tick(now time.Time) {
	due := func(t time.Time) bool { return !t.IsZero() && !now.Before(t) }
	s := f.session
	if due(f.lingerUntil) {
		f.lingerUntil = time.Time{}
		f.gotoClosed(nil)
		return
	}
	if due(f.persistAt) {
		if f.state > sfClosing {
			f.persistAt = time.Time{}
		} else {
			s.queueControl(wire.BufferProbe{FlowID: f.id}.Append(nil))
			f.persistInterval = f.persistInterval * 1414 / 1000
			if f.persistInterval > persistMax {
				f.persistInterval = persistMax
			}
			if f.persistInterval < s.cc.erto() {
				f.persistInterval = s.cc.erto()
			}
			f.persistAt = now.Add(f.persistInterval)
		}
	}
	if due(f.expireAt) {
		f.expireAt = time.Time{}
		for _, fr := range f.queue {
			if !fr.inFlight {
				fr.receipt.abandonIfNeeded(now)
			}
			if fr.receipt.state == ReceiptPending {
				f.noteDeadline(fr.receipt)
			}
		}
		f.trim(now)
		f.scheduleForTransmission()
	}
}

// flowQueue is a FIFO of flows ready to send at one priority: a ring that
// reuses its storage, so scheduling does not allocate in the steady state.
type flowQueue struct {
	q    []*SendFlow
	head int
	n    int
}

func (q *flowQueue) len() int         { return q.n }
func (q *flowQueue) front() *SendFlow { return q.q[q.head] }
func (q *flowQueue) push(f *SendFlow) {
	if q.n == len(q.q) {
		grown := make([]*SendFlow, max(4, 2*len(q.q)))
		for i := 0; i < q.n; i++ {
			grown[i] = q.q[(q.head+i)%len(q.q)]
		}
		q.q, q.head = grown, 0
	}
	q.q[(q.head+q.n)%len(q.q)] = f
	q.n++
}
func (q *flowQueue) pop() {
	q.q[q.head] = nil
	q.head = (q.head + 1) % len(q.q)
	q.n--
}
func (q *flowQueue) rotate() {
	f := q.front()
	q.pop()
	q.push(f)
}
