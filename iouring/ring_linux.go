//go:build linux

package iouring

import (
	"errors"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel ABI constants from include/uapi/linux/io_uring.h. x/sys/unix has
// the syscall numbers but none of these.
const (
	opNop   = 0  // IORING_OP_NOP
	opFsync = 3  // IORING_OP_FSYNC
	opWrite = 23 // IORING_OP_WRITE (Linux 5.6)

	sqeIODrain    = 1 << 1 // IOSQE_IO_DRAIN
	fsyncDatasync = 1 << 0 // IORING_FSYNC_DATASYNC

	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS

	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP (Linux 5.4)
	featNoDrop     = 1 << 1 // IORING_FEAT_NODROP (Linux 5.5)

	sqCQOverflow = 1 << 1 // IORING_SQ_CQ_OVERFLOW

	offSQRing = 0          // IORING_OFF_SQ_RING
	offCQRing = 0x8000000  // IORING_OFF_CQ_RING
	offSQEs   = 0x10000000 // IORING_OFF_SQES

	registerProbe    = 8      // IORING_REGISTER_PROBE (Linux 5.6)
	probeOpSupported = 1 << 0 // IO_URING_OP_SUPPORTED

	maxEntries = 32768 // IORING_MAX_ENTRIES
)

// sqringOffsets is struct io_sqring_offsets.
type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

// cqringOffsets is struct io_cqring_offsets.
type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// params is struct io_uring_params, filled in by io_uring_setup.
type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// sqe is struct io_uring_sqe, with the unions named after the members this
// package uses.
type sqe struct {
	opcode      uint8
	flags       uint8  // IOSQE_*
	ioprio      uint16 // ioprio
	fd          int32
	off         uint64 // off / addr2
	addr        uint64 // addr / splice_off_in
	len         uint32
	opFlags     uint32 // rw_flags / fsync_flags / ...: the field giouring left stale
	userData    uint64
	bufIndex    uint16 // buf_index / buf_group
	personality uint16
	spliceFDIn  int32 // splice_fd_in / file_index
	addr3       uint64
	_           uint64
}

// cqe is struct io_uring_cqe (without the CQE32 extension).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// probeOp and probe are struct io_uring_probe_op and io_uring_probe with
// room for every opcode an 8-bit op number can name.
type probeOp struct {
	op    uint8
	resv  uint8
	flags uint16
	resv2 uint32
}

type probe struct {
	lastOp uint8
	opsLen uint8
	resv   uint16
	resv2  [3]uint32
	ops    [256]probeOp
}

// Compile-time layout checks: each line fails to compile (constant overflow
// or negative array length) unless the size is exactly the kernel's.
var (
	_ [64 - unsafe.Sizeof(sqe{})]byte
	_ [unsafe.Sizeof(sqe{}) - 64]byte
	_ [16 - unsafe.Sizeof(cqe{})]byte
	_ [unsafe.Sizeof(cqe{}) - 16]byte
	_ [120 - unsafe.Sizeof(params{})]byte
	_ [unsafe.Sizeof(params{}) - 120]byte
	_ [16 + 256*8 - unsafe.Sizeof(probe{})]byte
	_ [unsafe.Sizeof(probe{}) - 16 - 256*8]byte
)

// ring is one io_uring instance set up with plain flags: no SQPOLL, no
// IOPOLL, no SINGLE_ISSUER|DEFER_TASKRUN. It is owned by one goroutine at a
// time; the only concurrency is with the kernel, through the shared head
// and tail words, which are read and written with sync/atomic.
type ring struct {
	fd       int
	features uint32

	sqPtr, cqPtr, sqesPtr unsafe.Pointer // mappings, for munmap
	sqLen, cqLen, sqesLen uintptr

	sqHead, sqTail, sqFlags *uint32
	sqMask, sqEntries       uint32
	sqes                    []sqe
	tail                    uint32 // local SQ tail: SQEs before it are filled in

	cqHead, cqTail    *uint32
	cqMask, cqEntries uint32
	cqes              []cqe
}

// newRing sets up a ring with room for entries submissions. Errors from
// io_uring_setup are returned as *os.SyscallError around the errno.
func newRing(entries uint32) (*ring, error) {
	var p params
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, os.NewSyscallError("io_uring_setup", errno)
	}
	r := &ring{fd: int(fd), features: p.features}
	if err := r.mmap(&p); err != nil {
		return nil, errors.Join(err, r.close())
	}
	return r, nil
}

// mmap maps the SQ ring, the CQ ring (the same mapping when the kernel has
// IORING_FEAT_SINGLE_MMAP) and the SQE array, and points the ring's fields
// into them.
func (r *ring) mmap(p *params) error {
	const prot = unix.PROT_READ | unix.PROT_WRITE
	const flags = unix.MAP_SHARED | unix.MAP_POPULATE
	r.sqLen = uintptr(p.sqOff.array) + uintptr(p.sqEntries)*4
	r.cqLen = uintptr(p.cqOff.cqes) + uintptr(p.cqEntries)*unsafe.Sizeof(cqe{})
	single := p.features&featSingleMmap != 0
	if single {
		r.sqLen = max(r.sqLen, r.cqLen)
		r.cqLen = r.sqLen
	}
	var err error
	if r.sqPtr, err = unix.MmapPtr(r.fd, offSQRing, nil, r.sqLen, prot, flags); err != nil {
		r.sqPtr = nil
		return os.NewSyscallError("mmap sq ring", err)
	}
	if single {
		r.cqPtr = r.sqPtr
	} else if r.cqPtr, err = unix.MmapPtr(r.fd, offCQRing, nil, r.cqLen, prot, flags); err != nil {
		r.cqPtr = nil
		return os.NewSyscallError("mmap cq ring", err)
	}
	r.sqesLen = uintptr(p.sqEntries) * unsafe.Sizeof(sqe{})
	if r.sqesPtr, err = unix.MmapPtr(r.fd, offSQEs, nil, r.sqesLen, prot, flags); err != nil {
		r.sqesPtr = nil
		return os.NewSyscallError("mmap sqes", err)
	}

	r.sqHead = (*uint32)(unsafe.Add(r.sqPtr, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(r.sqPtr, p.sqOff.tail))
	r.sqFlags = (*uint32)(unsafe.Add(r.sqPtr, p.sqOff.flags))
	r.sqMask = *(*uint32)(unsafe.Add(r.sqPtr, p.sqOff.ringMask))
	r.sqEntries = p.sqEntries
	r.sqes = unsafe.Slice((*sqe)(r.sqesPtr), p.sqEntries)
	r.tail = atomic.LoadUint32(r.sqTail)
	// Slot i of the SQ index array always names SQE i: submission order is
	// the order SQEs are filled in.
	array := unsafe.Slice((*uint32)(unsafe.Add(r.sqPtr, p.sqOff.array)), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}

	r.cqHead = (*uint32)(unsafe.Add(r.cqPtr, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(r.cqPtr, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(r.cqPtr, p.cqOff.ringMask))
	r.cqEntries = p.cqEntries
	r.cqes = unsafe.Slice((*cqe)(unsafe.Add(r.cqPtr, p.cqOff.cqes)), p.cqEntries)
	return nil
}

// close unmaps the rings and closes the ring fd. The kernel cancels or
// finishes anything still in flight.
func (r *ring) close() error {
	var errs []error
	if r.sqesPtr != nil {
		errs = append(errs, unix.MunmapPtr(r.sqesPtr, r.sqesLen))
	}
	if r.cqPtr != nil && r.cqPtr != r.sqPtr {
		errs = append(errs, unix.MunmapPtr(r.cqPtr, r.cqLen))
	}
	if r.sqPtr != nil {
		errs = append(errs, unix.MunmapPtr(r.sqPtr, r.sqLen))
	}
	r.sqesPtr, r.cqPtr, r.sqPtr = nil, nil, nil
	r.sqes, r.cqes = nil, nil
	if r.fd >= 0 {
		errs = append(errs, unix.Close(r.fd))
		r.fd = -1
	}
	return errors.Join(errs...)
}

// probe reports whether the kernel supports every opcode in ops. It
// returns the first unsupported one, or an error (EINVAL before Linux 5.6,
// which has no IORING_REGISTER_PROBE).
func (r *ring) probe(ops ...uint8) (missing uint8, ok bool, err error) {
	var p probe
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerProbe,
		uintptr(unsafe.Pointer(&p)), uintptr(len(p.ops)), 0, 0)
	if errno != 0 {
		return 0, false, os.NewSyscallError("io_uring_register(IORING_REGISTER_PROBE)", errno)
	}
	for _, op := range ops {
		if int(op) >= int(p.opsLen) || p.ops[op].flags&probeOpSupported == 0 {
			return op, false, nil
		}
	}
	return 0, true, nil
}

// nextSQE returns the next free SQE, zeroed, or nil if the SQ is full.
// Zeroing matters: a slot last used by an fsync must not hand its
// fsync_flags to a write as rw_flags (the giouring bug).
func (r *ring) nextSQE() *sqe {
	if r.tail-atomic.LoadUint32(r.sqHead) >= r.sqEntries {
		return nil
	}
	s := &r.sqes[r.tail&r.sqMask]
	*s = sqe{}
	r.tail++
	return s
}

// unsubmitted is the number of SQEs filled in but not yet consumed by the
// kernel.
func (r *ring) unsubmitted() uint32 {
	return r.tail - atomic.LoadUint32(r.sqHead)
}

// enter publishes the SQ tail and calls io_uring_enter, submitting every
// unsubmitted SQE if submit is set and, with enterGetEvents in flags,
// waiting until minComplete CQEs are ready. It retries on EINTR, which the
// Go runtime's preemption signals make common during a wait; the kernel
// only reports EINTR when it submitted nothing, and minComplete counts from
// the unchanged CQ head, so the retry is exact.
func (r *ring) enter(submit bool, minComplete, flags uint32) (int, error) {
	atomic.StoreUint32(r.sqTail, r.tail)
	for {
		var toSubmit uint32
		if submit {
			toSubmit = r.unsubmitted()
		}
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit),
			uintptr(minComplete), uintptr(flags), 0, 0)
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		default:
			return 0, errno
		}
	}
}

// reap consumes every ready CQE, calling fn on each, and returns how many
// fn counted (returned true for).
func (r *ring) reap(fn func(c *cqe) bool) int {
	head := atomic.LoadUint32(r.cqHead)
	tail := atomic.LoadUint32(r.cqTail)
	n := 0
	for ; head != tail; head++ {
		if fn(&r.cqes[head&r.cqMask]) {
			n++
		}
	}
	atomic.StoreUint32(r.cqHead, head)
	return n
}

// rewind withdraws SQEs that the kernel has not consumed, so that a later
// enter cannot submit them after their buffers are gone. It is safe because
// without SQPOLL the kernel reads the SQ only inside io_uring_enter.
func (r *ring) rewind() {
	r.tail = atomic.LoadUint32(r.sqHead)
	atomic.StoreUint32(r.sqTail, r.tail)
}

// Stall handling for EAGAIN and EBUSY with nothing in flight to wait for.
const (
	stallSleep = 50 * time.Microsecond
	maxStalls  = 2000 // ~0.1 s of sleeping, plus syscalls
)

// submitAndWait submits everything in the SQ and reaps CQEs until fn has
// counted n of them. The caller keeps n at most the CQ size, so the CQ
// cannot overflow; if it does anyway (another user of the ring), the kernel
// keeps the overflow (IORING_FEAT_NODROP, required by New) and each
// GETEVENTS enter flushes it back into the ring. EBUSY (a CQ overflow
// backlog blocks submission on older kernels) and EAGAIN (the kernel is
// short of memory for requests) are answered by reaping, waiting for one
// in-flight completion, or a short sleep. Any other error rewinds the
// unsubmitted SQEs and is returned; SQEs already in flight may then still
// complete later, and the caller must keep their buffers alive.
func (r *ring) submitAndWait(n int, fn func(c *cqe) bool) error {
	got, stalls := 0, 0
	for got < n {
		want := uint32(n - got)
		_, err := r.enter(true, want, enterGetEvents)
		if err != nil && err != unix.EAGAIN && err != unix.EBUSY {
			r.rewind()
			return os.NewSyscallError("io_uring_enter", err)
		}
		k := r.reap(fn)
		got += k
		if err == nil || k > 0 {
			stalls = 0
			continue
		}
		// Nothing was reaped: wait for one completion if any is in flight,
		// else back off and retry the submission.
		if inflight := want - r.unsubmitted(); inflight > 0 {
			if _, err := r.enter(false, 1, enterGetEvents); err != nil && err != unix.EAGAIN && err != unix.EBUSY {
				r.rewind()
				return os.NewSyscallError("io_uring_enter", err)
			}
			continue
		}
		if stalls++; stalls > maxStalls {
			r.rewind()
			return os.NewSyscallError("io_uring_enter", err)
		}
		time.Sleep(stallSleep)
	}
	return nil
}
