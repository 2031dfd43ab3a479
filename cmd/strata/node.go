package main

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/strata-net/strata/node"
)

// closeGrace bounds the orderly close of a node at exit: long enough for
// peers on a LAN to acknowledge the close, short enough that Ctrl-C feels
// immediate.
const closeGrace = 3 * time.Second

// nodeConfig builds the node.Config shared by the RTMFP commands.
func nodeConfig(strict bool, identityPath string, log zerolog.Logger) (node.Config, error) {
	cfg := node.Config{StrictIntegrity: strict, Logger: log.With().Str("component", "node").Logger()}
	if identityPath != "" {
		id, err := node.LoadOrCreateIdentity(identityPath)
		if err != nil {
			return cfg, fmt.Errorf("identity %s: %w", identityPath, err)
		}
		cfg.Identity = id
	}
	return cfg, nil
}

// closeNode closes n in an orderly way, bounded by closeGrace even if ctx
// is already cancelled (the usual case: a signal arrived).
func closeNode(n *node.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	return n.Close(ctx)
}

// logStats logs a node's counters at debug level (for diagnosing stalls:
// retransmissions and drops).
func logStats(log zerolog.Logger, st node.Stats) {
	log.Debug().Uint64("packets_in", st.PacketsIn).Uint64("packets_out", st.PacketsOut).
		Uint64("retransmits", st.Retransmits).Uint64("abandoned", st.Abandoned).
		Uint64("drop_decrypt", st.DropDecrypt).Uint64("drop_malformed", st.DropMalformed).
		Uint64("drop_unknown_session", st.DropUnknownSession).Msg("node stats")
}
