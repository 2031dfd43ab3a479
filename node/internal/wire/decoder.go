package wire

import "encoding/binary"

// decoder reads fields from a chunk payload with a sticky error, so each
// Parse function reads like the RFC's field list. It lives on the stack.
type decoder struct {
	b   []byte
	off int
	ctx string
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = wrap(d.ctx, err)
	}
}

func (d *decoder) u8() uint8 {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail(ErrTruncated)
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 4 {
		d.fail(ErrTruncated)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *decoder) vlu() uint64 {
	if d.err != nil {
		return 0
	}
	v, n, err := ReadVLU(d.b[d.off:])
	if err != nil {
		d.fail(errKind(err))
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) field() []byte {
	if d.err != nil {
		return nil
	}
	f, n, err := ReadField(d.b[d.off:])
	if err != nil {
		d.fail(errKind(err))
		return nil
	}
	d.off += n
	return f
}

// rest returns everything not yet read (never nil-vs-empty sensitive).
func (d *decoder) rest() []byte {
	if d.err != nil {
		return nil
	}
	r := d.b[d.off:len(d.b):len(d.b)]
	d.off = len(d.b)
	return r
}

// errKind maps a wrapped error back to its sentinel so the decoder can
// re-wrap it with its own context instead of nesting messages.
func errKind(err error) error {
	switch {
	case err == nil:
		return nil
	case isErr(err, ErrTruncated):
		return ErrTruncated
	case isErr(err, ErrTooLarge):
		return ErrTooLarge
	default:
		return ErrMalformed
	}
}
