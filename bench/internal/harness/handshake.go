package harness

import (
	"context"
	"crypto/tls"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/strata-net/strata/node"
)

// Handshaker is a server on loopback that clients can connect to one at a
// time: each Handshake makes a new client (own socket), opens a session or
// connection to the server, waits until it is usable, and closes it.
type Handshaker interface {
	Handshake(ctx context.Context) error
	// Wait waits for work a Handshake left running in the background.
	Wait()
	Close() error
}

// StrataHandshaker serves RTMFP sessions; every Handshake starts a new
// client node. With FreshIdentity the client also generates a new identity
// (key pair and certificate) each time, as node.Listen with a zero Config
// does; without it the client nodes share one identity made up front (the
// QUIC client has no identity at all, so that is the like-for-like case).
type StrataHandshaker struct {
	FreshIdentity bool

	srv     *node.Node
	id      *node.Identity
	cancel  context.CancelFunc
	done    chan struct{}
	closing sync.WaitGroup
}

// NewStrataHandshaker starts the server node and its accept loop.
func NewStrataHandshaker(fresh bool) (*StrataHandshaker, error) {
	srv, err := node.Listen("127.0.0.1:0", node.Config{MaxSessions: 1 << 16, AcceptBacklog: 1024})
	if err != nil {
		return nil, err
	}
	id, err := node.NewIdentity()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &StrataHandshaker{FreshIdentity: fresh, srv: srv, id: id, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			if _, err := srv.Accept(ctx); err != nil {
				return
			}
		}
	}()
	return h, nil
}

// Handshake implements Handshaker. It closes the session (the Close chunk
// goes out at once) before closing the client node in the background:
// Node.Close alone never sees the peer's Close Ack, because a closed
// core.Endpoint drops every datagram it receives, so it would wait out its
// context (see docs/benchmarks.md). Wait collects the background closes.
func (h *StrataHandshaker) Handshake(ctx context.Context) error {
	cfg := node.Config{}
	if !h.FreshIdentity {
		cfg.Identity = h.id
	}
	cli, err := node.Listen("127.0.0.1:0", cfg)
	if err != nil {
		return err
	}
	s, err := cli.Dial(ctx, h.srv.AddrPort(), h.srv.PeerID())
	if err == nil {
		err = s.Close()
	}
	h.closing.Add(1)
	go func() {
		defer h.closing.Done()
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		cli.Close(cctx)
	}()
	return err
}

// Wait waits for the client nodes still closing in the background.
func (h *StrataHandshaker) Wait() { h.closing.Wait() }

// Close implements Handshaker.
func (h *StrataHandshaker) Close() error {
	h.cancel()
	<-h.done
	h.closing.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return h.srv.Close(ctx)
}

// QUICHandshaker serves quic-go connections (TLS 1.3, ECDSA P-256); every
// Handshake dials from a new UDP socket and closes the connection once the
// handshake is complete.
type QUICHandshaker struct {
	ln     *quic.Listener
	cliTLS *tls.Config
	cancel context.CancelFunc
	done   chan struct{}
}

// NewQUICHandshaker starts the listener and its accept loop.
func NewQUICHandshaker() (*QUICHandshaker, error) {
	srvTLS, cliTLS, err := TLSConfigs()
	if err != nil {
		return nil, err
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", srvTLS, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &QUICHandshaker{ln: ln, cliTLS: cliTLS, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			go func() {
				<-c.Context().Done()
			}()
		}
	}()
	return h, nil
}

// Handshake implements Handshaker.
func (h *QUICHandshaker) Handshake(ctx context.Context) error {
	c, err := quic.DialAddr(ctx, h.ln.Addr().String(), h.cliTLS, nil)
	if err != nil {
		return err
	}
	<-c.HandshakeComplete()
	return c.CloseWithError(0, "")
}

// Wait implements Handshaker (quic-go closes synchronously).
func (h *QUICHandshaker) Wait() {}

// Close implements Handshaker.
func (h *QUICHandshaker) Close() error {
	h.cancel()
	err := h.ln.Close()
	<-h.done
	return err
}
