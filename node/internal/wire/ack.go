package wire

import "iter"

// BufferBlockSize is the unit of the bufferBlocksAvailable field of
// acknowledgements: the receiver advertises its free buffer in 1024-byte
// blocks.
const BufferBlockSize = 1024

// AckBitmap (0x50, RFC 7016 §2.3.13) acknowledges a flow with a cumulative
// ack and a bitmap of later sequence numbers. Bit 0 (least significant) of
// the first byte stands for CumulativeAck+2 (CumulativeAck+1 is by
// definition missing), bit 1 for CumulativeAck+3, and so on. The reference
// implementation never sends this chunk; Range acks are preferred.
type AckBitmap struct {
	FlowID                uint64
	BufferBlocksAvailable uint64
	CumulativeAck         uint64
	Bitmap                []byte
}

// Append appends the whole AckBitmap chunk (nothing if oversized).
func (c AckBitmap) Append(b []byte) []byte {
	n := VLULen(c.FlowID) + VLULen(c.BufferBlocksAvailable) + VLULen(c.CumulativeAck) + len(c.Bitmap)
	if n > MaxChunkPayload {
		return b
	}
	b = AppendChunkHeader(b, ChunkAckBitmap, n)
	b = AppendVLU(b, c.FlowID)
	b = AppendVLU(b, c.BufferBlocksAvailable)
	b = AppendVLU(b, c.CumulativeAck)
	return append(b, c.Bitmap...)
}

// ParseAckBitmap decodes flowID(VLU) bufferBlocksAvailable(VLU)
// cumulativeAck(VLU) bitmap(rest).
func ParseAckBitmap(p []byte) (AckBitmap, error) {
	d := decoder{b: p, ctx: "AckBitmap"}
	c := AckBitmap{FlowID: d.vlu(), BufferBlocksAvailable: d.vlu(), CumulativeAck: d.vlu()}
	c.Bitmap = d.rest()
	if d.err != nil {
		return AckBitmap{}, d.err
	}
	return c, nil
}

// Received yields the sequence numbers the bitmap marks as received, in
// increasing order (not including those covered by CumulativeAck). Numbers
// that would overflow 64 bits are not yielded.
func (c AckBitmap) Received() iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		base := c.CumulativeAck + 2
		if base < c.CumulativeAck {
			return
		}
		for i, by := range c.Bitmap {
			for j := 0; j < 8; j++ {
				if by&(1<<j) == 0 {
					continue
				}
				off := uint64(i)*8 + uint64(j)
				seq := base + off
				if seq < base {
					return
				}
				if !yield(seq) {
					return
				}
			}
		}
	}
}

// SeqRange is an inclusive range of sequence numbers [From, To].
type SeqRange struct{ From, To uint64 }

// AckRanges (0x51, §2.3.14) acknowledges a flow with a cumulative ack and
// the ranges received above it. Each range is a pair of VLUs
// (holesMinusOne, receivedMinusOne) relative to the end of the previous
// range (the cumulative ack for the first): the range starts
// holesMinusOne+2 above it and is receivedMinusOne+1 long.
type AckRanges struct {
	FlowID                uint64
	BufferBlocksAvailable uint64
	CumulativeAck         uint64
	// Ranges is the raw encoded range list; iterate it with Iter and build
	// it with AppendAckRanges.
	Ranges []byte
}

// Append appends the whole AckRanges chunk with the raw Ranges as they are
// (nothing if oversized).
func (c AckRanges) Append(b []byte) []byte {
	n := VLULen(c.FlowID) + VLULen(c.BufferBlocksAvailable) + VLULen(c.CumulativeAck) + len(c.Ranges)
	if n > MaxChunkPayload {
		return b
	}
	b = AppendChunkHeader(b, ChunkAckRanges, n)
	b = AppendVLU(b, c.FlowID)
	b = AppendVLU(b, c.BufferBlocksAvailable)
	b = AppendVLU(b, c.CumulativeAck)
	return append(b, c.Ranges...)
}

// ParseAckRanges decodes flowID(VLU) bufferBlocksAvailable(VLU)
// cumulativeAck(VLU) then range pairs. The ranges are checked for
// arithmetic overflow (ErrMalformed) here, so iterating them afterwards
// cannot fail. A trailing incomplete pair is tolerated and ignored: a
// sender short of room may stop mid-pair (the reference does).
func ParseAckRanges(p []byte) (AckRanges, error) {
	d := decoder{b: p, ctx: "AckRanges"}
	c := AckRanges{FlowID: d.vlu(), BufferBlocksAvailable: d.vlu(), CumulativeAck: d.vlu()}
	c.Ranges = d.rest()
	if d.err != nil {
		return AckRanges{}, d.err
	}
	it := c.Iter()
	for {
		if _, _, ok := it.Next(); !ok {
			break
		}
	}
	if err := it.Err(); err != nil {
		return AckRanges{}, err
	}
	return c, nil
}

// Iter iterates the received ranges without allocating.
func (c AckRanges) Iter() AckRangeIter {
	return AckRangeIter{b: c.Ranges, cursor: c.CumulativeAck}
}

// AckRangeIter walks the ranges of an AckRanges chunk in increasing order.
type AckRangeIter struct {
	b      []byte
	off    int
	cursor uint64 // highest sequence number accounted for so far
	err    error
	done   bool
}

// Next returns the next received range; ok is false at the end or on error.
func (it *AckRangeIter) Next() (from, to uint64, ok bool) {
	if it.done || it.off >= len(it.b) {
		it.done = true
		return 0, 0, false
	}
	holes, n, err := ReadVLU(it.b[it.off:])
	if err != nil {
		it.done = true
		if !isErr(err, ErrTruncated) {
			it.err = wrap("AckRanges", ErrMalformed)
		}
		return 0, 0, false
	}
	recv, m, err := ReadVLU(it.b[it.off+n:])
	if err != nil {
		it.done = true
		if !isErr(err, ErrTruncated) {
			it.err = wrap("AckRanges", ErrMalformed)
		}
		return 0, 0, false
	}
	from = it.cursor + holes + 2
	to = from + recv
	if holes > ^uint64(0)-2 || from < it.cursor || to < from {
		it.done, it.err = true, wrap("AckRanges range", ErrMalformed)
		return 0, 0, false
	}
	it.off += n + m
	it.cursor = to
	return from, to, true
}

// Err is the error that ended iteration, if any (never a truncation).
func (it *AckRangeIter) Err() error { return it.err }

// AppendAckRanges appends a whole AckRanges chunk for the received ranges
// above cumAck. Ranges must be sorted, each From at least 2 above the
// previous To (cumAck for the first) so that a hole separates them;
// otherwise ErrMalformed and b is returned unchanged. If maxChunkLen > 0 the
// chunk (header included) is kept within it by dropping the ranges that do
// not fit — the highest ones, which the sender will learn about later; if
// even the fixed fields do not fit, ErrTooLarge. n is the number of ranges
// encoded.
func AppendAckRanges(b []byte, flowID, bufferBlocks, cumAck uint64, received []SeqRange, maxChunkLen int) (out []byte, n int, err error) {
	limit := ChunkHeaderLength + MaxChunkPayload
	if maxChunkLen > 0 && maxChunkLen < limit {
		limit = maxChunkLen
	}
	start := len(b)
	fixed := ChunkHeaderLength + VLULen(flowID) + VLULen(bufferBlocks) + VLULen(cumAck)
	if fixed > limit {
		return b, 0, wrap("AckRanges", ErrTooLarge)
	}
	cursor := cumAck
	for _, r := range received {
		if r.To < r.From || cursor >= ^uint64(0)-1 || r.From < cursor+2 {
			return b[:start], 0, wrap("AckRanges input", ErrMalformed)
		}
		cursor = r.To
	}
	b = BeginChunk(b, ChunkAckRanges)
	b = AppendVLU(b, flowID)
	b = AppendVLU(b, bufferBlocks)
	b = AppendVLU(b, cumAck)
	cursor = cumAck
	for _, r := range received {
		holes := r.From - cursor - 2
		recv := r.To - r.From
		if len(b)-start+VLULen(holes)+VLULen(recv) > limit {
			break
		}
		b = AppendVLU(b, holes)
		b = AppendVLU(b, recv)
		cursor = r.To
		n++
	}
	b, err = EndChunk(b, start)
	if err != nil {
		return b[:start], 0, err
	}
	return b, n, nil
}
