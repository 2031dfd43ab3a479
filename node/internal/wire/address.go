package wire

import (
	"encoding/binary"
	"net/netip"
)

// Address origins (RFC 7016 §2.3.5): the low two bits of the flags byte say
// how the sender learned the address.
const (
	OriginUnknown  uint8 = 0
	OriginLocal    uint8 = 1 // reported by the host itself (an interface address)
	OriginObserved uint8 = 2 // observed as the source of packets
	OriginRelay    uint8 = 3 // a relay address
)

// addressFlagIPv6 marks a 16-byte address in the address flags byte.
const addressFlagIPv6 = 0x80

// Address is an IP address and port with its origin, as carried in Redirect
// and FIHello chunks.
type Address struct {
	AddrPort netip.AddrPort
	Origin   uint8
}

// EncodedLen is the size of a's encoding: 7 bytes for IPv4, 19 for IPv6.
func (a Address) EncodedLen() int {
	if a.AddrPort.Addr().Unmap().Is4() {
		return 1 + 4 + 2
	}
	return 1 + 16 + 2
}

// AppendAddress appends a: flags (0x80 for IPv6, origin in the low 2 bits),
// the IP address, the port. IPv4-mapped IPv6 addresses (as dual-stack Go
// sockets report IPv4 peers) are written as IPv4, the form every peer can
// use. An invalid address is written as the IPv6 unspecified address.
func AppendAddress(b []byte, a Address) []byte {
	ip := a.AddrPort.Addr().Unmap()
	flags := a.Origin & 0x03
	if ip.Is4() {
		b = append(b, flags)
		v4 := ip.As4()
		b = append(b, v4[:]...)
	} else {
		b = append(b, flags|addressFlagIPv6)
		v6 := ip.As16()
		b = append(b, v6[:]...)
	}
	return binary.BigEndian.AppendUint16(b, a.AddrPort.Port())
}

// ReadAddress decodes an address from the start of b. Reserved flag bits are
// ignored.
func ReadAddress(b []byte) (a Address, n int, err error) {
	if len(b) < 1 {
		return Address{}, 0, wrap("address", ErrTruncated)
	}
	ipLen := 4
	if b[0]&addressFlagIPv6 != 0 {
		ipLen = 16
	}
	n = 1 + ipLen + 2
	if len(b) < n {
		return Address{}, 0, wrap("address", ErrTruncated)
	}
	var ip netip.Addr
	if ipLen == 4 {
		ip = netip.AddrFrom4([4]byte(b[1:5]))
	} else {
		ip = netip.AddrFrom16([16]byte(b[1:17]))
	}
	port := binary.BigEndian.Uint16(b[1+ipLen:])
	return Address{AddrPort: netip.AddrPortFrom(ip, port), Origin: b[0] & 0x03}, n, nil
}

func (d *decoder) address() Address {
	if d.err != nil {
		return Address{}
	}
	a, n, err := ReadAddress(d.b[d.off:])
	if err != nil {
		d.fail(errKind(err))
		return Address{}
	}
	d.off += n
	return a
}
