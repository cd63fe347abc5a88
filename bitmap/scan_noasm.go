//go:build !amd64 || purego || !gc

package bitmap

func asmKernels() kernels { return goKernels }
