package core

// fragPool recycles send fragments and their data buffers, so a flow in the
// steady state does not allocate per packet. It belongs to one endpoint
// (no locking).
type fragPool struct {
	frags []*sendFrag
	bufs  [][]byte
}

const (
	poolMax      = 1024
	poolMinBytes = 256 // smaller payloads get exact-size buffers
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

// buf returns a copy of data, in a recycled buffer when it is large enough
// to be worth one.
func (p *fragPool) buf(data []byte) []byte {
	if len(data) < poolMinBytes {
		return append(make([]byte, 0, len(data)), data...)
	}
	if n := len(p.bufs); n > 0 {
		b := p.bufs[n-1]
		p.bufs[n-1] = nil
		p.bufs = p.bufs[:n-1]
		return append(b[:0], data...)
	}
	return append(make([]byte, 0, maxFragment), data...)
}

// free takes back a fragment that no queue or list refers to any more.
func (p *fragPool) free(fr *sendFrag) {
	if fr == nil {
		return
	}
	if cap(fr.data) == maxFragment && len(p.bufs) < poolMax {
		p.bufs = append(p.bufs, fr.data[:0])
	}
	*fr = sendFrag{}
	if len(p.frags) < poolMax {
		p.frags = append(p.frags, fr)
	}
}
