//go:build amd64 && !purego && gc

package bitmap

import "github.com/klauspost/cpuid/v2"

// Implemented in scan_amd64.s. p points at n words; n may be 0.
//
//go:noescape
func findAVX2(p *uint64, n int, pattern uint64) int

//go:noescape
func popcntAVX512(p *uint64, n int) int

//go:noescape
func popcntScalar(p *uint64, n int) int

func findAVX2Slice(w []uint64, p uint64) int {
	if len(w) == 0 {
		return 0
	}
	return findAVX2(&w[0], len(w), p)
}

func popcntAVX512Slice(w []uint64) int {
	if len(w) == 0 {
		return 0
	}
	return popcntAVX512(&w[0], len(w))
}

func popcntScalarSlice(w []uint64) int {
	if len(w) == 0 {
		return 0
	}
	return popcntScalar(&w[0], len(w))
}

// asmKernels picks, per feature, the assembly this CPU can run.
func asmKernels() kernels {
	k := goKernels
	name := ""
	if cpuid.CPU.Supports(cpuid.AVX2) {
		k.find = findAVX2Slice
		name = "avx2"
	}
	switch {
	case cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512VPOPCNTDQ):
		k.popcount = popcntAVX512Slice
		name += "+vpopcntq"
	case cpuid.CPU.Supports(cpuid.POPCNT):
		k.popcount = popcntScalarSlice
		name += "+popcnt"
	}
	if name != "" {
		k.name = name
	}
	return k
}
