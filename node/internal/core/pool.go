package core

// fragPool recycles send fragments and their data buffers, so a flow in the
// steady state does not allocate per packet. It belongs to one endpoint
// (no locking).
type fragPool struct {
	frags    []*sendFrag
	bufs     [][]byte // cap maxFragment
	small    [][]byte // cap smallBuf
	receipts []*Receipt
}

const (
	poolMax  = 1024
	smallBuf = 256
)

func (p *fragPool) frag() *sendFrag {
	if n := len(p.frags); n > 0 {
		fr := p.frags[n-1]
		p.frags[n-1] = nil
		p.frags = p.frags[:n-1]
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
	if n := len(*list); n > 0 {
		b := (*list)[n-1]
		(*list)[n-1] = nil
		*list = (*list)[:n-1]
		return append(b[:0], data...)
	}
	return append(make([]byte, 0, size), data...)
}

// recycle takes back a data buffer nobody refers to any more (only the
// pool's own size is kept).
func (p *fragPool) recycle(b []byte) {
	switch {
	case cap(b) == maxFragment && len(p.bufs) < poolMax:
		p.bufs = append(p.bufs, b[:0])
	case cap(b) == smallBuf && len(p.small) < poolMax:
		p.small = append(p.small, b[:0])
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
		if r.pooled && r.refs == 0 && len(p.receipts) < poolMax {
			*r = Receipt{}
			p.receipts = append(p.receipts, r)
		}
	}
	*fr = sendFrag{}
	if len(p.frags) < poolMax {
		p.frags = append(p.frags, fr)
	}
}

func (p *fragPool) receipt() *Receipt {
	if n := len(p.receipts); n > 0 {
		r := p.receipts[n-1]
		p.receipts[n-1] = nil
		p.receipts = p.receipts[:n-1]
		return r
	}
	return new(Receipt)
}
