package memnet

import (
	"bytes"
	"net"
	"testing"
)

func TestDeliveryExactData(t *testing.T) {
	tests := []struct {
		name string
		size int
		link Link
	}{
		{"empty", 0, Link{}},
		{"small", 5, Link{}},
		{"1472", 1472, Link{}},
		{"max", maxDatagram, Link{}},
		{"delayed", 1200, Link{Delay: 30e6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, clk := newManual(t, Config{Link: tt.link})
			a := listen(t, n, "10.0.0.1:1000")
			b := listen(t, n, "10.0.0.2:2000")
			payload := make([]byte, tt.size)
			for i := range payload {
				payload[i] = byte(i*7 + 1)
			}
			want := bytes.Clone(payload)
			k, err := a.WriteTo(payload, b.LocalAddr())
			if err != nil || k != tt.size {
				t.Fatalf("WriteTo = %d, %v", k, err)
			}
			clear(payload) // the conn must have copied it
			clk.Advance(tt.link.Delay)
			if b.Pending() != 1 {
				t.Fatalf("pending = %d, want 1", b.Pending())
			}
			buf := make([]byte, maxDatagram+10)
			k, from, err := b.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:k], want) {
				t.Fatalf("data mismatch: got %d bytes", k)
			}
			ua, ok := from.(*net.UDPAddr)
			if !ok || ua.AddrPort() != ap("10.0.0.1:1000") {
				t.Fatalf("from = %#v", from)
			}
		})
	}
}
