package bitmap

import (
	"math/rand/v2"
	"testing"
)

// kernelSets returns every kernel set this CPU and build can run, by name.
func kernelSets(t testing.TB) []kernels {
	ks := []kernels{goKernels}
	if k := asmKernels(); k.name != goKernels.name {
		ks = append(ks, k)
	} else {
		t.Logf("no assembly kernels on this CPU/build; testing the pure-Go set only")
	}
	return ks
}

// The lengths where vector loops and their remainders meet.
var edgeLengths = []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1023, 1024, 1025}

// TestKernelsEqualFind puts one differing word at every position of every
// edge length, for both patterns, and requires each kernel set to find it
// where the reference does.
func TestKernelsEqualFind(t *testing.T) {
	for _, k := range kernelSets(t) {
		for _, n := range edgeLengths {
			for _, p := range []uint64{0, ^uint64(0)} {
				w := make([]uint64, n)
				for i := range w {
					w[i] = p
				}
				if got := k.find(w, p); got != n {
					t.Fatalf("%s: find(len %d, pattern %#x) on uniform words = %d, want %d", k.name, n, p, got, n)
				}
				for at := 0; at < n; at++ {
					for _, bit := range []uint{0, 31, 63} {
						w[at] = p ^ 1<<bit
						want := findGo(w, p)
						if want != at {
							t.Fatalf("reference find = %d, want %d", want, at)
						}
						if got := k.find(w, p); got != want {
							t.Fatalf("%s: find(len %d, pattern %#x, diff at %d bit %d) = %d, want %d", k.name, n, p, at, bit, got, want)
						}
						w[at] = p
					}
				}
			}
		}
	}
}

func TestKernelsEqualPopcount(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range kernelSets(t) {
		for _, n := range edgeLengths {
			for trial := 0; trial < 8; trial++ {
				w := make([]uint64, n)
				for i := range w {
					switch trial % 4 {
					case 0:
						w[i] = rng.Uint64()
					case 1:
						w[i] = ^uint64(0)
					case 2:
						w[i] = rng.Uint64() & rng.Uint64() & rng.Uint64()
					}
				}
				want := 0
				for _, x := range w {
					for b := 0; b < 64; b++ {
						want += int(x >> b & 1)
					}
				}
				if got := popcountGo(w); got != want {
					t.Fatalf("reference popcount(len %d) = %d, want %d", n, got, want)
				}
				if got := k.popcount(w); got != want {
					t.Fatalf("%s: popcount(len %d, trial %d) = %d, want %d", k.name, n, trial, got, want)
				}
			}
		}
	}
}

// TestKernelsUnaligned runs the kernels on slices that start at every word
// offset within a cache line pair, since a Bitmap scans from any word.
func TestKernelsUnaligned(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := make([]uint64, 300)
	for _, k := range kernelSets(t) {
		for off := 0; off < 16; off++ {
			for i := range base {
				base[i] = 0
			}
			at := off + rng.IntN(len(base)-off)
			base[at] = 1 << rng.IntN(64)
			w := base[off:]
			if got, want := k.find(w, 0), at-off; got != want {
				t.Fatalf("%s: find at offset %d = %d, want %d", k.name, off, got, want)
			}
			if got := k.popcount(w); got != 1 {
				t.Fatalf("%s: popcount at offset %d = %d, want 1", k.name, off, got)
			}
		}
	}
}

// FuzzScan checks every kernel set against the pure-Go reference on
// arbitrary words and patterns.
func FuzzScan(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add(make([]byte, 8*17), true)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, false)
	ks := kernelSets(f)
	f.Fuzz(func(t *testing.T, raw []byte, ones bool) {
		w := make([]uint64, len(raw)/8)
		for i := range w {
			for b := 0; b < 8; b++ {
				w[i] |= uint64(raw[i*8+b]) << (8 * b)
			}
		}
		p := uint64(0)
		if ones {
			p = ^uint64(0)
		}
		wantFind, wantPop := findGo(w, p), popcountGo(w)
		for _, k := range ks {
			if got := k.find(w, p); got != wantFind {
				t.Fatalf("%s: find = %d, want %d", k.name, got, wantFind)
			}
			if got := k.popcount(w); got != wantPop {
				t.Fatalf("%s: popcount = %d, want %d", k.name, got, wantPop)
			}
		}
	})
}
