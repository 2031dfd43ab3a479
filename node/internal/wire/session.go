package wire

// Fragment (0x7f, RFC 7016 §2.3.1) carries a piece of a packet too large for
// the path: flags (0x80 = more fragments follow), packet ID, fragment
// number, then the fragment bytes. Reassembly is the receiver's job.
type Fragment struct {
	MoreFragments bool
	PacketID      uint64
	FragmentNum   uint64
	Data          []byte
}

// fragmentFlagMore marks a fragment that is not the last of its packet.
const fragmentFlagMore = 0x80

// Append appends the whole Fragment chunk (nothing if oversized).
func (c Fragment) Append(b []byte) []byte {
	start := len(b)
	b = BeginChunk(b, ChunkFragment)
	var f byte
	if c.MoreFragments {
		f = fragmentFlagMore
	}
	b = append(b, f)
	b = AppendVLU(b, c.PacketID)
	b = AppendVLU(b, c.FragmentNum)
	b = append(b, c.Data...)
	return finish(b, start)
}

// ParseFragment decodes flags(8) packetID(VLU) fragmentNum(VLU) data(rest).
func ParseFragment(p []byte) (Fragment, error) {
	d := decoder{b: p, ctx: "Fragment"}
	c := Fragment{MoreFragments: d.u8()&fragmentFlagMore != 0, PacketID: d.vlu(), FragmentNum: d.vlu()}
	c.Data = d.rest()
	return c, d.err
}

// Ping (0x01, §2.3.9) asks the peer to echo Message in a PingReply; used for
// keepalive and for address-mobility checks.
type Ping struct{ Message []byte }

// Append appends the whole Ping chunk (nothing if oversized).
func (c Ping) Append(b []byte) []byte {
	start := len(b)
	b = BeginChunk(b, ChunkPing)
	b = append(b, c.Message...)
	return finish(b, start)
}

// ParsePing decodes a Ping payload (the whole payload is the message).
func ParsePing(p []byte) (Ping, error) { return Ping{Message: p[:len(p):len(p)]}, nil }

// PingReply (0x41, §2.3.10) echoes a Ping's message.
type PingReply struct{ Message []byte }

// Append appends the whole PingReply chunk (nothing if oversized).
func (c PingReply) Append(b []byte) []byte {
	start := len(b)
	b = BeginChunk(b, ChunkPingReply)
	b = append(b, c.Message...)
	return finish(b, start)
}

// ParsePingReply decodes a PingReply payload.
func ParsePingReply(p []byte) (PingReply, error) {
	return PingReply{Message: p[:len(p):len(p)]}, nil
}

// BufferProbe (0x18, §2.3.15) asks the receiver of a flow to report its
// buffer (send an acknowledgement) when the advertised window was zero.
type BufferProbe struct{ FlowID uint64 }

// Append appends the whole BufferProbe chunk.
func (c BufferProbe) Append(b []byte) []byte {
	b = AppendChunkHeader(b, ChunkBufferProbe, VLULen(c.FlowID))
	return AppendVLU(b, c.FlowID)
}

// ParseBufferProbe decodes flowID(VLU). Trailing bytes are ignored, as the
// reference does, leaving room for extensions.
func ParseBufferProbe(p []byte) (BufferProbe, error) {
	d := decoder{b: p, ctx: "BufferProbe"}
	c := BufferProbe{FlowID: d.vlu()}
	return c, d.err
}

// FlowException (0x5e, §2.3.16) is sent by the receiver of a flow to reject
// it; Code is application-defined.
type FlowException struct {
	FlowID uint64
	Code   uint64
}

// Append appends the whole FlowException chunk.
func (c FlowException) Append(b []byte) []byte {
	b = AppendChunkHeader(b, ChunkException, VLULen(c.FlowID)+VLULen(c.Code))
	b = AppendVLU(b, c.FlowID)
	return AppendVLU(b, c.Code)
}

// ParseFlowException decodes flowID(VLU) exceptionCode(VLU); trailing bytes
// are ignored.
func ParseFlowException(p []byte) (FlowException, error) {
	d := decoder{b: p, ctx: "FlowException"}
	c := FlowException{FlowID: d.vlu(), Code: d.vlu()}
	return c, d.err
}

// Close (0x0c, §2.3.17) requests that the session close. Empty payload.
type Close struct{}

// Append appends the whole Close chunk.
func (Close) Append(b []byte) []byte { return AppendChunkHeader(b, ChunkClose, 0) }

// ParseClose decodes a Close payload; any bytes in it are ignored.
func ParseClose(p []byte) (Close, error) { return Close{}, nil }

// CloseAck (0x4c, §2.3.18) acknowledges a Close. Empty payload.
type CloseAck struct{}

// Append appends the whole CloseAck chunk.
func (CloseAck) Append(b []byte) []byte { return AppendChunkHeader(b, ChunkCloseAck, 0) }

// ParseCloseAck decodes a CloseAck payload; any bytes in it are ignored.
func ParseCloseAck(p []byte) (CloseAck, error) { return CloseAck{}, nil }
