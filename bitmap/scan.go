package bitmap

// kernels are the scan and count implementations a Bitmap uses, chosen once
// at New. find returns the index of the first word of w that differs from
// pattern, or len(w); popcount counts the set bits of w.
type kernels struct {
	name     string
	find     func(w []uint64, pattern uint64) int
	popcount func(w []uint64) int
}

// goKernels are the pure-Go reference implementations.
var goKernels = kernels{name: "go", find: findGo, popcount: popcountGo}

// selectKernels returns the fastest kernels this CPU runs, or the pure-Go
// ones when pureGo is set or the build has no assembly.
func selectKernels(pureGo bool) kernels {
	if pureGo {
		return goKernels
	}
	return asmKernels()
}

// AvailableKernels lists the kernel sets this CPU and build can run, the
// pure-Go one first. Tests and benchmarks use it to compare them.
func AvailableKernels() []string {
	names := []string{goKernels.name}
	if k := asmKernels(); k.name != goKernels.name {
		names = append(names, k.name)
	}
	return names
}
