package memnet_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

func Example() {
	n := memnet.New(memnet.Config{Seed: 1, Link: memnet.Link{Delay: 5 * time.Millisecond}})
	defer n.Close()
	a, _ := n.Listen(netip.MustParseAddrPort("10.0.0.1:1935"))
	b, _ := n.Listen(netip.MustParseAddrPort("10.0.0.2:1935"))

	a.WriteTo([]byte("hello"), b.LocalAddr())

	buf := make([]byte, 1500)
	k, from, err := b.ReadFrom(buf) // blocks for the 5 ms delay
	fmt.Println(string(buf[:k]), from, err)
	// Output: hello 10.0.0.1:1935 <nil>
}

// Two members behind NATs that filter by address and port can each reach a
// rendezvous node, which learns their public addresses, but not each other
// until both have sent (hole punching).
func ExampleNetwork_AddNAT() {
	clk := memnet.NewManualClock(time.Unix(0, 0))
	n := memnet.New(memnet.Config{Clock: clk})
	defer n.Close()
	rendezvous, _ := n.ListenAuto()
	natA, _ := n.AddNAT(memnet.NATConfig{})
	natB, _ := n.AddNAT(memnet.NATConfig{})
	a, _ := natA.ListenAuto()
	b, _ := natB.ListenAuto()

	buf := make([]byte, 100)
	hello := []byte("hello")
	a.WriteTo(hello, rendezvous.LocalAddr())
	_, aPublic, _ := rendezvous.ReadFromUDPAddrPort(buf)
	b.WriteTo(hello, rendezvous.LocalAddr())
	_, bPublic, _ := rendezvous.ReadFromUDPAddrPort(buf)
	fmt.Println("A is seen as", aPublic, "B as", bPublic)

	a.WriteToUDPAddrPort(hello, bPublic) // filtered by B's NAT, but opens A's
	fmt.Println("B got A's first datagram:", b.Pending() == 1)
	b.WriteToUDPAddrPort(hello, aPublic)
	fmt.Println("A got B's datagram:", a.Pending() == 1)
	fmt.Println("NAT drops:", n.Stats().DroppedNAT)
	// Output:
	// A is seen as 198.18.0.1:1024 B as 198.18.0.2:1024
	// B got A's first datagram: false
	// A got B's datagram: true
	// NAT drops: 1
}

// A ManualClock fires timers only when advanced, in order.
func ExampleManualClock() {
	clk := memnet.NewManualClock(time.Unix(0, 0).UTC())
	clk.AfterFunc(2*time.Second, func() { fmt.Println("second at", clk.Now().Unix()) })
	clk.AfterFunc(time.Second, func() { fmt.Println("first at", clk.Now().Unix()) })
	fmt.Println("fired", clk.Advance(5*time.Second))
	// Output:
	// first at 1
	// second at 2
	// fired 2
}

// A bandwidth-limited link serialises datagrams: on a ManualClock the
// arrival times are exact.
func ExampleLink_bandwidth() {
	clk := memnet.NewManualClock(time.Unix(0, 0))
	n := memnet.New(memnet.Config{Clock: clk, Link: memnet.Link{Bandwidth: 100_000}}) // 100 kB/s
	defer n.Close()
	a, _ := n.ListenAuto()
	b, _ := n.ListenAuto()
	for range 3 {
		a.WriteTo(make([]byte, 972), b.LocalAddr()) // 1000 bytes with IP and UDP headers
	}
	for range 3 {
		clk.Advance(10 * time.Millisecond)
		fmt.Println(b.Pending())
	}
	// Output:
	// 1
	// 2
	// 3
}
