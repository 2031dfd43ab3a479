package node

import (
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn is what ipv4.PacketConn and ipv6.PacketConn offer (their
// Message types are the same).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchSize is how many datagrams one system call moves when the socket
// supports it (recvmmsg/sendmmsg on Linux).
const batchSize = 64

// addrPortWriter is a conn that writes to a netip.AddrPort without
// allocating (memnet.Conn).
type addrPortWriter interface {
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// memBatch is how many datagrams a read takes from an in-memory conn.
const memBatch = 16

// memBatchReads turns batched reads from in-memory conns on (the
// benchmark turns them off to compare).
var memBatchReads = true

// batchReader is a conn that reads several datagrams a call, with their
// sources as netip.AddrPort (memnet.Conn).
type batchReader interface {
	ReadBatch(bufs [][]byte, ns []int, srcs []netip.AddrPort) (int, error)
}

// datagramIO moves datagrams in batches over a real UDP socket, reads what
// is queued at once from an in-memory conn (memnet), and moves them one at a
// time over any other net.PacketConn. On the
// bulk-transfer path the per-datagram system call is the largest cost, so
// batching is what lets an RTMFP flow keep up with QUIC and TCP.
type datagramIO struct {
	conn  net.PacketConn
	batch batchConn // nil when conn is not a *net.UDPConn
	v6    bool      // the socket is IPv6 (addresses are written as 16 bytes)

	// receive side (owned by the reader goroutine)
	rmsgs []ipv4.Message
	rbufs [][]byte
	roobs [][]byte
	gro   bool
	segs  []segment // the datagrams of the last read, split if coalesced
	// an in-memory conn that reads many datagrams a call (memnet)
	breader batchReader
	rns     []int
	rsrcs   []netip.AddrPort
	// a conn without batches that writes to a netip.AddrPort (memnet)
	apw addrPortWriter

	// send side: batches are filled under the node's mutex and sent after
	// it is released, in the order they were filled, so that system calls
	// overlap with protocol work on other goroutines.
	cur     *sendBatch   // being filled (node mutex)
	qmu     sync.Mutex   // guards pending and free
	pending []*sendBatch // filled, waiting to be sent, in order
	free    []*sendBatch
	sendMu  sync.Mutex // serialises sending; guards gso
	onErr   func(error)

	// generic segmentation offload: runs of equal-sized datagrams to one
	// destination go down as one message (disabled if the kernel refuses)
	gso bool
}

type segment struct {
	from netip.AddrPort
	data []byte
}

func newDatagramIO(conn net.PacketConn, onErr func(error)) *datagramIO {
	d := &datagramIO{conn: conn, onErr: onErr}
	if uc, ok := conn.(*net.UDPConn); ok {
		// Room for bursts: the default buffer drops packets at loopback speeds.
		_ = uc.SetReadBuffer(4 << 20)
		_ = uc.SetWriteBuffer(4 << 20)
		if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil {
			d.batch, d.v6 = ipv6.NewPacketConn(uc), true
		} else {
			d.batch = ipv4.NewPacketConn(uc)
		}
	}
	if w, ok := conn.(addrPortWriter); ok && d.batch == nil {
		d.apw = w
	}
	n, size := 1, 8192
	if br, ok := conn.(batchReader); ok && d.batch == nil && memBatchReads {
		// An in-memory network (memnet): take what is queued at once.
		// RTMFP datagrams are at most 1200 bytes; a longer one is
		// truncated, fails to decode and is counted like any other.
		d.breader, n, size = br, memBatch, 2048
		d.rns = make([]int, n)
		d.rsrcs = make([]netip.AddrPort, n)
	}
	if d.batch != nil {
		n = batchSize
		if uc, ok := conn.(*net.UDPConn); ok && enableGRO(uc) {
			// Coalesced reads need room for up to 64 KiB each; fewer of them.
			d.gro, n, size = true, 16, 65536
		}
	}
	d.rmsgs = make([]ipv4.Message, n)
	d.rbufs = make([][]byte, n)
	d.roobs = make([][]byte, n)
	for i := range d.rmsgs {
		d.rbufs[i] = make([]byte, size)
		d.rmsgs[i].Buffers = [][]byte{d.rbufs[i]}
		if d.gro {
			d.roobs[i] = make([]byte, groControlSpace)
		}
	}
	d.gso = d.batch != nil && gsoSupported
	return d
}

// read receives a batch of datagrams; it returns how many there are (get
// each with datagram). Coalesced (GRO) reads are split into their segments.
func (d *datagramIO) read() (int, error) {
	d.segs = d.segs[:0]
	if d.breader != nil {
		count, err := d.breader.ReadBatch(d.rbufs, d.rns, d.rsrcs)
		if err != nil {
			return 0, err
		}
		for i := range count {
			d.segs = append(d.segs, segment{d.rsrcs[i], d.rbufs[i][:d.rns[i]]})
		}
		return count, nil
	}
	if d.batch == nil {
		n, from, err := d.conn.ReadFrom(d.rbufs[0])
		if err != nil {
			return 0, err
		}
		d.segs = append(d.segs, segment{addrPortOf(from), d.rbufs[0][:n]})
		return 1, nil
	}
	for i := range d.rmsgs {
		d.rmsgs[i].Buffers[0] = d.rbufs[i]
		if d.gro {
			d.rmsgs[i].OOB = d.roobs[i][:cap(d.roobs[i])]
		}
	}
	count, err := d.batch.ReadBatch(d.rmsgs, 0)
	if err != nil {
		return 0, err
	}
	for i := 0; i < count; i++ {
		m := &d.rmsgs[i]
		from := addrPortOf(m.Addr)
		data := d.rbufs[i][:m.N]
		seg := 0
		if d.gro {
			seg = groSegmentSize(m.OOB[:m.NN])
		}
		if seg <= 0 || seg >= len(data) {
			d.segs = append(d.segs, segment{from, data})
			continue
		}
		for len(data) > 0 {
			k := min(seg, len(data))
			d.segs = append(d.segs, segment{from, data[:k]})
			data = data[k:]
		}
	}
	return len(d.segs), nil
}

func (d *datagramIO) datagram(i int) (netip.AddrPort, []byte) {
	return d.segs[i].from, d.segs[i].data
}

// sendBatch is one batch of datagrams on its way to the socket.
type sendBatch struct {
	msgs  []ipv4.Message
	bufs  [][]byte
	addrs []net.UDPAddr
	n     int
	gmsgs []ipv4.Message // GSO-coalesced view of msgs
	goob  [][]byte
}

func newSendBatch() *sendBatch {
	b := &sendBatch{
		msgs:  make([]ipv4.Message, batchSize),
		bufs:  make([][]byte, batchSize),
		addrs: make([]net.UDPAddr, batchSize),
		gmsgs: make([]ipv4.Message, batchSize),
		goob:  make([][]byte, batchSize),
	}
	for i := range b.msgs {
		b.bufs[i] = make([]byte, 0, 2048)
		b.msgs[i].Buffers = [][]byte{nil}
	}
	return b
}

// write queues one datagram (copied). Called with the node's mutex held.
func (d *datagramIO) write(to netip.AddrPort, pkt []byte) {
	if d.batch == nil {
		var err error
		if d.apw != nil {
			_, err = d.apw.WriteToUDPAddrPort(pkt, to)
		} else {
			_, err = d.conn.WriteTo(pkt, net.UDPAddrFromAddrPort(to))
		}
		if err != nil {
			d.onErr(err)
		}
		return
	}
	if d.cur == nil {
		d.qmu.Lock()
		if n := len(d.free); n > 0 {
			d.cur = d.free[n-1]
			d.free = d.free[:n-1]
		}
		d.qmu.Unlock()
		if d.cur == nil {
			d.cur = newSendBatch()
		}
	}
	b := d.cur
	i := b.n
	b.bufs[i] = append(b.bufs[i][:0], pkt...)
	a := &b.addrs[i]
	ip := to.Addr().Unmap()
	if ip.Is4() && !d.v6 {
		v := ip.As4()
		a.IP = append(a.IP[:0], v[:]...)
	} else {
		v := ip.As16()
		a.IP = append(a.IP[:0], v[:]...)
	}
	a.Port = int(to.Port())
	a.Zone = ""
	b.msgs[i].Buffers[0] = b.bufs[i]
	b.msgs[i].Addr = a
	b.n++
	if b.n == len(b.msgs) {
		d.commit()
	}
}

// commit queues the batch being filled for sending. Called with the node's
// mutex held, so batches queue in the order their packets were made.
func (d *datagramIO) commit() {
	if d.cur == nil || d.cur.n == 0 {
		return
	}
	d.qmu.Lock()
	d.pending = append(d.pending, d.cur)
	d.qmu.Unlock()
	d.cur = nil
}

// flush sends every committed batch, in order. Called without the node's
// mutex; concurrent callers take turns and the first sends all.
func (d *datagramIO) flush() {
	if d.batch == nil {
		return
	}
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	for {
		d.qmu.Lock()
		if len(d.pending) == 0 {
			d.qmu.Unlock()
			return
		}
		b := d.pending[0]
		copy(d.pending, d.pending[1:])
		d.pending[len(d.pending)-1] = nil
		d.pending = d.pending[:len(d.pending)-1]
		d.qmu.Unlock()

		if !d.gso || !d.sendGSO(b) {
			d.send(b.msgs[:b.n])
		}
		b.n = 0
		d.qmu.Lock()
		d.free = append(d.free, b)
		d.qmu.Unlock()
	}
}

func (d *datagramIO) send(msgs []ipv4.Message) {
	for len(msgs) > 0 {
		n, err := d.batch.WriteBatch(msgs, 0)
		if err != nil {
			d.onErr(err)
			if n <= 0 {
				n = 1 // skip the datagram that failed
			}
		}
		msgs = msgs[n:]
	}
}

// sendGSO coalesces runs of datagrams to the same address where all but
// the last have the same size (the kernel's rule for UDP_SEGMENT). It
// reports false, having sent nothing, if the kernel rejects segmentation;
// GSO is then off for good and the caller sends datagram by datagram.
func (d *datagramIO) sendGSO(b *sendBatch) bool {
	const maxSegments, maxBytes = 64, 65000
	g := 0
	for i := 0; i < b.n; {
		size := len(b.bufs[i])
		j, total := i+1, size
		for j < b.n && j-i < maxSegments && total+len(b.bufs[j]) <= maxBytes &&
			len(b.bufs[j]) <= size && sameAddr(&b.addrs[i], &b.addrs[j]) {
			total += len(b.bufs[j])
			j++
			if len(b.bufs[j-1]) < size {
				break // a short datagram ends the run
			}
		}
		m := &b.gmsgs[g]
		m.Buffers = b.bufs[i:j]
		m.Addr = &b.addrs[i]
		m.OOB = nil
		if j-i > 1 {
			b.goob[g] = appendGSOControl(b.goob[g][:0], size)
			m.OOB = b.goob[g]
		}
		g++
		i = j
	}
	if g == b.n {
		d.send(b.msgs[:b.n]) // nothing coalesced
		return true
	}
	msgs := b.gmsgs[:g]
	for len(msgs) > 0 {
		n, err := d.batch.WriteBatch(msgs, 0)
		if err != nil && n <= 0 {
			if len(msgs) == g && len(msgs[0].OOB) > 0 {
				d.gso = false // the kernel or device cannot segment
				return false
			}
			d.onErr(err)
			n = 1
		}
		msgs = msgs[n:]
	}
	return true
}

func sameAddr(a, b *net.UDPAddr) bool {
	return a.Port == b.Port && a.IP.Equal(b.IP)
}
