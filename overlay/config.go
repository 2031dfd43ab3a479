package overlay

import (
	"time"

	"github.com/rs/zerolog"
)

// Defaults of Config.
const (
	DefaultK               = 20
	DefaultAlpha           = 3
	DefaultMaxNeighbours   = 12
	DefaultDistant         = 4
	DefaultMaxSessions     = 64
	DefaultRefreshPeriod   = 30 * time.Second
	DefaultRequestTimeout  = 2 * time.Second
	DefaultHopTimeout      = 2 * time.Second
	DefaultDialTimeout     = 3 * time.Second
	DefaultTTL             = 16
	DefaultDeliveryQueue   = 256
	DefaultMaxForwards     = 128
	DefaultDedupWindow     = 4096
	DefaultMaintainPeriod  = 2 * time.Second
	DefaultMaxLookupRounds = 32
)

// Config tunes one Group. Zero fields take the documented defaults.
type Config struct {
	// K is the bucket size, and the number of members a lookup returns
	// (default 20, the Kademlia paper's).
	K int
	// Alpha is how many lookup requests are in flight at once (default 3).
	Alpha int
	// MaxNeighbours is how many members the group keeps sessions open to
	// at all times (default 12): the nearest ones, which make routing
	// converge, and Distant far ones, which keep the mesh connected and
	// shorten routes.
	MaxNeighbours int
	// Distant is how many of the neighbours are chosen far away, one per
	// bucket from the farthest (default 4; at most MaxNeighbours/2).
	Distant int
	// MaxSessions bounds the flows (and so the sessions) this group keeps
	// open, neighbours included (default 64). Links beyond the neighbours
	// serve lookups and forwarding and are closed least-recently-used
	// first.
	MaxSessions int
	// RefreshPeriod is how often every bucket is refreshed by a lookup of
	// a random address in it, and the neighbours told the member-count
	// estimate (default 30 s).
	RefreshPeriod time.Duration
	// MaintainPeriod is how often the neighbour set is checked against the
	// table (default 2 s); a neighbour's death triggers a check at once.
	MaintainPeriod time.Duration
	// RequestTimeout bounds one FindNode round trip (default 2 s); a
	// member that does not answer in time is taken for dead.
	RequestTimeout time.Duration
	// HopTimeout bounds the wait for the next hop to acknowledge a routed
	// message (default 2 s); then the next-best hop is tried.
	HopTimeout time.Duration
	// DialTimeout bounds opening a session to a member (default 3 s).
	DialTimeout time.Duration
	// TTL is the hop limit of routed messages (default 16, at most
	// MaxTTL).
	TTL int
	// MaxMessageSize bounds an encoded control message, payload included
	// (default 64 KiB); larger messages are refused on send and dropped on
	// receipt.
	MaxMessageSize int
	// DeliveryQueue is how many delivered messages wait for Receive
	// (default 256); more are dropped and counted.
	DeliveryQueue int
	// MaxForwards bounds routed messages being forwarded at once (default
	// 128); more are dropped and counted.
	MaxForwards int
	// DedupWindow is how many recent routed message IDs are remembered to
	// drop duplicates (default 4096).
	DedupWindow int
	// Logger receives structured logs; the zero Logger discards them.
	Logger zerolog.Logger
}

// LocalConfig is a Config for a mesh on one host or an in-memory network,
// where round trips take milliseconds: requests, hops and dials time out
// after 1 s instead of 2-3 s, neighbours are checked every 500 ms and
// buckets refreshed every 5 s, so a mesh forms in about a second. The
// defaults suit the Internet. (In the spirit of memberlist's
// DefaultLocalConfig; the tests, the swarm demo and the examples use it.)
func LocalConfig() Config {
	return Config{
		RefreshPeriod:  5 * time.Second,
		MaintainPeriod: 500 * time.Millisecond,
		RequestTimeout: time.Second,
		HopTimeout:     time.Second,
		DialTimeout:    time.Second,
	}
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.K, DefaultK)
	def(&c.Alpha, DefaultAlpha)
	def(&c.MaxNeighbours, DefaultMaxNeighbours)
	if c.Distant <= 0 {
		c.Distant = DefaultDistant
	}
	if c.Distant > c.MaxNeighbours/2 {
		c.Distant = c.MaxNeighbours / 2
	}
	def(&c.MaxSessions, DefaultMaxSessions)
	if c.MaxSessions < c.MaxNeighbours+c.Alpha {
		c.MaxSessions = c.MaxNeighbours + c.Alpha
	}
	defd(&c.RefreshPeriod, DefaultRefreshPeriod)
	defd(&c.MaintainPeriod, DefaultMaintainPeriod)
	defd(&c.RequestTimeout, DefaultRequestTimeout)
	defd(&c.HopTimeout, DefaultHopTimeout)
	defd(&c.DialTimeout, DefaultDialTimeout)
	def(&c.TTL, DefaultTTL)
	if c.TTL > MaxTTL {
		c.TTL = MaxTTL
	}
	def(&c.MaxMessageSize, DefaultMaxMessageSize)
	def(&c.DeliveryQueue, DefaultDeliveryQueue)
	def(&c.MaxForwards, DefaultMaxForwards)
	def(&c.DedupWindow, DefaultDedupWindow)
	return c
}
