package bitmap

import (
	"math/bits"
	"sync/atomic"
)

// findGo is the reference for find: the first word of w that differs from
// pattern, or len(w). It ORs eight words per step, the loop docs/platform.md §5
// measured as the fastest portable scan, and loads atomically because
// writers may be changing words concurrently.
func findGo(w []uint64, p uint64) int {
	i := 0
	for ; i+8 <= len(w); i += 8 {
		x := (atomic.LoadUint64(&w[i]) ^ p) | (atomic.LoadUint64(&w[i+1]) ^ p) |
			(atomic.LoadUint64(&w[i+2]) ^ p) | (atomic.LoadUint64(&w[i+3]) ^ p) |
			(atomic.LoadUint64(&w[i+4]) ^ p) | (atomic.LoadUint64(&w[i+5]) ^ p) |
			(atomic.LoadUint64(&w[i+6]) ^ p) | (atomic.LoadUint64(&w[i+7]) ^ p)
		if x != 0 {
			break
		}
	}
	for ; i < len(w); i++ {
		if atomic.LoadUint64(&w[i]) != p {
			return i
		}
	}
	return len(w)
}

// popcountGo is the reference for popcount.
func popcountGo(w []uint64) int {
	var c0, c1, c2, c3 int
	i := 0
	for ; i+4 <= len(w); i += 4 {
		c0 += bits.OnesCount64(atomic.LoadUint64(&w[i]))
		c1 += bits.OnesCount64(atomic.LoadUint64(&w[i+1]))
		c2 += bits.OnesCount64(atomic.LoadUint64(&w[i+2]))
		c3 += bits.OnesCount64(atomic.LoadUint64(&w[i+3]))
	}
	for ; i < len(w); i++ {
		c0 += bits.OnesCount64(atomic.LoadUint64(&w[i]))
	}
	return c0 + c1 + c2 + c3
}
