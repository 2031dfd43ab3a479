// Package dissem measures one-to-many stream dissemination side by side:
// Strata's group multicast on node/memnet, and go-libp2p-pubsub's
// gossipsub on go-libp2p's mock network, in the same run with the same
// members, link delays, stream rate and duration. See docs/benchmarks.md,
// section 6.
package dissem

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// scenario is one dissemination run: members, links, stream.
type scenario struct {
	members  int
	loss     float64       // per datagram (Strata), per TCP segment (gossipsub: tcpStream)
	delayMin time.Duration // one-way delay of a pair of members, drawn
	delayMax time.Duration // uniformly in [delayMin, delayMax] per pair
	rate     int           // stream bytes per second
	secs     int           // stream duration
	chunk    int           // bytes per publisher write (and latency unit)
	drain    time.Duration // how long receivers may take after the last write
	seed     uint64
	// sourceCopies, when above 0, is Strata's SourcePushCopies (how many
	// copies of the stream its publisher pushes); 0 keeps the default.
	sourceCopies int
	// carriers, when above 0, is Strata's ManifestCarriers (how many push
	// classes carry each block's manifest); 0 keeps the default.
	carriers int
	// fecK and fecM, when above 0, are Strata's K and M (fragments and
	// parity pieces per block); 0 keeps the defaults.
	fecK, fecM int
	// wholeBlocks is Strata's WholeBlocks: each block output in one
	// record once complete, not its first fragments as they come.
	wholeBlocks bool
	// earlyFragments is Strata's EarlyFragments: each full fragment
	// sent, signed, as soon as it is written.
	earlyFragments bool
	// allParity is Strata's AllParity: every parity piece pushed, no
	// parity sparing.
	allParity bool
	// backupPushers is Strata's BackupPushers: every push class pushed
	// by a second neighbour too.
	backupPushers bool
	// classes, when above 0, is Strata's PushNeighbourLimit (how many
	// push classes a stream is cut into); 0 keeps the default.
	classes int
	// fragment, when above 0, is Strata's FragmentSize; 0 keeps the
	// default (1024).
	fragment int
	// relayCopies, when above 0, is Strata's RelayPushCopies (the push
	// load a member other than the publisher takes, in copies of the
	// stream); 0 keeps the default (4).
	relayCopies int
	// delaysFirst gives Strata's links their delays before the mesh
	// forms, not when the stream starts.
	delaysFirst bool
	// settle is how long Strata's links have their delays (not yet the
	// loss) before the stream starts, when the mesh formed without them.
	settle time.Duration
}

func (sc scenario) size() int { return sc.rate * sc.secs }

// perSecond is how many chunks the publisher writes a second.
func (sc scenario) perSecond() int { return sc.rate / sc.chunk }

func (sc scenario) chunks() int { return (sc.size() + sc.chunk - 1) / sc.chunk }

// delay is the one-way delay between members i and j, the same both
// ways and for both systems.
func (sc scenario) delay(i, j int) time.Duration {
	if i > j {
		i, j = j, i
	}
	r := rand.New(rand.NewPCG(sc.seed, uint64(i)<<32|uint64(j)))
	return sc.delayMin + time.Duration(r.Int64N(int64(sc.delayMax-sc.delayMin)+1))
}

// data is the stream: deterministic random bytes.
func (sc scenario) data() []byte {
	b := make([]byte, sc.size())
	r := rand.New(rand.NewPCG(sc.seed, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeClock records when the publisher wrote each chunk, for receivers
// to measure write-to-output latency.
type writeClock struct{ at []atomic.Int64 }

func newWriteClock(chunks int) *writeClock { return &writeClock{at: make([]atomic.Int64, chunks)} }

func (w *writeClock) mark(c int, t time.Time) { w.at[c].Store(t.UnixNano()) }

func (w *writeClock) since(c int, now time.Time) time.Duration {
	return now.Sub(time.Unix(0, w.at[c].Load()))
}

// pace writes the stream through write in chunks at sc.rate, marking
// each chunk's write time; write gets the chunk index and bytes.
func (sc scenario) pace(data []byte, wc *writeClock, write func(c int, b []byte) error) error {
	start := time.Now()
	for c := 0; c*sc.chunk < len(data); c++ {
		off := c * sc.chunk
		end := min(off+sc.chunk, len(data))
		wc.mark(c, time.Now())
		if err := write(c, data[off:end]); err != nil {
			return err
		}
		due := start.Add(time.Duration(float64(end) / float64(sc.rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
	}
	return nil
}

// receiver is one member's measured output.
type receiver struct {
	mu     sync.Mutex
	useful uint64          // verified stream bytes output
	lats   []time.Duration // write-to-output, one per chunk output
	after  []time.Duration // the same, of the chunks written after the stream's first second
	bad    int             // outputs that differ from the published bytes
	stamps []time.Duration // Strata: group.Record.Latency of each record
}

// add counts useful bytes output and the latencies of the chunks they
// complete, the first of which is chunk first of a stream of perSecond
// chunks a second.
func (r *receiver) add(useful, first, perSecond int, lats ...time.Duration) {
	r.mu.Lock()
	r.useful += uint64(useful)
	r.lats = append(r.lats, lats...)
	for i, d := range lats {
		if first+i >= perSecond {
			r.after = append(r.after, d)
		}
	}
	r.mu.Unlock()
}

// reject counts an output that differs from the published bytes.
func (r *receiver) reject() {
	r.mu.Lock()
	r.bad++
	r.mu.Unlock()
}

// result is one system's figures for one scenario.
type result struct {
	system       string
	loss         float64 // loss applied to the links
	deliveryMean float64 // over subscribers, of bytes (or chunks) output
	deliveryMin  float64
	p50, p99     time.Duration // write-to-output per chunk, pooled
	// The same over the chunks written after the stream's first second,
	// when the push trees have formed (Strata's form with the stream).
	afterP50, afterP99 time.Duration
	stampP50           time.Duration // Strata: group.Record.Latency, pooled
	stampP99           time.Duration
	// gossipsub: from each chunk's write to its message's arrival,
	// pooled, whether or not every chunk before it had arrived.
	msgP50, msgP99 time.Duration
	overhead       float64 // bytes received by all subscribers / useful bytes output
	wire           float64 // the same at the datagram level (Strata) or RPC frames (gossipsub)
	upload         float64 // publisher bytes sent / bytes published
	neighbours     float64 // mean links per member
	bad            int
	wall           time.Duration // real time of the run (set by the caller)
	note           string
}

// summarize fills the delivery and latency fields from the receivers.
func (res *result) summarize(rs []*receiver, published int) {
	res.deliveryMin = 1
	var sum float64
	var pool, after []time.Duration
	for _, r := range rs {
		r.mu.Lock()
		d := float64(r.useful) / float64(published)
		sum += d
		res.deliveryMin = min(res.deliveryMin, d)
		pool = append(pool, r.lats...)
		after = append(after, r.after...)
		res.bad += r.bad
		r.mu.Unlock()
	}
	res.deliveryMean = sum / float64(len(rs))
	res.p50, res.p99 = percentiles(pool)
	res.afterP50, res.afterP99 = percentiles(after)
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

func msec(d time.Duration) string { return fmt.Sprintf("%d", d.Round(time.Millisecond).Milliseconds()) }

func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
