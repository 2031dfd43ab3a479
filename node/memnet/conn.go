package memnet

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// errMsgSize mirrors EMSGSIZE: the payload cannot fit one UDP datagram.
var errMsgSize = errors.New("memnet: message too long")

// Conn is a datagram endpoint on a Network: a net.PacketConn whose addresses
// are *net.UDPAddr, so code written for UDP runs on it unchanged. It also has
// the allocation-free netip methods of *net.UDPConn.
//
// Writes never block: like UDP, a datagram that cannot be carried is dropped
// and counted, and the write still succeeds. Reads block until a datagram
// arrives, the read deadline passes, or the Conn is closed.
type Conn struct {
	net   *Network
	addr  netip.AddrPort
	laddr *net.UDPAddr
	limit int
	stats counters

	closing atomic.Bool
	done    chan struct{} // closed by Close
	notify  chan struct{} // capacity 1: "the queue may be non-empty"
	rd, wd  deadline

	mu     sync.Mutex
	queue  ring
	closed bool
}

var _ net.PacketConn = (*Conn)(nil)

func newConn(n *Network, addr netip.AddrPort) *Conn {
	return &Conn{
		net:    n,
		addr:   addr,
		laddr:  net.UDPAddrFromAddrPort(addr),
		limit:  n.recvQueue,
		done:   make(chan struct{}),
		notify: make(chan struct{}, 1),
		rd:     newDeadline(n.clock),
		wd:     newDeadline(n.clock),
	}
}

type enqueueResult int

const (
	enqueued enqueueResult = iota
	queueFull
	connClosed
)

// enqueue hands p to the conn, which then owns it unless it is refused.
func (c *Conn) enqueue(p *packet) enqueueResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return connClosed
	}
	if !c.queue.push(p, c.limit) {
		return queueFull
	}
	c.signal()
	return enqueued
}

func (c *Conn) signal() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// ReadFrom reads the next datagram into b and returns its size and source
// (a *net.UDPAddr). A datagram longer than b is truncated, as with UDP.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, src, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(src), nil
}

// ReadFromUDPAddrPort is ReadFrom returning the source as a netip.AddrPort,
// without allocating.
func (c *Conn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, netip.AddrPort{}, c.opError("read", nil, net.ErrClosed)
		}
		expired := c.rd.wait()
		select {
		case <-expired:
			c.mu.Unlock()
			return 0, netip.AddrPort{}, c.opError("read", nil, os.ErrDeadlineExceeded)
		default:
		}
		if p := c.queue.pop(); p != nil {
			if c.queue.len() > 0 {
				c.signal() // another reader may be waiting
			}
			c.mu.Unlock()
			n := copy(b, p.data)
			src := p.src
			putPacket(p)
			return n, src, nil
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-c.done:
		case <-expired:
		}
	}
}

// ReadBatch reads up to len(bufs) datagrams at once: it blocks as
// ReadFromUDPAddrPort does until one is queued, then takes every queued
// one that fits, copying datagram i into bufs[i] (truncated to it, as
// with UDP) and setting ns[i] and srcs[i]. It returns how many it took.
// A reader that takes what is queued in one call pays its wake-up and
// locking once per batch (node's reader does, as it does with recvmmsg
// on a UDP socket). ns and srcs must be at least as long as bufs.
func (c *Conn) ReadBatch(bufs [][]byte, ns []int, srcs []netip.AddrPort) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	n, src, err := c.ReadFromUDPAddrPort(bufs[0])
	if err != nil {
		return 0, err
	}
	ns[0], srcs[0] = n, src
	count := 1
	c.mu.Lock()
	for count < len(bufs) && !c.closed {
		p := c.queue.pop()
		if p == nil {
			break
		}
		ns[count] = copy(bufs[count], p.data)
		srcs[count] = p.src
		putPacket(p)
		count++
	}
	c.mu.Unlock()
	return count, nil
}

// WriteTo sends b to addr, which must be a *net.UDPAddr. The Conn copies b.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, c.opError("write", addr, ErrBadAddr)
	}
	return c.writeTo(b, ua.AddrPort(), addr)
}

// WriteToUDPAddrPort is WriteTo with a netip.AddrPort, without allocating.
func (c *Conn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.writeTo(b, addr, nil)
}

func (c *Conn) writeTo(b []byte, ap netip.AddrPort, orig net.Addr) (int, error) {
	if c.closing.Load() {
		return 0, c.opError("write", orig, net.ErrClosed)
	}
	select {
	case <-c.wd.wait():
		return 0, c.opError("write", orig, os.ErrDeadlineExceeded)
	default:
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if !ap.Addr().IsValid() || ap.Port() == 0 {
		return 0, c.opError("write", orig, ErrBadAddr)
	}
	if len(b) > maxDatagram {
		return 0, c.opError("write", orig, errMsgSize)
	}
	c.net.send(c, b, ap)
	return len(b), nil
}

// Close unbinds the Conn, discards its queue and unblocks its readers, whose
// calls return an error wrapping net.ErrClosed. Datagrams still in flight to
// it are dropped as DroppedNoListener.
func (c *Conn) Close() error {
	if c.closing.Swap(true) {
		return c.opError("close", nil, net.ErrClosed)
	}
	c.net.unbind(c)
	c.mu.Lock()
	c.closed = true
	var queued []*packet
	for p := c.queue.pop(); p != nil; p = c.queue.pop() {
		queued = append(queued, p)
	}
	c.mu.Unlock()
	close(c.done)
	for _, p := range queued {
		putPacket(p)
	}
	c.rd.stop()
	c.wd.stop()
	return nil
}

// LocalAddr returns the bound address, a *net.UDPAddr. Behind a NAT this is
// the private address; peers see the NAT's mapping instead.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// LocalAddrPort returns the bound address.
func (c *Conn) LocalAddrPort() netip.AddrPort { return c.addr }

// SetDeadline sets both the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.closing.Load() {
		return c.opError("set", nil, net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline sets the time, on the Network's Clock, after which reads
// fail with an error wrapping os.ErrDeadlineExceeded; pending reads are
// woken. The zero time means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.closing.Load() {
		return c.opError("set", nil, net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the time after which writes fail with an error
// wrapping os.ErrDeadlineExceeded. Writes never block, so it only matters
// once passed.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.closing.Load() {
		return c.opError("set", nil, net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}

// Stats returns the counters of datagrams this Conn sent and received.
func (c *Conn) Stats() Stats { return c.stats.snapshot() }

// Pending reports how many datagrams wait in the receive queue. With a
// ManualClock it tells a test whether a read would block.
func (c *Conn) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queue.len()
}

func (c *Conn) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.laddr, Addr: addr, Err: err}
}

// deadline is a resettable deadline on a Clock: a channel that is closed
// once the deadline passes, replaced when the deadline is moved back into
// the future, so blocked readers can wait on it in a select.
type deadline struct {
	clock Clock

	mu     sync.Mutex
	timer  Timer
	cancel chan struct{}
}

func newDeadline(clk Clock) deadline {
	return deadline{clock: clk, cancel: make(chan struct{})}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the callback is closing it; let it finish
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := t.Sub(d.clock.Now()); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = d.clock.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && d.timer.Stop() {
		d.timer = nil
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
