package wire

import (
	"encoding/binary"
	"strconv"
)

// ChunkType is the first byte of a chunk (RFC 7016 §2.3).
type ChunkType uint8

// Chunk types. The comment gives the RFC 7016 section of each layout.
const (
	ChunkPaddingZero  ChunkType = 0x00 // padding: ends the chunk list
	ChunkPing         ChunkType = 0x01 // §2.3.9
	ChunkClose        ChunkType = 0x0c // §2.3.17 session close request
	ChunkFIHello      ChunkType = 0x0f // §2.3.3 forwarded initiator hello
	ChunkUserData     ChunkType = 0x10 // §2.3.11
	ChunkNextData     ChunkType = 0x11 // §2.3.12 next user data
	ChunkBufferProbe  ChunkType = 0x18 // §2.3.15
	ChunkIHello       ChunkType = 0x30 // §2.3.2 initiator hello
	ChunkIIKeying     ChunkType = 0x38 // §2.3.7 initiator initial keying
	ChunkPingReply    ChunkType = 0x41 // §2.3.10
	ChunkCloseAck     ChunkType = 0x4c // §2.3.18 session close acknowledgement
	ChunkAckBitmap    ChunkType = 0x50 // §2.3.13 bitmap acknowledgement
	ChunkAckRanges    ChunkType = 0x51 // §2.3.14 range acknowledgement
	ChunkException    ChunkType = 0x5e // §2.3.16 flow exception report
	ChunkRHello       ChunkType = 0x70 // §2.3.4 responder hello
	ChunkRedirect     ChunkType = 0x71 // §2.3.5 responder redirect
	ChunkRIKeying     ChunkType = 0x78 // §2.3.8 responder initial keying
	ChunkCookieChange ChunkType = 0x79 // §2.3.6 RHello cookie change
	ChunkFragment     ChunkType = 0x7f // §2.3.1 packet fragment
	ChunkPaddingFF    ChunkType = 0xff // padding: ends the chunk list
)

// Aliases under the names used by RFC 7016 and the session code.
const (
	ChunkNextUserData       = ChunkNextData
	ChunkFlowException      = ChunkException
	ChunkRHelloCookieChange = ChunkCookieChange
)

// String names the chunk type for logs.
func (t ChunkType) String() string {
	switch t {
	case ChunkPaddingZero:
		return "Padding(0x00)"
	case ChunkPing:
		return "Ping"
	case ChunkClose:
		return "Close"
	case ChunkFIHello:
		return "FIHello"
	case ChunkUserData:
		return "UserData"
	case ChunkNextData:
		return "NextUserData"
	case ChunkBufferProbe:
		return "BufferProbe"
	case ChunkIHello:
		return "IHello"
	case ChunkIIKeying:
		return "IIKeying"
	case ChunkPingReply:
		return "PingReply"
	case ChunkCloseAck:
		return "CloseAck"
	case ChunkAckBitmap:
		return "AckBitmap"
	case ChunkAckRanges:
		return "AckRanges"
	case ChunkException:
		return "FlowException"
	case ChunkRHello:
		return "RHello"
	case ChunkRedirect:
		return "Redirect"
	case ChunkRIKeying:
		return "RIKeying"
	case ChunkCookieChange:
		return "RHelloCookieChange"
	case ChunkFragment:
		return "Fragment"
	case ChunkPaddingFF:
		return "Padding(0xff)"
	}
	return "Chunk(0x" + strconv.FormatUint(uint64(t), 16) + ")"
}

// IsPadding reports whether a chunk type byte marks padding (0x00 or 0xff).
// Encryption pads the cleartext with 0xff bytes to the cipher block size, so
// a padding type byte means "no more chunks in this packet".
func (t ChunkType) IsPadding() bool { return t == ChunkPaddingZero || t == ChunkPaddingFF }

// AppendChunkHeader appends a chunk type and a 16-bit payload length. The
// caller guarantees 0 <= payloadLen <= MaxChunkPayload.
func AppendChunkHeader(b []byte, typ ChunkType, payloadLen int) []byte {
	return append(b, byte(typ), byte(payloadLen>>8), byte(payloadLen))
}

// BeginChunk starts a chunk whose payload the caller appends in place:
//
//	start := len(b)
//	b = BeginChunk(b, typ)
//	b = append(b, payload...)
//	b, err = EndChunk(b, start)
func BeginChunk(b []byte, typ ChunkType) []byte {
	return append(b, byte(typ), 0, 0)
}

// EndChunk fills in the length of the chunk begun at b[start:]. It fails
// with ErrTooLarge if the payload exceeds MaxChunkPayload, in which case the
// caller should truncate b back to start.
func EndChunk(b []byte, start int) ([]byte, error) {
	if start < 0 || len(b)-start < ChunkHeaderLength {
		return b, wrap("end chunk", ErrMalformed)
	}
	n := len(b) - start - ChunkHeaderLength
	if n > MaxChunkPayload {
		return b, wrap("end chunk", ErrTooLarge)
	}
	binary.BigEndian.PutUint16(b[start+1:], uint16(n))
	return b, nil
}

// ChunkReader iterates the chunks of a decrypted packet body (the bytes after
// the header). It stops without error at the end of the body and at a
// padding type byte (0x00 or 0xff), after which the rest of the packet is
// padding. Trailing bytes that start a chunk but are too short for its
// header, or a chunk whose length runs past the end, are ErrTruncated; the
// chunks before it have already been delivered and a receiver may act on
// them (the reference implementation silently ignores such a tail).
type ChunkReader struct {
	b    []byte
	off  int
	done bool
}

// NewChunkReader starts reading chunks at the start of body.
func NewChunkReader(body []byte) ChunkReader { return ChunkReader{b: body} }

// Next returns the next chunk. ok is false when there are no more chunks;
// err is non-nil only if the body is malformed. Payloads are sub-slices of
// the body with capacity clipped to the payload.
func (r *ChunkReader) Next() (typ ChunkType, payload []byte, ok bool, err error) {
	if r.done {
		return 0, nil, false, nil
	}
	rest := r.b[r.off:]
	if len(rest) == 0 || ChunkType(rest[0]).IsPadding() {
		r.done = true
		return 0, nil, false, nil
	}
	if len(rest) < ChunkHeaderLength {
		r.done = true
		return 0, nil, false, wrap("chunk header", ErrTruncated)
	}
	l := int(binary.BigEndian.Uint16(rest[1:]))
	if l > len(rest)-ChunkHeaderLength {
		r.done = true
		return 0, nil, false, wrap(ChunkType(rest[0]).String()+" chunk", ErrTruncated)
	}
	end := ChunkHeaderLength + l
	r.off += end
	return ChunkType(rest[0]), rest[ChunkHeaderLength:end:end], true, nil
}

// Offset is the position in the body of the next chunk to be read.
func (r *ChunkReader) Offset() int { return r.off }
