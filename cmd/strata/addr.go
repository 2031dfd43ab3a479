package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// parseAddrPort accepts "ADDR:PORT", "[IPv6]:PORT" or "HOST:PORT" (resolved
// with the system resolver) and returns one UDP address. The port must be
// explicit and non-zero: a peer cannot be reached on port 0.
func parseAddrPort(ctx context.Context, s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("address %q: port 0 is not a reachable port", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: want HOST:PORT such as 127.0.0.1:1935 or [::1]:1935", s)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q: port %q is not a number in 1..65535", s, portStr)
	}
	if host == "" {
		return netip.AddrPort{}, fmt.Errorf("address %q: missing host (for this machine use 127.0.0.1:%d)", s, port)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q: cannot resolve host %q: %v", s, host, err)
	}
	// Prefer IPv4: it is what most RTMFP peers listen on.
	pick := ips[0]
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			pick = ip
			break
		}
	}
	return netip.AddrPortFrom(pick.Unmap(), uint16(port)), nil
}

// localFor is the wildcard socket address to use to reach to: same family.
func localFor(to netip.AddrPort) string {
	if to.Addr().Is4() {
		return "0.0.0.0:0"
	}
	return "[::]:0"
}

// validListenAddr checks a --listen value before the socket is opened, so
// a typo is a usage error rather than a runtime one.
func validListenAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT such as 127.0.0.1:1935, :1935 or [::]:1935", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("--listen %q: port %q is not a number in 0..65535", s, port)
	}
	_ = host
	return nil
}
