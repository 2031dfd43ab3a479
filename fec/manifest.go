package fec

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Manifest is the canonical identity and content of one block: its header
// and the SHA-256 of every piece's encoding. The group layer signs the
// manifest's binary encoding once per block; a member that holds a verified
// manifest can then check each piece on its own (Verify) before relaying
// it or feeding it to a Decoder, so a forged piece is caught on arrival
// instead of poisoning a Reed-Solomon rebuild.
type Manifest struct {
	Block     uint64
	Offset    uint64
	K, M      int
	ShardSize int
	Hashes    [][sha256.Size]byte // one per piece, in index order
}

// manifestVersion is the first byte of an encoded manifest.
const manifestVersion = 1

// manifestHeaderSize is the encoded manifest size before the hashes.
const manifestHeaderSize = 21

// MaxManifestSize bounds the encoding of any manifest.
const MaxManifestSize = manifestHeaderSize + MaxShards*sha256.Size

// ErrMalformedManifest is wrapped by errors decoding a manifest.
var ErrMalformedManifest = errors.New("fec: malformed manifest")

// ErrPieceNotInManifest is wrapped by Verify errors.
var ErrPieceNotInManifest = errors.New("fec: piece does not match manifest")

// Manifest computes the block's manifest.
func (b Block) Manifest() (Manifest, error) {
	if len(b.Pieces) == 0 {
		return Manifest{}, fmt.Errorf("%w: block without pieces", ErrMalformedManifest)
	}
	p0 := b.Pieces[0]
	m := Manifest{Block: p0.Block, Offset: p0.Offset, K: p0.K, M: p0.M, ShardSize: p0.ShardSize,
		Hashes: make([][sha256.Size]byte, len(b.Pieces))}
	if len(b.Pieces) != p0.K+p0.M {
		return Manifest{}, fmt.Errorf("%w: %d pieces for k=%d m=%d", ErrMalformedManifest, len(b.Pieces), p0.K, p0.M)
	}
	var buf []byte
	for i, p := range b.Pieces {
		if p.Index != i || p.Block != m.Block || p.Offset != m.Offset || p.K != m.K || p.M != m.M || p.ShardSize != m.ShardSize {
			return Manifest{}, fmt.Errorf("%w: piece %d does not belong to block %d", ErrMalformedManifest, i, m.Block)
		}
		var err error
		if buf, err = p.AppendBinary(buf[:0]); err != nil {
			return Manifest{}, err
		}
		m.Hashes[i] = sha256.Sum256(buf)
	}
	return m, nil
}

// Verify reports whether p is exactly the piece the manifest lists.
func (m Manifest) Verify(p Piece) error {
	if p.Block != m.Block || p.Offset != m.Offset || p.K != m.K || p.M != m.M || p.ShardSize != m.ShardSize ||
		p.Index < 0 || p.Index >= len(m.Hashes) {
		return fmt.Errorf("%w: header of block %d piece %d", ErrPieceNotInManifest, p.Block, p.Index)
	}
	enc, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	if sha256.Sum256(enc) != m.Hashes[p.Index] {
		return fmt.Errorf("%w: hash of block %d piece %d", ErrPieceNotInManifest, p.Block, p.Index)
	}
	return nil
}

// AppendBinary appends the canonical encoding of m, the bytes to sign:
//
//	0      version (1)
//	1..8   block sequence number
//	9..16  stream offset
//	17     k'-1
//	18     m
//	19..20 shard size
//	21..   k'+m SHA-256 hashes of the pieces' encodings, in index order
//
// The encoding carries no signing context; the signer prefixes its own
// (e.g. the group ID) so a signature cannot be replayed elsewhere.
func (m Manifest) AppendBinary(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return b, err
	}
	b = append(b, manifestVersion)
	b = binary.BigEndian.AppendUint64(b, m.Block)
	b = binary.BigEndian.AppendUint64(b, m.Offset)
	b = append(b, byte(m.K-1), byte(m.M))
	b = binary.BigEndian.AppendUint16(b, uint16(m.ShardSize))
	for _, h := range m.Hashes {
		b = append(b, h[:]...)
	}
	return b, nil
}

// MarshalBinary returns the canonical encoding of m (see AppendBinary).
func (m Manifest) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, manifestHeaderSize+len(m.Hashes)*sha256.Size))
}

// UnmarshalBinary decodes a manifest that fills b exactly.
func (m *Manifest) UnmarshalBinary(b []byte) error {
	if len(b) < manifestHeaderSize || b[0] != manifestVersion {
		return fmt.Errorf("%w: %d bytes or bad version", ErrMalformedManifest, len(b))
	}
	q := Manifest{
		Block:     binary.BigEndian.Uint64(b[1:]),
		Offset:    binary.BigEndian.Uint64(b[9:]),
		K:         int(b[17]) + 1,
		M:         int(b[18]),
		ShardSize: int(binary.BigEndian.Uint16(b[19:])),
	}
	n := q.K + q.M
	if n > MaxShards || len(b) != manifestHeaderSize+n*sha256.Size {
		return fmt.Errorf("%w: %d bytes for k=%d m=%d", ErrMalformedManifest, len(b), q.K, q.M)
	}
	q.Hashes = make([][sha256.Size]byte, n)
	for i := range q.Hashes {
		copy(q.Hashes[i][:], b[manifestHeaderSize+i*sha256.Size:])
	}
	if err := q.check(); err != nil {
		return err
	}
	*m = q
	return nil
}

func (m Manifest) check() error {
	if m.K < 1 || m.M < 0 || m.M > 255 || m.K+m.M > MaxShards || len(m.Hashes) != m.K+m.M ||
		m.ShardSize < lengthPrefix || m.ShardSize > 1<<16-1 {
		return fmt.Errorf("%w: k=%d m=%d shard %d, %d hashes", ErrMalformedManifest, m.K, m.M, m.ShardSize, len(m.Hashes))
	}
	return nil
}
