package wire

// Fragmentation says where a user-data fragment sits in its message
// (RFC 7016 §2.3.11, the FRA bits of the flags byte).
type Fragmentation uint8

// Fragmentation values; they are the FRA bits in place (mask 0x30).
const (
	FragWhole  Fragmentation = 0x00 // the whole message
	FragBegin  Fragmentation = 0x10 // first fragment of several
	FragEnd    Fragmentation = 0x20 // last fragment
	FragMiddle Fragmentation = 0x30 // neither first nor last
)

// User data flag bits (RFC 7016 §2.3.11). Bits 0x4c are reserved.
const (
	UserDataFlagOptions uint8 = 0x80 // OPT: an option list precedes the data
	UserDataFlagFRAMask uint8 = 0x30 // FRA: see Fragmentation
	UserDataFlagAbandon uint8 = 0x02 // ABN: the fragment was abandoned
	UserDataFlagFinal   uint8 = 0x01 // FIN: last fragment of the flow
)

// User data option types (RFC 7016 §2.3.11.1).
const (
	// OptionUserMetadata (0x00) carries the flow's metadata; it rides on
	// every fragment until the flow is acknowledged.
	OptionUserMetadata uint64 = 0x00
	// OptionReturnFlowAssociation (0x0a) names, as a VLU, the flow in the
	// opposite direction this flow answers.
	OptionReturnFlowAssociation uint64 = 0x0a
	// OptionMandatoryLimit: a receiver that meets an unrecognized option
	// type below this value must reject the flow (reference behaviour);
	// types at or above it may be ignored.
	OptionMandatoryLimit uint64 = 0x2000
)

// UserData (0x10, §2.3.11) carries one fragment of a message on a flow.
// Its sequence number identifies the fragment; the forward sequence number
// (FSN = SequenceNumber - FSNOffset) tells the receiver that nothing at or
// below FSN will be retransmitted.
type UserData struct {
	Fragmentation  Fragmentation
	Abandon        bool
	Final          bool
	FlowID         uint64
	SequenceNumber uint64
	FSNOffset      uint64
	// Options is the raw option list, including its terminating marker, or
	// empty when the OPT flag is clear. Build it with AppendOption,
	// AppendUserMetadataOption, AppendReturnFlowOption and
	// AppendOptionMarker; Append sets OPT iff Options is not empty.
	Options []byte
	Data    []byte
}

// Flags is the flags byte the chunk carries.
func (c UserData) Flags() uint8 {
	return userDataFlags(c.Fragmentation, c.Abandon, c.Final, len(c.Options) > 0)
}

func userDataFlags(fra Fragmentation, abn, fin, opt bool) uint8 {
	f := uint8(fra) & UserDataFlagFRAMask
	if abn {
		f |= UserDataFlagAbandon
	}
	if fin {
		f |= UserDataFlagFinal
	}
	if opt {
		f |= UserDataFlagOptions
	}
	return f
}

// HasOptions reports whether the OPT flag is (or will be) set.
func (c UserData) HasOptions() bool { return len(c.Options) > 0 }

// FSN is the forward sequence number. It is 0 if FSNOffset exceeds the
// sequence number (which ParseUserData rejects).
func (c UserData) FSN() uint64 {
	if c.FSNOffset > c.SequenceNumber {
		return 0
	}
	return c.SequenceNumber - c.FSNOffset
}

// PayloadLen is the length of the chunk payload Append writes.
func (c UserData) PayloadLen() int {
	return 1 + VLULen(c.FlowID) + VLULen(c.SequenceNumber) + VLULen(c.FSNOffset) + len(c.Options) + len(c.Data)
}

// Append appends the whole UserData chunk (nothing if the payload would
// exceed MaxChunkPayload).
func (c UserData) Append(b []byte) []byte {
	n := c.PayloadLen()
	if n > MaxChunkPayload {
		return b
	}
	b = AppendChunkHeader(b, ChunkUserData, n)
	b = append(b, c.Flags())
	b = AppendVLU(b, c.FlowID)
	b = AppendVLU(b, c.SequenceNumber)
	b = AppendVLU(b, c.FSNOffset)
	b = append(b, c.Options...)
	return append(b, c.Data...)
}

// ParseUserData decodes flags(8) flowID(VLU) sequenceNumber(VLU)
// fsnOffset(VLU) [options... marker] data(rest). If OPT is set the option
// list must end with a marker. An FSN offset larger than the sequence
// number is ErrMalformed.
func ParseUserData(p []byte) (UserData, error) {
	d := decoder{b: p, ctx: "UserData"}
	f := d.u8()
	c := UserData{
		Fragmentation:  Fragmentation(f & UserDataFlagFRAMask),
		Abandon:        f&UserDataFlagAbandon != 0,
		Final:          f&UserDataFlagFinal != 0,
		FlowID:         d.vlu(),
		SequenceNumber: d.vlu(),
		FSNOffset:      d.vlu(),
	}
	if d.err == nil && c.FSNOffset > c.SequenceNumber {
		d.fail(ErrMalformed)
	}
	if f&UserDataFlagOptions != 0 {
		c.Options = d.optionList()
	}
	c.Data = d.rest()
	if d.err != nil {
		return UserData{}, d.err
	}
	return c, nil
}

// optionList reads a marker-terminated option list and returns its raw
// bytes, marker included.
func (d *decoder) optionList() []byte {
	if d.err != nil {
		return nil
	}
	n, marker, err := parseOptionList(d.b[d.off:], nil)
	if err != nil {
		d.fail(errKind(err))
		return nil
	}
	if !marker {
		d.fail(ErrTruncated)
		return nil
	}
	o := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return o
}

// NextUserData (0x11, §2.3.12) is a compact UserData for the fragment that
// immediately follows the previous user data chunk in the same packet: same
// flow, sequence number one higher, same FSN (so FSN offset one higher).
type NextUserData struct {
	Fragmentation Fragmentation
	Abandon       bool
	Final         bool
	// Options is the raw option list (see UserData.Options).
	Options []byte
	Data    []byte
}

// Flags is the flags byte the chunk carries.
func (c NextUserData) Flags() uint8 {
	return userDataFlags(c.Fragmentation, c.Abandon, c.Final, len(c.Options) > 0)
}

// Append appends the whole NextUserData chunk (nothing if oversized).
func (c NextUserData) Append(b []byte) []byte {
	n := 1 + len(c.Options) + len(c.Data)
	if n > MaxChunkPayload {
		return b
	}
	b = AppendChunkHeader(b, ChunkNextData, n)
	b = append(b, c.Flags())
	b = append(b, c.Options...)
	return append(b, c.Data...)
}

// ParseNextUserData decodes flags(8) [options... marker] data(rest).
func ParseNextUserData(p []byte) (NextUserData, error) {
	d := decoder{b: p, ctx: "NextUserData"}
	f := d.u8()
	c := NextUserData{
		Fragmentation: Fragmentation(f & UserDataFlagFRAMask),
		Abandon:       f&UserDataFlagAbandon != 0,
		Final:         f&UserDataFlagFinal != 0,
	}
	if f&UserDataFlagOptions != 0 {
		c.Options = d.optionList()
	}
	c.Data = d.rest()
	if d.err != nil {
		return NextUserData{}, d.err
	}
	return c, nil
}

// Resolve expands c into the full UserData it stands for, given the user
// data chunk (UserData, or an already resolved NextUserData) that preceded
// it in the same packet. A NextUserData with no predecessor in its packet
// must be ignored; that bookkeeping is the caller's.
func (c NextUserData) Resolve(prev UserData) UserData {
	return UserData{
		Fragmentation:  c.Fragmentation,
		Abandon:        c.Abandon,
		Final:          c.Final,
		FlowID:         prev.FlowID,
		SequenceNumber: prev.SequenceNumber + 1,
		FSNOffset:      prev.FSNOffset + 1,
		Options:        c.Options,
		Data:           c.Data,
	}
}

// Follows reports whether c may be sent as a NextUserData right after prev:
// same flow, next sequence number, same FSN (FSN offset one higher). It is
// exactly the condition under which c.Next().Resolve(prev) == c.
func (c UserData) Follows(prev UserData) bool {
	return c.FlowID == prev.FlowID &&
		prev.SequenceNumber != ^uint64(0) && c.SequenceNumber == prev.SequenceNumber+1 &&
		prev.FSNOffset != ^uint64(0) && c.FSNOffset == prev.FSNOffset+1
}

// Next converts c to the compact form; valid only when c.Follows(prev).
func (c UserData) Next() NextUserData {
	return NextUserData{Fragmentation: c.Fragmentation, Abandon: c.Abandon, Final: c.Final, Options: c.Options, Data: c.Data}
}

// AppendUserMetadataOption appends the user metadata option (type 0x00).
func AppendUserMetadataOption(b []byte, metadata []byte) []byte {
	return AppendOption(b, OptionUserMetadata, metadata)
}

// AppendReturnFlowOption appends the return flow association option (type
// 0x0a) naming flowID.
func AppendReturnFlowOption(b []byte, flowID uint64) []byte {
	var v [MaxVLULength]byte
	return AppendOption(b, OptionReturnFlowAssociation, AppendVLU(v[:0], flowID))
}

// UserDataOptions is what a user data option list says, gathered in one
// pass without allocating.
type UserDataOptions struct {
	Metadata    []byte
	HasMetadata bool
	// ReturnFlowID is the flow this one answers, if HasReturnFlow.
	ReturnFlowID  uint64
	HasReturnFlow bool
	// UnknownMandatory is set if an unrecognized option type below
	// OptionMandatoryLimit was present: the flow must be rejected.
	UnknownMandatory bool
}

// ParseUserDataOptions reads a raw option list (UserData.Options). A return
// flow association whose value is not a VLU is ErrMalformed.
func ParseUserDataOptions(opts []byte) (UserDataOptions, error) {
	var o UserDataOptions
	it := NewOptionIter(opts)
	for {
		typ, value, ok := it.Next()
		if !ok {
			break
		}
		switch {
		case typ == OptionUserMetadata:
			o.Metadata, o.HasMetadata = value, true
		case typ == OptionReturnFlowAssociation:
			id, _, err := ReadVLU(value)
			if err != nil {
				return UserDataOptions{}, wrap("return flow association", ErrMalformed)
			}
			o.ReturnFlowID, o.HasReturnFlow = id, true
		case typ < OptionMandatoryLimit:
			o.UnknownMandatory = true
		}
	}
	if err := it.Err(); err != nil {
		return UserDataOptions{}, err
	}
	return o, nil
}

// UserMetadata returns the metadata option of a raw option list, if any.
func UserMetadata(opts []byte) (metadata []byte, ok bool, err error) {
	o, err := ParseUserDataOptions(opts)
	return o.Metadata, o.HasMetadata, err
}

// ReturnFlowAssociation returns the return flow association option of a raw
// option list, if any.
func ReturnFlowAssociation(opts []byte) (flowID uint64, ok bool, err error) {
	o, err := ParseUserDataOptions(opts)
	return o.ReturnFlowID, o.HasReturnFlow, err
}
