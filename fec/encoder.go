package fec

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/klauspost/reedsolomon"
)

// Block is one closed FEC block as the encoder emits it: K data pieces
// followed by M parity pieces, all sharing one buffer.
type Block struct {
	// Seq is the block's sequence number.
	Seq uint64
	// Offset is the stream offset of the block's first byte.
	Offset uint64
	// Length is the number of stream bytes in the block.
	Length int
	// Pieces holds the data pieces (Index 0..K-1) then the parity pieces.
	Pieces []Piece
}

// EncoderStats counts what an Encoder has produced.
type EncoderStats struct {
	Blocks       uint64 // blocks closed
	ShortBlocks  uint64 // blocks closed by deadline or Sync with fewer than K fragments
	DataPieces   uint64
	ParityPieces uint64
	BytesIn      uint64 // stream bytes accepted
}

// ErrFragmentTooLarge is returned by WriteFragment for a fragment longer
// than Params.FragmentSize.
var ErrFragmentTooLarge = errors.New("fec: fragment larger than FragmentSize")

// Encoder cuts a publisher's byte stream into blocks of data fragments and
// adds Reed-Solomon parity. It does no I/O and reads no clock: the caller
// passes the time with every call and asks Deadline when to call Flush.
type Encoder struct {
	p      Params
	codecs codecs

	stage   []byte // K fragments of FragmentSize bytes, the open block
	lens    []int  // lengths of the fragments of the open block, the last may be partial
	partial bool   // the last entry of lens is still being filled by Write
	opened  time.Time
	seq     uint64
	offset  uint64 // stream offset of the open block
	blkLen  int
	taken   int // fragments of the open block Filled looked at

	out   []Block
	outAt int
	stats EncoderStats
}

// NewEncoder returns an Encoder for p, starting at block 0 and offset 0.
func NewEncoder(p Params) (*Encoder, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Encoder{
		p:      p,
		codecs: newCodecs(p),
		stage:  make([]byte, p.K*p.FragmentSize),
		lens:   make([]int, 0, p.K),
	}, nil
}

// ErrStarted is returned by StartAt once the encoder has taken bytes.
var ErrStarted = errors.New("fec: the encoder has already started")

// StartAt makes the first block seq instead of 0 (the stream offset still
// starts at 0). It must be called before the first Write.
func (e *Encoder) StartAt(seq uint64) error {
	if e.offset != 0 || e.blkLen > 0 || len(e.lens) > 0 || len(e.out) > 0 {
		return ErrStarted
	}
	e.seq = seq
	return nil
}

// NextSeq is the number of the block the next bytes go into (the open
// one, or the next if none is open).
func (e *Encoder) NextSeq() uint64 { return e.seq }

// Params returns the encoder's parameters.
func (e *Encoder) Params() Params { return e.p }

// Stats returns the encoder's counters.
func (e *Encoder) Stats() EncoderStats { return e.stats }

// Write appends stream bytes received at now. Bytes are packed into
// fragments of exactly FragmentSize; a block closes as soon as it holds K
// full fragments. A block whose deadline passed before now is closed first.
func (e *Encoder) Write(now time.Time, b []byte) {
	e.Flush(now)
	for len(b) > 0 {
		if !e.partial {
			e.open(now)
			e.lens = append(e.lens, 0)
			e.partial = true
		}
		i := len(e.lens) - 1
		n := copy(e.stage[i*e.p.FragmentSize+e.lens[i]:(i+1)*e.p.FragmentSize], b)
		e.lens[i] += n
		e.blkLen += n
		e.stats.BytesIn += uint64(n)
		b = b[n:]
		if e.lens[i] == e.p.FragmentSize {
			e.partial = false
			if len(e.lens) == e.p.K {
				e.close()
			}
		}
	}
}

// WriteFragment appends one whole fragment (at most FragmentSize bytes,
// possibly empty) received at now. Bytes pending from Write become a
// fragment of their own first, so fragment boundaries are kept: the decoder
// returns exactly these fragments.
func (e *Encoder) WriteFragment(now time.Time, f []byte) error {
	if len(f) > e.p.FragmentSize {
		return fmt.Errorf("%w: %d > %d bytes", ErrFragmentTooLarge, len(f), e.p.FragmentSize)
	}
	e.Flush(now)
	e.partial = false
	if len(e.lens) == e.p.K { // a partial fragment completed the block
		e.close()
	}
	e.open(now)
	i := len(e.lens)
	copy(e.stage[i*e.p.FragmentSize:], f)
	e.lens = append(e.lens, len(f))
	e.blkLen += len(f)
	e.stats.BytesIn += uint64(len(f))
	if len(e.lens) == e.p.K {
		e.close()
	}
	return nil
}

func (e *Encoder) open(now time.Time) {
	if len(e.lens) == 0 {
		e.opened = now
	}
}

// Deadline returns when the open block must be closed, if there is an open
// block with a deadline (Params.MaxDelay > 0).
func (e *Encoder) Deadline() (time.Time, bool) {
	if len(e.lens) == 0 || e.p.MaxDelay == 0 {
		return time.Time{}, false
	}
	return e.opened.Add(e.p.MaxDelay), true
}

// Fragment is one full data fragment of a block the encoder has not
// closed yet (Filled), for a publisher that sends data before its block's
// parity: its block's k', m and shard size are not known yet, but a block
// with a fragment of FragmentSize bytes has shards of FragmentSize+2.
type Fragment struct {
	// Block is the block's sequence number and Offset the stream offset
	// of its first byte, as in its pieces.
	Block, Offset uint64
	// Index is the fragment's position in the block.
	Index int
	// Data is the fragment: FragmentSize bytes.
	Data []byte
}

// Filled returns the next full data fragment of the open block that
// Filled has not returned yet, a copy the caller owns. Fragments of a
// block that closed before Filled saw them (the K-th fragment closes its
// block at once) and fragments shorter than FragmentSize (WriteFragment)
// are not returned: they go out with their block only.
func (e *Encoder) Filled() (Fragment, bool) {
	full := len(e.lens)
	if e.partial {
		full--
	}
	for e.taken < full {
		i := e.taken
		e.taken++
		if e.lens[i] == e.p.FragmentSize {
			data := make([]byte, e.p.FragmentSize)
			copy(data, e.stage[i*e.p.FragmentSize:])
			return Fragment{Block: e.seq, Offset: e.offset, Index: i, Data: data}, true
		}
	}
	return Fragment{}, false
}

// Flush closes the open block if its deadline is not after now.
func (e *Encoder) Flush(now time.Time) {
	if d, ok := e.Deadline(); ok && !now.Before(d) {
		e.close()
	}
}

// Sync closes the open block now, whatever its size; use it at the end of
// the stream or when the application wants its bytes on the wire at once.
func (e *Encoder) Sync() {
	if len(e.lens) > 0 {
		e.close()
	}
}

// Next returns the next closed block, oldest first. The block's buffers
// belong to the caller.
func (e *Encoder) Next() (Block, bool) {
	if e.outAt == len(e.out) {
		e.out, e.outAt = e.out[:0], 0
		return Block{}, false
	}
	b := e.out[e.outAt]
	e.out[e.outAt] = Block{}
	e.outAt++
	return b, true
}

// close turns the open block into pieces. Every data shard is the
// fragment's length (2 bytes), the fragment and zero padding up to the
// block's shard size, which is 2 + the longest fragment; parity is computed
// over the k' shards actually present, so a short block costs k'+m pieces.
func (e *Encoder) close() {
	k := len(e.lens)
	m := e.codecs.parity(k)
	longest := 0
	for _, n := range e.lens {
		longest = max(longest, n)
	}
	ss := lengthPrefix + longest
	buf := make([]byte, (k+m)*ss)
	shards := make([][]byte, k+m)
	pieces := make([]Piece, k+m)
	for i := range shards {
		shards[i] = buf[i*ss : (i+1)*ss : (i+1)*ss]
	}
	for i, n := range e.lens {
		s := shards[i]
		s[0], s[1] = byte(n>>8), byte(n)
		copy(s[lengthPrefix:], e.stage[i*e.p.FragmentSize:i*e.p.FragmentSize+n])
		pieces[i] = Piece{Data: s[lengthPrefix : lengthPrefix+n]}
	}
	if m > 0 {
		// Shards are equal-sized and non-empty, which is all Encode asks.
		if err := e.codecs.get(k).Encode(shards); err != nil {
			panic("fec: reedsolomon.Encode: " + err.Error())
		}
	}
	for i := range pieces {
		if i >= k {
			pieces[i].Data = shards[i]
		}
		pieces[i].Block, pieces[i].Offset = e.seq, e.offset
		pieces[i].K, pieces[i].M, pieces[i].Index, pieces[i].ShardSize = k, m, i, ss
	}
	e.out = append(e.out, Block{Seq: e.seq, Offset: e.offset, Length: e.blkLen, Pieces: pieces})
	e.stats.Blocks++
	if k < e.p.K {
		e.stats.ShortBlocks++
	}
	e.stats.DataPieces += uint64(k)
	e.stats.ParityPieces += uint64(m)
	e.seq++
	e.offset += uint64(e.blkLen)
	e.blkLen = 0
	e.lens = e.lens[:0]
	e.partial = false
	e.taken = 0
}

// codecs keeps the shared codec of each data-fragment count (Codec), got
// on first use: short blocks need codecs for k' < K.
type codecs struct {
	p  Params
	rs []reedsolomon.Encoder // index k'
}

func newCodecs(p Params) codecs {
	return codecs{p: p, rs: make([]reedsolomon.Encoder, p.K+1)}
}

func (c *codecs) get(k int) reedsolomon.Encoder {
	if c.rs[k] == nil {
		rs, err := Codec(k, c.parity(k))
		if err != nil { // Params.Validate keeps k and m in range
			panic("fec: " + err.Error())
		}
		c.rs[k] = rs
	}
	return c.rs[k]
}

// parity is the parity count of a block of k data fragments.
func (c *codecs) parity(k int) int {
	if c.p.ShortParity {
		return c.p.ParityFor(k)
	}
	return c.p.M
}

// shared holds one codec per (k, m), for the whole process.
var shared sync.Map // codecKey -> reedsolomon.Encoder

type codecKey struct{ k, m int }

// Codec returns the process's Reed-Solomon codec for k data and m parity
// shards, made on first use. Codecs are shared by every encoder, decoder
// and caller: a reedsolomon.Encoder is safe for concurrent use (its
// matrices are fixed when it is made; the cache of inverted matrices it
// fills while reconstructing is locked), and one codec per shape instead
// of one per encoder and decoder keeps a process that runs many members
// from holding (and filling) as many copies of the same matrices.
func Codec(k, m int) (reedsolomon.Encoder, error) {
	key := codecKey{k, m}
	if rs, ok := shared.Load(key); ok {
		return rs.(reedsolomon.Encoder), nil
	}
	rs, err := reedsolomon.New(k, m)
	if err != nil {
		return nil, fmt.Errorf("reedsolomon.New(%d, %d): %w", k, m, err)
	}
	got, _ := shared.LoadOrStore(key, rs)
	return got.(reedsolomon.Encoder), nil
}
