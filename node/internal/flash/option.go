package flash

import (
	"encoding/binary"
	"errors"
)

// errTruncated reports a VLU or option that runs past the end of its input.
var errTruncated = errors.New("flash: truncated VLU or option")

// maxVLULen bounds a VLU we accept: ten 7-bit groups hold any uint64.
const maxVLULen = 10

// vluLen reports how many bytes appendVLU writes for v.
func vluLen(v uint64) int {
	n := 1
	for v >>= 7; v != 0; v >>= 7 {
		n++
	}
	return n
}

// appendVLU appends v as an RFC 7016 §2.1.2 variable length unsigned integer:
// big-endian groups of 7 bits, every byte but the last with the high bit set.
func appendVLU(dst []byte, v uint64) []byte {
	n := vluLen(v)
	for i := n - 1; i >= 0; i-- {
		b := byte(v>>(7*uint(i))) & 0x7f
		if i != 0 {
			b |= 0x80
		}
		dst = append(dst, b)
	}
	return dst
}

// parseVLU decodes one VLU from the front of b, answering its value and length.
// It fails on truncation and on values that do not fit in 64 bits.
func parseVLU(b []byte) (v uint64, n int, err error) {
	for n < len(b) && n < maxVLULen {
		c := b[n]
		if v > (^uint64(0))>>7 {
			return 0, 0, errTruncated
		}
		v = v<<7 | uint64(c&0x7f)
		n++
		if c&0x80 == 0 {
			return v, n, nil
		}
	}
	return 0, 0, errTruncated
}

// option is one decoded RFC 7016 §2.1.3 option. A marker (a zero-length
// option) has marker set and no type or value.
type option struct {
	typ    uint64
	value  []byte
	marker bool
}

// parseOption decodes the option at the front of b and reports its total length.
// value aliases b.
func parseOption(b []byte) (o option, n int, err error) {
	l, ln, err := parseVLU(b)
	if err != nil {
		return option{}, 0, err
	}
	if l > uint64(len(b)-ln) {
		return option{}, 0, errTruncated
	}
	body := b[ln : ln+int(l)]
	n = ln + int(l)
	if len(body) == 0 {
		return option{marker: true}, n, nil
	}
	t, tn, err := parseVLU(body)
	if err != nil {
		return option{}, 0, err
	}
	return option{typ: t, value: body[tn:]}, n, nil
}

// appendOption appends an option of type typ with the given value.
func appendOption(dst []byte, typ uint64, value []byte) []byte {
	dst = appendVLU(dst, uint64(vluLen(typ)+len(value)))
	dst = appendVLU(dst, typ)
	return append(dst, value...)
}

// appendVLUOption appends an option whose value is the single VLU v.
func appendVLUOption(dst []byte, typ uint64, v uint64) []byte {
	var buf [maxVLULen]byte
	return appendOption(dst, typ, appendVLU(buf[:0], v))
}

// findOption answers the value of the first option of type typ that comes
// before the first marker in b. Like the reference, a malformed option or a
// marker ends the search unsuccessfully.
func findOption(b []byte, typ uint64) ([]byte, bool) {
	for len(b) > 0 {
		o, n, err := parseOption(b)
		if err != nil || o.marker {
			return nil, false
		}
		if o.typ == typ {
			return o.value, true
		}
		b = b[n:]
	}
	return nil, false
}

// checksum is the Internet checksum of RFC 1071 over b, as RFC 7425 §4.5
// uses it when no HMAC protects a packet. It sums 32-bit words and folds at
// the end, which RFC 1071 §2(C) shows gives the same one's complement sum.
func checksum(b []byte) uint16 {
	var sum uint64
	for len(b) >= 32 {
		sum += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:])) +
			uint64(binary.BigEndian.Uint32(b[8:])) + uint64(binary.BigEndian.Uint32(b[12:])) +
			uint64(binary.BigEndian.Uint32(b[16:])) + uint64(binary.BigEndian.Uint32(b[20:])) +
			uint64(binary.BigEndian.Uint32(b[24:])) + uint64(binary.BigEndian.Uint32(b[28:]))
		b = b[32:]
	}
	for len(b) >= 4 {
		sum += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		sum += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		// The reference adds an odd trailing byte unshifted (as the classic
		// BSD ping code does on little-endian hosts); match it. This happens
		// when a session sequence number of odd length precedes the checksum.
		sum += uint64(b[0])
	}
	for sum>>16 != 0 {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
