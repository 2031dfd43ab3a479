package memnet

import (
	"net/netip"
	"sync"
	"time"
)

// packet is one datagram in flight or in a receive queue. Packets are
// pooled so that steady-state traffic does not allocate.
type packet struct {
	data []byte
	src  netip.AddrPort // source as the receiver sees it (after NAT)
	dst  netip.AddrPort // receiving conn's address
	from *Conn          // sender, charged with drops
	at   time.Duration  // delivery time, offset from Network.base
	seq  uint64         // tie-break so equal times deliver in send order
}

var packetPool = sync.Pool{New: func() any { return new(packet) }}

// getPacket returns a packet holding a copy of b, so the sender may reuse b.
func getPacket(b []byte) *packet {
	p := packetPool.Get().(*packet)
	p.data = append(p.data[:0], b...)
	return p
}

// largePacket is the buffer size above which a packet's buffer is not kept,
// so one jumbo datagram does not pin 64 KiB in the pool forever.
const largePacket = 16 << 10

func putPacket(p *packet) {
	data := p.data[:0]
	if cap(data) > largePacket {
		data = nil
	}
	*p = packet{data: data}
	packetPool.Put(p)
}

// deliveryHeap is a binary min-heap of packets ordered by (at, seq). It is
// hand-rolled rather than container/heap to keep the hot path free of
// interface conversions.
type deliveryHeap []*packet

func (h deliveryHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}

func (h *deliveryHeap) push(p *packet) {
	*h = append(*h, p)
	s := *h
	i := len(s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *deliveryHeap) pop() *packet {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = nil
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// ring is a bounded FIFO of packets: a conn's receive queue.
type ring struct {
	buf  []*packet // grows on demand up to the limit
	head int
	n    int
}

func (r *ring) len() int { return r.n }

// push appends p unless the ring already holds limit packets.
func (r *ring) push(p *packet, limit int) bool {
	if r.n >= limit {
		return false
	}
	if r.n == len(r.buf) {
		size := max(8, 2*len(r.buf))
		size = min(size, limit)
		nb := make([]*packet, size)
		for i := range r.n {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = p
	r.n++
	return true
}

func (r *ring) pop() *packet {
	if r.n == 0 {
		return nil
	}
	p := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return p
}
