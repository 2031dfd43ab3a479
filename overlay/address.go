package overlay

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"

	"github.com/strata-net/strata/node"
)

// GroupID names a group: 32 bytes, typically the SHA-256 of a group
// specifier (the group package decides how it is made).
type GroupID [32]byte

// String is the ID in hex.
func (g GroupID) String() string { return hex.EncodeToString(g[:]) }

// ParseGroupID parses 64 hex digits.
func ParseGroupID(s string) (GroupID, error) {
	var g GroupID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(g) {
		return g, fmt.Errorf("overlay: bad group ID %q", s)
	}
	copy(g[:], b)
	return g, nil
}

// Address is a point of a group's 256-bit key space: a member's position, or
// any target a message can be routed to.
type Address [32]byte

// String is the address in hex.
func (a Address) String() string { return hex.EncodeToString(a[:]) }

// AddressOf is the address of the member with this peer ID in this group:
// SHA-256(groupID || peerID). Hashing in the group ID gives a member an
// unrelated position in every group, so a peer ID that lands near some target
// in one group does not in another.
func AddressOf(g GroupID, p node.PeerID) Address {
	h := sha256.New()
	h.Write(g[:])
	h.Write(p[:])
	var a Address
	h.Sum(a[:0])
	return a
}

// Xor is the XOR distance between two addresses, as an address-sized
// big-endian number.
func Xor(a, b Address) Address {
	var d Address
	for i := range a {
		d[i] = a[i] ^ b[i]
	}
	return d
}

// Closer reports whether a is strictly nearer to target than b by XOR
// distance.
func Closer(a, b, target Address) bool {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			return da < db
		}
	}
	return false
}

// CommonPrefixLen is the number of leading bits a and b share (256 when
// equal): the index of the k-bucket one would keep the other in.
func CommonPrefixLen(a, b Address) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return 256
}

// fraction maps the XOR distance between a and b to [0, 1): the share of the
// key space nearer to a than b is. 64 bits of precision are plenty for
// estimating how many members a group has.
func fraction(a, b Address) float64 {
	d := Xor(a, b)
	var hi uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(d[i])
	}
	return float64(hi) / (1 << 64)
}
