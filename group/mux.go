package group

import (
	"encoding/hex"
	"strings"
	"sync"

	"github.com/strata-net/strata/node"
)

// MetadataPrefix starts the metadata of every flow of this package; the
// group ID in hex and the flow's role follow: "c" for control, "d" and a
// lane number for data. Pieces travel on several data lanes so that a
// lost piece, which holds up the messages behind it on its ordered flow,
// delays only its own lane.
const MetadataPrefix = "strata/group/1 "

const (
	roleControl = "c"
	roleData    = "d"
)

func flowMetadata(gid [32]byte, role string) []byte {
	return []byte(MetadataPrefix + hex.EncodeToString(gid[:]) + " " + role)
}

// Mux hands incoming group flows to the group they name. The overlay Host
// owns the node's incoming sessions and passes flows that are not its own
// to HostConfig.OnFlow; set that to Mux.HandleFlow and give the same Mux to
// every Join on that host.
type Mux struct {
	mu     sync.Mutex
	groups map[[32]byte]*Group
	// Other, if set, receives flows that are not for a joined group;
	// otherwise they are rejected.
	Other func(*node.RecvFlow)
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{groups: make(map[[32]byte]*Group)} }

// HandleFlow routes one incoming flow. It does not block.
func (m *Mux) HandleFlow(rf *node.RecvFlow) {
	gid, role, ok := parseMetadata(string(rf.Metadata()))
	var g *Group
	if ok {
		m.mu.Lock()
		g = m.groups[gid]
		m.mu.Unlock()
	}
	switch {
	case g != nil:
		g.acceptFlow(rf, role)
	case m.Other != nil:
		m.Other(rf)
	default:
		rf.Reject(0)
	}
}

func parseMetadata(meta string) (gid [32]byte, role string, ok bool) {
	rest, found := strings.CutPrefix(meta, MetadataPrefix)
	if !found {
		return gid, "", false
	}
	h, role, found := strings.Cut(rest, " ")
	if !found || len(h) != 64 {
		return gid, "", false
	}
	if role != roleControl {
		n, ok := laneOf(role)
		if !ok || n > maxLanes {
			return gid, "", false
		}
	}
	if _, err := hex.Decode(gid[:], []byte(h)); err != nil {
		return gid, "", false
	}
	return gid, role, true
}

// laneOf parses a data role "d<n>".
func laneOf(role string) (int, bool) {
	rest, ok := strings.CutPrefix(role, roleData)
	if !ok || rest == "" || len(rest) > 3 {
		return 0, false
	}
	n := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func (m *Mux) add(g *Group) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.groups == nil {
		m.groups = make(map[[32]byte]*Group)
	}
	if m.groups[g.id] != nil {
		return false
	}
	m.groups[g.id] = g
	return true
}

func (m *Mux) remove(g *Group) {
	m.mu.Lock()
	if m.groups[g.id] == g {
		delete(m.groups, g.id)
	}
	m.mu.Unlock()
}
