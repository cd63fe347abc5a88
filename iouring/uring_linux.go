//go:build linux

package iouring

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// fsyncUserData tags the fdatasync's CQE; writes carry their block index.
	fsyncUserData = math.MaxUint64
	// pending marks a write whose CQE has not arrived.
	pending = math.MinInt32
)

// wop is one write to submit: blocks[index] from byte done on.
type wop struct {
	index int
	done  int
}

// uringWriter is the io_uring Writer.
type uringWriter struct {
	fd    int
	r     *ring
	chunk int // most SQEs in flight at once: min(SQ size, CQ size)

	res    []int32 // per block: the last CQE result, or pending
	ops    []wop   // scratch: the writes of the current pass
	retry  []wop   // scratch: short writes to retry
	pinned []Block // buffers the kernel may still read after a ring failure
	err    error   // sticky: the ring failed and cannot be trusted
	closed bool
	// mode says where the fdatasync goes (Options.Sync).
	mode SyncMode
	// dsync writes and syncs a synced single block in one system call.
	dsync dsync
}

var _ Writer = (*uringWriter)(nil)

func (w *uringWriter) Method() string { return MethodIOUring }

func (w *uringWriter) usable() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

// Write implements Writer. Pass 1 submits every block (in SyncAuto mode a
// single block is written with pwrite(2), which costs less than a ring
// round trip; a synced single block with pwritev2(RWF_DSYNC), which also
// makes it durable, and Write is done if that succeeds) and, if the sync goes on the ring, a drained fdatasync in the
// last submission. Pass 2, only when some write came back short, retries
// each remainder once and, if the sync goes on the ring, issues a second
// drained fdatasync to cover the retried bytes. Otherwise one
// fdatasync(2) follows both passes.
func (w *uringWriter) Write(blocks []Block, sync bool) error {
	if err := w.usable(); err != nil {
		return err
	}
	if len(blocks) == 0 && !sync {
		return nil
	}
	defer runtime.KeepAlive(blocks)

	res := w.results(len(blocks))
	var errs []BlockError
	ops := w.ops[:0]
	for i, b := range blocks {
		e, bad := invalid(i, b)
		switch {
		case bad:
			errs = append(errs, e)
		case len(b.Buf) == 0:
			res[i] = 0
		default:
			ops = append(ops, wop{index: i})
		}
	}
	w.ops = ops

	single := len(ops) == 1 && w.mode == SyncAuto
	ringSync := sync && (w.mode == SyncRing || (w.mode == SyncAuto && !single))
	var syncRes int32 = pending
	var err error
	if single && sync && len(errs) == 0 && w.dsync.writeOne(w.fd, blocks[ops[0].index].Buf, blocks[ops[0].index].Off) {
		return nil
	}
	if single {
		b := blocks[ops[0].index]
		n, err := pwrite(w.fd, b.Buf, b.Off)
		res[ops[0].index] = int32(n)
		if err != nil {
			res[ops[0].index] = -int32(err.(unix.Errno))
		}
	} else {
		syncRes, err = w.run(blocks, ops, res, ringSync)
		if err != nil {
			return w.fail(blocks, ops, res, errs, ringSync, syncRes, nil, err)
		}
	}
	retry := w.retry[:0]
	for _, op := range ops {
		r, n := res[op.index], len(blocks[op.index].Buf)
		switch {
		case r < 0:
			errs = append(errs, BlockError{Index: op.index, Off: blocks[op.index].Off, Err: unix.Errno(-r)})
		case int(r) < n:
			retry = append(retry, wop{index: op.index, done: int(r)})
		}
	}
	w.retry = retry

	var syncErr error
	if ringSync && syncRes < 0 {
		syncErr = os.NewSyscallError("fdatasync", unix.Errno(-syncRes))
	}
	if len(retry) > 0 {
		for _, op := range retry {
			res[op.index] = pending
		}
		syncRes2, err := w.run(blocks, retry, res, ringSync)
		if err != nil {
			return w.fail(blocks, retry, res, errs, ringSync, syncRes2, syncErr, err)
		}
		for _, op := range retry {
			b := blocks[op.index]
			more, rerr := resErr(res[op.index])
			if err := shortWriteError(op.done, more, rerr, len(b.Buf)); err != nil {
				errs = append(errs, BlockError{Index: op.index, Off: b.Off, Err: err})
			}
		}
		if ringSync && syncErr == nil && syncRes2 < 0 {
			syncErr = os.NewSyscallError("fdatasync", unix.Errno(-syncRes2))
		}
	}
	if sync && !ringSync {
		syncErr = fdatasync(w.fd)
	}
	if len(errs) == 0 && syncErr == nil {
		return nil
	}
	slices.SortFunc(errs, func(a, b BlockError) int { return a.Index - b.Index })
	return &BatchError{Writes: errs, Sync: syncErr}
}

// shortWriteError judges the one retry of a short write of an n-byte
// block: done bytes were written first, then the retry wrote more bytes or
// failed with err. It returns nil if the block is now complete.
func shortWriteError(done, more int, err error, n int) error {
	switch {
	case err != nil:
		return fmt.Errorf("%w: %d of %d bytes, retry of the rest: %w", ErrShortWrite, done, n, err)
	case done+more < n:
		return fmt.Errorf("%w: %d of %d bytes after one retry", ErrShortWrite, done+more, n)
	}
	return nil
}

// resErr splits a CQE result into a byte count and an errno.
func resErr(res int32) (int, error) {
	if res < 0 {
		return 0, unix.Errno(-res)
	}
	return int(res), nil
}

// Sync implements Writer: one fdatasync(2), or in SyncRing mode one
// IORING_OP_FSYNC(DATASYNC).
func (w *uringWriter) Sync() error {
	if err := w.usable(); err != nil {
		return err
	}
	if w.mode != SyncRing {
		return fdatasync(w.fd)
	}
	res, err := w.run(nil, nil, nil, true)
	if err != nil {
		w.err = fmt.Errorf("iouring: ring unusable: %w", err)
		return w.err
	}
	if res < 0 {
		return os.NewSyscallError("fdatasync", unix.Errno(-res))
	}
	return nil
}

// results returns w.res sized for n blocks, every entry pending.
func (w *uringWriter) results(n int) []int32 {
	if cap(w.res) < n {
		w.res = make([]int32, n)
	}
	res := w.res[:n]
	for i := range res {
		res[i] = pending
	}
	return res
}

// run submits ops, at most w.chunk at a time, with user_data = block index,
// and, if sync, one fdatasync with IOSQE_IO_DRAIN after the last write
// (in the same submission when there is room), and waits for every
// completion. It stores write results in res[index] and returns the
// fdatasync's result (pending if it never completed or sync is false). Each submission is reaped in full
// before the next, so at most w.chunk CQEs are ever outstanding.
func (w *uringWriter) run(blocks []Block, ops []wop, res []int32, sync bool) (syncRes int32, err error) {
	syncRes = pending
	next, syncQueued := 0, !sync
	for next < len(ops) || !syncQueued {
		n := 0
		for ; n < w.chunk && next < len(ops); n, next = n+1, next+1 {
			op := ops[next]
			b := &blocks[op.index]
			buf := b.Buf[op.done:]
			s := w.sqe()
			s.opcode = opWrite
			s.fd = int32(w.fd)
			s.off = uint64(b.Off + int64(op.done))
			s.addr = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
			s.len = uint32(len(buf))
			s.userData = uint64(op.index)
		}
		if !syncQueued && next == len(ops) && n < w.chunk {
			s := w.sqe()
			s.opcode = opFsync
			s.flags = sqeIODrain
			s.fd = int32(w.fd)
			s.opFlags = fsyncDatasync
			s.userData = fsyncUserData
			syncQueued = true
			n++
		}
		err := w.r.submitAndWait(n, func(c *cqe) bool {
			switch {
			case c.userData == fsyncUserData:
				syncRes = c.res
			case c.userData < uint64(len(res)) && res[c.userData] == pending:
				res[c.userData] = c.res
			default:
				return false // not ours: a stray from an earlier failed batch
			}
			return true
		})
		if err != nil {
			return syncRes, err
		}
	}
	return syncRes, nil
}

// sqe returns a zeroed SQE; the caller never queues more than the SQ holds.
func (w *uringWriter) sqe() *sqe {
	s := w.r.nextSQE()
	if s == nil {
		panic("iouring: assertion failed: submission queue full")
	}
	return s
}

// fail handles a ring failure in the middle of a batch: the writer becomes
// unusable, the blocks whose CQEs never arrived are reported with err, and
// the batch's buffers stay referenced because the kernel may still read
// them. syncErr is an earlier pass's fdatasync failure, which takes
// precedence.
func (w *uringWriter) fail(blocks []Block, ops []wop, res []int32, errs []BlockError, sync bool, syncRes int32, syncErr, err error) error {
	w.err = fmt.Errorf("iouring: ring unusable: %w", err)
	w.pinned = blocks
	for _, op := range ops {
		b := blocks[op.index]
		var e error
		switch r := res[op.index]; {
		case r == pending:
			e = w.err
		case op.done > 0: // a retry
			more, rerr := resErr(r)
			e = shortWriteError(op.done, more, rerr, len(b.Buf))
		case r < 0:
			e = unix.Errno(-r)
		case int(r) < len(b.Buf):
			e = fmt.Errorf("%w: %d of %d bytes, not retried: %w", ErrShortWrite, r, len(b.Buf), w.err)
		}
		if e != nil {
			errs = append(errs, BlockError{Index: op.index, Off: b.Off, Err: e})
		}
	}
	be := &BatchError{Writes: errs, Sync: syncErr}
	switch {
	case !sync || be.Sync != nil:
	case syncRes == pending:
		be.Sync = w.err
	case syncRes < 0:
		be.Sync = os.NewSyscallError("fdatasync", unix.Errno(-syncRes))
	}
	slices.SortFunc(be.Writes, func(a, b BlockError) int { return a.Index - b.Index })
	return be
}

// Close implements Writer.
func (w *uringWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	w.res, w.ops, w.retry = nil, nil, nil
	err := w.r.close()
	w.pinned = nil
	return err
}
