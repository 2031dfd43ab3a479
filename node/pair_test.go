package node

import (
	"context"
	"testing"

	"github.com/strata-net/strata/node/memnet"
)

// memnetNodes starts k nodes with the default Config on a new memnet
// network with cfg. When the test ends the nodes close, then the network
// (a node closing on a closed network waits out its close handshakes).
func memnetNodes(tb testing.TB, cfg memnet.Config, k int) []*Node {
	tb.Helper()
	nw := memnet.New(cfg)
	tb.Cleanup(func() { nw.Close() })
	ns := make([]*Node, k)
	for i := range ns {
		c, err := nw.ListenAuto()
		if err != nil {
			tb.Fatal(err)
		}
		if ns[i], err = New(c, Config{}); err != nil {
			tb.Fatal(err)
		}
		n := ns[i]
		tb.Cleanup(func() { n.Close(context.Background()) })
	}
	return ns
}
