// Package memgroup starts group members on the in-memory network for the
// examples that run many of them in one process. It uses only the public
// API, and is the part of those examples worth reading first.
package memgroup

import (
	"context"
	"sync"
	"time"

	"github.com/strata-net/strata/group"
	"github.com/strata-net/strata/node"
	"github.com/strata-net/strata/node/memnet"
	"github.com/strata-net/strata/overlay"
)

// Member is one node and its membership of one group.
type Member struct {
	Node  *node.Node
	Host  *overlay.Host
	Group *group.Group
}

// Start opens a node on network and joins spec with cfg (cfg.Mux is
// filled in). The member still has to meet the others: Group.Bootstrap.
func Start(network *memnet.Network, spec group.Specifier, cfg group.Config) (*Member, error) {
	conn, err := network.ListenAuto()
	if err != nil {
		return nil, err
	}
	n, err := node.New(conn, node.Config{KeepalivePeriod: time.Second, RetransmitLimit: 5 * time.Second})
	if err != nil {
		conn.Close()
		return nil, err
	}
	// The group's streams and posts travel on flows of their own; the
	// overlay host hands them to the group's multiplexer.
	cfg.Mux = group.NewMux()
	h := overlay.NewHost(n, overlay.HostConfig{OnFlow: cfg.Mux.HandleFlow})
	g, err := group.Join(h, spec, cfg)
	if err != nil {
		h.Close()
		closeNode(n)
		return nil, err
	}
	return &Member{Node: n, Host: h, Group: g}, nil
}

// Close leaves the group (the neighbours are told) and stops the node.
func (m *Member) Close() {
	m.Group.Close()
	m.Host.Close()
	closeNode(m.Node)
}

// CloseAll closes members in parallel (each waits a moment for its
// neighbours to acknowledge its leaving).
func CloseAll(members []*Member) {
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Add(1)
		go func() { defer wg.Done(); m.Close() }()
	}
	wg.Wait()
}

func closeNode(n *node.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	n.Close(ctx)
}
