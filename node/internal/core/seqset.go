package core

// seqSet is a set of sequence numbers kept as sorted, disjoint, non-adjacent
// closed ranges. A receiving flow records what it has (received or
// abandoned) in one; acknowledgements are its ranges (RFC 7016 §3.6.3.3).
type seqSet struct {
	r []seqRange
}

type seqRange struct{ from, to uint64 }

// add inserts [from, to].
func (s *seqSet) add(from, to uint64) {
	if to < from {
		return
	}
	// Find the first range whose end+1 >= from (the first that could merge).
	i := 0
	for i < len(s.r) && s.r[i].to != ^uint64(0) && s.r[i].to+1 < from {
		i++
	}
	j := i
	for j < len(s.r) && (to == ^uint64(0) || s.r[j].from <= to+1) {
		if s.r[j].from < from {
			from = s.r[j].from
		}
		if s.r[j].to > to {
			to = s.r[j].to
		}
		j++
	}
	if i == j {
		s.r = append(s.r, seqRange{})
		copy(s.r[i+1:], s.r[i:])
		s.r[i] = seqRange{from, to}
		return
	}
	s.r[i] = seqRange{from, to}
	s.r = append(s.r[:i+1], s.r[j:]...)
}

func (s *seqSet) contains(v uint64) bool {
	for _, r := range s.r {
		if v < r.from {
			return false
		}
		if v <= r.to {
			return true
		}
	}
	return false
}

// cumulative is the highest n such that [0, n] is in the set, or 0.
func (s *seqSet) cumulative() uint64 {
	if len(s.r) == 0 || s.r[0].from != 0 {
		return 0
	}
	return s.r[0].to
}

func (s *seqSet) ranges() int { return len(s.r) }
