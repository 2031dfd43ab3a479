package fec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Piece is one coded unit of a block: a data fragment (Index < K) or a
// parity shard (Index >= K). Every piece carries the block's whole identity
// (Block, Offset, K, M, ShardSize), so any single piece is enough to place it
// and to size the block's buffers, in whatever order pieces arrive.
type Piece struct {
	// Block is the block's sequence number; the publisher numbers blocks
	// 0, 1, 2, ... with no holes.
	Block uint64
	// Offset is the position in the publisher's byte stream of the
	// block's first byte; it lets a subscriber report exact byte ranges
	// for blocks it never receives.
	Offset uint64
	// K is the number of data fragments in this block (k' <= Params.K:
	// a block closed by its deadline has fewer). Parity is computed over
	// exactly these K fragments.
	K int
	// M is the number of parity pieces of this block.
	M int
	// Index is the piece's position in the block, 0 <= Index < K+M.
	Index int
	// ShardSize is the size of every shard of the block: two length
	// bytes plus the longest data fragment.
	ShardSize int
	// Data is the fragment's bytes (data piece, without padding or length
	// prefix) or the whole parity shard of ShardSize bytes.
	Data []byte
}

// PieceHeaderSize is the encoded size of a piece without its payload.
const PieceHeaderSize = 24

// MaxPieceSize bounds the encoding of any piece.
const MaxPieceSize = PieceHeaderSize + 1<<16 - 1

// pieceVersion is the first byte of every encoded piece. A new layout gets
// a new number rather than a flag, so old decoders reject it outright.
const pieceVersion = 1

// ErrMalformedPiece is wrapped by every error of ParsePiece and Piece.Check.
var ErrMalformedPiece = errors.New("fec: malformed piece")

// IsParity reports whether p is a parity piece.
func (p Piece) IsParity() bool { return p.Index >= p.K }

// Check reports whether the fields of p are mutually consistent, i.e.
// whether p could be encoded and decoded again. It does not check p
// against any Params.
func (p Piece) Check() error {
	switch {
	case p.K < 1 || p.M < 0 || p.K+p.M > MaxShards || (p.M > 255):
		return fmt.Errorf("%w: k=%d m=%d", ErrMalformedPiece, p.K, p.M)
	case p.Index < 0 || p.Index >= p.K+p.M:
		return fmt.Errorf("%w: index %d outside 0..%d", ErrMalformedPiece, p.Index, p.K+p.M-1)
	case p.ShardSize < lengthPrefix || p.ShardSize > 1<<16-1:
		return fmt.Errorf("%w: shard size %d", ErrMalformedPiece, p.ShardSize)
	case p.IsParity() && len(p.Data) != p.ShardSize:
		return fmt.Errorf("%w: parity payload %d bytes, shard size %d", ErrMalformedPiece, len(p.Data), p.ShardSize)
	case !p.IsParity() && len(p.Data) > p.ShardSize-lengthPrefix:
		return fmt.Errorf("%w: data payload %d bytes exceeds shard size %d", ErrMalformedPiece, len(p.Data), p.ShardSize)
	}
	return nil
}

// AppendBinary appends the encoding of p to b. The layout, all integers
// big-endian:
//
//	0      version (1)
//	1..8   block sequence number
//	9..16  stream offset of the block's first byte
//	17     k'-1 (data fragments in the block, minus one)
//	18     m (parity pieces in the block)
//	19     index in the block
//	20..21 shard size
//	22..23 payload length
//	24..   payload
func (p Piece) AppendBinary(b []byte) ([]byte, error) {
	if err := p.Check(); err != nil {
		return b, err
	}
	return append(p.appendHeader(b), p.Data...), nil
}

// appendHeader appends the encoding of p without its payload.
func (p Piece) appendHeader(b []byte) []byte {
	b = append(b, pieceVersion)
	b = binary.BigEndian.AppendUint64(b, p.Block)
	b = binary.BigEndian.AppendUint64(b, p.Offset)
	b = append(b, byte(p.K-1), byte(p.M), byte(p.Index))
	b = binary.BigEndian.AppendUint16(b, uint16(p.ShardSize))
	return binary.BigEndian.AppendUint16(b, uint16(len(p.Data)))
}

// MarshalBinary returns the encoding of p (see AppendBinary).
func (p Piece) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, PieceHeaderSize+len(p.Data)))
}

// UnmarshalBinary decodes b into p, copying the payload.
func (p *Piece) UnmarshalBinary(b []byte) error {
	q, err := ParsePiece(b)
	if err != nil {
		return err
	}
	q.Data = append([]byte(nil), q.Data...)
	*p = q
	return nil
}

// ParsePiece decodes one piece that fills b exactly. The returned
// Piece.Data aliases b, which saves a copy on the receive path: the Decoder
// copies what it keeps.
func ParsePiece(b []byte) (Piece, error) {
	if len(b) < PieceHeaderSize {
		return Piece{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrMalformedPiece, len(b), PieceHeaderSize)
	}
	if b[0] != pieceVersion {
		return Piece{}, fmt.Errorf("%w: version %d, want %d", ErrMalformedPiece, b[0], pieceVersion)
	}
	n := int(binary.BigEndian.Uint16(b[22:]))
	if len(b) != PieceHeaderSize+n {
		return Piece{}, fmt.Errorf("%w: %d bytes, header says %d", ErrMalformedPiece, len(b), PieceHeaderSize+n)
	}
	p := Piece{
		Block:     binary.BigEndian.Uint64(b[1:]),
		Offset:    binary.BigEndian.Uint64(b[9:]),
		K:         int(b[17]) + 1,
		M:         int(b[18]),
		Index:     int(b[19]),
		ShardSize: int(binary.BigEndian.Uint16(b[20:])),
		Data:      b[PieceHeaderSize:],
	}
	if err := p.Check(); err != nil {
		return Piece{}, err
	}
	return p, nil
}
