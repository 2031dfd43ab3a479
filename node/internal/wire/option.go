package wire

// AppendOption appends one option (RFC 7016 §2.1.3): a VLU length covering
// the type and the value, the type as a VLU, then the value.
func AppendOption(b []byte, typ uint64, value []byte) []byte {
	b = AppendVLU(b, uint64(VLULen(typ)+len(value)))
	b = AppendVLU(b, typ)
	return append(b, value...)
}

// AppendOptionMarker appends the zero-length option that ends an option list.
func AppendOptionMarker(b []byte) []byte {
	return append(b, 0)
}

// ReadOption decodes one option from the start of b. A marker is reported as
// marker=true with no type or value. n is the number of bytes consumed.
func ReadOption(b []byte) (typ uint64, value []byte, marker bool, n int, err error) {
	body, n, err := ReadField(b)
	if err != nil {
		return 0, nil, false, 0, err
	}
	if len(body) == 0 {
		return 0, nil, true, n, nil
	}
	typ, tn, err := ReadVLU(body)
	if err != nil {
		// The type must fit inside the length the option declared.
		return 0, nil, false, 0, wrap("option type", ErrMalformed)
	}
	return typ, body[tn:], false, n, nil
}

// ParseOptionList walks options until a marker or the end of b, calling fn
// (if not nil) for each option; an error from fn stops the walk and is
// returned. n is the number of bytes consumed, including the marker if one
// was found. Values are sub-slices of b.
func ParseOptionList(b []byte, fn func(typ uint64, value []byte) error) (n int, err error) {
	n, _, err = parseOptionList(b, fn)
	return n, err
}

// parseOptionList is ParseOptionList that also says whether the list was
// terminated by a marker (user data requires one; a bare list may not).
func parseOptionList(b []byte, fn func(typ uint64, value []byte) error) (n int, marker bool, err error) {
	for n < len(b) {
		typ, value, isMarker, m, err := ReadOption(b[n:])
		if err != nil {
			return n, false, err
		}
		n += m
		if isMarker {
			return n, true, nil
		}
		if fn != nil {
			if err := fn(typ, value); err != nil {
				return n, false, err
			}
		}
	}
	return n, false, nil
}

// OptionIter walks an option list without a callback, for callers that want
// a plain loop. It stops at a marker, at the end of the bytes, or at the
// first error (see Err).
type OptionIter struct {
	b   []byte
	off int
	end bool
	err error
}

// NewOptionIter starts iterating the option list at the start of b.
func NewOptionIter(b []byte) OptionIter { return OptionIter{b: b} }

// Next returns the next option; ok is false at the end of the list.
func (it *OptionIter) Next() (typ uint64, value []byte, ok bool) {
	if it.end || it.off >= len(it.b) {
		it.end = true
		return 0, nil, false
	}
	typ, value, marker, n, err := ReadOption(it.b[it.off:])
	if err != nil {
		it.err, it.end = err, true
		return 0, nil, false
	}
	it.off += n
	if marker {
		it.end = true
		return 0, nil, false
	}
	return typ, value, true
}

// Err is the error that ended the iteration, if any.
func (it *OptionIter) Err() error { return it.err }

// Consumed is how many bytes of the list have been read so far, including a
// marker once it has been reached.
func (it *OptionIter) Consumed() int { return it.off }
