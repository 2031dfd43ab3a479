package core

import (
	"errors"
	"time"

	"github.com/strata-net/strata/node/internal/wire"
)

type rfState int

const (
	rfOpen rfState = iota
	rfRejected
	rfCompleteLinger
	rfClosed
)

const (
	fraWhole  = uint8(wire.FragWhole)
	fraBegin  = uint8(wire.FragBegin)
	fraEnd    = uint8(wire.FragEnd)
	fraMiddle = uint8(wire.FragMiddle)
)

// readyPart is one fragment of a complete message waiting to be read; a
// message is the run of parts up to one with end set. Keeping the fragments
// (rather than joining them at once) lets ReadInto copy straight into the
// caller's buffer and recycle them, without allocating.
type readyPart struct {
	data []byte
	seq  uint64
	end  bool
}

type recvFrag struct {
	seq  uint64
	fra  uint8
	data []byte
}

// Message is one complete message received on a flow.
type Message struct {
	Data []byte
	// Seq is the sequence number of its first fragment.
	Seq uint64
}

// RecvFlow is the receiving half of a flow (RFC 7016 §3.6.3).
type RecvFlow struct {
	session  *Session
	id       uint64
	metadata []byte
	assoc    *SendFlow
	state    rfState
	err      error
	code     uint64 // exception code when rejected

	seen      seqSet     // received or abandoned sequence numbers
	frags     []recvFrag // received, undelivered fragments in sequence order
	fragBytes int
	finalSeq  uint64
	finalSeen bool
	fsn       uint64

	ready      []readyPart // complete messages not yet read (from rhead), a part per fragment
	rhead      int
	readyBytes int

	unordered bool

	shouldAck        bool
	prevWindow       uint64
	lingerUntil      time.Time
	notified         bool
	completeNotified bool
	ackScratch       []wire.SeqRange

	// Tag is the caller's.
	Tag any
}

func newRecvFlow(s *Session, id uint64, metadata []byte, assoc *SendFlow) *RecvFlow {
	return &RecvFlow{session: s, id: id, metadata: clone(metadata), assoc: assoc, prevWindow: 64}
}

// Session is the flow's session.
func (f *RecvFlow) Session() *Session { return f.session }

// SetUnordered chooses the delivery order of complete messages: in sending
// order (the default), or as soon as each is complete (RFC 7016 §3.6.3.3
// lets the receiver deliver complete messages out of order when its
// application wants that). Messages that do not depend on each other, like
// erasure-coded pieces, then wait for no retransmission but their own:
// one lost fragment no longer holds up every later message of the flow.
// Delivery, acknowledgement and flow control are otherwise the same.
func (f *RecvFlow) SetUnordered(on bool) {
	f.unordered = on
	if on {
		f.deliver()
	}
}

// ID is the flow's identifier (chosen by the sender).
func (f *RecvFlow) ID() uint64 { return f.id }

// Metadata is what the sender attached to the flow.
func (f *RecvFlow) Metadata() []byte { return f.metadata }

// Associated is our sending flow this flow was opened in return to, if any.
func (f *RecvFlow) Associated() *SendFlow { return f.assoc }

// Err is why the flow ended abnormally.
func (f *RecvFlow) Err() error { return f.err }

// Finished reports whether the sender closed the flow and everything was read.
func (f *RecvFlow) Finished() bool {
	return f.state != rfOpen && f.rhead == len(f.ready)
}

// Buffered is what the flow holds against its receive buffer: undelivered
// fragments and unread messages, each charged its size plus a fixed
// overhead, so that a flood of empty fragments cannot hold unbounded memory.
func (f *RecvFlow) Buffered() int { return f.fragBytes + f.readyBytes }

// Read pops the next message, if any. The message's buffer becomes the
// caller's.
func (f *RecvFlow) Read() (Message, bool) {
	n, parts, ok := f.peek()
	if !ok {
		return Message{}, false
	}
	first := f.ready[f.rhead]
	var data []byte
	if parts == 1 {
		data = first.data // handed over as it is
	} else {
		data = make([]byte, 0, n)
		for i := 0; i < parts; i++ {
			data = append(data, f.ready[f.rhead+i].data...)
		}
		f.recycleParts(parts)
	}
	f.pop(parts, n)
	return Message{Data: data, Seq: first.seq}, true
}

// ErrShortBuffer: ReadInto's buffer cannot hold the next message (which
// stays queued; MessageLen says how much room it needs).
var ErrShortBuffer = errors.New("rtmfp: buffer too small for the message")

// MessageLen is the length of the next message, if any.
func (f *RecvFlow) MessageLen() (int, bool) {
	n, _, ok := f.peek()
	return n, ok
}

// ReadInto copies the next message into p and returns its length, without
// allocating: the flow's buffers are recycled.
func (f *RecvFlow) ReadInto(p []byte) (int, bool, error) {
	n, parts, ok := f.peek()
	if !ok {
		return 0, false, nil
	}
	if len(p) < n {
		return 0, true, ErrShortBuffer
	}
	off := 0
	for i := 0; i < parts; i++ {
		off += copy(p[off:], f.ready[f.rhead+i].data)
	}
	f.recycleParts(parts)
	f.pop(parts, n)
	return n, true, nil
}

// peek measures the next message: its length and number of parts.
func (f *RecvFlow) peek() (n, parts int, ok bool) {
	for i := f.rhead; i < len(f.ready); i++ {
		n += len(f.ready[i].data)
		parts++
		if f.ready[i].end {
			return n, parts, true
		}
	}
	return 0, 0, false
}

func (f *RecvFlow) recycleParts(parts int) {
	pool := &f.session.e.pool
	for i := 0; i < parts; i++ {
		pool.recycle(f.ready[f.rhead+i].data)
	}
}

// pop removes the next message (parts fragments, n bytes) from the queue.
func (f *RecvFlow) pop(parts, n int) {
	clear(f.ready[f.rhead : f.rhead+parts])
	f.rhead += parts
	if f.rhead == len(f.ready) {
		f.ready, f.rhead = f.ready[:0], 0
	}
	before := f.window()
	f.readyBytes -= n + fragmentSizeBias
	// Reading may reopen a closed receive window: tell the sender promptly.
	if before < 2 && f.state == rfOpen && f.session.state == stateOpen {
		f.scheduleAck(true)
	}
	f.notified = false
}

// Reject refuses the flow with an exception code (RFC 7016 §3.6.3.7).
func (f *RecvFlow) Reject(code uint64) {
	f.reject(code)
	f.ready, f.rhead = nil, 0
	f.readyBytes = 0
}

// OpenReturnFlow opens a flow back to the sender associated with this one.
func (f *RecvFlow) OpenReturnFlow(metadata []byte, pri Priority) (*SendFlow, error) {
	if f.state != rfOpen {
		return nil, ErrFlowClosed
	}
	return f.session.openFlow(metadata, pri, f)
}

func (f *RecvFlow) reject(code uint64) {
	if f.state == rfOpen {
		f.state = rfRejected
		f.code = code
		f.scheduleAck(true)
	}
	f.frags = nil
	f.fragBytes = 0
}

func (f *RecvFlow) abort(err error) {
	wasOpen := f.state == rfOpen
	f.state = rfClosed
	if f.err == nil {
		f.err = err
	}
	if wasOpen {
		f.session.e.emit(Event{Kind: EventRecvFlowClosed, RecvFlow: f, Session: f.session, Err: err})
	}
}

// window is the advertised receive window in 1024-byte blocks.
func (f *RecvFlow) window() uint64 {
	capacity := f.session.e.cfg.RecvBuffer
	used := f.Buffered()
	if used >= capacity {
		return 0
	}
	return uint64((capacity - used + 1023) / 1024)
}

func (f *RecvFlow) onData(flags uint8, seq, fsn uint64, data []byte) {
	fresh := !f.seen.contains(seq)
	abandoned := flags&wire.UserDataFlagAbandon != 0
	pre := f.seen.ranges()
	ackNow := f.prevWindow < 2 || abandoned || pre != 1 || !fresh
	if fresh && flags&wire.UserDataFlagFinal != 0 && !f.finalSeen {
		f.finalSeq = seq
		f.finalSeen = true
		ackNow = true
	}
	if fsn > f.fsn {
		f.fsn = fsn
	}
	if fresh && !abandoned && f.state == rfOpen && f.window() == 0 && seq > f.highest() {
		// No room for new data: drop it without recording it, so the sender
		// retransmits once we advertise space again (§3.6.3.5). Fragments
		// that fill holes are always taken, or a buffer full of
		// out-of-order data could never drain.
		f.scheduleAck(true)
		return
	}
	f.seen.add(0, fsn)
	f.seen.add(seq, seq)
	if fresh && !abandoned && f.state == rfOpen {
		f.insert(seq, flags&wire.UserDataFlagFRAMask, data)
	}
	if f.finalSeen && f.state < rfCompleteLinger && f.seen.ranges() == 1 {
		f.state = rfCompleteLinger
		ackNow = true
		f.lingerUntil = f.session.e.now.Add(rfCompleteLingerPeriod)
		f.session.flowTimersChanged()
	}
	f.deliver()
	if pre != f.seen.ranges() {
		ackNow = true
	}
	if f.state != rfOpen {
		ackNow = true
	}
	f.scheduleAck(ackNow)
}

// highest is the highest sequence number received or abandoned so far.
func (f *RecvFlow) highest() uint64 {
	if len(f.seen.r) == 0 {
		return 0
	}
	return f.seen.r[len(f.seen.r)-1].to
}

func (f *RecvFlow) insert(seq uint64, fra uint8, data []byte) {
	i := len(f.frags)
	for i > 0 && f.frags[i-1].seq > seq {
		i--
	}
	f.frags = append(f.frags, recvFrag{})
	copy(f.frags[i+1:], f.frags[i:])
	f.frags[i] = recvFrag{seq: seq, fra: fra, data: f.session.e.pool.buf(data)}
	f.fragBytes += len(data) + fragmentSizeBias
}

// deliver moves complete messages at or below the cumulative ack to the
// ready queue, in order, and discards fragments of messages that can no
// longer complete (their missing parts were abandoned).
func (f *RecvFlow) deliver() {
	if f.unordered {
		f.deliverUnordered()
		return
	}
	csn := f.seen.cumulative()
	got := false
	for len(f.frags) > 0 && (f.state == rfOpen || f.state == rfCompleteLinger) {
		fr := f.frags[0]
		if fr.seq > csn {
			break
		}
		switch fr.fra {
		case fraWhole:
			f.ready = append(f.ready, readyPart{data: fr.data, seq: fr.seq, end: true})
			f.readyBytes += len(fr.data) + fragmentSizeBias
			f.moveFrags(1)
			got = true
			continue
		case fraBegin:
			// find the end of this message among contiguous fragments
			end := -1
			for j := 1; j < len(f.frags); j++ {
				if f.frags[j].seq != fr.seq+uint64(j) {
					break
				}
				if f.frags[j].fra == fraEnd {
					end = j
					break
				}
				if f.frags[j].fra != fraMiddle {
					break
				}
			}
			if end >= 0 {
				for j := 0; j <= end; j++ {
					fj := f.frags[j]
					f.ready = append(f.ready, readyPart{data: fj.data, seq: fj.seq, end: j == end})
					f.readyBytes += len(fj.data)
				}
				f.readyBytes += fragmentSizeBias
				f.moveFrags(end + 1)
				got = true
				continue
			}
			// incomplete: if its successor position is already settled
			// (below csn) but missing, the message was abandoned
			last := fr.seq
			for j := 1; j < len(f.frags) && f.frags[j].seq == fr.seq+uint64(j); j++ {
				last = f.frags[j].seq
			}
			if last < csn {
				f.dropFrags(1)
				continue
			}
			f.finishDeliver(got)
			return
		default:
			// a middle or end without its beginning: its message was abandoned
			f.dropFrags(1)
		}
	}
	f.finishDeliver(got)
}

// deliverUnordered moves every complete message to the ready queue,
// wherever it lies, and discards fragments of messages that can no longer
// complete. The fragments are scanned as runs of consecutive sequence
// numbers; a message is complete when its run holds it from its beginning
// to its end.
func (f *RecvFlow) deliverUnordered() {
	if f.state != rfOpen && f.state != rfCompleteLinger {
		return
	}
	csn := f.seen.cumulative()
	got := false
	i := 0
	for i < len(f.frags) {
		fr := f.frags[i]
		switch fr.fra {
		case fraWhole:
			f.ready = append(f.ready, readyPart{data: fr.data, seq: fr.seq, end: true})
			f.readyBytes += len(fr.data) + fragmentSizeBias
			f.cutFrags(i, 1, false)
			got = true
			continue
		case fraBegin:
			end, last, broken := -1, i, false
			for j := i + 1; j < len(f.frags) && f.frags[j].seq == fr.seq+uint64(j-i); j++ {
				if f.frags[j].fra == fraEnd {
					end = j
					break
				}
				if f.frags[j].fra != fraMiddle {
					// Another message begins where this one goes on:
					// this one can never complete.
					broken = true
					break
				}
				last = j
			}
			if end >= 0 {
				for j := i; j <= end; j++ {
					fj := f.frags[j]
					f.ready = append(f.ready, readyPart{data: fj.data, seq: fj.seq, end: j == end})
					f.readyBytes += len(fj.data)
				}
				f.readyBytes += fragmentSizeBias
				f.cutFrags(i, end-i+1, false)
				got = true
				continue
			}
			if broken || f.frags[last].seq < csn {
				// The next fragment's place is settled but empty: the
				// rest of the message was abandoned.
				f.cutFrags(i, 1, true)
				continue
			}
			i = last + 1
		default:
			// A middle or end with no beginning before it: dropped once
			// the place of its predecessor is settled (abandoned), kept
			// while that may still arrive.
			if fr.seq-1 <= csn && (i == 0 || f.frags[i-1].seq != fr.seq-1) {
				f.cutFrags(i, 1, true)
				continue
			}
			i++
		}
	}
	f.finishDeliver(got)
}

// cutFrags removes n fragments from index i, recycling their buffers
// unless they moved to the ready queue.
func (f *RecvFlow) cutFrags(i, n int, recycle bool) {
	for j := i; j < i+n; j++ {
		if recycle {
			f.session.e.pool.recycle(f.frags[j].data)
		}
		f.fragBytes -= len(f.frags[j].data) + fragmentSizeBias
	}
	rest := copy(f.frags[i:], f.frags[i+n:])
	clear(f.frags[i+rest:])
	f.frags = f.frags[:i+rest]
}

func (f *RecvFlow) finishDeliver(got bool) {
	if got && !f.notified {
		f.notified = true
		f.session.e.emit(Event{Kind: EventFlowReadable, RecvFlow: f, Session: f.session})
	}
	if f.finalSeen && !f.completeNotified && f.finalSeq <= f.seen.cumulative() && len(f.frags) == 0 && f.state != rfClosed {
		f.completeNotified = true
		if f.err == nil && (f.state == rfOpen || f.state == rfCompleteLinger) {
			if f.state == rfOpen {
				f.state = rfCompleteLinger
				f.lingerUntil = f.session.e.now.Add(rfCompleteLingerPeriod)
				f.session.flowTimersChanged()
			}
			f.session.e.emit(Event{Kind: EventRecvFlowClosed, RecvFlow: f, Session: f.session})
		}
	}
}

// dropFrags discards the first n fragments, recycling their buffers.
func (f *RecvFlow) dropFrags(n int) {
	for j := 0; j < n; j++ {
		f.session.e.pool.recycle(f.frags[j].data)
	}
	f.moveFrags(n)
}

// moveFrags removes the first n fragments, whose buffers now belong to the
// ready queue (or were recycled by the caller).
func (f *RecvFlow) moveFrags(n int) {
	for j := 0; j < n; j++ {
		f.fragBytes -= len(f.frags[j].data) + fragmentSizeBias
	}
	// Shift down rather than re-slice, so the storage is reused.
	rest := copy(f.frags, f.frags[n:])
	clear(f.frags[rest:])
	f.frags = f.frags[:rest]
}

func (f *RecvFlow) scheduleAck(now bool) {
	if now {
		f.session.doAckNow()
	}
	if !f.shouldAck {
		f.shouldAck = true
		f.session.scheduleAck(f)
	}
}

// appendAck adds this flow's acknowledgement (preceded by an exception if
// rejected) to the packet; false if it does not fit (unless truncation of
// the range list is allowed).
func (f *RecvFlow) appendAck(b []byte, limit int, truncate bool) ([]byte, bool) {
	checkpoint := len(b)
	win := f.window()
	if win == 0 && len(f.seen.r) > 1 {
		// Holes below out-of-order data that fills the buffer: let the
		// sender send one block at a time, which it takes from its lowest
		// unacknowledged fragments — the ones that fill the holes (always
		// accepted). Advertising zero here would deadlock.
		win = 1
	}
	if f.state == rfRejected {
		win = 0
		ex := wire.FlowException{FlowID: f.id, Code: f.code}
		b = ex.Append(b)
	}
	cum := f.seen.cumulative()
	ranges := f.ackScratch[:0]
	for k, r := range f.seen.r {
		if k == 0 && r.from == 0 {
			continue
		}
		ranges = append(ranges, wire.SeqRange{From: r.from, To: r.to})
	}
	f.ackScratch = ranges
	nb, n, err := wire.AppendAckRanges(b, f.id, win, cum, ranges, limit-len(b))
	if err != nil || (n < len(ranges) && !truncate) {
		return b[:checkpoint], false
	}
	f.shouldAck = false
	f.prevWindow = win
	return nb, true
}
