//go:build linux

package iouring

import (
	"errors"

	"golang.org/x/sys/unix"
)

// dsync writes one contiguous run and makes it durable in one system call:
// pwritev2 with RWF_DSYNC. On an O_DIRECT block device the kernel sends the
// write with REQ_FUA and then, as for any DSYNC write, runs the device's
// fsync (blkdev_write_iter -> generic_write_sync -> blkdev_fsync), an empty
// REQ_PREFLUSH: the same cache flush fdatasync issues, so everything written
// before is covered too. On a regular file the filesystem makes at least
// the written range durable (a FUA write, or an fsync of the range).
//
// It is an optimisation only: it returns true when every byte was written
// and synced. On any other outcome (an error, a short write) the caller
// writes the batch again the ordinary way (pwrite/pwritev, then fdatasync),
// which attributes each failure to its block exactly as before; rewriting
// bytes that did land is harmless. A kernel that refuses the flag (before
// Linux 4.7: EOPNOTSUPP, or ENOSYS for pwritev2 itself) turns the path off
// for good (*off = true).
type dsync struct {
	off bool      // the kernel refused RWF_DSYNC once: never try again
	iov [1][]byte // scratch for a single-buffer run
	n   uint64    // runs made durable by pwritev2(RWF_DSYNC); read by tests
}

// write tries pwritev2(iovs, off, RWF_DSYNC) for a run of size bytes.
func (d *dsync) write(fd int, iovs [][]byte, off int64, size int) bool {
	if d.off {
		return false
	}
	var n int
	var err error
	for {
		n, err = unix.Pwritev2(fd, iovs, off, unix.RWF_DSYNC)
		if err != unix.EINTR {
			break
		}
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		d.off = true
		return false
	}
	if err != nil || n != size {
		return false
	}
	d.n++
	return true
}

// writeOne is write for one buffer.
func (d *dsync) writeOne(fd int, buf []byte, off int64) bool {
	d.iov[0] = buf
	ok := d.write(fd, d.iov[:], off, len(buf))
	d.iov[0] = nil // drop the reference to the caller's buffer
	return ok
}
