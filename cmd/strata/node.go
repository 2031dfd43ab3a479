package main

import (
	"context"
	"fmt"
	"net"
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

// socketBuffer is the UDP receive and send buffer size asked of the kernel
// (Linux caps it at net.core.rmem_max / wmem_max). The default (about
// 208 KiB on Linux) holds fewer than a hundred full-size datagrams, so a
// burst of one large message overflows it on loopback and the lost tail
// costs a retransmission timeout; see docs/interop.md.
const socketBuffer = 4 << 20

// listenNode opens the UDP socket with enlarged buffers and starts a node
// on it (node.Listen keeps the kernel defaults).
func listenNode(addr string, cfg node.Config) (*node.Node, error) {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if uc, ok := conn.(*net.UDPConn); ok {
		// Best effort: a smaller buffer only costs performance.
		_ = uc.SetReadBuffer(socketBuffer)
		_ = uc.SetWriteBuffer(socketBuffer)
	}
	n, err := node.New(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return n, nil
}
