package bitmap_test

import "unsafe"

// bytesView returns the memory of w as bytes, for tests that look at the
// image a bitmap lives in.
func bytesView(w []uint64) []byte {
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), len(w)*8)
}
