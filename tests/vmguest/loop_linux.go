//go:build linux

package main

import "github.com/dlog-dev/dlog/internal/testutil/loopdev"

// Loop is a loop device over a sparse file in the guest's tmpfs.
type Loop = loopdev.Loop

// attachLoop creates file (size bytes, sparse, zero-filled) and attaches it
// to a free loop device with LOOP_CONFIGURE, which also sets the logical
// block size (busybox losetup has no --sector-size).
func attachLoop(file string, size int64, blockSize int) (*Loop, error) {
	return loopdev.Attach(file, size, loopdev.Options{BlockSize: blockSize})
}
