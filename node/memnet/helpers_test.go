package memnet

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// newManual returns a Network on a fresh ManualClock, closed at test end.
func newManual(t testing.TB, cfg Config) (*Network, *ManualClock) {
	t.Helper()
	clk := NewManualClock(epoch)
	cfg.Clock = clk
	n := New(cfg)
	t.Cleanup(func() { n.Close() })
	return n, clk
}

func listen(t testing.TB, n *Network, addr string) *Conn {
	t.Helper()
	c, err := n.Listen(ap(addr))
	if err != nil {
		t.Fatalf("Listen(%s): %v", addr, err)
	}
	return c
}

// seqPayload is a datagram carrying a sequence number, padded to size.
func seqPayload(seq uint32, size int) []byte {
	b := make([]byte, max(size, 4))
	binary.BigEndian.PutUint32(b, seq)
	return b
}

// drain reads every queued datagram without blocking.
func drain(t testing.TB, c *Conn) (seqs []uint32, srcs []netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 65536)
	for c.Pending() > 0 {
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if n < 4 {
			seqs = append(seqs, ^uint32(0))
		} else {
			seqs = append(seqs, binary.BigEndian.Uint32(buf[:4]))
		}
		srcs = append(srcs, src)
	}
	return seqs, srcs
}

func send(t testing.TB, c *Conn, to netip.AddrPort, b []byte) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatalf("write to %v: %v", to, err)
	}
}
