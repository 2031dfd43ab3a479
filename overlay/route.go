package overlay

// NextHop is the greedy routing decision of the member at self for a
// message to target: the candidate nearest target that is strictly nearer
// than self and not excluded (already on the message's path, or known to
// have failed). ok is false when no candidate qualifies: the message has
// reached the member nearest target that self knows of, which is the
// member nearest target when the tables have converged.
func NextHop(self, target Address, candidates []Contact, excluded func(Contact) bool) (next Contact, ok bool) {
	best := self
	for _, c := range candidates {
		if excluded != nil && excluded(c) {
			continue
		}
		if Closer(c.Address, best, target) {
			best, next, ok = c.Address, c, true
		}
	}
	return next, ok
}
