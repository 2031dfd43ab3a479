package fec

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
)

func TestCodecShared(t *testing.T) {
	a, err := Codec(16, 4)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Codec(16, 4)
	c, _ := Codec(15, 4)
	if a != b {
		t.Error("two calls for 16+4 gave two codecs")
	}
	if a == c {
		t.Error("15+4 and 16+4 share a codec")
	}
	for _, bad := range [][2]int{{0, 4}, {16, -1}, {-3, 2}} {
		if _, err := Codec(bad[0], bad[1]); err == nil {
			t.Errorf("Codec(%d, %d): no error", bad[0], bad[1])
		}
	}
}

// One codec, many goroutines each reconstructing blocks with their own
// erasures: every block comes back byte for byte (run with -race).
func TestCodecConcurrent(t *testing.T) {
	const k, m, size = 16, 4, 64
	rs, err := Codec(k, m)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 50 {
				shards := make([][]byte, k+m)
				for i := range shards {
					shards[i] = make([]byte, size)
					if i < k {
						for j := range shards[i] {
							shards[i][j] = byte(r.IntN(256))
						}
					}
				}
				if err := rs.Encode(shards); err != nil {
					errs <- err
					return
				}
				want := make([][]byte, k)
				for i := range want {
					want[i] = bytes.Clone(shards[i])
				}
				for _, i := range r.Perm(k + m)[:m] {
					shards[i] = nil
				}
				if err := rs.ReconstructData(shards); err != nil {
					errs <- err
					return
				}
				for i := range want {
					if !bytes.Equal(shards[i], want[i]) {
						errs <- errMismatch
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

var errMismatch = errors.New("a reconstructed shard differs from the original")
