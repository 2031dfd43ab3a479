// Package harness runs one bulk transfer or one handshake over loopback with
// Strata (RTMFP, Flash profile), quic-go (one stream, TLS 1.3) or plain TCP,
// so that the testing.B benchmarks and cmd/transport measure exactly the
// same code paths. Every connection is set up before the clock starts;
// what is timed is the transfer alone, from the first write until the
// receiver holds the last byte.
package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/strata-net/strata/node"
)

// Result is what one measured run cost.
type Result struct {
	Bytes   int64         // payload bytes delivered to the receiver
	Elapsed time.Duration // wall time from first write to last byte received
	CPU     time.Duration // user+system CPU of the whole process (both ends)
}

// MiBps is the goodput in MiB/s.
func (r Result) MiBps() float64 {
	return float64(r.Bytes) / (1 << 20) / r.Elapsed.Seconds()
}

// CPUPerMiB is CPU nanoseconds spent per MiB delivered (both ends together).
func (r Result) CPUPerMiB() float64 {
	return float64(r.CPU.Nanoseconds()) / (float64(r.Bytes) / (1 << 20))
}

// CPUTime is the process's user+system CPU time so far (getrusage).
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Transport is one side-by-side contender: Setup connects a sender to a
// receiver over loopback, then Run moves total bytes in msg-sized writes.
type Transport interface {
	Name() string
	// Setup connects; everything it does is excluded from the measurement.
	Setup(ctx context.Context) error
	// Transfer sends count messages of size bytes and returns when the
	// receiver has all of them (checked: counts and sequence stamps).
	Transfer(ctx context.Context, count, size int) error
	Close() error
}

// Measure runs t.Transfer once and reports what it cost.
func Measure(ctx context.Context, t Transport, count, size int) (Result, error) {
	c0, t0 := CPUTime(), time.Now()
	err := t.Transfer(ctx, count, size)
	el, c1 := time.Since(t0), CPUTime()
	return Result{Bytes: int64(count) * int64(size), Elapsed: el, CPU: c1 - c0}, err
}

// New returns the transport with the given name: "strata", "quic" or "tcp".
func New(name string) (Transport, error) {
	switch name {
	case "strata":
		return &Strata{}, nil
	case "quic":
		return &QUIC{}, nil
	case "tcp":
		return &TCP{}, nil
	}
	return nil, fmt.Errorf("unknown transport %q", name)
}

// Names are the transports in the order they are reported.
var Names = []string{"strata", "quic", "tcp"}

// stamp writes the message number into the first 8 bytes of m, so that the
// receiver can check order (for streams: that no byte went missing).
func stamp(m []byte, i int) {
	if len(m) >= 8 {
		binary.BigEndian.PutUint64(m, uint64(i))
	}
}

// --- Strata

// Strata is one reliable RTMFP flow between two nodes on 127.0.0.1: a new
// flow in the same session for every Transfer.
type Strata struct {
	// Config is applied to both nodes (zero: library defaults).
	Config node.Config

	srv, cli     *node.Node
	sess, accept *node.Session
}

// Name implements Transport.
func (*Strata) Name() string { return "strata" }

// Setup implements Transport.
func (s *Strata) Setup(ctx context.Context) error {
	var err error
	if s.srv, err = node.Listen("127.0.0.1:0", s.Config); err != nil {
		return err
	}
	if s.cli, err = node.Listen("127.0.0.1:0", s.Config); err != nil {
		return err
	}
	type accepted struct {
		s   *node.Session
		err error
	}
	ac := make(chan accepted, 1)
	go func() {
		ss, err := s.srv.Accept(ctx)
		ac <- accepted{ss, err}
	}()
	if s.sess, err = s.cli.Dial(ctx, s.srv.AddrPort(), s.srv.PeerID()); err != nil {
		return err
	}
	a := <-ac
	s.accept = a.s
	return a.err
}

// Transfer implements Transport.
func (s *Strata) Transfer(ctx context.Context, count, size int) error {
	errc := make(chan error, 1)
	go func() { errc <- s.receive(ctx, count, size) }()
	f, err := s.sess.OpenFlow([]byte("bench"), node.PriorityRoutine)
	if err != nil {
		return err
	}
	defer f.Close()
	msg := make([]byte, size)
	for i := 0; i < count; i++ {
		stamp(msg, i)
		if _, err := f.Write(ctx, msg, node.WriteOptions{}); err != nil {
			return fmt.Errorf("strata write %d: %w", i, err)
		}
	}
	return <-errc
}

func (s *Strata) receive(ctx context.Context, count, size int) error {
	rf, err := s.accept.AcceptFlow(ctx)
	if err != nil {
		return err
	}
	for i := 0; i < count; i++ {
		m, err := rf.Read(ctx)
		if err != nil {
			return fmt.Errorf("strata read %d: %w", i, err)
		}
		if len(m) != size || (size >= 8 && binary.BigEndian.Uint64(m) != uint64(i)) {
			return fmt.Errorf("strata message %d: wrong length %d or out of order", i, len(m))
		}
	}
	return nil
}

// Close implements Transport.
func (s *Strata) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// Abort first: an orderly Node.Close waits for Close Acks that a
	// closed endpoint never processes, so it would run out its context.
	if s.sess != nil {
		s.sess.Abort()
	}
	if s.accept != nil {
		s.accept.Abort()
	}
	var errs []error
	if s.cli != nil {
		errs = append(errs, s.cli.Close(ctx))
	}
	if s.srv != nil {
		errs = append(errs, s.srv.Close(ctx))
	}
	return errors.Join(errs...)
}

// --- QUIC

// QUIC is one quic-go stream per Transfer inside one connection, TLS 1.3
// with a self-signed ECDSA P-256 certificate, default quic-go settings.
type QUIC struct {
	// Config is applied to both ends (nil: quic-go defaults).
	Config *quic.Config

	ln       *quic.Listener
	cli, srv *quic.Conn
}

// Name implements Transport.
func (*QUIC) Name() string { return "quic" }

// Setup implements Transport.
func (q *QUIC) Setup(ctx context.Context) error {
	srvTLS, cliTLS, err := TLSConfigs()
	if err != nil {
		return err
	}
	if q.ln, err = quic.ListenAddr("127.0.0.1:0", srvTLS, q.Config); err != nil {
		return err
	}
	type accepted struct {
		c   *quic.Conn
		err error
	}
	ac := make(chan accepted, 1)
	go func() {
		c, err := q.ln.Accept(ctx)
		ac <- accepted{c, err}
	}()
	if q.cli, err = quic.DialAddr(ctx, q.ln.Addr().String(), cliTLS, q.Config); err != nil {
		return err
	}
	a := <-ac
	q.srv = a.c
	return a.err
}

// Transfer implements Transport.
func (q *QUIC) Transfer(ctx context.Context, count, size int) error {
	errc := make(chan error, 1)
	go func() {
		st, err := q.srv.AcceptStream(ctx)
		if err != nil {
			errc <- err
			return
		}
		errc <- readStamped(st, count, size)
	}()
	st, err := q.cli.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	if err := writeStamped(st, count, size); err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	return <-errc
}

// Close implements Transport.
func (q *QUIC) Close() error {
	if q.cli != nil {
		q.cli.CloseWithError(0, "")
	}
	if q.srv != nil {
		q.srv.CloseWithError(0, "")
	}
	if q.ln != nil {
		return q.ln.Close()
	}
	return nil
}

// --- TCP

// TCP is one loopback TCP connection, default socket options (Nagle off, as
// Go sets it).
type TCP struct {
	ln       net.Listener
	cli, srv net.Conn
}

// Name implements Transport.
func (*TCP) Name() string { return "tcp" }

// Setup implements Transport.
func (t *TCP) Setup(ctx context.Context) error {
	var err error
	if t.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return err
	}
	var d net.Dialer
	if t.cli, err = d.DialContext(ctx, "tcp", t.ln.Addr().String()); err != nil {
		return err
	}
	t.srv, err = t.ln.Accept()
	return err
}

// Transfer implements Transport.
func (t *TCP) Transfer(ctx context.Context, count, size int) error {
	errc := make(chan error, 1)
	go func() { errc <- readStamped(t.srv, count, size) }()
	if err := writeStamped(t.cli, count, size); err != nil {
		return err
	}
	return <-errc
}

// Close implements Transport.
func (t *TCP) Close() error {
	var errs []error
	for _, c := range []io.Closer{t.cli, t.srv, t.ln} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

func writeStamped(w io.Writer, count, size int) error {
	msg := make([]byte, size)
	for i := 0; i < count; i++ {
		stamp(msg, i)
		if _, err := w.Write(msg); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
	}
	return nil
}

func readStamped(r io.Reader, count, size int) error {
	buf := make([]byte, size)
	for i := 0; i < count; i++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read %d: %w", i, err)
		}
		if size >= 8 && binary.BigEndian.Uint64(buf) != uint64(i) {
			return fmt.Errorf("message %d out of order", i)
		}
	}
	return nil
}

// --- TLS

var (
	tlsOnce        sync.Once
	tlsSrv, tlsCli *tls.Config
	tlsErr         error
)

// TLSConfigs returns a server config with a self-signed ECDSA P-256
// certificate for 127.0.0.1 (made once per process) and a client config
// that trusts exactly it. TLS 1.3 only, ALPN "strata-bench".
func TLSConfigs() (srv, cli *tls.Config, err error) {
	tlsOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tlsErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "strata-bench"},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			tlsErr = err
			return
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			tlsErr = err
			return
		}
		pool := x509.NewCertPool()
		pool.AddCert(leaf)
		tlsSrv = &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
			NextProtos:   []string{"strata-bench"},
			MinVersion:   tls.VersionTLS13,
		}
		tlsCli = &tls.Config{
			RootCAs:    pool,
			ServerName: "127.0.0.1",
			NextProtos: []string{"strata-bench"},
			MinVersion: tls.VersionTLS13,
		}
	})
	if tlsErr != nil {
		return nil, nil, tlsErr
	}
	return tlsSrv.Clone(), tlsCli.Clone(), nil
}
