package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// Node.AcceptFlow finds queued flows through a list of the sessions they
// were queued on. Flows that Session.AcceptFlow takes leave entries
// behind; the list stays bounded, and Node.AcceptFlow skips the stale
// entries and returns the next new flow.
func TestAcceptFlowAfterSessionAccepts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := memnetNodes(t, memnet.Config{}, 2)
	a, b := ns[0], ns[1]
	s, err := a.Dial(ctx, b.AddrPort(), b.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	open := func(meta string) {
		t.Helper()
		f, err := s.OpenFlow([]byte(meta), PriorityRoutine)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(ctx, []byte("x"), WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const flows = 200
	for i := range flows {
		open(fmt.Sprint(i))
		rf, err := sb.AcceptFlow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(rf.Metadata()); got != fmt.Sprint(i) {
			t.Fatalf("session accepted flow %q, want %q", got, fmt.Sprint(i))
		}
		rf.Reject(0)
	}
	b.mu.Lock()
	queued, limit := len(b.flowQueued), 2*sessionFlowBacklog*max(len(b.sessions), 1)
	b.mu.Unlock()
	if queued > limit {
		t.Fatalf("%d entries for flows the session took (limit %d)", queued, limit)
	}
	open("last")
	rf, err := b.AcceptFlow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(rf.Metadata()); got != "last" {
		t.Fatalf("node accepted flow %q, want \"last\"", got)
	}
}
