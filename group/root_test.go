package group

import (
	"context"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	"github.com/strata-net/strata/node/memnet"
)

// A member holding the publisher key is the push trees' root from Join,
// so the trees are there before the stream. With nothing published, 4 s
// after the bootstrap at most 10 % of the other members' classes lack a
// route (none have one without the root; a class whose routes all run
// through neighbours already pushing another class to its members can be
// left without one until the stream's freshness ranks its candidates);
// the key holder takes at most SourcePushCopies subscribers per class;
// six seconds after the links got their delays the trees hold still (at
// most one pusher change per member in five seconds). The stream's first
// block then reaches every member about as fast as the later ones (its
// median and p95 within twice their median and p99; when the trees formed with the stream, its
// median fragment took 5 times as long, pulled after the fetch period).
// A second holder of the key that joins while the stream runs stops
// being a root, and the stream goes on whole. 16 members, links of
// 10-30 ms, virtual clock.
func TestTreesBeforePublish(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "root", Multicast: true, PublisherKey: pub}
		lk := memnet.Link{Delay: 10 * time.Millisecond, Jitter: 20 * time.Millisecond}
		m := newMesh(t, 16, lk, spec, Config{}, priv)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		m.bootstrap(ctx)
		// Routes spread with the availability messages, which an idle
		// group repeats unchanged only every eighth period (2 s) and
		// sends at once when a route or delay moved: about 2 s here.
		classes := (len(m.members) - 1) * Config{}.withDefaults().PushNeighbourLimit
		missing := func() (n int) {
			for _, mb := range m.members[1:] {
				mb.g.mu.Lock()
				for k := range mb.g.st.P {
					if mb.g.st.myDepth(k) >= noRoute {
						n++
					}
				}
				mb.g.mu.Unlock()
			}
			return n
		}
		start := time.Now()
		for missing() > 0 && time.Since(start) < 4*time.Second {
			time.Sleep(50 * time.Millisecond)
		}
		if n := missing(); n*10 > classes {
			t.Fatalf("4 s after the bootstrap, with nothing published, %d of the members' %d classes have no route (at most 10 %%)", n, classes)
		} else {
			t.Logf("%v after the bootstrap, %d of the members' %d classes have no route", time.Since(start).Round(time.Millisecond), n, classes)
		}
		// The links get their delays, and the trees follow them (as
		// many changes as members a second at first; none after 2-6 s
		// in the runs measured). Then they hold still: an idle group
		// does not flap with round-trip noise.
		m.impairPairs(7)
		time.Sleep(6 * time.Second)
		churn := func() (n uint64) {
			for _, mb := range m.members[1:] {
				n += mb.g.Stats().PusherChanges
			}
			return n
		}
		before := churn()
		time.Sleep(5 * time.Second)
		if n := churn() - before; n > uint64(len(m.members)) {
			t.Errorf("idle trees: %d pusher changes in 5 s (at most %d)", n, len(m.members))
		}

		copies := Config{}.withDefaults().SourcePushCopies
		noRoutes := 0
		for i, mb := range m.members {
			mb.g.mu.Lock()
			st := mb.g.st
			perClass := make([]int, st.P)
			for _, l := range mb.g.links {
				for k, on := range l.subs {
					if on {
						perClass[k]++
					}
				}
			}
			for k := range st.P {
				switch {
				case i == 0 && (!st.rooted || st.source || st.myDepth(k) != 0):
					t.Errorf("key holder: rooted %v, source %v, hops %d in class %d before Publish", st.rooted, st.source, st.myDepth(k), k)
				case i == 0 && perClass[k] > copies:
					t.Errorf("key holder: %d subscribers in class %d (want at most %d)", perClass[k], k, copies)
				case i > 0 && st.rooted:
					t.Errorf("member %d without the key is a root", i)
				case i > 0 && (st.parents[k] == nil || st.myDepth(k) >= noRoute):
					// A class whose routes all run through neighbours
					// already pushing another class to its members can
					// be left to neighbours without a route until the
					// stream's freshness ranks them (counted, not failed
					// below).
					t.Logf("member %d: no pusher or route in class %d before Publish (hops %d)", i, k, st.myDepth(k))
					noRoutes++
				}
			}
			mb.g.mu.Unlock()
		}

		if noRoutes*10 > classes {
			t.Errorf("before Publish, %d of the members' %d classes have no route (at most 10 %%)", noRoutes, classes)
		}

		data := streamData(3 * 125_000)
		m.subscribe(ctx, data)
		// Classes spread over distinct neighbours, as in a stream (5-29
		// of 150 shared one in 30 runs; 58-76 when any neighbour with a
		// route beat every one without before the stream).
		var changes0 uint64
		shared := 0
		for _, mb := range m.members[1:] {
			changes0 += mb.g.Stats().PusherChanges
			mb.g.mu.Lock()
			per := map[*link]int{}
			for _, p := range mb.g.st.parents {
				if p != nil {
					per[p]++
				}
			}
			for _, v := range per {
				shared += v - 1
			}
			mb.g.mu.Unlock()
		}
		if shared > 2*len(m.members) {
			t.Errorf("%d classes share a pusher with another class of their member (at most %d)", shared, 2*len(m.members))
		}
		p, err := m.members[0].g.Publish()
		if err != nil {
			t.Fatal(err)
		}
		// A second instance of the publisher (the same key) joins
		// while the stream runs.
		again := m.add(spec, Config{}, priv)
		go func() {
			time.Sleep(500 * time.Millisecond)
			again.g.Bootstrap(ctx, m.members[3].h.Self(), m.members[7].h.Self())
		}()
		publish(t, ctx, p, data, 125_000, 1000)
		res := m.collect(data, 5*time.Second, len(m.members)-1)
		var changes uint64
		for _, mb := range m.members[1 : len(m.members)-1] {
			changes += mb.g.Stats().PusherChanges
		}
		t.Logf("before Publish: %d pusher changes, %d classes sharing a pusher; %d pusher changes while the stream ran", changes0, shared, changes-changes0)
		if res.missing > 0 {
			t.Errorf("a member misses %.3f%% of the stream", res.missing*100)
		}
		var firsts, later []time.Duration
		for i, mb := range m.members[1 : len(m.members)-1] {
			mb.mu.Lock()
			k := Config{}.withDefaults().K
			if len(mb.lats) < 2*k {
				t.Errorf("member %d: %d fragments output", i+1, len(mb.lats))
			} else {
				firsts = append(firsts, mb.lats[:k]...)
				later = append(later, mb.lats[k:]...)
			}
			mb.mu.Unlock()
		}
		slices.Sort(firsts)
		slices.Sort(later)
		if len(firsts) > 0 && len(later) > 0 {
			f, f95 := firsts[len(firsts)/2], firsts[len(firsts)*95/100]
			l, l99 := later[len(later)/2], later[len(later)*99/100]
			t.Logf("first block's fragments: median %v, p95 %v; later blocks' median %v, p99 %v", f, f95, l, l99)
			if f > 2*l || f95 > 2*l99 {
				t.Errorf("the first block came late: median %v against %v later, p95 %v against a p99 of %v", f, l, f95, l99)
			}
		}
		again.g.mu.Lock()
		rooted, anchored := again.g.st.rooted, again.g.st.anchored
		again.g.mu.Unlock()
		if rooted || !anchored {
			t.Errorf("second key holder: rooted %v, anchored %v (want a member of the running stream)", rooted, anchored)
		}
	})
}

func TestDelaysMoved(t *testing.T) {
	tests := []struct {
		name string
		a, b []byte
		want bool
	}{
		{"equal", []byte{10, 20, noDelay}, []byte{10, 20, noDelay}, false},
		{"within the slack", []byte{10, 20}, []byte{12, 18}, false},
		{"beyond the slack", []byte{10, 20}, []byte{10, 23}, true},
		{"beyond, downwards", []byte{10, 20}, []byte{7, 20}, true},
		{"a route appeared", []byte{noDelay, 20}, []byte{noDelay - 1, 20}, true},
		{"a route went", []byte{10, 20}, []byte{10, noDelay}, true},
		{"none sent yet", []byte{10, 20}, nil, true},
		{"the publisher sends none", nil, nil, false},
	}
	for _, tt := range tests {
		if got := delaysMoved(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: delaysMoved(%v, %v) = %v, want %v", tt.name, tt.a, tt.b, got, tt.want)
		}
	}
}

// An idle member (no stream yet) repeats an unchanged availability
// message only every eighth period, but one whose delay from the
// publisher moved beyond the slack goes out at once: the trees form before
// the stream and must follow the links' delays.
func TestIdleAdvertisesMovedDelay(t *testing.T) {
	runVirtual(t, func(t *testing.T) {
		pub, _, _ := ed25519.GenerateKey(nil)
		spec := Specifier{Name: "idle", Multicast: true, PublisherKey: pub}
		m := newMesh(t, 1, memnet.Link{}, spec, Config{}, nil)
		x := m.members[0].g
		x.mu.Lock()
		defer x.mu.Unlock()
		s := x.st
		p, r := fakeLink(x, 1), fakeLink(x, 2)
		defer removeFake(x, p, r)
		p.depth[0], p.delay[0], p.halfRTT = 1, 40*time.Millisecond, 10*time.Millisecond
		s.parents[0] = p
		sent := func() int {
			n := 0
			for {
				msg, ok := r.q.pop()
				if !ok {
					return n
				}
				if c, err := decodeControl(msg.b); err == nil && !msg.data && c.Type == ctlAvail {
					n++
				}
			}
		}
		s.advertise() // the first: a change
		sent()
		for range 3 {
			s.advertise()
		}
		if n := sent(); n != 0 {
			t.Fatalf("%d unchanged idle advertisements sent in 3 periods, want 0", n)
		}
		p.halfRTT += 4 * time.Millisecond // 50 → 54 ms: one step, within the slack
		s.advertise()
		if n := sent(); n != 0 {
			t.Errorf("a delay moved by one step was advertised at once (%d)", n)
		}
		p.halfRTT += 20 * time.Millisecond // 74 ms: six steps
		s.advertise()
		if n := sent(); n != 1 {
			t.Errorf("a delay moved by six steps: %d advertisements, want 1 at once", n)
		}
	})
}
