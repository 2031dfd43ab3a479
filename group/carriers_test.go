package group

import "testing"

// Which push classes carry a block's manifest: ManifestCarriers classes in
// a row from seq mod P, turning with the block; every class at P or more.
func TestCarriesManifest(t *testing.T) {
	for _, c := range []struct {
		carriers int
		seq      uint64
		want     []int // the carrying classes, of P = 10
	}{
		{1, 0, []int{0}},
		{1, 13, []int{3}},
		{2, 0, []int{0, 1}},
		{2, 9, []int{9, 0}},
		{2, 25, []int{5, 6}},
		{4, 8, []int{8, 9, 0, 1}},
		{10, 3, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{32, 7, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
	} {
		cfg := Config{ManifestCarriers: c.carriers, PushNeighbourLimit: 10}.withDefaults()
		s := &stream{g: &Group{cfg: cfg}, P: cfg.PushNeighbourLimit}
		want := make(map[int]bool)
		for _, k := range c.want {
			want[k] = true
		}
		for k := range s.P {
			if got := s.carriesManifest(c.seq, k); got != want[k] {
				t.Errorf("carriers %d, block %d, class %d: carries %v, want %v", c.carriers, c.seq, k, got, want[k])
			}
		}
	}
}
