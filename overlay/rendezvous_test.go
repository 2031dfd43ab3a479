package overlay

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
)

// rdvWorld is a rendezvous on the public side of a memnet network and
// members behind NATs of their own.
type rdvWorld struct {
	t   *testing.T
	net *memnet.Network
	rdv *Rendezvous
	rn  *node.Node
	gid GroupID
}

type natMember struct {
	n *node.Node
	h *Host
	g *Group
}

func newRdvWorld(t *testing.T, cfg RendezvousConfig) *rdvWorld {
	w := &rdvWorld{t: t, net: memnet.New(memnet.Config{Seed: 3, Link: memnet.Link{Delay: 5 * time.Millisecond}}), gid: GroupID{0x7d}}
	w.rdv = NewRendezvous(cfg)
	c, err := w.net.ListenAuto()
	if err != nil {
		t.Fatal(err)
	}
	w.rn, err = node.New(c, node.Config{OnUnmatchedHello: w.rdv.HandleHello, KeepalivePeriod: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	go w.rdv.Serve(w.rn)
	t.Cleanup(func() {
		w.rdv.Close()
		w.rn.Close(context.Background())
		w.net.Close()
	})
	return w
}

// member starts a member behind a NAT of its own (port-restricted cone:
// only endpoints it has sent to can reach it) that knows the rendezvous.
func (w *rdvWorld) member() *natMember {
	nat, err := w.net.AddNAT(memnet.NATConfig{Filtering: memnet.FilterAddressAndPort})
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := nat.ListenAuto()
	if err != nil {
		w.t.Fatal(err)
	}
	n, err := node.New(c, node.Config{KeepalivePeriod: time.Second, RetransmitLimit: 5 * time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	h := NewHost(n, HostConfig{Rendezvous: []netip.AddrPort{w.rn.AddrPort()}})
	g, err := h.Join(w.gid, LocalConfig())
	if err != nil {
		w.t.Fatal(err)
	}
	m := &natMember{n: n, h: h, g: g}
	w.t.Cleanup(func() {
		h.Close()
		n.Close(context.Background())
	})
	return m
}

// Two members behind port-restricted NATs, which cannot reach each other
// directly, meet through the rendezvous: it tells the second about the
// first and forwards the second's hello, and the first's answer opens the
// path (RFC 7016 §3.5.1.5).
func TestRendezvousIntroducesMembersBehindNATs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newRdvWorld(t, RendezvousConfig{})
		a, b := w.member(), w.member()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.g.Bootstrap(ctx); err != nil {
			t.Fatalf("first member: %v", err)
		}
		// The rendezvous saw a's public mapping; a direct dial to it is
		// filtered by a's NAT.
		regs := w.rdv.Stats()
		if regs.Members != 1 || regs.Registrations != 1 {
			t.Fatalf("after the first registration: %+v", regs)
		}
		var pubA netip.AddrPort
		for _, s := range w.rn.Sessions() {
			if s.PeerID() == a.n.PeerID() {
				pubA = s.RemoteAddr()
			}
		}
		if !pubA.IsValid() || pubA == a.n.AddrPort() {
			t.Fatalf("a's public address %v (inside %v)", pubA, a.n.AddrPort())
		}
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := b.n.Dial(dctx, pubA, a.n.PeerID())
		dcancel()
		if err == nil {
			t.Fatal("a direct dial through a port-restricted NAT succeeded: the test proves nothing")
		}

		if err := b.g.Bootstrap(ctx); err != nil {
			t.Fatalf("second member: %v", err)
		}
		if _, ok := b.g.Table().Get(a.n.PeerID()); !ok {
			t.Fatal("b did not meet a")
		}
		if err := b.g.SendTo(ctx, a.n.PeerID(), []byte("through the NATs")); err != nil {
			t.Fatal(err)
		}
		d, err := a.g.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.From != b.n.PeerID() || !bytes.Equal(d.Payload, []byte("through the NATs")) {
			t.Fatalf("a received %q from %v", d.Payload, d.From)
		}
		st := w.rdv.Stats()
		if st.Introductions == 0 || st.Members != 2 {
			t.Fatalf("rendezvous stats %+v", st)
		}
	})
}

// A rendezvous that nobody answers from fails Bootstrap with a clear error
// instead of leaving the member alone.
func TestRendezvousUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(memnet.Config{Seed: 4})
		defer net.Close()
		c, _ := net.ListenAuto()
		n, err := node.New(c, node.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close(context.Background())
		h := NewHost(n, HostConfig{Rendezvous: []netip.AddrPort{netip.MustParseAddrPort("10.9.9.9:1935")}})
		defer h.Close()
		g, _ := h.Join(GroupID{1}, LocalConfig())
		err = g.Bootstrap(context.Background())
		if !errors.Is(err, ErrNoBootstrap) || !errors.Is(err, ErrRendezvous) {
			t.Fatalf("Bootstrap: %v, want ErrNoBootstrap and ErrRendezvous", err)
		}
	})
}

// The rendezvous' memory is bounded: members per group, answer size; and
// garbage on its flow is counted, not fatal.
func TestRendezvousBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newRdvWorld(t, RendezvousConfig{MaxPerGroup: 3, Answer: 2})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var ms []*natMember
		for i := 0; i < 5; i++ {
			m := w.member()
			ms = append(ms, m)
			got, err := m.g.register(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := min(i, 2); len(got) != want {
				t.Fatalf("registration %d answered with %d members, want %d", i, len(got), want)
			}
			if i > 0 && got[0].PeerID != ms[i-1].n.PeerID() {
				t.Fatalf("registration %d: the most recent member is not first", i)
			}
			time.Sleep(time.Millisecond)
		}
		if st := w.rdv.Stats(); st.Members != 3 || st.Groups != 1 {
			t.Fatalf("stats %+v, want 3 members of 1 group", st)
		}
		// Garbage on a rendezvous flow.
		s, err := ms[0].n.DialAny(ctx, w.rn.AddrPort())
		if err != nil {
			t.Fatal(err)
		}
		f, _ := s.OpenFlow([]byte(RendezvousMetadata), node.PriorityRoutine)
		r, err := f.Write(ctx, []byte{0xc1, 0xff, 0x00}, node.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r.Wait(ctx)
		time.Sleep(100 * time.Millisecond)
		if st := w.rdv.Stats(); st.DropMalformed != 1 {
			t.Fatalf("malformed drops %d, want 1", st.DropMalformed)
		}
	})
}
