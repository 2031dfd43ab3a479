package group

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/strata-net/strata/fec"
)

// ProtocolVersion is the version of this package's control messages. A
// message of another version is dropped and counted, so a later version
// may change what fields mean without being misread.
const ProtocolVersion = 3

// Limits of the wire format: they bound what one message from a neighbour
// can make a member allocate or do.
const (
	// MaxControlSize bounds an encoded control message.
	MaxControlSize = 16 << 10
	// MaxPostSize bounds a post's payload.
	MaxPostSize = 8 << 10
	// maxLanes bounds the data lanes of a link.
	maxLanes = 64
	// maxClasses bounds the push classes (PushNeighbourLimit).
	maxClasses = 32
	// maxAvailBlocks bounds the blocks one availability map describes.
	maxAvailBlocks = 512
	// noRoute is the depth of a class a member has no pusher for; depths
	// at or above it are treated alike, which ends counting to infinity
	// when a tree breaks.
	noRoute = 32
	// delayUnit is the step of advertised delays; noDelay (the largest
	// byte) means none, so delays up to 254 steps (1016 ms) are told.
	delayUnit = 4 * time.Millisecond
	noDelay   = 255
	// postIDSize is the size of a post's random ID.
	postIDSize = 16
)

// Errors of the codecs; decoders wrap them.
var (
	ErrMalformed = errors.New("group: malformed message")
	ErrVersion   = errors.New("group: unsupported protocol version")
	ErrTooBig    = errors.New("group: message too big")
)

// ctlType is the kind of a control message.
type ctlType uint8

const (
	// ctlAvail: the pieces the sender holds, one bitmap per block from
	// Base on.
	ctlAvail ctlType = 1
	// ctlSubscribe: the push classes the sender wants from the receiver
	// (replacing any earlier set; empty cancels).
	ctlSubscribe ctlType = 2
	// ctlRefuse: the receiver will not push these classes.
	ctlRefuse ctlType = 3
	// ctlPull: send these pieces of Block (and its manifest if asked).
	ctlPull ctlType = 4
	// ctlPost: a posted message flooding the group.
	ctlPost ctlType = 5
	// ctlEnd: the publisher ended the stream after Count blocks and End
	// bytes; signed like manifests, flooded over the group.
	ctlEnd ctlType = 6
	// ctlBusy: the sender will not serve the pull it echoes (Block,
	// Want, Manifest) now: its share of pulls is spent. Ask another.
	ctlBusy ctlType = 7
	// ctlParity: with Spare, push the sender only the first parity piece
	// of each block (its blocks complete without parity); without it,
	// every piece again.
	ctlParity ctlType = 8
)

// control is one control message, msgpack-encoded as a map with short
// keys; fields a type does not use are omitted, and unknown keys are
// ignored so later versions can add some.
type control struct {
	Version uint8   `msgpack:"v"`
	Type    ctlType `msgpack:"t"`
	// Avail, Pull, Busy: first block described / the block wanted.
	Block uint64 `msgpack:"b,omitempty"`
	// Avail: the sender holds every piece of Full blocks from Block on,
	// then Maps has one bitmap of held pieces per block.
	Full uint64   `msgpack:"f,omitempty"`
	Maps [][]byte `msgpack:"m,omitempty"`
	// Avail: the sender is the stream's publisher, or holds its key and
	// will be (the push trees' root either way).
	Source bool `msgpack:"s,omitempty"`
	// Avail: per push class, the sender's hops from the publisher
	// (0 for the publisher, noRoute when it has no pusher).
	Depth []byte `msgpack:"h,omitempty"`
	// Avail: per push class, the sender's delay from the publisher along
	// its tree, in delayUnit steps (the sum of half the smoothed round
	// trip of every hop; noDelay when unknown or no route). Members choose
	// pushers by it; one that sends none is judged by its hops.
	Delay []byte `msgpack:"dl,omitempty"`
	// Avail: Depth and Delay are left out because they are those of the
	// sender's previous availability message on this flow (which is
	// reliable and in order). Routes change far less often than the
	// pieces held, and the two arrays take a byte per push class each
	// (10 by default) besides their keys.
	SameRoutes bool `msgpack:"u,omitempty"`
	// Avail, from the publisher's node (or a key holder's, before it
	// publishes): the publisher's signature over nodeSigningBytes of this
	// node's peer ID (which the RTMFP session authenticates). Pieces it
	// pushes are then relayed at once, before their manifest.
	Node []byte `msgpack:"pn,omitempty"`
	// Subscribe, Refuse: push classes; Classes of Modulus.
	Classes []byte `msgpack:"c,omitempty"`
	Modulus uint8  `msgpack:"p,omitempty"`
	// Subscribe: if not 0, the receiver answers with a Refuse that echoes
	// it, even one refusing nothing (the sender keeps its old pusher of a
	// class until the new one has answered). Refuse: the Ask of the
	// subscription it answers (0: not an answer).
	Ask uint64 `msgpack:"a,omitempty"`
	// Pull, Busy: bitmap of wanted pieces; Manifest asks for the
	// manifest too.
	Want     []byte `msgpack:"w,omitempty"`
	Manifest bool   `msgpack:"x,omitempty"`
	// Parity: push only each block's first parity piece.
	Spare bool `msgpack:"sp,omitempty"`
	// Post: random ID, remaining hops and the application's bytes.
	ID      []byte `msgpack:"i,omitempty"`
	TTL     uint8  `msgpack:"ttl,omitempty"`
	Payload []byte `msgpack:"d,omitempty"`
	// End: blocks and bytes in the stream, the publisher's stamp (Unix
	// ns) and signature over endSigningBytes.
	Count uint64 `msgpack:"n,omitempty"`
	End   uint64 `msgpack:"e,omitempty"`
	Stamp int64  `msgpack:"ts,omitempty"`
	Sig   []byte `msgpack:"sig,omitempty"`
}

// newest is the newest block an availability message says its sender
// holds a piece of: the last block with a non-empty map, else the last
// whole block; ok is false when it describes none.
func (c *control) newest() (seq uint64, ok bool) {
	for i := len(c.Maps) - 1; i >= 0; i-- {
		if len(c.Maps[i]) > 0 {
			return c.Block + c.Full + uint64(i), true
		}
	}
	if c.Full > 0 {
		return c.Block + c.Full - 1, true
	}
	return 0, false
}

func encodeControl(c *control) ([]byte, error) {
	c.Version = ProtocolVersion
	co := codecs.Get().(*codec)
	defer codecs.Put(co)
	co.buf.Reset()
	co.enc.Reset(&co.buf)
	co.enc.UseCompactInts(true)
	if err := co.enc.Encode(c); err != nil {
		return nil, err
	}
	if co.buf.Len() > MaxControlSize {
		return nil, ErrTooBig
	}
	return bytes.Clone(co.buf.Bytes()), nil
}

// decodeControl decodes and validates one control message. Any input that
// is not a well-formed message of this version is an error, never a panic.
func decodeControl(b []byte) (*control, error) {
	if len(b) > MaxControlSize {
		return nil, ErrTooBig
	}
	if err := checkMsgpack(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var c control
	co := codecs.Get().(*codec)
	co.in.Reset(b)
	co.dec.Reset(&co.in)
	err := co.dec.Decode(&c)
	co.in.Reset(nil) // the pool must not keep b
	codecs.Put(co)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if c.Version != ProtocolVersion {
		return nil, fmt.Errorf("%w: %d", ErrVersion, c.Version)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// codec is what encoding or decoding a control message needs, kept for
// reuse: a new encoder, decoder and reader each time, and a buffer grown
// in steps, were a tenth of what a member allocates per message.
type codec struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
	in  bytes.Reader
	dec *msgpack.Decoder
}

var codecs = sync.Pool{New: func() any {
	return &codec{enc: msgpack.NewEncoder(nil), dec: msgpack.NewDecoder(nil)}
}}

func (c *control) validate() error {
	bad := func(what string) error { return fmt.Errorf("%w: %s %s", ErrMalformed, c.Type, what) }
	switch c.Type {
	case ctlAvail:
		if len(c.Maps) > maxAvailBlocks {
			return bad("too many blocks")
		}
		for _, m := range c.Maps {
			if len(m) > fec.MaxShards/8 {
				return bad("bitmap too long")
			}
		}
		if len(c.Depth) > maxClasses || len(c.Delay) > maxClasses {
			return bad("too many depths")
		}
		if c.SameRoutes && (len(c.Depth) > 0 || len(c.Delay) > 0) {
			return bad("routes both new and unchanged")
		}
		if len(c.Node) != 0 && len(c.Node) != ed25519.SignatureSize {
			return bad("bad node signature length")
		}
		if c.Full > maxAvailBlocks || c.Block+c.Full+uint64(len(c.Maps)) < c.Block {
			return bad("block overflow")
		}
	case ctlSubscribe, ctlRefuse:
		if c.Modulus == 0 || c.Modulus > maxClasses || len(c.Classes) > maxClasses {
			return bad("bad classes")
		}
		for _, k := range c.Classes {
			if k >= c.Modulus {
				return bad("class out of range")
			}
		}
	case ctlPull, ctlBusy:
		if len(c.Want) > fec.MaxShards/8 {
			return bad("bitmap too long")
		}
	case ctlPost:
		if len(c.ID) != postIDSize || len(c.Payload) > MaxPostSize {
			return bad("bad id or payload")
		}
	case ctlEnd:
		if len(c.Sig) != 0 && len(c.Sig) != ed25519.SignatureSize {
			return bad("bad signature length")
		}
	case ctlParity:
	default:
		return bad("unknown type")
	}
	return nil
}

func (t ctlType) String() string {
	switch t {
	case ctlAvail:
		return "avail"
	case ctlSubscribe:
		return "subscribe"
	case ctlRefuse:
		return "refuse"
	case ctlPull:
		return "pull"
	case ctlPost:
		return "post"
	case ctlEnd:
		return "end"
	case ctlBusy:
		return "busy"
	case ctlParity:
		return "parity"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Messages of the data flow are binary: a type byte, then
//
//	manifest: stamp (8, publisher's send time in Unix ns), signature
//	          length (1: 0 or 64), signature, fec manifest encoding
//	piece:    how (1: push or pull), fec piece encoding
//	have:     block (8): the sender holds the whole block (it rebuilt it
//	          from k pieces), so its pushers skip the block's other pieces
//	fragment: block (8), block's stream offset (8), index (1), stamp (8,
//	          publisher's send time in Unix ns), signature length (1: 0
//	          or 64), signature, data: a full data fragment the
//	          publisher sent before its block closed, with its signature
//	          over fragmentSigningBytes (none in a group without
//	          publisher key)
const (
	dataManifest = 1
	dataPiece    = 2
	dataHave     = 3
	dataFragment = 4
)

// fragmentHeaderLen is the length of a fragment message without its
// signature and data.
const fragmentHeaderLen = 1 + 8 + 8 + 1 + 8 + 1

// fragment is a data fragment sent before its block closed: a piece
// without K, M and ShardSize (K 0), the publisher's stamp and signature.
type fragment struct {
	p     fec.Piece
	stamp int64
	sig   []byte
}

// appendFragmentMsg appends the message of f.
func appendFragmentMsg(b []byte, f *fragment) []byte {
	b = append(b, dataFragment)
	b = binary.BigEndian.AppendUint64(b, f.p.Block)
	b = binary.BigEndian.AppendUint64(b, f.p.Offset)
	b = append(b, byte(f.p.Index))
	b = binary.BigEndian.AppendUint64(b, uint64(f.stamp))
	b = append(b, byte(len(f.sig)))
	b = append(b, f.sig...)
	return append(b, f.p.Data...)
}

// decodeFragment decodes a fragment message. Its data and signature
// alias b.
func decodeFragment(b []byte) (*fragment, error) {
	if len(b) < fragmentHeaderLen || b[0] != dataFragment {
		return nil, fmt.Errorf("%w: short fragment", ErrMalformed)
	}
	f := &fragment{
		p:     fec.Piece{Block: binary.BigEndian.Uint64(b[1:9]), Offset: binary.BigEndian.Uint64(b[9:17]), Index: int(b[17])},
		stamp: int64(binary.BigEndian.Uint64(b[18:26])),
	}
	n := int(b[26])
	rest := b[fragmentHeaderLen:]
	if (n != 0 && n != ed25519.SignatureSize) || len(rest) < n {
		return nil, fmt.Errorf("%w: bad signature length", ErrMalformed)
	}
	if len(rest) == n || len(rest)-n > fec.MaxFragmentSize || f.p.Offset > 1<<62 {
		return nil, fmt.Errorf("%w: bad fragment", ErrMalformed)
	}
	f.sig, f.p.Data = rest[:n:n], rest[n:]
	return f, nil
}

// haveMsgLen is the length of a have message.
const haveMsgLen = 9

func appendHaveMsg(b []byte, seq uint64) []byte {
	b = append(b, dataHave)
	return binary.BigEndian.AppendUint64(b, seq)
}

// decodeHave decodes a have message: the block its sender holds whole.
func decodeHave(b []byte) (uint64, error) {
	if len(b) != haveMsgLen || b[0] != dataHave {
		return 0, fmt.Errorf("%w: bad have message", ErrMalformed)
	}
	return binary.BigEndian.Uint64(b[1:]), nil
}

// How a piece was sent, for per-purpose statistics.
const (
	viaPush = 1
	viaPull = 2
)

// signedManifest is a block's manifest with the publisher's stamp and
// signature over signingBytes.
type signedManifest struct {
	Stamp    int64
	Sig      []byte
	Manifest fec.Manifest
	raw      []byte // manifest encoding
}

func appendManifestMsg(b []byte, sm *signedManifest) []byte {
	b = append(b, dataManifest)
	b = binary.BigEndian.AppendUint64(b, uint64(sm.Stamp))
	b = append(b, byte(len(sm.Sig)))
	b = append(b, sm.Sig...)
	return append(b, sm.raw...)
}

func appendPieceMsg(b []byte, how byte, p fec.Piece) ([]byte, error) {
	b = append(b, dataPiece, how)
	return p.AppendBinary(b)
}

// decodeData decodes one data-flow message: exactly one of the results is
// set. The piece's Data aliases b.
func decodeData(b []byte) (*signedManifest, *fec.Piece, byte, error) {
	if len(b) < 2 {
		return nil, nil, 0, fmt.Errorf("%w: short data message", ErrMalformed)
	}
	switch b[0] {
	case dataManifest:
		if len(b) < 10 {
			return nil, nil, 0, fmt.Errorf("%w: short manifest", ErrMalformed)
		}
		sm := &signedManifest{Stamp: int64(binary.BigEndian.Uint64(b[1:9]))}
		n := int(b[9])
		rest := b[10:]
		if (n != 0 && n != 64) || len(rest) < n {
			return nil, nil, 0, fmt.Errorf("%w: bad signature length", ErrMalformed)
		}
		if n > 0 {
			sm.Sig = append([]byte(nil), rest[:n]...)
		}
		rest = rest[n:]
		if len(rest) > fec.MaxManifestSize {
			return nil, nil, 0, fmt.Errorf("%w: manifest too big", ErrMalformed)
		}
		if err := sm.Manifest.UnmarshalBinary(rest); err != nil {
			return nil, nil, 0, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		sm.raw = append([]byte(nil), rest...)
		return sm, nil, 0, nil
	case dataPiece:
		how := b[1]
		if how != viaPush && how != viaPull {
			return nil, nil, 0, fmt.Errorf("%w: bad piece origin", ErrMalformed)
		}
		p, err := fec.ParsePiece(b[2:])
		if err != nil {
			return nil, nil, 0, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return nil, &p, how, nil
	}
	return nil, nil, 0, fmt.Errorf("%w: unknown data type %d", ErrMalformed, b[0])
}

// bitmap helpers: bit i of a map is byte i/8, bit i%8 (LSB first).
func bitSet(m []byte, i int) bool { return i/8 < len(m) && m[i/8]&(1<<(i%8)) != 0 }

func setBit(m []byte, i int) { m[i/8] |= 1 << (i % 8) }
