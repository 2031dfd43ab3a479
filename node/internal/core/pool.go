package core

import "time"

// fragPool recycles send fragments and their data buffers, so a flow in the
// steady state does not allocate per packet. It belongs to one endpoint
// (no locking). What a burst left in it goes back to the collector, half
// of it per poolTrimPeriod it goes unused (trim).
type fragPool struct {
	frags    freeList[*sendFrag]
	bufs     freeList[[]byte] // cap maxFragment
	small    freeList[[]byte] // cap smallBuf
	receipts freeList[*Receipt]
	trimAt   time.Time
}

const (
	poolMax  = 1024
	smallBuf = 256
	// poolTrimPeriod is how long a recycled object may go unused before
	// the pool gives it up.
	poolTrimPeriod = time.Second
)

func (p *fragPool) frag() *sendFrag {
	if fr, ok := p.frags.pop(); ok {
		return fr
	}
	return new(sendFrag)
}

// buf returns a copy of data in a recycled buffer of one of two size
// classes (small payloads do not pin a whole fragment's worth of memory).
func (p *fragPool) buf(data []byte) []byte {
	list, size := &p.bufs, maxFragment
	if len(data) <= smallBuf {
		list, size = &p.small, smallBuf
	}
	if b, ok := list.pop(); ok {
		return append(b[:0], data...)
	}
	return append(make([]byte, 0, size), data...)
}

// recycle takes back a data buffer nobody refers to any more (only the
// pool's own size is kept).
func (p *fragPool) recycle(b []byte) {
	switch cap(b) {
	case maxFragment:
		p.bufs.push(b[:0])
	case smallBuf:
		p.small.push(b[:0])
	}
}

// free takes back a fragment that no queue or list refers to any more.
func (p *fragPool) free(fr *sendFrag) {
	if fr == nil {
		return
	}
	p.recycle(fr.data)
	if r := fr.receipt; r != nil {
		r.refs--
		if r.pooled && r.refs == 0 {
			*r = Receipt{}
			p.receipts.push(r)
		}
	}
	*fr = sendFrag{}
	p.frags.push(fr)
}

func (p *fragPool) receipt() *Receipt {
	if r, ok := p.receipts.pop(); ok {
		return r
	}
	return new(Receipt)
}

// trim gives up, once every poolTrimPeriod, half of what stayed unused in
// the pool since the last trim: a node keeps about what its traffic
// cycles through, not what its busiest moment left behind.
func (p *fragPool) trim(now time.Time) {
	if now.Before(p.trimAt) {
		return
	}
	p.trimAt = now.Add(poolTrimPeriod)
	p.frags.trim()
	p.bufs.trim()
	p.small.trim()
	p.receipts.trim()
}

// freeList is a stack of recycled objects of at most poolMax that
// remembers the fewest it held since its last trim.
type freeList[T any] struct {
	items []T
	low   int // no fewer items were held since the last trim
}

func (l *freeList[T]) pop() (T, bool) {
	var zero T
	n := len(l.items)
	if n == 0 {
		return zero, false
	}
	v := l.items[n-1]
	l.items[n-1] = zero
	l.items = l.items[:n-1]
	l.low = min(l.low, n-1)
	return v, true
}

func (l *freeList[T]) push(v T) {
	if len(l.items) < poolMax {
		l.items = append(l.items, v)
	}
}

// trim drops half the items that were not needed since the last trim
// (low of them stayed in the list throughout): half, so that the pool
// keeps a margin for a little more than the last period's need, and an
// idle pool still empties in a few periods.
func (l *freeList[T]) trim() {
	keep := len(l.items) - (l.low+1)/2
	clear(l.items[keep:])
	l.items = l.items[:keep]
	if keep == 0 && l.low > 0 {
		// Emptied by the trim, not by use: the array goes too (a list
		// emptied because everything is in use keeps it).
		l.items = nil
	}
	l.low = keep
}
