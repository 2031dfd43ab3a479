package fec

import (
	"errors"
	"fmt"
	"time"
)

// Limits of the codec. MaxShards is the Reed-Solomon limit of the GF(2^8)
// codec; the header stores k'-1, m and the index in one byte each, which is
// exactly what it allows. MaxFragmentSize keeps a shard (two length bytes
// plus the fragment) inside the 16-bit shard size field.
const (
	MaxShards       = 256
	MaxFragmentSize = 1<<16 - 1 - lengthPrefix
)

// lengthPrefix is the size of the true-length field every data shard starts
// with, so a fragment rebuilt from parity knows its own length.
const lengthPrefix = 2

// Params are the coding parameters a publisher and its subscribers agree on.
// They are not sent with every piece; a decoder uses them to reject pieces
// that would make it allocate more than the publisher could have produced.
type Params struct {
	// K is the number of data fragments in a full block.
	K int
	// M is the number of parity pieces computed for every block, full or
	// short (but see ShortParity). M parity pieces repair the loss of any
	// M pieces of the block.
	M int
	// FragmentSize is the largest data fragment in bytes. Stream bytes
	// are cut into fragments of exactly this size.
	FragmentSize int
	// MaxDelay bounds how long the encoder holds a block open waiting for
	// more bytes: a block whose first byte arrived at t closes at
	// t+MaxDelay even if it has fewer than K fragments. Zero means blocks
	// close only when full or on Encoder.Sync.
	MaxDelay time.Duration
	// ShortParity makes the encoder give a short block of k' < K data
	// fragments ParityFor(k') = ceil(M·k'/K) parity pieces (at least
	// one) instead of M, so a slow stream's parity costs what a full
	// block's does per byte rather than M/k' (2 bytes per byte at k'=2,
	// M=4). A decoder accepts both counts whatever its own setting.
	ShortParity bool
}

// ParityFor is the parity count ShortParity gives a block of k data
// fragments: M for a full block (or M = 0), ceil(M·k/K) but at least one
// for a short one.
func (p Params) ParityFor(k int) int {
	if k >= p.K || p.M == 0 {
		return p.M
	}
	return max(1, (p.M*k+p.K-1)/p.K)
}

// ParityOK reports whether a block of k data fragments may carry m parity
// pieces under p: M, or ParityFor(k) from a publisher with ShortParity.
func (p Params) ParityOK(k, m int) bool { return m == p.M || m == p.ParityFor(k) }

// ErrInvalidParams is wrapped by every Params.Validate error.
var ErrInvalidParams = errors.New("fec: invalid params")

// Validate reports whether p can be used by an Encoder or Decoder.
func (p Params) Validate() error {
	switch {
	case p.K < 1:
		return fmt.Errorf("%w: K = %d, need at least 1 data fragment", ErrInvalidParams, p.K)
	case p.M < 0:
		return fmt.Errorf("%w: M = %d is negative", ErrInvalidParams, p.M)
	case p.K+p.M > MaxShards:
		return fmt.Errorf("%w: K+M = %d exceeds %d", ErrInvalidParams, p.K+p.M, MaxShards)
	case p.FragmentSize < 1 || p.FragmentSize > MaxFragmentSize:
		return fmt.Errorf("%w: FragmentSize = %d, want 1..%d", ErrInvalidParams, p.FragmentSize, MaxFragmentSize)
	case p.MaxDelay < 0:
		return fmt.Errorf("%w: MaxDelay = %v is negative", ErrInvalidParams, p.MaxDelay)
	}
	return nil
}
