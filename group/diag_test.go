package group

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// diag logs the four members with the worst median latency and a median
// one: their links, the depth of each push class's pusher, pulls, pusher
// changes and duplicates. In the 200-member run the worst are members that
// joined last and live on pulls (1,000-2,500 pulls and as many duplicates
// against about 100 for the median member).
func (m *mesh) diag(t *testing.T) {
	type row struct {
		i   int
		p50 time.Duration
	}
	var rows []row
	for i, mb := range m.members[1:] {
		rows = append(rows, row{i + 1, mb.g.Stats().LatencyP50})
	}
	if len(rows) == 0 {
		return
	}
	slices.SortFunc(rows, func(a, b row) int { return int(b.p50 - a.p50) })
	// (Clip: appending the median must not overwrite the fifth worst.)
	for _, r := range append(slices.Clip(rows[:min(4, len(rows))]), rows[len(rows)/2]) {
		mb := m.members[r.i]
		st := mb.g.Stats()
		mb.g.mu.Lock()
		var depths []int
		var lates []time.Duration
		perPusher := map[*link]int{}
		for c, p := range mb.g.st.parents {
			if p == nil {
				depths = append(depths, -1)
				lates = append(lates, -1)
			} else {
				depths = append(depths, p.depth[c])
				lates = append(lates, p.late[c].Round(time.Millisecond))
				perPusher[p]++
			}
		}
		var shares []int
		for _, n := range perPusher {
			shares = append(shares, n)
		}
		slices.Sort(shares)
		slices.Reverse(shares)
		nl := len(mb.g.links)
		why := mb.g.st.why
		mb.g.mu.Unlock()
		t.Logf("member %d p50 %v p99 %v links %d parents-depth %v pushers' lateness %v classes per pusher %v pulls %d changes %d (refused %d gone %d silent %d late %d fill %d stale %d deeper %d) shunned %d dups %d ovNeigh %d",
			r.i, st.LatencyP50, st.LatencyP99, nl, depths, lates, shares, st.PullsSent, st.PusherChanges,
			why[whyRefused], why[whyGone], why[whySilent], why[whyLate], why[whyFill], why[whyStale], why[whyDeeper],
			st.PushersShunned, st.Duplicates, len(mb.g.Overlay().Neighbours()))
	}
}

// diagLoad logs how the members' upload is spread: percentiles over
// members of what each sent (pushes and parity, pulls served, control) in
// multiples of the stream, and the busiest members with their depth, the
// push classes they carry for neighbours and their queue drops. The
// overloaded regime of long 1,000-member runs (docs/sim.md) shows here as
// a few shallow members sending many times the stream.
func (m *mesh) diagLoad(t *testing.T, streamBytes int) {
	type row struct {
		i                      int
		push, pull, ctl, total float64
		subs, links, depth     int
		stale, queued, served  uint64
	}
	var rows []row
	var why [whyReasons]uint64
	pub := m.members[0].g.Stats()
	skipped := pub.PushesSkipped
	var pulls, busy, refused, unanswered uint64
	var wait [waitBuckets]uint64
	var miss [pullMisses]uint64
	for i, mb := range m.members[1:] {
		mb.g.mu.Lock()
		for j, v := range mb.g.st.pullWait {
			wait[j] += v
		}
		for j, v := range mb.g.st.pullMiss {
			miss[j] += v
		}
		mb.g.mu.Unlock()
		st := mb.g.Stats()
		skipped += st.PushesSkipped
		pulls, busy, refused = pulls+st.PullsSent, busy+st.PullsBusy, refused+st.PullsRefused
		unanswered += st.PullsUnanswered
		mb.g.mu.Lock()
		for r, v := range mb.g.st.why {
			why[r] += v
		}
		subs, depth := 0, 0
		for _, l := range mb.g.links {
			for _, on := range l.subs {
				if on {
					subs++
				}
			}
		}
		for k := range mb.g.st.parents {
			depth += mb.g.st.myDepth(k)
		}
		nl := len(mb.g.links)
		np := max(len(mb.g.st.parents), 1)
		mb.g.mu.Unlock()
		f := func(v uint64) float64 { return float64(v) / float64(streamBytes) }
		rows = append(rows, row{i: i + 1, push: f(st.Sent.Push + st.Sent.Parity), pull: f(st.Sent.Pull), ctl: f(st.Sent.Control),
			total: f(st.Sent.Total()), subs: subs, links: nl, depth: depth / np, stale: st.StaleDropped, queued: st.QueueDropped, served: st.PullsServed})
	}
	if len(rows) == 0 {
		return
	}
	n := float64(len(rows))
	t.Logf("pushes skipped per member %.0f", float64(skipped)/n)
	var pkts, rtx, tos, naks, probes uint64
	for _, mb := range m.members {
		ns := mb.n.Stats()
		pkts, rtx, tos, naks, probes = pkts+ns.PacketsOut, rtx+ns.Retransmits, tos+ns.Timeouts, naks+ns.NakLosses, probes+ns.Probes
	}
	nm := float64(len(m.members))
	var sess, closing, olinks, glinks, maxSess int
	var opened, lookups uint64
	for _, mb := range m.members {
		st := mb.n.Stats()
		ns := st.SessionsOpen
		sess, maxSess, closing = sess+ns, max(maxSess, ns), closing+st.SessionsClosing
		opened += st.SessionsOpened
		ost := mb.g.Overlay().Stats()
		lookups, olinks = lookups+ost.Lookups, olinks+ost.Links
		mb.g.mu.Lock()
		glinks += len(mb.g.links)
		mb.g.mu.Unlock()
	}
	t.Logf("per member: sessions open %.1f (max %d) and closing %.1f, opened so far %.1f; overlay links %.1f, lookups %.1f; group links %.1f",
		float64(sess)/nm, maxSess, float64(closing)/nm, float64(opened)/nm, float64(olinks)/nm, float64(lookups)/nm, float64(glinks)/nm)
	t.Logf("RTMFP per member: packets sent %.0f, fragments retransmitted %.0f, lost by nak %.0f, tail-loss probes %.0f, timeouts with data outstanding %.1f",
		float64(pkts)/nm, float64(rtx)/nm, float64(naks)/nm, float64(probes)/nm, float64(tos)/nm)
	t.Logf("pulls per member %.0f, answered busy %.1f, pieces unanswered %.1f; refused by the others %d, by the publisher %d",
		float64(pulls)/n, float64(busy)/n, float64(unanswered)/n, refused, pub.PullsRefused)
	t.Logf("pulled pieces by time from the ask (the last bucket is open): %s", buckets(wait))
	if m.members[0].g.trace != nil {
		var queued [waitBuckets]uint64
		var del [traceKinds][waitBuckets]uint64
		var ab [traceKinds]uint64
		for _, mb := range m.members {
			tr := mb.g.trace
			tr.wg.Wait()
			for j := range tr.queued {
				queued[j] += tr.queued[j].Load()
			}
			for k := range tr.delivered {
				for j := range tr.delivered[k] {
					del[k][j] += tr.delivered[k][j].Load()
				}
				ab[k] += tr.abandoned[k].Load()
			}
		}
		t.Logf("control and pull-lane messages by time from their link's queue into their flow: %s", buckets(queued))
		t.Logf("pull requests in the sessions: abandoned %d; delivered by time from the write: %s", ab[traceRequest], buckets(del[traceRequest]))
		t.Logf("pulled pieces in the sessions: abandoned %d; delivered by time from the write: %s", ab[traceAnswer], buckets(del[traceAnswer]))
	}
	t.Logf("pulls not served: block forgotten %d, block or manifest unknown %d; waited for the manifest %d; pieces not held %d, sent past the block's deadline (dropped) %d",
		miss[pullGone], miss[pullUnknown], miss[pullDeferred], miss[pullNotHeld], miss[pullPastDeadline])
	t.Logf("pusher changes per member by reason: refused %.1f gone %.1f silent %.1f late %.1f fill %.1f stale %.1f deeper %.1f",
		float64(why[whyRefused])/n, float64(why[whyGone])/n, float64(why[whySilent])/n, float64(why[whyLate])/n,
		float64(why[whyFill])/n, float64(why[whyStale])/n, float64(why[whyDeeper])/n)
	slices.SortFunc(rows, func(a, b row) int { return int((b.total - a.total) * 1e6) })
	q := func(p float64) row { return rows[min(len(rows)-1, int(float64(len(rows))*(1-p)))] }
	for _, p := range []float64{0.5, 0.9, 0.99} {
		r := q(p)
		t.Logf("load p%.0f: sent %.2f× (push %.2f pull %.2f control %.2f)", p*100, r.total, r.push, r.pull, r.ctl)
	}
	for _, r := range rows[:min(5, len(rows))] {
		t.Logf("busy member %d: sent %.2f× (push %.2f pull %.2f control %.2f) classes carried %d links %d mean depth %d stale %d queue drops %d pulls served %d",
			r.i, r.total, r.push, r.pull, r.ctl, r.subs, r.links, r.depth, r.stale, r.queued, r.served)
	}
}

// logSeries logs, every period until the returned function is called,
// what the members did in that period: pulls sent, pusher changes (and
// how many because a link closed, a pusher fell behind, a nearer one
// appeared), and their RTMFP timeouts; it shows whether a run that goes
// bad does so from the start or falls into it.
func (m *mesh) logSeries(t *testing.T, period time.Duration) (stop func()) {
	type sample struct{ pulls, changes, gone, stale, deeper, timeouts uint64 }
	take := func() (s sample) {
		for _, mb := range m.members {
			st := mb.g.Stats()
			s.pulls += st.PullsSent
			s.changes += st.PusherChanges
			s.timeouts += mb.n.Stats().Timeouts
			mb.g.mu.Lock()
			if mb.g.st != nil {
				s.gone += mb.g.st.why[whyGone]
				s.stale += mb.g.st.why[whyStale]
				s.deeper += mb.g.st.why[whyDeeper]
			}
			mb.g.mu.Unlock()
		}
		return s
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(period)
		defer tk.Stop()
		prev, start, n := take(), time.Now(), float64(len(m.members))
		for {
			select {
			case <-done:
				return
			case now := <-tk.C:
				cur := take()
				t.Logf("series %v: per member pulls %.1f, pusher changes %.2f (gone %.2f stale %.2f deeper %.2f), timeouts %.2f",
					now.Sub(start).Round(period), float64(cur.pulls-prev.pulls)/n, float64(cur.changes-prev.changes)/n,
					float64(cur.gone-prev.gone)/n, float64(cur.stale-prev.stale)/n, float64(cur.deeper-prev.deeper)/n, float64(cur.timeouts-prev.timeouts)/n)
				prev = cur
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// diagLost logs what members knew of the blocks they gave up on: whether
// the block or its manifest ever reached them, how many pieces they held
// of how many needed, the pulls they sent for it and how many neighbours
// were known to hold a piece they lacked.
func (m *mesh) diagLost(t *testing.T) {
	var unseen, noManifest, noHolder, held, notes int
	var detail []string
	for i, mb := range m.members[1:] {
		mb.g.mu.Lock()
		for _, ln := range mb.g.st.lost {
			notes++
			switch {
			case !ln.seen:
				unseen++
			case !ln.manifest:
				noManifest++
			case ln.holders == 0:
				noHolder++
			default:
				held++
			}
			if len(detail) < 12 {
				detail = append(detail, fmt.Sprintf("member %d block %d: seen %v manifest %v pieces %d/%d pulls %d (busy %d) holders %d (publisher %v) first %v after the stamp; it sent %d bytes; asks %v",
					i+1, ln.seq, ln.seen, ln.manifest, ln.count, ln.k, ln.pulls, ln.busy, ln.holders, ln.source, ln.firstAge.Round(time.Millisecond), ln.sent, fmt.Sprintf("%+v", ln.asks)))
			}
		}
		mb.g.mu.Unlock()
	}
	if notes == 0 {
		return
	}
	t.Logf("blocks lost (first %d per member): never seen %d, no manifest %d, no neighbour held a missing piece %d, held by a neighbour %d",
		maxLostNotes, unseen, noManifest, noHolder, held)
	for _, d := range detail {
		t.Log(d)
	}
}

// buckets formats counts in waitBucket's buckets.
func buckets(h [waitBuckets]uint64) string {
	var ws []string
	for j, v := range h {
		ws = append(ws, fmt.Sprintf("<%v %d", waitBase<<j, v))
	}
	return strings.Join(ws, ", ")
}
