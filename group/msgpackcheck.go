package group

import (
	"encoding/binary"
	"errors"
)

// maxDepth bounds the nesting of a control message (the deepest is a map
// holding an array of binaries).
const maxDepth = 4

var errMsgpackShape = errors.New("msgpack object does not fit its input")

// checkMsgpack walks the one msgpack object that must fill b and checks
// that every declared length and element count fits in the bytes left,
// and that nesting stays within maxDepth. The msgpack decoder allocates
// by declared counts (a 40-byte message can declare a 4-billion element
// array), so this runs first; the overlay package does the same for its
// messages, and both could share one internal package.
func checkMsgpack(b []byte) error {
	pending := [maxDepth + 1]int{1} // objects still to read per level
	depth := 0
	i := 0
	left := func() int { return len(b) - i }
	for {
		for depth > 0 && pending[depth] == 0 {
			depth--
		}
		if pending[depth] == 0 {
			break
		}
		pending[depth]--
		if left() < 1 {
			return errMsgpackShape
		}
		c := b[i]
		i++
		size, count := 0, 0 // bytes to skip, objects nested
		var n int           // width of a length field
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c <= 0x8f:
			count = 2 * int(c&0x0f)
		case c <= 0x9f:
			count = int(c & 0x0f)
		case c <= 0xbf:
			size = int(c & 0x1f)
		case c == 0xc4 || c == 0xd9:
			n = 1
		case c == 0xc5 || c == 0xda:
			n = 2
		case c == 0xc6 || c == 0xdb:
			n = 4
		case c == 0xc7 || c == 0xc8 || c == 0xc9: // ext: length, then type byte
			n = 1 << (c - 0xc7)
		case c == 0xca:
			size = 4
		case c == 0xcb:
			size = 8
		case c >= 0xcc && c <= 0xcf:
			size = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3:
			size = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8: // fixext: type byte and 1..16 bytes
			size = 1 + 1<<(c-0xd4)
		case c == 0xdc || c == 0xde:
			n = 2
		case c == 0xdd || c == 0xdf:
			n = 4
		default: // 0xc1
			return errMsgpackShape
		}
		if n > 0 {
			if left() < n {
				return errMsgpackShape
			}
			var v uint64
			switch n {
			case 1:
				v = uint64(b[i])
			case 2:
				v = uint64(binary.BigEndian.Uint16(b[i:]))
			case 4:
				v = uint64(binary.BigEndian.Uint32(b[i:]))
			}
			i += n
			if v > uint64(len(b)) {
				return errMsgpackShape
			}
			switch {
			case c >= 0xc7 && c <= 0xc9:
				size = int(v) + 1
			case c == 0xdc || c == 0xdd:
				count = int(v)
			case c == 0xde || c == 0xdf:
				count = 2 * int(v)
			default:
				size = int(v)
			}
		}
		if size > left() || count > left() { // every object takes a byte
			return errMsgpackShape
		}
		i += size
		if count > 0 {
			if depth == maxDepth {
				return errMsgpackShape
			}
			depth++
			pending[depth] = count
		}
	}
	if i != len(b) {
		return errMsgpackShape
	}
	return nil
}
