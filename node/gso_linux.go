//go:build linux

package node

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoSupported: Linux can split one large send into equal-sized datagrams
// (UDP_SEGMENT, generic segmentation offload), which saves most of the
// per-datagram cost of the network stack.
const gsoSupported = true

// appendGSOControl appends a UDP_SEGMENT control message for segments of
// size bytes.
func appendGSOControl(b []byte, size int) []byte {
	start := len(b)
	b = append(b, make([]byte, unix.CmsgSpace(2))...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[start]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[start+unix.CmsgLen(0):], uint16(size))
	return b
}
