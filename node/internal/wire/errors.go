package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. Decoders wrap them with the name of the structure being
// decoded, so callers test with errors.Is and logs still say where it failed.
var (
	// ErrTruncated means the input ended before the structure was complete.
	ErrTruncated = errors.New("truncated")
	// ErrMalformed means the input is long enough but violates the format
	// (a VLU that overflows 64 bits, a length that points outside its
	// enclosing field, a forbidden value).
	ErrMalformed = errors.New("malformed")
	// ErrTooLarge means an encoder was asked to produce a field larger than
	// the format can express (a chunk payload above 65535 bytes).
	ErrTooLarge = errors.New("too large")
)

// wrap adds context to a sentinel error. It allocates, which is acceptable:
// errors are off the hot path.
func wrap(ctx string, err error) error {
	return fmt.Errorf("wire: %s: %w", ctx, err)
}

func isErr(err, target error) bool { return errors.Is(err, target) }
