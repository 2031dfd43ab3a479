package node_test

import (
	"context"
	"fmt"
	"time"

	"github.com/strata-net/strata/node"
)

// Two nodes on loopback: one opens a session to the other by address and
// peer ID, sends a message on a flow, and waits for its delivery receipt.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	server, err := node.Listen("127.0.0.1:0", node.Config{})
	if err != nil {
		panic(err)
	}
	defer server.Close(ctx)
	client, err := node.Listen("127.0.0.1:0", node.Config{})
	if err != nil {
		panic(err)
	}
	defer client.Close(ctx)

	got := make(chan string, 1)
	go func() {
		s, err := server.Accept(ctx)
		if err != nil {
			return
		}
		f, err := s.AcceptFlow(ctx)
		if err != nil {
			return
		}
		m, err := f.Read(ctx)
		if err != nil {
			return
		}
		got <- fmt.Sprintf("%s: %s", f.Metadata(), m)
	}()

	s, err := client.Dial(ctx, server.AddrPort(), server.PeerID())
	if err != nil {
		panic(err)
	}
	f, err := s.OpenFlow([]byte("greeting"), node.PriorityRoutine)
	if err != nil {
		panic(err)
	}
	r, err := f.Write(ctx, []byte("hello, group"), node.WriteOptions{FinishWithin: time.Second})
	if err != nil {
		panic(err)
	}
	fmt.Println("delivered:", r.Wait(ctx) == nil)
	fmt.Println(<-got)
	// Output:
	// delivered: true
	// greeting: hello, group
}
