package bitmap_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/dlog-dev/dlog/bitmap"
)

// scanBits is the bitmap size of the scan benchmarks: 2^30 regions (128 MiB).
const scanBits = 1 << 30

var sink uint64

// sparseWords returns a 2^30-bit bitmap with 16 random set bits, the shape
// of a mostly-clean dirty log.
func sparseWords() []uint64 {
	w := make([]uint64, scanBits/64)
	touch(w)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 16; i++ {
		r := rng.Uint64N(scanBits)
		w[r/64] |= 1 << (r % 64)
	}
	return w
}

// touch writes every page of w, so that the benchmarks read real memory and
// not the kernel's shared zero page.
func touch(w []uint64) {
	for i := 0; i < len(w); i += 512 {
		w[i] = 1
		w[i] = 0
	}
}

// BenchmarkScan walks every set bit of a sparse 2^30-bit bitmap.
//
//	baseline=word-or   a plain loop ORing 8 words at a time, then bits.TrailingZeros
//	baseline=bitwise   one bit at a time, as cmirrord's find_next_zero_bit does
//	impl=X/summary     Bitmap.NextSet (shard counts skip empty shards)
//	impl=X/kernel      the selected find kernel over every word, no summary
//
// MB/s is bitmap bytes scanned per second.
func BenchmarkScan(b *testing.B) {
	w := sparseWords()
	bytes := int64(len(w) * 8)
	b.Run("baseline=word-or", func(b *testing.B) {
		b.SetBytes(bytes)
		for b.Loop() {
			var found uint64
			for i := 0; i+8 <= len(w); i += 8 {
				if w[i]|w[i+1]|w[i+2]|w[i+3]|w[i+4]|w[i+5]|w[i+6]|w[i+7] != 0 {
					for j := i; j < i+8; j++ {
						if w[j] != 0 {
							found++
						}
					}
				}
			}
			sink = found
		}
	})
	b.Run("baseline=bitwise", func(b *testing.B) {
		b.SetBytes(bytes)
		for b.Loop() {
			var found uint64
			for i := uint64(0); i < scanBits; i++ {
				if w[i/64]&(1<<(i%64)) != 0 {
					found++
				}
			}
			sink = found
		}
	})
	for _, name := range bitmap.AvailableKernels() {
		bm, err := bitmap.New(w, scanBits, bitmap.Options{PureGo: name == "go"})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("impl=%s/summary", name), func(b *testing.B) {
			b.SetBytes(bytes)
			for b.Loop() {
				var found uint64
				for i, ok := bm.NextSet(0); ok; i, ok = bm.NextSet(i + 1) {
					found++
				}
				sink = found
			}
		})
		b.Run(fmt.Sprintf("impl=%s/kernel", name), func(b *testing.B) {
			b.SetBytes(bytes)
			for b.Loop() {
				var found uint64
				for j := 0; j < len(w); j++ {
					j += bitmap.FindKernel(bm, w[j:], 0)
					if j < len(w) {
						found++
					}
				}
				sink = found
			}
		})
	}
}

// BenchmarkPopcount counts a dense 2^30-bit bitmap: Recount with each
// kernel, against a plain bits.OnesCount64 loop.
func BenchmarkPopcount(b *testing.B) {
	w := make([]uint64, scanBits/64)
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range w {
		w[i] = rng.Uint64()
	}
	bytes := int64(len(w) * 8)
	b.Run("baseline=onescount", func(b *testing.B) {
		b.SetBytes(bytes)
		for b.Loop() {
			sink = uint64(bitmap.PopcountPlain(w))
		}
	})
	for _, name := range bitmap.AvailableKernels() {
		bm, err := bitmap.New(w, scanBits, bitmap.Options{PureGo: name == "go"})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("impl="+name, func(b *testing.B) {
			b.SetBytes(bytes)
			for b.Loop() {
				sink = bm.Recount()
			}
		})
	}
}

// BenchmarkMarkClear sets and clears distinct regions from 1, 2 and 4
// goroutines, each in its own range of the bitmap. ns/op is per mark+clear
// pair over all goroutines, so throughput scaling is the ratio of ns/op.
func BenchmarkMarkClear(b *testing.B) {
	const n = 1 << 24
	for _, g := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			bm, err := bitmap.New(make([]uint64, n/64), n, bitmap.Options{Track: true, BlockOffset: 1024})
			if err != nil {
				b.Fatal(err)
			}
			per := b.N / g
			b.ResetTimer()
			var wg sync.WaitGroup
			for k := 0; k < g; k++ {
				wg.Add(1)
				go func(k int) {
					defer wg.Done()
					lo := uint64(k) * (n / uint64(g))
					span := uint64(n/g) - 1
					r := lo
					for i := 0; i < per; i++ {
						bm.Set(r)
						bm.Clear(r)
						r = lo + (r-lo+4099)%span
					}
				}(k)
			}
			wg.Wait()
		})
	}
}

// BenchmarkTest is the IN_SYNC path: one lock-free bit test.
func BenchmarkTest(b *testing.B) {
	const n = 1 << 24
	bm, err := bitmap.New(make([]uint64, n/64), n, bitmap.Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := uint64(0)
	var hits int
	for b.Loop() {
		if bm.Test(r) {
			hits++
		}
		r = (r + 4099) % n
	}
	sink = uint64(hits)
}
