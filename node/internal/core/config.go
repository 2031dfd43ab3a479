package core

import (
	"time"

	"github.com/strata-net/strata/node/internal/congestion"
	"github.com/strata-net/strata/node/internal/wire"
)

// Protocol constants, following RFC 7016 and the values the reference
// implementation uses, so that timing interoperates.
const (
	// MaxSessionPacket is the largest plaintext packet we send in a session:
	// room below 1280 for IPv6 + UDP + session ID + encryption overhead.
	MaxSessionPacket = wire.MaxSessionPacketLength
	// MaxStartupPacket is the largest plaintext startup packet.
	MaxStartupPacket = wire.MaxStartupPacketLength
	tagLength        = wire.TagLength

	// maxFragment is the data of one User Data chunk: a packet less header,
	// chunk header, flags and three VLUs at their largest. The congestion
	// controller counts in the same unit.
	maxFragment = congestion.SenderMSS

	maxMetadata = 512

	ihelloInitialRTX    = 1 * time.Second
	ihelloBackoff       = 1500 * time.Millisecond
	iikeyingInitialRTX  = 1 * time.Second
	iikeyingBackoff     = 1500 * time.Millisecond
	ultimateOpenTimeout = 95 * time.Second
	maxCookieLifetime   = 95 // seconds
	redirectThreshold   = 24
	maxEarlyPackets     = 18
	// probeMin is the floor of the tail-loss probe's delay.
	probeMin = 10 * time.Millisecond

	obligatoryAckAfter     = 2
	nearclosePeriod        = 90 * time.Second
	nearcloseRTX           = 5 * time.Second
	farcloseLinger         = 19 * time.Second
	rfCompleteLingerPeriod = 120 * time.Second
	fCompleteLinger        = 130 * time.Second
	persistInitial         = 1 * time.Second
	persistMax             = 60 * time.Second
	maxTSEchoElapsed       = congestion.MaxTimestampEchoElapsed
	timeCriticalTimeout    = congestion.TimeCriticalTimeout
	maxMobilityLifetime    = 120 // seconds
	naksForLoss            = congestion.NaksForLoss
	fragmentSizeBias       = 64
)

// Config holds the tunables of an endpoint. The zero value of any field means
// its default (see DefaultConfig).
type Config struct {
	// MaxSessions caps open and opening sessions; IIKeying beyond it is dropped.
	MaxSessions int
	// KeepalivePeriod is how long a session may be silent before we ping.
	KeepalivePeriod time.Duration
	// RetransmitLimit closes a session whose data or keepalives went
	// unacknowledged this long (the far end is presumed dead).
	RetransmitLimit time.Duration
	// IdleLimit closes a session with no flows after this long.
	IdleLimit time.Duration
	// RecvBuffer is the receive buffer of each incoming flow in bytes
	// (advertised to the sender: RFC 7016 §3.6.3.5 flow control).
	RecvBuffer int
	// SendBuffer is how many bytes a sending flow queues before Write
	// reports it full.
	SendBuffer int
	// MaxFlowsPerSession caps incoming flows per session; more are rejected.
	MaxFlowsPerSession int
	// AckDelay is how long this endpoint may hold the acknowledgement of
	// fewer than two packets (default 50 ms; RFC 7016 allows 200 ms,
	// congestion.DelayedAckPeriod, which is also what a sender assumes
	// of a peer it has not measured yet). A short hold lets the sender,
	// which learns it, probe a lone lost packet sooner, at the cost of an
	// acknowledgement per packet on sessions that send less often.
	AckDelay time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxSessions:        4096,
		KeepalivePeriod:    10 * time.Second,
		RetransmitLimit:    30 * time.Second,
		IdleLimit:          300 * time.Second,
		RecvBuffer:         1 << 20,
		SendBuffer:         1 << 20,
		MaxFlowsPerSession: 256,
		AckDelay:           50 * time.Millisecond,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxSessions <= 0 {
		c.MaxSessions = d.MaxSessions
	}
	if c.KeepalivePeriod <= 0 {
		c.KeepalivePeriod = d.KeepalivePeriod
	}
	if c.KeepalivePeriod < time.Second {
		c.KeepalivePeriod = time.Second
	}
	if c.RetransmitLimit <= 0 {
		c.RetransmitLimit = d.RetransmitLimit
	}
	if c.IdleLimit <= 0 {
		c.IdleLimit = d.IdleLimit
	}
	if c.RecvBuffer <= 0 {
		c.RecvBuffer = d.RecvBuffer
	}
	if c.SendBuffer <= 0 {
		c.SendBuffer = d.SendBuffer
	}
	if c.MaxFlowsPerSession <= 0 {
		c.MaxFlowsPerSession = d.MaxFlowsPerSession
	}
	if c.AckDelay <= 0 {
		c.AckDelay = d.AckDelay
	}
	c.AckDelay = min(c.AckDelay, congestion.DelayedAckPeriod)
	return c
}
