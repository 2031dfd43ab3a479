package flash

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// sealBoth seals plain with Seal on one sender and SealBatch on a twin with
// identical state, answering both results (each after a distinct prefix, to
// check the prefix is kept).
func sealBoth(t testing.TB, seq, batch *SessionCrypto, plain [][]byte) (want, got [][]byte) {
	t.Helper()
	want = make([][]byte, len(plain))
	got = make([][]byte, len(plain))
	for i, p := range plain {
		prefix := []byte(fmt.Sprintf("p%d:", i))
		want[i] = seq.Seal(bytes.Clone(prefix), p)
		got[i] = append(make([]byte, 0, len(prefix)+len(p)+MaxOverhead), prefix...)
	}
	batch.SealBatch(got, plain)
	return want, got
}

// SealBatch must equal successive Seal calls byte for byte, in every
// protection mode, for random batches of random lengths, and the peer must
// open the packets in order.
func TestSealBatchMatchesSeal(t *testing.T) {
	for _, m := range protectionModes {
		t.Run(m.name, func(t *testing.T) {
			seq, rx := sessionPair(m.a, m.b)
			batch, _ := sessionPair(m.a, m.b)
			rng := rand.New(rand.NewPCG(3, 4))
			for round := range 300 {
				n := 1 + rng.IntN(maxBatch)
				if round%50 == 49 {
					n = 2*maxBatch + 3 // more than one internal batch
				}
				plain := make([][]byte, n)
				for i := range plain {
					size := 1 + rng.IntN(1300)
					if round%3 == 0 {
						size = 1200 // the common case: full packets
					}
					plain[i] = make([]byte, size)
					for j := range plain[i] {
						plain[i][j] = byte(rng.Uint32())
					}
				}
				want, got := sealBoth(t, seq, batch, plain)
				for i := range plain {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("round %d packet %d/%d (%d bytes): SealBatch differs from Seal", round, i, n, len(plain[i]))
					}
					prefix := fmt.Sprintf("p%d:", i)
					opened, err := rx.Open(nil, got[i][len(prefix):])
					if err != nil {
						t.Fatalf("round %d packet %d: Open: %v", round, i, err)
					}
					if !bytes.Equal(opened[:len(plain[i])], plain[i]) {
						t.Fatalf("round %d packet %d: opened plaintext differs", round, i)
					}
				}
			}
			if seq.txSeq != batch.txSeq {
				t.Fatalf("sequence numbers diverged: %d vs %d", seq.txSeq, batch.txSeq)
			}
		})
	}
}

// Lengths that exercise each pass shape: equal lengths (one 4-way or 8-way
// pass), all different (passes of 8..2 lanes and a single finish), one-block
// packets, lanes padded with duplicates (3, 5 packets).
func TestSealBatchShapes(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
	}{
		{"one", []int{1200}},
		{"two equal", []int{1200, 1200}},
		{"three", []int{1, 500, 1300}},
		{"four equal", []int{1200, 1200, 1200, 1200}},
		{"four different", []int{100, 1300, 700, 14}},
		{"single blocks", []int{1, 1, 1, 1, 1}},
		{"eight", []int{1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200}},
		{"eight mixed", []int{16, 1200, 32, 1199, 64, 1000, 1, 1300}},
		{"empty", nil},
	}
	for _, m := range protectionModes {
		for _, tc := range tests {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				seq, _ := sessionPair(m.a, m.b)
				batch, _ := sessionPair(m.a, m.b)
				plain := make([][]byte, len(tc.sizes))
				for i, n := range tc.sizes {
					plain[i] = bytes.Repeat([]byte{byte(i + 1)}, n)
				}
				want, got := sealBoth(t, seq, batch, plain)
				for i := range plain {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("packet %d: SealBatch differs from Seal", i)
					}
				}
			})
		}
	}
}

// Plaintexts laid in their own output buffer's spare capacity, as Seal
// allows, seal the same.
func TestSealBatchOverlap(t *testing.T) {
	seq, _ := sessionPair(protectionModes[3].a, protectionModes[3].b)
	batch, _ := sessionPair(protectionModes[3].a, protectionModes[3].b)
	sizes := []int{1200, 37, 800, 1200, 5}
	dst := make([][]byte, len(sizes))
	plain := make([][]byte, len(sizes))
	var want [][]byte
	for i, n := range sizes {
		p := bytes.Repeat([]byte{byte(7 * i)}, n)
		want = append(want, seq.Seal(nil, p))
		buf := make([]byte, 0, n+MaxOverhead)
		plain[i] = append(buf[4:4], p...) // inside dst[i]'s spare capacity
		dst[i] = buf
	}
	batch.SealBatch(dst, plain)
	for i := range sizes {
		if !bytes.Equal(dst[i], want[i]) {
			t.Fatalf("packet %d: differs from Seal", i)
		}
	}
}

func TestSealBatchLengthMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	NewDefaultCrypto().SealBatch(make([][]byte, 1), make([][]byte, 2))
}

func TestSealBatchDoesNotAllocate(t *testing.T) {
	for _, m := range protectionModes {
		a, _ := sessionPair(m.a, m.b)
		plain := make([][]byte, maxBatch)
		dst := make([][]byte, maxBatch)
		bufs := make([][]byte, maxBatch)
		for i := range plain {
			plain[i] = make([]byte, 100+150*i)
			bufs[i] = make([]byte, 0, len(plain[i])+MaxOverhead)
		}
		if n := testing.AllocsPerRun(50, func() {
			for i := range dst {
				dst[i] = bufs[i][:0]
			}
			a.SealBatch(dst, plain)
		}); n != 0 {
			t.Errorf("%s: SealBatch allocates %v times", m.name, n)
		}
	}
}

func FuzzSealBatch(f *testing.F) {
	f.Add(uint8(0), []byte{1, 2, 3}, uint16(1200), uint16(1200), uint16(1200), uint16(1200))
	f.Add(uint8(3), []byte("rtmfp"), uint16(1), uint16(1300), uint16(17), uint16(0))
	f.Add(uint8(1), []byte{0xff}, uint16(15), uint16(16), uint16(31), uint16(32))
	f.Fuzz(func(t *testing.T, mode uint8, seed []byte, l0, l1, l2, l3 uint16) {
		m := protectionModes[int(mode)%len(protectionModes)]
		seq, rx := sessionPair(m.a, m.b)
		batch, _ := sessionPair(m.a, m.b)
		var plain [][]byte
		for i, l := range []uint16{l0, l1, l2, l3, l3 / 2, l2 / 3, l1 / 5, l0 / 7} {
			p := make([]byte, int(l)%1400)
			for j := range p {
				p[j] = byte(j + i)
				if len(seed) > 0 {
					p[j] ^= seed[j%len(seed)]
				}
			}
			plain = append(plain, p)
		}
		plain = plain[:1+int(l0^l1)%len(plain)]
		want, got := sealBoth(t, seq, batch, plain)
		for i := range plain {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("packet %d: SealBatch differs from Seal", i)
			}
			prefix := fmt.Sprintf("p%d:", i)
			if _, err := rx.Open(nil, got[i][len(prefix):]); err != nil {
				t.Fatalf("packet %d: Open: %v", i, err)
			}
		}
	})
}

// Per-packet cost (the ns/packet metric) of sealing four or eight 1200-byte
// packets in one SealBatch; compare with BenchmarkSeal1200 (one packet per op).
func BenchmarkSealBatch4x1200(b *testing.B) { benchmarkSealBatch(b, 0, 4) }
func BenchmarkSealBatch8x1200(b *testing.B) { benchmarkSealBatch(b, 0, 8) }

func BenchmarkSealBatchHMAC4x1200(b *testing.B) { benchmarkSealBatch(b, 2, 4) }

func benchmarkSealBatch(b *testing.B, mode, n int) {
	tx, _ := sessionPair(protectionModes[mode].a, protectionModes[mode].b)
	plain := make([][]byte, n)
	dst := make([][]byte, n)
	bufs := make([][]byte, n)
	for i := range plain {
		plain[i] = make([]byte, 1200)
		bufs[i] = make([]byte, 0, 1200+MaxOverhead)
	}
	b.SetBytes(int64(1200 * n))
	b.ReportAllocs()
	for b.Loop() {
		for i := range dst {
			dst[i] = bufs[i][:0]
		}
		tx.SealBatch(dst, plain)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
}
