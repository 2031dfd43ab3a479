package wire

// MaxVLULength is the longest VLU encoding of a 64-bit value (10 × 7 bits).
const MaxVLULength = 10

// AppendVLU appends v as a Variable Length Unsigned integer (RFC 7016
// §2.1.2): big-endian groups of 7 bits, the high bit of every byte but the
// last set to say "more follows". The shortest encoding is always used.
func AppendVLU(b []byte, v uint64) []byte {
	n := VLULen(v)
	for i := n - 1; i > 0; i-- {
		b = append(b, byte(v>>(7*uint(i)))|0x80)
	}
	return append(b, byte(v)&0x7f)
}

// VLULen is the number of bytes AppendVLU writes for v.
func VLULen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// ReadVLU decodes one VLU from the start of b and reports how many bytes it
// used. Non-minimal encodings (leading 0x80 bytes) are accepted, as the RFC
// does not forbid them; a value that does not fit in 64 bits is ErrMalformed.
func ReadVLU(b []byte) (v uint64, n int, err error) {
	// Most VLUs on the wire (flow IDs, small counts) are one byte.
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1, nil
	}
	return readVLUSlow(b)
}

func readVLUSlow(b []byte) (v uint64, n int, err error) {
	for i, c := range b {
		if v > (^uint64(0))>>7 {
			return 0, 0, wrap("VLU", ErrMalformed)
		}
		v = v<<7 | uint64(c&0x7f)
		if c&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	return 0, 0, wrap("VLU", ErrTruncated)
}

// AppendField appends a VLU length followed by data: the "length-prefixed
// field" that carries EPDs, tags, cookies, certificates and keying blobs.
func AppendField(b []byte, data []byte) []byte {
	b = AppendVLU(b, uint64(len(data)))
	return append(b, data...)
}

// ReadField decodes a VLU-length-prefixed field from the start of b,
// returning the field as a sub-slice of b and the bytes consumed.
func ReadField(b []byte) (field []byte, n int, err error) {
	l, n, err := ReadVLU(b)
	if err != nil {
		return nil, 0, err
	}
	if l > uint64(len(b)-n) {
		return nil, 0, wrap("field", ErrTruncated)
	}
	end := n + int(l)
	return b[n:end:end], end, nil
}
