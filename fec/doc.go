// Package fec is the forward error correction of Strata's multicast
// streams: a publisher's byte stream is cut into blocks of data fragments,
// each block gets Reed-Solomon parity, and a subscriber rebuilds a block
// from any k' of its k'+m pieces, so a lost piece is repaired without a
// round trip and relays need not coordinate which pieces they push.
//
// The package is pure: no goroutines, sockets or clocks. Encoder and
// Decoder take the time as an argument and expose Deadline so a driver can
// arm one timer.
//
// # Blocks
//
// Params fix K (data fragments per full block), M (parity pieces per
// block), FragmentSize and MaxDelay. Encoder.Write packs stream bytes into
// fragments of exactly FragmentSize; Encoder.WriteFragment adds one whole
// fragment and keeps its boundary. A block closes when it holds K
// fragments, when MaxDelay has passed since its first byte (Flush, or the
// next Write), or on Sync. A block closed early holds k' < K fragments and
// its M parity pieces are computed over those k' only, so a short block
// costs k'+M pieces, not K+M; every piece says k'. With
// Params.ShortParity the encoder gives it ceil(M·k'/K) parity pieces (at
// least one) instead; every piece says its block's m, and a decoder
// accepts either count.
//
// All pieces of a block are emitted together when it closes. That bounds
// a byte's wait at MaxDelay, and it is what signing needs anyway: the
// group layer signs a block's Manifest, which lists the hash of every
// piece, and can verify each piece on arrival. A publisher that wants a
// fragment on the wire before its block closes takes it from
// Encoder.Filled as soon as it is full (it then authenticates it on its
// own); a Decoder takes it with AddFragment, before the block's k', m
// and shard size are known (a block with a full fragment has shards of
// FragmentSize+2), and learns them from the block's first piece.
//
// # Shards
//
// A data shard is the fragment's length (2 bytes, big-endian), the
// fragment, and zero padding up to the block's shard size, which is 2 plus
// the longest fragment of the block. Parity shards have the shard size.
// The length prefix is inside the coded shard so that a fragment rebuilt
// from parity knows its own length; the padding is never sent (a data
// piece carries only the fragment) and a decoder checks that rebuilt
// padding is zero.
//
// # Pieces on the wire
//
// A piece is a 24-byte header and its payload (see Piece.AppendBinary):
// version, block sequence number, stream offset of the block's first byte,
// k'-1, m, index, shard size, payload length. Every piece carries the
// whole block identity, so one piece of a block is enough to size its
// buffer, and the stream offset lets a subscriber name the exact byte
// range it lost even when no piece of a block arrives.
//
// # Decoding
//
// A Decoder keeps a window of blocks starting at the oldest one not yet
// delivered. It accepts pieces in any order; duplicates, pieces of blocks
// already delivered or given up on (old), and of blocks beyond the window
// (future) are counted and dropped, and pieces that contradict the Params
// or their block are rejected, which bounds memory at
// Window*(K+M)*(FragmentSize+2) bytes. A block is rebuilt as soon as it
// holds k' pieces. Output records come strictly in block order: the
// fragments of a block, or a gap. A block is given up on Timeout after the
// decoder first saw a piece of it or of any later block; if the only
// evidence is a piece beyond the window, the window jumps so that piece
// falls inside it. A gap record's Offset is the end of the delivered data,
// and the missing bytes end where the next data record begins.
//
// The decoder does not authenticate pieces: a forged piece can only be
// caught if the rebuilt length or padding is impossible. Callers that need
// integrity check each piece against a signed Manifest before Add.
package fec
