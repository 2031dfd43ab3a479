package overlay

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vmihailenco/msgpack/v5"
)

// ProtocolVersion is the version of the control messages this package
// speaks. A message with another version is rejected (and counted), so a
// later version can change the meaning of fields without being misread.
const ProtocolVersion = 1

// Limits of the wire format. They bound what one message can make a member
// allocate or do, whatever a peer sends.
const (
	// DefaultMaxMessageSize is the default bound on an encoded message.
	DefaultMaxMessageSize = 64 << 10
	// MaxNodes is the most contacts one Nodes reply may carry.
	MaxNodes = 64
	// MaxTTL is the largest TTL a routed message may carry, and so the
	// longest path it can record.
	MaxTTL = 64
	// maxDepth bounds nesting in the msgpack pre-check.
	maxDepth = 8
)

// MsgType is the kind of a control message.
type MsgType uint8

// Message types.
const (
	// MsgHello opens every flow: the sender is a member of the group. It
	// also carries the sender's member-count estimate and, with Neighbour
	// set, an offer to keep the sender as a neighbour.
	MsgHello MsgType = 1
	// MsgFindNode asks for the members the receiver knows nearest Target.
	MsgFindNode MsgType = 2
	// MsgNodes answers MsgFindNode (same ReqID) with Nodes.
	MsgNodes MsgType = 3
	// MsgRoute is a routing envelope travelling towards the member
	// nearest Target.
	MsgRoute MsgType = 4
	// MsgData is a payload for the receiving neighbour itself.
	MsgData MsgType = 5
	// MsgBye says the sender leaves the group: forget it at once.
	MsgBye MsgType = 6
	// MsgRegister, on a rendezvous flow, says the sender is a member of
	// group Target and asks for recent members (answered by MsgNodes with
	// the same ReqID).
	MsgRegister MsgType = 7
)

func (t MsgType) String() string {
	switch t {
	case MsgHello:
		return "hello"
	case MsgFindNode:
		return "find_node"
	case MsgNodes:
		return "nodes"
	case MsgRoute:
		return "route"
	case MsgData:
		return "data"
	case MsgBye:
		return "bye"
	case MsgRegister:
		return "register"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// WireContact is a member as carried in a Nodes reply: its peer ID and the
// address its sessions come from. Its group address follows from the peer
// ID, so it is not sent (and cannot be forged).
type WireContact struct {
	PeerID []byte `msgpack:"p"`
	Addr   []byte `msgpack:"a"` // netip.AddrPort.MarshalBinary
}

// Message is one control message. Fields a type does not use are left
// empty and omitted from the encoding; unknown fields are ignored, so later
// versions may add some.
type Message struct {
	Version uint8   `msgpack:"v"`
	Type    MsgType `msgpack:"t"`
	// ReqID pairs a FindNode with its Nodes reply.
	ReqID uint64 `msgpack:"r,omitempty"`
	// Target is a 32-byte address (FindNode, Route).
	Target []byte `msgpack:"k,omitempty"`
	// Nodes are the contacts of a Nodes reply.
	Nodes []WireContact `msgpack:"n,omitempty"`
	// Estimate is the sender's estimate of the group's member count
	// (Hello).
	Estimate uint32 `msgpack:"e,omitempty"`
	// Neighbour offers to keep the session as a neighbour link (Hello).
	Neighbour bool `msgpack:"nb,omitempty"`
	// MsgID identifies a routed message end to end, for de-duplication.
	MsgID uint64 `msgpack:"m,omitempty"`
	// TTL is how many more hops a routed message may take.
	TTL uint8 `msgpack:"ttl,omitempty"`
	// Path lists the peer IDs a routed message has been through, origin
	// first; it is the loop protection and what the receiver is told.
	Path [][]byte `msgpack:"path,omitempty"`
	// Payload is the application's bytes (Route, Data).
	Payload []byte `msgpack:"d,omitempty"`
}

// Errors of the codec. Decode wraps them; errors.Is matches them.
var (
	ErrMessageTooBig = errors.New("overlay: message too big")
	ErrMalformed     = errors.New("overlay: malformed message")
	ErrVersion       = errors.New("overlay: unsupported protocol version")
)

// Encode encodes m, refusing to produce more than maxSize bytes.
func Encode(m *Message, maxSize int) ([]byte, error) {
	b, err := msgpack.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("overlay: encode %s: %w", m.Type, err)
	}
	if len(b) > maxSize {
		return nil, fmt.Errorf("%w: %d > %d bytes", ErrMessageTooBig, len(b), maxSize)
	}
	return b, nil
}

// Decode decodes and validates one message of at most maxSize bytes. Any
// input that is not a well-formed message of this version is an error
// (ErrMessageTooBig, ErrVersion or ErrMalformed), never a panic, and the
// input's declared lengths are checked against its size before anything is
// allocated for them.
func Decode(b []byte, maxSize int) (*Message, error) {
	if len(b) > maxSize {
		return nil, fmt.Errorf("%w: %d > %d bytes", ErrMessageTooBig, len(b), maxSize)
	}
	if err := checkMsgpack(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	m := new(Message)
	if err := msgpack.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.Version != ProtocolVersion {
		return nil, fmt.Errorf("%w: %d", ErrVersion, m.Version)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, m.Type, err)
	}
	return m, nil
}

func (m *Message) validate() error {
	switch m.Type {
	case MsgHello, MsgBye, MsgData:
	case MsgFindNode, MsgRegister:
		if len(m.Target) != 32 {
			return errors.New("target must be 32 bytes")
		}
	case MsgNodes:
		if len(m.Nodes) > MaxNodes {
			return fmt.Errorf("%d nodes > %d", len(m.Nodes), MaxNodes)
		}
		for _, c := range m.Nodes {
			if len(c.PeerID) != 32 {
				return errors.New("peer ID must be 32 bytes")
			}
			var ap netip.AddrPort
			if err := ap.UnmarshalBinary(c.Addr); err != nil || !ap.IsValid() {
				return errors.New("bad contact address")
			}
		}
	case MsgRoute:
		if len(m.Target) != 32 {
			return errors.New("target must be 32 bytes")
		}
		if m.TTL > MaxTTL {
			return fmt.Errorf("ttl %d > %d", m.TTL, MaxTTL)
		}
		if len(m.Path) == 0 || len(m.Path) > MaxTTL+1 {
			return fmt.Errorf("path of %d entries", len(m.Path))
		}
		for _, p := range m.Path {
			if len(p) != 32 {
				return errors.New("path entries must be 32 bytes")
			}
		}
	default:
		return fmt.Errorf("unknown type %d", m.Type)
	}
	return nil
}

// checkMsgpack walks one msgpack object spanning all of b, checking that
// every declared length fits in what is left of b and that nesting is
// shallow. The msgpack decoder trusts declared lengths when it allocates
// (up to a megabyte or a million elements), so without this a small packet
// could make a member allocate far more than the packet's size.
func checkMsgpack(b []byte) error {
	type frame struct{ left int }
	stack := make([]frame, 0, maxDepth)
	stack = append(stack, frame{left: 1})
	i := 0
	need := func(n int) bool { return n >= 0 && n <= len(b)-i }
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if top.left == 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		top.left--
		if i >= len(b) {
			return errors.New("truncated")
		}
		c := b[i]
		i++
		var skip, items int
		switch {
		case c <= 0x7f || c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			items = 2 * int(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			items = int(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = int(c & 0x1f)
		case c == 0xc4, c == 0xd9:
			skip = -1
			if need(1) {
				skip = int(b[i])
				i++
			}
		case c == 0xc5, c == 0xda:
			skip = -1
			if need(2) {
				skip = int(b[i])<<8 | int(b[i+1])
				i += 2
			}
		case c == 0xc6, c == 0xdb:
			skip = -1
			if need(4) {
				skip = int(uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3]))
				i += 4
			}
		case c == 0xc7:
			skip = -1
			if need(1) {
				skip = int(b[i]) + 1
				i++
			}
		case c == 0xc8:
			skip = -1
			if need(2) {
				skip = (int(b[i])<<8 | int(b[i+1])) + 1
				i += 2
			}
		case c == 0xc9:
			skip = -1
			if need(4) {
				skip = int(uint32(b[i])<<24|uint32(b[i+1])<<16|uint32(b[i+2])<<8|uint32(b[i+3])) + 1
				i += 4
			}
		case c == 0xca:
			skip = 4
		case c == 0xcb:
			skip = 8
		case c >= 0xcc && c <= 0xcf:
			skip = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3:
			skip = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8:
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc, c == 0xde:
			items = -1
			if need(2) {
				items = int(b[i])<<8 | int(b[i+1])
				i += 2
				if c == 0xde {
					items *= 2
				}
			}
		case c == 0xdd, c == 0xdf:
			items = -1
			if need(4) {
				items = int(uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3]))
				i += 4
				if c == 0xdf {
					items *= 2
				}
			}
		default: // 0xc1 is never used
			return fmt.Errorf("invalid byte 0x%02x", c)
		}
		if !need(skip) {
			return errors.New("length beyond end")
		}
		i += skip
		// Every item takes at least one byte.
		if !need(items) {
			return errors.New("count beyond end")
		}
		if items > 0 {
			if len(stack) >= maxDepth {
				return errors.New("nested too deep")
			}
			stack = append(stack, frame{left: items})
		}
	}
	if i != len(b) {
		return errors.New("trailing bytes")
	}
	return nil
}
