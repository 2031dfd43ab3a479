// Package wire encodes and decodes RTMFP packets and chunks (RFC 7016 §2).
//
// It is pure: no I/O, no clocks, no cryptography. A datagram on the wire is
//
//	scrambled session ID (32 bits) | encrypted packet
//
// SplitPacket and AppendSessionID handle the session ID (§2.2.1); the
// crypto layer turns the encrypted packet into cleartext; this package then
// parses the cleartext packet, which is
//
//	header (flags, optional timestamp, optional timestamp echo) | chunks | padding
//
// with ParseHeader and a ChunkReader, and each chunk payload with the
// matching ParseXxx function. Sending goes the other way: AppendHeader, then
// each chunk's Append method (or BeginChunk/EndChunk to build a payload in
// place), then encryption, then AppendSessionID.
//
// Design rules, which callers may rely on:
//
//   - Encoders append to a caller-provided slice and return it, so a sender
//     reuses one buffer per packet and does not allocate.
//   - Decoders return sub-slices of their input (capacity clipped, so
//     appending to them cannot overwrite the packet) and never copy; the
//     values are valid as long as the packet buffer is.
//   - Decoders never panic, on any input; failures are errors wrapping
//     ErrTruncated or ErrMalformed with the name of what was being decoded.
//   - Integers in fixed-size fields are big-endian; variable ones are VLUs
//     (7 bits per byte, high bit = more follows).
//
// Semantics that span chunks — resolving NextUserData against the previous
// user data chunk of the same packet, reassembling fragments, deciding what
// to do with a malformed tail — belong to the session; this package only
// supplies helpers (NextUserData.Resolve, UserData.Follows).
package wire
