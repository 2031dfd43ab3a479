package core

import "time"

// congestionState is a session's RTT estimate, retransmission timeout and
// congestion window (RFC 7016 §3.5.2, §3.5.4).
type congestionState struct {
	hasRTT       bool
	srttD        time.Duration
	rttvar       time.Duration
	mrto, erto   time.Duration
	cwnd         int
	ssthresh     int
	accumulator  int
	recoveryLeft int
	lossAllow    int
	burstLimit   int
	burstAt      time.Time
	tcrRecvTime  time.Time
	tcSentTime   time.Time
	now          func() time.Time
}

const (
	senderMSS     = maxFragment
	cwndInit      = 3 * senderMSS
	cwndTimedOut  = 2 * senderMSS
	cwndDecay     = 6 * senderMSS
	maxBurstBytes = 6 * senderMSS
	initialMRTO   = 250 * time.Millisecond
	initialERTO   = 3 * time.Second
	minERTO       = 250 * time.Millisecond
	maxERTO       = 10 * time.Second
	burstRTT      = 4500 * time.Microsecond
)

func (s *Session) initCongestion() {
	s.cc = congestionState{
		mrto:       initialMRTO,
		erto:       initialERTO,
		cwnd:       cwndInit,
		ssthresh:   1 << 30,
		burstLimit: maxBurstBytes,
		now:        func() time.Time { return s.e.now },
	}
}

func (c *congestionState) srtt() time.Duration { return c.srttD }

func (c *congestionState) rttSample(now time.Time, rtt time.Duration) {
	if c.hasRTT {
		d := c.srttD - rtt
		if d < 0 {
			d = -d
		}
		c.rttvar = (3*c.rttvar + d) / 4
		c.srttD = (7*c.srttD + rtt) / 8
	} else {
		c.hasRTT = true
		c.srttD = rtt
		c.rttvar = rtt / 2
	}
	c.mrto = c.srttD + 4*c.rttvar + delackPeriod
	c.erto = max(c.mrto, minERTO)
}

func (c *congestionState) onAckPacket() {
	if c.burstLimit < maxBurstBytes {
		c.burstLimit = maxBurstBytes
	}
	c.burstAt = time.Time{}
}

func (c *congestionState) dataSent(n int) { c.burstLimit -= n }

func (c *congestionState) burstAllowed() bool {
	return c.burstLimit > 0 || c.srttD < burstRTT
}

func (c *congestionState) scheduleBurst(now time.Time) {
	if !c.burstAt.IsZero() || c.cwnd <= 0 {
		return
	}
	excess := 0
	if c.burstLimit < 0 {
		excess = -c.burstLimit
	}
	c.burstAt = now.Add(time.Duration(int64(c.srttD) * int64(senderMSS+excess) / int64(c.cwnd)))
}

func (c *congestionState) onBurstAlarm(now time.Time) {
	c.burstAt = time.Time{}
	c.burstLimit = senderMSS
}

func (c *congestionState) onTimeoutAlarm() {
	c.burstLimit = maxBurstBytes
	c.ssthresh = max(c.ssthresh, c.cwnd*3/4)
	c.accumulator = 0
	c.recoveryLeft = 0
}

func (c *congestionState) resetIdle() { c.cwnd = cwndInit }

func (c *congestionState) onTimeoutLoss() {
	c.cwnd = cwndTimedOut
	c.erto = min(max(time.Duration(float64(c.erto)*1.414214), c.mrto), maxERTO)
}

// update applies one packet's worth of acknowledgement to the window
// (RFC 7016 Appendix A, as the reference implementation refines it).
func (c *congestionState) update(s *Session, acked, lost int, anyLoss, anyNaks bool) {
	now := c.now()
	fastgrow := now.Sub(c.tcrRecvTime) > timeCriticalTimeout && now.Sub(s.e.tcSentTime) > timeCriticalTimeout
	tcSent := !c.tcSentTime.IsZero() && now.Sub(c.tcSentTime) <= timeCriticalTimeout
	lossCost := 0
	if lost > 0 {
		lossCost = lost + (lost+1)/2
	}
	drained := acked + lost
	if c.recoveryLeft > drained {
		c.recoveryLeft -= drained
		if lossCost > 0 {
			if lossCost <= c.lossAllow {
				c.lossAllow -= lossCost
			} else {
				lossCost -= c.lossAllow
				c.lossAllow = 0
				lossCost = min(c.ssthresh, lossCost)
				c.ssthresh = max(c.ssthresh-lossCost, cwndInit)
				c.cwnd = c.ssthresh
				c.recoveryLeft += lossCost
			}
		}
		return
	}
	c.recoveryLeft = 0
	pre := s.preAckOutstanding
	switch {
	case anyLoss:
		cut := min(c.cwnd, pre)
		if tcSent || (pre > 67200 && fastgrow) {
			c.lossAllow = cut / 8
		} else {
			c.lossAllow = cut / 2
		}
		c.lossAllow = min(cut, max(c.lossAllow, lossCost))
		c.ssthresh = max(cut-c.lossAllow, cwndInit)
		c.cwnd = c.ssthresh
		c.accumulator = 0
		c.recoveryLeft = s.outBytes
	case !anyNaks && pre > c.cwnd*63/64:
		inc := 0
		if fastgrow {
			if c.cwnd < c.ssthresh {
				inc = acked
				c.accumulator = 0
			} else {
				th := min(max(c.cwnd/16, 64), 9600)
				c.accumulator += acked
				for c.accumulator >= th {
					c.accumulator -= th
					inc += 96
				}
			}
		} else {
			if tcSent && c.cwnd < c.ssthresh {
				inc = (acked + 3) / 4
				c.accumulator = 0
			} else {
				th := min(max(c.cwnd/16, 64), 4800)
				c.accumulator += acked
				for c.accumulator >= th {
					c.accumulator -= th
					if tcSent {
						inc += 48
					} else {
						inc += 24
					}
				}
			}
		}
		c.cwnd = max(c.cwnd+min(inc, senderMSS), cwndInit)
	case !anyNaks && c.cwnd > pre+cwndDecay:
		c.cwnd--
	}
}
