//go:build linux

package iouring

import (
	"cmp"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

const (
	// iovMax is IOV_MAX (UIO_MAXIOV), the most iovecs one pwritev takes.
	iovMax = 1024
	// maxRunLen caps the bytes of one coalesced pwritev, well under the
	// kernel's per-call limit (MAX_RW_COUNT, just under 2 GiB).
	maxRunLen = 1 << 30
)

// pwritevWriter is the fallback Writer: blocks sorted by offset, adjacent
// ones coalesced into one pwritev, then one fdatasync.
type pwritevWriter struct {
	fd     int
	order  []int    // scratch: block indices sorted by offset
	iovs   [][]byte // scratch: one run's buffers
	closed bool
	dsync  dsync // a synced single run in one pwritev2(RWF_DSYNC)
}

var _ Writer = (*pwritevWriter)(nil)

func (w *pwritevWriter) Method() string { return MethodPwritev }

// Write implements Writer. A coalesced run that fails is retried block by
// block, so every error is attributed to exactly the block that caused it.
func (w *pwritevWriter) Write(blocks []Block, sync bool) error {
	if w.closed {
		return ErrClosed
	}
	var errs []BlockError
	order := w.order[:0]
	for i, b := range blocks {
		if e, bad := invalid(i, b); bad {
			errs = append(errs, e)
		} else if len(b.Buf) > 0 {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(blocks[a].Off, blocks[b].Off) })
	w.order = order
	if sync && len(errs) == 0 && len(order) > 0 && w.dsyncRun(blocks, order) {
		return nil
	}

	for i := 0; i < len(order); {
		first := blocks[order[i]]
		end, size := first.Off+int64(len(first.Buf)), len(first.Buf)
		j := i + 1
		for ; j < len(order) && j-i < iovMax; j++ {
			b := blocks[order[j]]
			if b.Off != end || size+len(b.Buf) > maxRunLen {
				break
			}
			end += int64(len(b.Buf))
			size += len(b.Buf)
		}
		errs = w.writeRun(blocks, order[i:j], errs)
		i = j
	}

	var syncErr error
	if sync {
		syncErr = fdatasync(w.fd)
	}
	if len(errs) == 0 && syncErr == nil {
		return nil
	}
	slices.SortFunc(errs, func(a, b BlockError) int { return a.Index - b.Index })
	return &BatchError{Writes: errs, Sync: syncErr}
}

// dsyncRun writes blocks[order[0]], blocks[order[1]], ... and syncs them
// with one pwritev2(RWF_DSYNC) if they form one run on disk (contiguous, at
// most iovMax buffers and maxRunLen bytes), and reports whether that
// succeeded. If not, nothing is known and Write proceeds as without it.
func (w *pwritevWriter) dsyncRun(blocks []Block, order []int) bool {
	if len(order) > iovMax {
		return false
	}
	first := blocks[order[0]]
	if len(order) == 1 {
		return w.dsync.writeOne(w.fd, first.Buf, first.Off)
	}
	end, size := first.Off, 0
	iovs := w.iovs[:0]
	for _, i := range order {
		b := blocks[i]
		if b.Off != end || size+len(b.Buf) > maxRunLen {
			clear(iovs)
			w.iovs = iovs[:0]
			return false
		}
		end += int64(len(b.Buf))
		size += len(b.Buf)
		iovs = append(iovs, b.Buf)
	}
	ok := w.dsync.write(w.fd, iovs, first.Off, size)
	clear(iovs) // drop the references to the caller's buffers
	w.iovs = iovs[:0]
	return ok
}

// writeRun writes blocks[run[0]], blocks[run[1]], ..., which are contiguous
// on disk, with one pwritev, and appends their failures to errs. After a
// short pwritev the blocks it covered are done, the block it stopped in has
// its remainder retried once, and the rest are written one by one. After a
// failed pwritev every block is written on its own.
func (w *pwritevWriter) writeRun(blocks []Block, run []int, errs []BlockError) []BlockError {
	if len(run) == 1 {
		b := blocks[run[0]]
		if err := writeBlock(w.fd, b.Buf, b.Off); err != nil {
			errs = append(errs, BlockError{Index: run[0], Off: b.Off, Err: err})
		}
		return errs
	}
	iovs := w.iovs[:0]
	for _, i := range run {
		iovs = append(iovs, blocks[i].Buf)
	}
	n, err := pwritev(w.fd, iovs, blocks[run[0]].Off)
	clear(iovs) // drop the references to the caller's buffers
	w.iovs = iovs[:0]
	if err != nil {
		n = 0
	}
	k := 0
	for ; k < len(run) && n >= len(blocks[run[k]].Buf); k++ {
		n -= len(blocks[run[k]].Buf)
	}
	if k < len(run) && n > 0 {
		b := blocks[run[k]]
		if err := retryRemainder(w.fd, b.Buf, b.Off, n); err != nil {
			errs = append(errs, BlockError{Index: run[k], Off: b.Off, Err: err})
		}
		k++
	}
	for ; k < len(run); k++ {
		b := blocks[run[k]]
		if err := writeBlock(w.fd, b.Buf, b.Off); err != nil {
			errs = append(errs, BlockError{Index: run[k], Off: b.Off, Err: err})
		}
	}
	return errs
}

// Sync implements Writer.
func (w *pwritevWriter) Sync() error {
	if w.closed {
		return ErrClosed
	}
	return fdatasync(w.fd)
}

// Close implements Writer; the fallback holds no resources.
func (w *pwritevWriter) Close() error {
	w.closed = true
	w.order, w.iovs = nil, nil
	return nil
}

// writeBlock writes buf at off with pwrite, retrying the remainder of a
// short write once.
func writeBlock(fd int, buf []byte, off int64) error {
	n, err := pwrite(fd, buf, off)
	if err != nil {
		return err
	}
	if n < len(buf) {
		return retryRemainder(fd, buf, off, n)
	}
	return nil
}

// retryRemainder is the one retry after a write that stopped at done.
func retryRemainder(fd int, buf []byte, off int64, done int) error {
	n, err := pwrite(fd, buf[done:], off+int64(done))
	return shortWriteError(done, n, err, len(buf))
}

// pwrite is unix.Pwrite retried on EINTR. Errors are unix.Errno.
func pwrite(fd int, buf []byte, off int64) (int, error) {
	for {
		n, err := unix.Pwrite(fd, buf, off)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// pwritev is unix.Pwritev retried on EINTR. Errors are unix.Errno.
func pwritev(fd int, iovs [][]byte, off int64) (int, error) {
	for {
		n, err := unix.Pwritev(fd, iovs, off)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// fdatasync is unix.Fdatasync retried on EINTR.
func fdatasync(fd int) error {
	for {
		err := unix.Fdatasync(fd)
		if err != unix.EINTR {
			if err != nil {
				return os.NewSyscallError("fdatasync", err)
			}
			return nil
		}
	}
}

// invalid returns the error of block i if no mechanism may write it (a
// negative offset, more than MaxBlockLen bytes): EINVAL before any I/O.
func invalid(i int, b Block) (BlockError, bool) {
	if b.Off < 0 || len(b.Buf) > MaxBlockLen {
		return BlockError{Index: i, Off: b.Off, Err: unix.EINVAL}, true
	}
	return BlockError{}, false
}
