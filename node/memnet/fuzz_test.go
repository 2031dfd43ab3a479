package memnet

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzNetwork runs an arbitrary sequence of operations (sends, clock
// steps, link changes, blocks, partitions, closes, NATs) on a ManualClock
// network and checks that nothing panics and that, once settled, every
// datagram is accounted for.
func FuzzNetwork(f *testing.F) {
	f.Add([]byte{0, 1, 2, 10, 1, 5, 0, 2, 0, 40})
	f.Add([]byte{2, 0, 1, 50, 60, 70, 80, 90, 0, 0, 1, 200, 1, 100, 0, 1, 0, 255})
	f.Add([]byte{5, 0, 0, 0, 0, 3, 1, 0, 1, 2, 3, 4, 4, 1, 7, 6, 0, 2, 1, 9})
	f.Fuzz(func(t *testing.T, ops []byte) {
		clk := NewManualClock(epoch)
		n := New(Config{Seed: 1, Clock: clk, RecvQueue: 8})
		defer n.Close()
		var conns []*Conn
		for range 4 {
			c, err := n.ListenAuto()
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		var nats []*NAT
		arg := func(i *int) int {
			*i++
			if *i < len(ops) {
				return int(ops[*i])
			}
			return 0
		}
		pick := func(i *int) *Conn { return conns[arg(i)%len(conns)] }
		host := func(i *int) netip.Addr { return pick(i).LocalAddrPort().Addr() }
		for i := 0; i < len(ops) && i < 4096; i++ {
			switch ops[i] % 9 {
			case 0: // send a datagram, sometimes to a conn's public mapping
				from, to := pick(&i), pick(&i)
				dst := to.LocalAddrPort()
				for _, t := range nats {
					if m, ok := t.Mapping(dst); ok && arg(&i)%2 == 0 {
						dst = m
					}
				}
				from.WriteToUDPAddrPort(make([]byte, arg(&i)*8), dst)
			case 1:
				clk.Advance(time.Duration(arg(&i)) * time.Millisecond)
			case 2: // set a link between two hosts
				p := func() float64 { return float64(arg(&i)) / 255 }
				l := Link{Delay: time.Duration(arg(&i)) * time.Millisecond, Jitter: time.Duration(arg(&i)) * time.Millisecond,
					Loss: p(), Reorder: p(), Duplicate: p(), Bandwidth: int64(arg(&i)) * 1000,
					QueueLimit: arg(&i)*100 - 1000, MTU: arg(&i) * 8}
				if arg(&i)%3 == 0 {
					l.Burst = &BurstLoss{P: p(), R: p(), LossGood: p(), LossBad: p()}
				}
				n.SetLink(host(&i), host(&i), l)
			case 3:
				n.Block(host(&i), host(&i))
			case 4:
				n.Partition([]netip.Addr{host(&i)}, []netip.Addr{host(&i)})
			case 5:
				n.Heal()
			case 6: // close a conn and bind a fresh one, maybe behind a NAT
				k := arg(&i) % len(conns)
				conns[k].Close()
				var c *Conn
				var err error
				if len(nats) > 0 && arg(&i)%2 == 0 {
					c, err = nats[arg(&i)%len(nats)].ListenAuto()
				} else {
					c, err = n.ListenAuto()
				}
				if err != nil {
					t.Fatal(err)
				}
				conns[k] = c
			case 7:
				if len(nats) < 3 {
					nat, err := n.AddNAT(NATConfig{Filtering: Filtering(arg(&i) % 3), Timeout: time.Duration(arg(&i)) * time.Millisecond})
					if err != nil {
						t.Fatal(err)
					}
					nats = append(nats, nat)
				}
			case 8: // read what is queued
				c := pick(&i)
				buf := make([]byte, arg(&i))
				for c.Pending() > 0 {
					if _, _, err := c.ReadFrom(buf); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		clk.Advance(time.Hour)
		s := n.Stats()
		if s.InFlight != 0 || s.Sent+s.Duplicated != s.Received+s.Dropped() {
			t.Fatalf("unbalanced after settling: %+v", s)
		}
	})
}
