package node

import (
	"context"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/strata-net/strata/node/internal/core"
)

// Session is an open RTMFP session with one peer.
type Session struct {
	n     *Node
	cs    *core.Session
	flows chan *RecvFlow

	closeOnce sync.Once
	ctx       context.Context // cancelled when the session ends
	cancel    context.CancelFunc
	err       error
}

func newSession(n *Node, cs *core.Session) *Session {
	s := &Session{n: n, cs: cs, flows: make(chan *RecvFlow, sessionFlowBacklog)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// sessionFlowBacklog is how many incoming flows wait to be accepted on one
// session; more are rejected and counted (Stats.FlowsRejected).
const sessionFlowBacklog = 16

// PeerID is the far end's identity.
func (s *Session) PeerID() PeerID { return PeerID(s.cs.PeerID()) }

// PeerAuthenticated reports whether the session proves the far end holds
// the private key behind its peer ID: its certificate carries a static
// Diffie-Hellman key, which keyed the session (RFC 7425 §4.3.3; every
// identity made by NewIdentity has one). With an ephemeral certificate
// anyone can present the same peer ID.
func (s *Session) PeerAuthenticated() bool {
	s.n.mu.Lock()
	defer s.n.unlock()
	return s.cs.PeerAuthenticated()
}

// RemoteAddr is the far end's current address (it follows the peer if it
// moves: address mobility, RFC 7016 §3.5.4.2).
func (s *Session) RemoteAddr() netip.AddrPort {
	s.n.mu.Lock()
	defer s.n.unlock()
	return s.cs.Addr()
}

// RTT is the smoothed round-trip time estimate.
func (s *Session) RTT() time.Duration {
	s.n.mu.Lock()
	defer s.n.unlock()
	return s.cs.SRTT()
}

// Done is closed when the session ends.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }

// Context is done when the session ends. With context.AfterFunc it runs
// work at the session's end without a goroutine waiting on Done for every
// session, which matters to a node holding thousands of them.
func (s *Session) Context() context.Context { return s.ctx }

// Err is why the session ended (nil while open; ErrSessionClosed-wrapped or
// ErrPeerDead after).
func (s *Session) Err() error {
	select {
	case <-s.ctx.Done():
		return s.err
	default:
		return nil
	}
}

func (s *Session) markClosed(err error) {
	s.closeOnce.Do(func() {
		if err == nil {
			err = ErrSessionClosed
		}
		s.err = err
		s.cancel()
	})
}

// OpenFlow opens a flow to the peer with the given metadata (at most 512
// bytes; the peer sees it when the flow arrives) and priority.
func (s *Session) OpenFlow(metadata []byte, pri Priority) (*SendFlow, error) {
	s.n.mu.Lock()
	defer s.n.unlock()
	cf, err := s.cs.OpenFlow(metadata, pri)
	if err != nil {
		return nil, err
	}
	f := newSendFlow(s.n, s, cf)
	s.n.service()
	return f, nil
}

// AcceptFlow waits for the peer to open a flow to us (flows opened in return
// to one of ours arrive on SendFlow.AcceptReturn instead).
func (s *Session) AcceptFlow(ctx context.Context) (*RecvFlow, error) {
	select {
	case f := <-s.flows:
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		select {
		case f := <-s.flows:
			return f, nil
		default:
		}
		return nil, s.err
	}
}

// Ping sends a keepalive ping now (it also refreshes the RTT estimate).
func (s *Session) Ping() {
	s.n.mu.Lock()
	defer s.n.unlock()
	s.cs.Ping()
	s.n.service()
}

// Close closes the session in an orderly way.
func (s *Session) Close() error {
	s.n.mu.Lock()
	defer s.n.unlock()
	s.cs.Close()
	s.n.service()
	return nil
}

// Abort ends the session at once (abrupt close).
func (s *Session) Abort() {
	s.n.mu.Lock()
	defer s.n.unlock()
	s.cs.Abort()
	s.n.service()
}

// SendFlow is the sending side of a flow.
type SendFlow struct {
	n       *Node
	s       *Session
	cf      *core.SendFlow
	wake    chan struct{}
	returns chan *RecvFlow
}

func newSendFlow(n *Node, s *Session, cf *core.SendFlow) *SendFlow {
	f := &SendFlow{n: n, s: s, cf: cf, wake: make(chan struct{}, 1), returns: make(chan *RecvFlow, 16)}
	cf.Tag = f
	return f
}

func (f *SendFlow) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Session is the flow's session.
func (f *SendFlow) Session() *Session { return f.s }

// WriteOptions control one message: deadlines after which it is abandoned
// (never delivered, never blocking later messages), and whether a lost
// fragment is resent.
type WriteOptions = core.WriteOptions

// Write queues one message, waiting (bounded by ctx) while the send buffer
// is full: with a ctx already done it does not wait, failing at once with
// the ctx's error if there is no room (the flow stays open). The receipt
// reports delivery (it is nil when opt.NoReceipt is set; Send is the
// shorthand for that).
func (f *SendFlow) Write(ctx context.Context, msg []byte, opt WriteOptions) (*Receipt, error) {
	for {
		f.n.mu.Lock()
		if !f.cf.IsOpen() {
			err := f.cf.Err()
			f.n.unlock()
			if err == nil {
				err = ErrFlowClosed
			}
			return nil, err
		}
		if f.cf.Writable() {
			cr, err := f.cf.Write(msg, opt)
			if err != nil {
				f.n.unlock()
				return nil, err
			}
			if cr == nil { // NoReceipt
				f.n.service()
				f.n.unlock()
				return nil, nil
			}
			r := &Receipt{done: make(chan struct{}), cr: cr}
			cr.Tag = r
			f.n.service()
			f.n.unlock()
			return r, nil
		}
		f.cf.NotifyWritable()
		f.n.unlock()
		select {
		case <-f.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-f.n.done:
			return nil, ErrClosed
		}
	}
}

// Send queues one message like Write but without a receipt, which lets the
// engine recycle its bookkeeping: with RecvFlow.ReadInto on the other side
// a flow in the steady state allocates nothing per packet.
func (f *SendFlow) Send(ctx context.Context, msg []byte, opt WriteOptions) error {
	opt.NoReceipt = true
	_, err := f.Write(ctx, msg, opt)
	return err
}

// AcceptReturn waits for the peer to open a flow in return to this one
// (RFC 7016 §3.6.2.1 return flow association).
func (f *SendFlow) AcceptReturn(ctx context.Context) (*RecvFlow, error) {
	select {
	case r := <-f.returns:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.s.ctx.Done():
		return nil, f.s.err
	}
}

// Close ends the flow once what was written is delivered.
func (f *SendFlow) Close() error {
	f.n.mu.Lock()
	defer f.n.unlock()
	f.cf.Close()
	f.n.service()
	return nil
}

// Err is why the flow ended (ErrFlowRejected if the peer refused it).
func (f *SendFlow) Err() error {
	f.n.mu.Lock()
	defer f.n.unlock()
	return f.cf.Err()
}

// Receipt reports the fate of one written message.
type Receipt struct {
	cr   *core.Receipt
	once sync.Once
	done chan struct{}
}

func (r *Receipt) finish() { r.once.Do(func() { close(r.done) }) }

// Done is closed when the message was delivered or abandoned.
func (r *Receipt) Done() <-chan struct{} { return r.done }

// Wait waits for the message's fate: nil when delivered, ErrAbandoned when
// abandoned (deadline passed, or the flow or session ended first).
func (r *Receipt) Wait(ctx context.Context) error {
	select {
	case <-r.done:
		if r.cr.State() == core.ReceiptDelivered {
			return nil
		}
		return ErrAbandoned
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RecvFlow is the receiving side of a flow.
type RecvFlow struct {
	n      *Node
	s      *Session
	cf     *core.RecvFlow
	wake   chan struct{}
	notify func() // guarded by n.mu
}

func newRecvFlow(n *Node, s *Session, cf *core.RecvFlow) *RecvFlow {
	f := &RecvFlow{n: n, s: s, cf: cf, wake: make(chan struct{}, 1)}
	cf.Tag = f
	return f
}

// signal wakes a waiting Read and calls the Notify function. Called with
// the node locked.
func (f *RecvFlow) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
	if f.notify != nil {
		f.notify()
	}
}

// Notify arranges for fn to be called whenever the flow may have become
// readable: a message arrived, or the flow ended (TryRead then says how).
// It lets one goroutine serve many flows instead of one blocked in Read
// per flow. fn runs on the node's internal goroutine with the node locked:
// it must return quickly and must not call into the node (queue the flow
// for a reader and return). If a message already waits, fn is called once
// at once. A nil fn stops the calls.
func (f *RecvFlow) Notify(fn func()) {
	f.n.mu.Lock()
	defer f.n.unlock()
	f.notify = fn
	if fn == nil {
		return
	}
	if _, ok := f.cf.MessageLen(); ok || f.cf.Err() != nil || f.cf.Finished() {
		fn()
	}
}

// TryRead returns the next message if one waits, without waiting. ok is
// false with a nil error when none is ready yet; at the end of the flow
// err is io.EOF, and if the flow, its session or the node failed it says
// why.
func (f *RecvFlow) TryRead() (msg []byte, ok bool, err error) {
	f.n.mu.Lock()
	defer f.n.unlock()
	if m, ok := f.cf.Read(); ok {
		f.n.service()
		return m.Data, true, nil
	}
	return nil, false, f.noMessageErr()
}

// noMessageErr is why no message is waiting, if for good (n.mu held): the
// flow, its session or the node failed, or the flow ended (io.EOF); nil
// if one may still come.
func (f *RecvFlow) noMessageErr() error {
	if err := f.cf.Err(); err != nil {
		return err
	}
	if f.cf.Finished() {
		return io.EOF
	}
	if f.n.closed {
		return ErrClosed
	}
	return nil
}

// TryReadInto is TryRead into buf, without allocating: the next message,
// if one is waiting, is copied into buf and its length returned, and the
// node reuses the buffers it arrived in (TryRead hands those over). If buf
// is too small it returns ErrShortBuffer and the message stays queued
// (MessageLen tells its size).
func (f *RecvFlow) TryReadInto(buf []byte) (n int, ok bool, err error) {
	f.n.mu.Lock()
	defer f.n.unlock()
	n, ok, err = f.cf.ReadInto(buf)
	if ok {
		if err != nil {
			return 0, false, err
		}
		f.n.service()
		return n, true, nil
	}
	return 0, false, f.noMessageErr()
}

// Session is the flow's session.
func (f *RecvFlow) Session() *Session { return f.s }

// Metadata is what the sender attached to the flow.
func (f *RecvFlow) Metadata() []byte { return f.cf.Metadata() }

// Read returns the next message in order, waiting (bounded by ctx). At the
// end of the flow it returns io.EOF; if the flow or session failed, the
// error says why.
func (f *RecvFlow) Read(ctx context.Context) ([]byte, error) {
	for {
		if m, ok, err := f.TryRead(); ok || err != nil {
			return m, err
		}
		select {
		case <-f.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-f.n.done:
			return nil, ErrClosed
		}
	}
}

// ReadInto copies the next message into buf and returns its length,
// waiting like Read. It allocates nothing. If buf is too small it returns
// ErrShortBuffer and the message stays queued (MessageLen tells its size).
func (f *RecvFlow) ReadInto(ctx context.Context, buf []byte) (int, error) {
	for {
		f.n.mu.Lock()
		n, ok, err := f.cf.ReadInto(buf)
		if ok {
			if err == nil {
				f.n.service()
			}
			f.n.unlock()
			return n, err
		}
		if err := f.cf.Err(); err != nil {
			f.n.unlock()
			return 0, err
		}
		if f.cf.Finished() {
			f.n.unlock()
			return 0, io.EOF
		}
		f.n.unlock()
		select {
		case <-f.wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-f.n.done:
			return 0, ErrClosed
		}
	}
}

// MessageLen is the length of the next message, if one is waiting.
func (f *RecvFlow) MessageLen() (int, bool) {
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	return f.cf.MessageLen()
}

// OpenReturnFlow opens a flow back to the sender, associated with this one.
func (f *RecvFlow) OpenReturnFlow(metadata []byte, pri Priority) (*SendFlow, error) {
	f.n.mu.Lock()
	defer f.n.unlock()
	cf, err := f.cf.OpenReturnFlow(metadata, pri)
	if err != nil {
		return nil, err
	}
	sf := newSendFlow(f.n, f.s, cf)
	f.n.service()
	return sf, nil
}

// SetUnordered chooses whether Read and ReadInto return complete messages
// as soon as they are complete (true) or in sending order (false, the
// default). Independent messages, such as erasure-coded pieces, then wait
// for no retransmission but their own. Every message is still delivered
// once and whole; messages the sender abandoned are skipped either way.
func (f *RecvFlow) SetUnordered(on bool) {
	f.n.mu.Lock()
	defer f.n.unlock()
	f.cf.SetUnordered(on)
	f.n.service()
}

// Reject refuses the flow; the sender's flow fails with ErrFlowRejected.
// Messages not yet read are discarded, and a Read waiting on the flow (or
// any later one) returns io.EOF.
func (f *RecvFlow) Reject(code uint64) {
	f.n.mu.Lock()
	defer f.n.unlock()
	f.cf.Reject(code)
	f.n.service()
	// The core emits no event for a flow this end rejects: wake its
	// reader here. (A goroutine blocked in Read stayed there for good:
	// the overlay rejects a dropped link's flow while reading it, and a
	// 300-member mesh had leaked 64,000 of them.)
	f.signal()
}
