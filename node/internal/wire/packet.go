package wire

import (
	"encoding/binary"
	"time"
)

// Sizes and clocks used by the reference implementation and RFC 7016.
const (
	// MaxSessionPacketLength bounds the cleartext of a packet in an open
	// session, leaving room under the IPv6 minimum MTU (1280) for IP, UDP,
	// the session ID and encryption overhead.
	MaxSessionPacketLength = 1200
	// MaxStartupPacketLength bounds a startup-session (handshake) packet;
	// handshake packets carry certificates and keys and may be larger.
	MaxStartupPacketLength = 4260 - 4
	// TagLength is the length of the random tag an initiator puts in IHello.
	TagLength = 16
	// SessionIDLength is the size of the scrambled session ID that precedes
	// every encrypted packet.
	SessionIDLength = 4
	// ChunkHeaderLength is the chunk type byte plus the 16-bit length.
	ChunkHeaderLength = 3
	// MaxHeaderLength is the flags byte plus both timestamps.
	MaxHeaderLength = 5
	// MaxChunkPayload is the largest payload a 16-bit chunk length can hold.
	MaxChunkPayload = 0xffff
	// MaxUserDataFragment is the most user data one UserData chunk without
	// options can carry and still fit a session packet whatever its header
	// and VLU sizes (1161 bytes, the reference's fragment size).
	MaxUserDataFragment = MaxSessionPacketLength - MaxHeaderLength - ChunkHeaderLength - 1 - 3*MaxVLULength
	// TimestampTick is the period of the packet-header timestamp clock
	// (RFC 7016 §2.2.4: 4 ms, i.e. 250 ticks per second, wrapping at 16 bits).
	TimestampTick = 4 * time.Millisecond
)

// TimestampAt is the 16-bit header timestamp for a clock that has run for
// elapsed since an arbitrary epoch of the sender's choosing.
func TimestampAt(elapsed time.Duration) uint16 {
	return uint16(int64(elapsed / TimestampTick))
}

// ScrambleSessionID hides the session ID that precedes an encrypted packet
// (RFC 7016 §2.2.1): it is XORed with the first two 32-bit big-endian words
// of the encrypted packet, missing bytes counting as zero. XOR makes the
// operation its own inverse, so DescrambleSessionID is the same function.
//
// The session ID is effectively a 4-byte token: what matters for
// interoperability is that the bytes XORed here are the bytes carried in
// IIKeying/RIKeying. This package reads and writes both big-endian.
func ScrambleSessionID(id uint32, encrypted []byte) uint32 {
	var w [8]byte
	copy(w[:], encrypted)
	return id ^ binary.BigEndian.Uint32(w[0:4]) ^ binary.BigEndian.Uint32(w[4:8])
}

// DescrambleSessionID recovers the session ID from the scrambled value that
// precedes the encrypted packet.
func DescrambleSessionID(scrambled uint32, encrypted []byte) uint32 {
	return ScrambleSessionID(scrambled, encrypted)
}

// AppendSessionID appends the scrambled form of id for the given encrypted
// packet; append the encrypted packet after it.
func AppendSessionID(b []byte, id uint32, encrypted []byte) []byte {
	return binary.BigEndian.AppendUint32(b, ScrambleSessionID(id, encrypted))
}

// SplitPacket separates a datagram into its session ID (descrambled) and the
// encrypted packet that follows. Session ID 0 is the startup session.
func SplitPacket(datagram []byte) (sessionID uint32, encrypted []byte, err error) {
	if len(datagram) < SessionIDLength {
		return 0, nil, wrap("session ID", ErrTruncated)
	}
	encrypted = datagram[SessionIDLength:]
	return DescrambleSessionID(binary.BigEndian.Uint32(datagram), encrypted), encrypted, nil
}

// Packet modes (RFC 7016 §2.2.4): the low two bits of the flags byte.
const (
	ModeInitiator uint8 = 1
	ModeResponder uint8 = 2
	ModeStartup   uint8 = 3
)

// Header flag bits (RFC 7016 §2.2.4). Bits 0x30 are reserved.
const (
	FlagTimeCritical        uint8 = 0x80
	FlagTimeCriticalReverse uint8 = 0x40
	FlagTimestamp           uint8 = 0x08
	FlagTimestampEcho       uint8 = 0x04
	FlagModeMask            uint8 = 0x03
)

// Header is the cleartext packet header that precedes the chunks.
type Header struct {
	// TimeCritical: this packet carries time-critical user data.
	TimeCritical bool
	// TimeCriticalReverse: the sender recently received time-critical data
	// from elsewhere; the receiver should yield.
	TimeCriticalReverse bool
	// Mode is ModeInitiator, ModeResponder or ModeStartup.
	Mode uint8
	// HasTimestamp says whether Timestamp is present.
	HasTimestamp bool
	// Timestamp is the sender's clock in 4 ms ticks (see TimestampAt).
	Timestamp uint16
	// HasTimestampEcho says whether TimestampEcho is present.
	HasTimestampEcho bool
	// TimestampEcho is the peer's most recent timestamp, advanced by the
	// time it was held, used by the peer to measure RTT.
	TimestampEcho uint16
}

// Len is the encoded length of h.
func (h Header) Len() int {
	n := 1
	if h.HasTimestamp {
		n += 2
	}
	if h.HasTimestampEcho {
		n += 2
	}
	return n
}

// AppendHeader appends the flags byte and the timestamps that are present.
// Only the low two bits of Mode are written.
func AppendHeader(b []byte, h Header) []byte {
	f := h.Mode & FlagModeMask
	if h.TimeCritical {
		f |= FlagTimeCritical
	}
	if h.TimeCriticalReverse {
		f |= FlagTimeCriticalReverse
	}
	if h.HasTimestamp {
		f |= FlagTimestamp
	}
	if h.HasTimestampEcho {
		f |= FlagTimestampEcho
	}
	b = append(b, f)
	if h.HasTimestamp {
		b = binary.BigEndian.AppendUint16(b, h.Timestamp)
	}
	if h.HasTimestampEcho {
		b = binary.BigEndian.AppendUint16(b, h.TimestampEcho)
	}
	return b
}

// ParseHeader decodes the header at the start of a decrypted packet; the
// chunks start at b[n:]. Mode 0 is forbidden by the RFC and is
// ErrMalformed; reserved bits are ignored.
func ParseHeader(b []byte) (h Header, n int, err error) {
	if len(b) < 1 {
		return Header{}, 0, wrap("header", ErrTruncated)
	}
	f := b[0]
	h = Header{
		TimeCritical:        f&FlagTimeCritical != 0,
		TimeCriticalReverse: f&FlagTimeCriticalReverse != 0,
		Mode:                f & FlagModeMask,
		HasTimestamp:        f&FlagTimestamp != 0,
		HasTimestampEcho:    f&FlagTimestampEcho != 0,
	}
	if h.Mode == 0 {
		return Header{}, 0, wrap("header mode", ErrMalformed)
	}
	n = 1
	if h.HasTimestamp {
		if len(b) < n+2 {
			return Header{}, 0, wrap("header timestamp", ErrTruncated)
		}
		h.Timestamp = binary.BigEndian.Uint16(b[n:])
		n += 2
	}
	if h.HasTimestampEcho {
		if len(b) < n+2 {
			return Header{}, 0, wrap("header timestamp echo", ErrTruncated)
		}
		h.TimestampEcho = binary.BigEndian.Uint16(b[n:])
		n += 2
	}
	return h, n, nil
}
