package bitmap

import "math/bits"

// FindKernel runs b's find kernel over w, without the shard summary.
func FindKernel(b *Bitmap, w []uint64, pattern uint64) int { return b.k.find(w, pattern) }

// PopcountPlain is the baseline popcount: a plain loop of bits.OnesCount64.
func PopcountPlain(w []uint64) int {
	c := 0
	for _, x := range w {
		c += bits.OnesCount64(x)
	}
	return c
}
