package group_test

import (
	"context"
	"fmt"
	"time"

	"github.com/strata-net/strata/group"
	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
	"github.com/strata-net/strata/overlay"
)

// Two nodes join a posting group and one posts to the other.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	network := memnet.New(memnet.Config{})
	defer network.Close()
	spec, err := group.ParseSpecifier("strata:group/lobby?posting")
	if err != nil {
		panic(err)
	}
	var members []*group.Group
	var hosts []*overlay.Host
	for i := 0; i < 2; i++ {
		conn, _ := network.ListenAuto()
		n, _ := node.New(conn, node.Config{})
		defer n.Close(ctx)
		mux := group.NewMux()
		h := overlay.NewHost(n, overlay.HostConfig{OnFlow: mux.HandleFlow})
		defer h.Close()
		g, err := group.Join(h, spec, group.Config{Mux: mux})
		if err != nil {
			panic(err)
		}
		defer g.Close()
		members = append(members, g)
		hosts = append(hosts, h)
	}
	if err := members[1].Bootstrap(ctx, hosts[0].Self()); err != nil {
		panic(err)
	}
	for members[0].Stats().Neighbours == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	members[0].Post(ctx, []byte("hello"))
	p, err := members[1].ReceivePost(ctx)
	fmt.Println(string(p.Payload), err)
	// Output: hello <nil>
}
