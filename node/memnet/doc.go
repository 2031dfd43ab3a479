// Package memnet is an in-memory datagram network for tests and large
// simulations: every Conn is a net.PacketConn with *net.UDPAddr addresses, so
// code written for a UDP socket runs on it unchanged, while the paths between
// hosts can be given delay, jitter, random or bursty loss, reordering,
// duplication, a bandwidth limit with a finite queue, and an MTU; hosts can
// be partitioned, and placed behind NATs.
//
// A Network is deterministic for a given Config.Seed and sequence of
// operations. On the default RealClock it runs in wall-clock time; on a
// ManualClock nothing happens until the clock is advanced, which makes tests
// exact and lets a simulation of thousands of nodes run faster than real
// time:
//
//	clk := memnet.NewManualClock(time.Unix(0, 0))
//	n := memnet.New(memnet.Config{Seed: 1, Clock: clk, Link: memnet.Link{Delay: 20 * time.Millisecond}})
//	defer n.Close()
//	a, _ := n.ListenAuto()
//	b, _ := n.ListenAuto()
//	a.WriteTo(msg, b.LocalAddr())
//	clk.Advance(20 * time.Millisecond) // now b.Pending() == 1
//
// Addresses are fake: nothing here touches a real network. ListenAuto hands
// out 10.0.0.0/8 addresses, AddNAT by default puts private /24s of
// 172.16.0.0/12 behind public addresses of 198.18.0.0/15.
//
// Like UDP, a write never blocks and never reports what happens to the
// datagram: anything that cannot be delivered is dropped and counted in
// Stats, by reason.
package memnet
