package fec

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// DecoderConfig configures a Decoder.
type DecoderConfig struct {
	// Params must equal the publisher's (but for ShortParity, which only
	// the encoder reads). Pieces that claim more data fragments, parity
	// counts other than M or ParityFor(k') or larger shards are rejected, which
	// bounds the memory a stream of forged pieces can take.
	Params Params
	// Window is how many blocks, from the oldest undelivered one, the
	// decoder holds at once. Pieces of later blocks are dropped and
	// counted. Default 64.
	Window int
	// Timeout is how long the decoder waits for a block, counted from the
	// first piece of it (or of any later block) it sees, before giving up
	// on it and reporting a gap. Default 1s.
	Timeout time.Duration
	// StartAnywhere makes the decoder start at the block of the first
	// piece it receives, for a subscriber joining a running stream.
	// Otherwise it starts at block 0, offset 0.
	StartAnywhere bool
	// Early makes the decoder output a block's leading data fragments as
	// soon as they are in, before the block is complete: fragment i goes
	// out once fragments 0..i of the head block are held. The rest of the
	// block follows when it is rebuilt, or a gap from the last fragment
	// output if it is given up. Without it a block goes out whole.
	Early bool
	// Recycle makes the decoder reuse the memory of blocks it is done
	// with for later blocks: the Fragments of an Output are then valid
	// only until the next call to Add or Next, and a caller that keeps
	// them must copy them first. Without it they stay valid for good
	// and every block takes new memory ((k+m) shards of it).
	Recycle bool
}

// Default decoder settings.
const (
	DefaultWindow  = 64
	DefaultTimeout = time.Second
	maxWindow      = 1 << 16
	maxSpare       = 2 // blocks kept for reuse (Recycle)
)

// Output is one in-order record of a Decoder: the fragments of one block,
// or a gap of blocks given up on.
type Output struct {
	// Block is the sequence number of the (first) block of the record.
	Block uint64
	// Offset is the stream offset of the first byte of Fragments. For a
	// gap it is where the missing bytes begin: the end of the last
	// delivered data. The missing range ends at the Offset of the next
	// data record.
	Offset uint64
	// Fragments are the block's data fragments in order, as the publisher
	// wrote them. Concatenated they are the stream bytes
	// [Offset, Offset+Len()). Nil for a gap.
	Fragments [][]byte
	// Lost is the number of blocks given up on, starting at Block; zero
	// for data.
	Lost uint64
	// Index is the position in the block of Fragments[0]: zero unless
	// part of the block went out early (DecoderConfig.Early).
	Index int
	// More reports that the block continues in a later record: only
	// early output (DecoderConfig.Early) leaves it set. A record without
	// it ends its block.
	More bool
}

// IsGap reports whether o reports lost blocks rather than data.
func (o Output) IsGap() bool { return o.Lost > 0 }

// Len returns the number of stream bytes in o (zero for a gap).
func (o Output) Len() int {
	n := 0
	for _, f := range o.Fragments {
		n += len(f)
	}
	return n
}

// DecoderStats counts what a Decoder has seen and produced.
type DecoderStats struct {
	Pieces     uint64 // pieces stored in a block
	Duplicates uint64 // pieces already held, or of a block already rebuilt
	Old        uint64 // pieces of blocks already delivered or given up
	Future     uint64 // pieces of blocks beyond the window
	Invalid    uint64 // pieces that fail Check, do not match Params, or contradict their block
	Recovered  uint64 // data fragments rebuilt from parity

	BlocksDelivered uint64
	BlocksRecovered uint64 // delivered blocks that needed parity
	BlocksLost      uint64 // blocks given up on (by timeout or window jump)
	Corrupt         uint64 // blocks whose rebuilt fragments were inconsistent, counted in BlocksLost
	BytesOut        uint64
}

// ErrPieceMismatch is wrapped by Add errors for pieces that do not fit the
// decoder's Params or the block they claim to belong to.
var ErrPieceMismatch = errors.New("fec: piece does not match")

// Decoder rebuilds a publisher's byte stream from pieces received in any
// order, with losses and duplicates, and returns it in block order with
// explicit gaps. Like the Encoder it does no I/O and reads no clock.
type Decoder struct {
	cfg DecoderConfig

	started bool
	head    uint64 // oldest block not yet delivered or given up
	pos     uint64 // stream offset where head begins, as far as known
	ring    []*dblock

	future      bool // a piece beyond the window was seen since the last jump
	futureSeq   uint64
	futureSince time.Time

	out   []Output
	outAt int
	stats DecoderStats

	// With Recycle: blocks left behind whose fragments Outputs not yet
	// taken may show (retired, at most as many as the window), and
	// blocks free for reuse (spare, at most maxSpare: blocks come as
	// fast as they go, but a jump of the window leaves many at once).
	retired, spare []*dblock
	reused         int // blocks that took a spare's memory (tests)
}

type dblock struct {
	seq, offset  uint64
	k, m, ss     int
	buf          []byte
	have         [MaxShards / 64]uint64
	count, data  int
	firstSeen    time.Time
	ready, fails bool
	// open: only full fragments given by AddFragment are in, so k and m
	// are not known (the buffer is sized for K+M shards of
	// FragmentSize+2); maxEarly is one past the highest of their indexes.
	open      bool
	maxEarly  int
	frags     [][]byte
	sent      int    // leading data fragments already output early
	sentBytes uint64 // their length
}

// NewDecoder returns a Decoder for cfg, with defaults filled in.
func NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Window < 1 || cfg.Window > maxWindow || cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: window %d (want 1..%d), timeout %v", ErrInvalidParams, cfg.Window, maxWindow, cfg.Timeout)
	}
	return &Decoder{
		cfg:     cfg,
		ring:    make([]*dblock, cfg.Window),
		started: !cfg.StartAnywhere,
	}, nil
}

// Stats returns the decoder's counters.
func (d *Decoder) Stats() DecoderStats { return d.stats }

// Pos returns the stream offset where the head block begins, as far as
// known (where the output stopped).
func (d *Decoder) Pos() uint64 { return d.pos }

// Head returns the sequence number of the oldest block not yet delivered
// or given up on.
func (d *Decoder) Head() uint64 { return d.head }

// Add gives the decoder one piece received at now. The decoder copies what
// it keeps, so p.Data may be reused. Pieces of old, far-future or already
// complete blocks are counted and ignored; an error is returned only for a
// piece that is malformed or contradicts the Params or its block. Add also
// applies timeouts up to now, so Output records may become ready.
func (d *Decoder) Add(p Piece, now time.Time) error {
	d.release()
	if err := d.check(p); err != nil {
		d.stats.Invalid++
		return err
	}
	if d.admit(p.Block, p.Offset, now) {
		if err := d.store(p, now); err != nil {
			d.stats.Invalid++
			return err
		}
	}
	d.Advance(now)
	return nil
}

// admit starts the decoder at the first block it hears of and reports
// whether a piece or fragment of block seq (at stream offset offset) is
// to be stored: not if the block is already delivered or given up (old)
// or beyond the window (future), which are counted.
func (d *Decoder) admit(seq, offset uint64, now time.Time) bool {
	if !d.started {
		d.started, d.head, d.pos = true, seq, offset
	}
	switch {
	case seq < d.head:
		d.stats.Old++
		return false
	case d.beyond(seq):
		d.stats.Future++
		if !d.future {
			d.future, d.futureSince = true, now
		}
		d.futureSeq = max(d.futureSeq, seq)
		return false
	}
	return true
}

// AddFragment gives the decoder a full data fragment of a block whose
// parameters may not be known yet (Encoder.Filled: sent before its block
// closed). It goes out early (DecoderConfig.Early) like a data piece, and
// the block is rebuilt once its pieces say how many fragments and parity
// pieces it has. The caller vouches for the fragment (the group layer
// checks the publisher's signature on it); one that contradicts its
// block's pieces is rejected like a mismatched piece.
func (d *Decoder) AddFragment(f Fragment, now time.Time) error {
	d.release()
	pp := d.cfg.Params
	if len(f.Data) != pp.FragmentSize || f.Index < 0 || f.Index >= pp.K {
		d.stats.Invalid++
		return fmt.Errorf("%w: fragment %d of %d bytes, params K=%d FragmentSize=%d",
			ErrPieceMismatch, f.Index, len(f.Data), pp.K, pp.FragmentSize)
	}
	if d.admit(f.Block, f.Offset, now) {
		if err := d.storeFragment(f, now); err != nil {
			d.stats.Invalid++
			return err
		}
	}
	d.Advance(now)
	return nil
}

func (d *Decoder) storeFragment(f Fragment, now time.Time) error {
	pp := d.cfg.Params
	ss := pp.FragmentSize + lengthPrefix
	slot := &d.ring[f.Block%uint64(len(d.ring))]
	b := *slot
	if b == nil {
		b = d.newBlock((pp.K + pp.M) * ss)
		b.seq, b.offset, b.ss, b.firstSeen, b.open = f.Block, f.Offset, ss, now, true
		*slot = b
	}
	if b.offset != f.Offset || b.ss != ss || !b.open && f.Index >= b.k {
		return fmt.Errorf("%w: block %d is offset %d k=%d shard %d, fragment %d says offset %d shard %d",
			ErrPieceMismatch, b.seq, b.offset, b.k, b.ss, f.Index, f.Offset, ss)
	}
	word, bit := f.Index/64, uint64(1)<<(f.Index%64)
	if b.ready || b.fails || b.have[word]&bit != 0 {
		d.stats.Duplicates++
		return nil
	}
	b.have[word] |= bit
	b.count++
	b.data++
	b.maxEarly = max(b.maxEarly, f.Index+1)
	d.stats.Pieces++
	s := b.buf[f.Index*ss : (f.Index+1)*ss]
	s[0], s[1] = byte(len(f.Data)>>8), byte(len(f.Data))
	copy(s[lengthPrefix:], f.Data)
	if !b.open && b.count >= b.k {
		d.rebuild(b)
	}
	return nil
}

func (d *Decoder) check(p Piece) error {
	if err := p.Check(); err != nil {
		return err
	}
	pp := d.cfg.Params
	if p.K > pp.K || !pp.ParityOK(p.K, p.M) || p.ShardSize > pp.FragmentSize+lengthPrefix {
		return fmt.Errorf("%w: k=%d m=%d shard %d, params K=%d M=%d FragmentSize=%d",
			ErrPieceMismatch, p.K, p.M, p.ShardSize, pp.K, pp.M, pp.FragmentSize)
	}
	return nil
}

func (d *Decoder) store(p Piece, now time.Time) error {
	slot := &d.ring[p.Block%uint64(len(d.ring))]
	b := *slot
	if b == nil {
		b = d.newBlock((p.K + p.M) * p.ShardSize)
		b.seq, b.offset, b.k, b.m, b.ss, b.firstSeen = p.Block, p.Offset, p.K, p.M, p.ShardSize, now
		*slot = b
	}
	if b.open && b.offset == p.Offset && b.ss == p.ShardSize && p.K >= b.maxEarly && p.K+p.M <= len(b.buf)/b.ss {
		// The first piece of a block that so far had only early
		// fragments: now its shape is known.
		b.open, b.k, b.m = false, p.K, p.M
		if b.count >= b.k {
			d.rebuild(b) // the early fragments were the whole block
		}
	}
	if b.open || b.offset != p.Offset || b.k != p.K || b.ss != p.ShardSize {
		return fmt.Errorf("%w: block %d is offset %d k=%d shard %d, piece says %d k=%d shard %d",
			ErrPieceMismatch, b.seq, b.offset, b.k, b.ss, p.Offset, p.K, p.ShardSize)
	}
	word, bit := p.Index/64, uint64(1)<<(p.Index%64)
	if b.ready || b.fails || b.have[word]&bit != 0 {
		d.stats.Duplicates++
		return nil
	}
	b.have[word] |= bit
	b.count++
	d.stats.Pieces++
	s := b.buf[p.Index*b.ss : (p.Index+1)*b.ss]
	if p.IsParity() {
		copy(s, p.Data)
	} else {
		s[0], s[1] = byte(len(p.Data)>>8), byte(len(p.Data))
		copy(s[lengthPrefix:], p.Data) // the rest is still zero
		b.data++
	}
	if b.count >= b.k {
		d.rebuild(b)
	}
	return nil
}

// rebuild fills in missing data shards from parity and cuts the block
// into fragments. A rebuilt shard whose length field or padding is
// impossible means forged or mismatched pieces: the block is given up.
func (d *Decoder) rebuild(b *dblock) {
	missing := b.k - b.data
	if missing > 0 {
		shards := make([][]byte, b.k+b.m)
		for i := range shards {
			if b.have[i/64]&(1<<(i%64)) != 0 {
				shards[i] = b.buf[i*b.ss : (i+1)*b.ss]
			} else if i < b.k {
				shards[i] = b.buf[i*b.ss : i*b.ss : (i+1)*b.ss] // empty: rebuild in place
			}
		}
		// The block's own (k', m): m is M or, from a publisher with
		// ShortParity, ParityFor(k') (check admits only those).
		rs, err := Codec(b.k, b.m)
		if err == nil {
			err = rs.ReconstructData(shards)
		}
		if err != nil {
			b.fails = true
			d.stats.Corrupt++
			return
		}
	}
	frags := slices.Grow(b.frags[:0], b.k)[:b.k]
	for i := range frags {
		s := b.buf[i*b.ss : (i+1)*b.ss]
		n := int(s[0])<<8 | int(s[1])
		if n > b.ss-lengthPrefix || !zero(s[lengthPrefix+n:]) {
			b.fails = true
			d.stats.Corrupt++
			return
		}
		frags[i] = s[lengthPrefix : lengthPrefix+n : lengthPrefix+n]
	}
	b.frags, b.ready = frags, true
	if missing > 0 {
		d.stats.Recovered += uint64(missing)
		d.stats.BlocksRecovered++
	}
}

// newBlock returns a block with a zeroed buffer of n bytes: a spare one
// if it is large enough.
func (d *Decoder) newBlock(n int) *dblock {
	if k := len(d.spare); k > 0 {
		b := d.spare[k-1]
		d.spare[k-1] = nil
		d.spare = d.spare[:k-1]
		if cap(b.buf) >= n {
			*b = dblock{buf: b.buf[:n], frags: b.frags[:0]}
			clear(b.buf)
			d.reused++
			return b
		}
	}
	return &dblock{buf: make([]byte, n)}
}

// release makes the retired blocks spare once every Output was taken
// (the caller is then done with them); the spare beyond maxSpare are
// left to the collector.
func (d *Decoder) release() {
	if d.outAt < len(d.out) || len(d.retired) == 0 {
		return
	}
	for _, b := range d.retired {
		if len(d.spare) < maxSpare {
			d.spare = append(d.spare, b)
		}
	}
	clear(d.retired)
	d.retired = d.retired[:0]
}

// drop takes block b out of the ring slot: with Recycle its memory is
// reused once no Output can show it.
func (d *Decoder) drop(slot **dblock) {
	b := *slot
	*slot = nil
	if d.cfg.Recycle && len(d.retired) < len(d.ring) {
		d.retired = append(d.retired, b)
	}
}

func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Deadline returns when the decoder will give up on its oldest undelivered
// block, if it is waiting for one; the caller calls Advance then.
func (d *Decoder) Deadline() (time.Time, bool) {
	if b := d.ring[d.head%uint64(len(d.ring))]; b != nil && b.seq == d.head {
		return b.firstSeen.Add(d.cfg.Timeout), true
	}
	// The head was never seen: it is known to exist since something
	// after it was.
	var first time.Time
	ok := false
	for _, b := range d.ring {
		if b != nil && (!ok || b.firstSeen.Before(first)) {
			first, ok = b.firstSeen, true
		}
	}
	if d.future && (!ok || d.futureSince.Before(first)) {
		first, ok = d.futureSince, true
	}
	return first.Add(d.cfg.Timeout), ok
}

// Advance delivers complete blocks in order and gives up on blocks whose
// timeout has passed by now.
func (d *Decoder) Advance(now time.Time) {
	if !d.started {
		return
	}
	// Every pass delivers or gives up on at least one block and a gap
	// covers all untracked blocks up to the next tracked one, so passes
	// are bounded by twice the window; the limit is a safety net.
	for range 2*len(d.ring) + 2 {
		slot := &d.ring[d.head%uint64(len(d.ring))]
		b := *slot
		if b != nil && b.seq != d.head {
			b = nil // cannot happen: the ring holds only [head, head+window)
		}
		switch {
		case b != nil && b.ready:
			d.drop(slot)
			rest := b.frags[b.sent:]
			n := 0
			for _, f := range rest {
				n += len(f)
			}
			// rest is empty only if every fragment went out early:
			// fragments given by AddFragment before the block's
			// pieces said it had no more. The record still ends the
			// block.
			d.out = append(d.out, Output{Block: b.seq, Offset: b.offset + b.sentBytes, Fragments: rest, Index: b.sent})
			d.pos = b.offset + b.sentBytes + uint64(n)
			d.stats.BlocksDelivered++
			d.stats.BytesOut += uint64(n)
			d.setHead(d.head + 1)
			continue
		case b != nil && b.fails:
			d.drop(slot)
			d.gap(d.head + 1)
			continue
		}
		if b != nil && d.cfg.Early {
			d.early(b)
		}
		dl, ok := d.Deadline()
		if !ok || now.Before(dl) {
			return
		}
		if b != nil {
			d.drop(slot)
			d.gap(d.head + 1)
			continue
		}
		// Untracked head: skip to the next tracked block, or, if none is
		// in the window, far enough that the newest far-future block
		// seen falls inside it.
		next, found := d.head, false
		for i := uint64(1); i < uint64(len(d.ring)); i++ {
			if c := d.ring[(d.head+i)%uint64(len(d.ring))]; c != nil && c.seq == d.head+i {
				next, found = d.head+i, true
				break
			}
		}
		if !found {
			next = d.head + 1
			if d.future && d.beyond(d.futureSeq) {
				next = d.futureSeq - uint64(len(d.ring)) + 1
			}
		}
		d.gap(next)
	}
}

// early outputs the head block's data fragments held in a row after those
// already out. A data shard is stored as it came (length prefix, data,
// zero padding), so it needs no check; the block's later rebuild leaves
// received shards as they are.
func (d *Decoder) early(b *dblock) {
	first, from := b.sent, b.offset+b.sentBytes
	var frags [][]byte
	k := b.k
	if b.open {
		k = d.cfg.Params.K
	}
	for b.sent < k && b.have[b.sent/64]&(1<<(b.sent%64)) != 0 {
		s := b.buf[b.sent*b.ss : (b.sent+1)*b.ss]
		n := int(s[0])<<8 | int(s[1])
		frags = append(frags, s[lengthPrefix:lengthPrefix+n:lengthPrefix+n])
		b.sentBytes += uint64(n)
		d.stats.BytesOut += uint64(n)
		b.sent++
	}
	if frags != nil {
		d.pos = b.offset + b.sentBytes
		d.out = append(d.out, Output{Block: b.seq, Offset: from, Fragments: frags, Index: first, More: true})
	}
}

// gap gives up on blocks [head, next), merging with a gap record still
// queued right before it.
func (d *Decoder) gap(next uint64) {
	lost := next - d.head
	d.stats.BlocksLost += lost
	if n := len(d.out); n > d.outAt && d.out[n-1].IsGap() && d.out[n-1].Block+d.out[n-1].Lost == d.head {
		d.out[n-1].Lost += lost
	} else {
		d.out = append(d.out, Output{Block: d.head, Offset: d.pos, Lost: lost})
	}
	d.setHead(next)
}

// setHead moves the window; a far-future block that now falls inside it
// no longer counts as evidence that the head is overdue.
func (d *Decoder) setHead(h uint64) {
	d.head = h
	if d.future && !d.beyond(d.futureSeq) {
		d.future, d.futureSeq = false, 0
	}
}

// beyond reports whether seq lies past the window.
func (d *Decoder) beyond(seq uint64) bool {
	return seq >= d.head && seq-d.head >= uint64(len(d.ring))
}

// Next returns the next in-order Output record. Its Fragments stay valid
// (the decoder never writes to a block's memory after delivering it),
// except with DecoderConfig.Recycle: then only until the next Add or
// Next.
func (d *Decoder) Next() (Output, bool) {
	if d.outAt == len(d.out) {
		d.out, d.outAt = d.out[:0], 0
		d.release()
		return Output{}, false
	}
	o := d.out[d.outAt]
	d.out[d.outAt] = Output{}
	d.outAt++
	return o, true
}
