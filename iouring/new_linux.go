//go:build linux

package iouring

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// disabledPath is the sysctl that turns io_uring off (Linux 6.6): 0 allows
// it, 1 allows it only for members of kernel.io_uring_group, 2 denies it to
// everyone. A variable so tests can point it elsewhere.
var disabledPath = "/proc/sys/kernel/io_uring_disabled"

// New returns a Writer for fd, choosing io_uring when it is available and
// falling back to pwritev+fdatasync when it is not: io_uring_setup fails
// with ENOSYS, EPERM, EACCES or ENOMEM (ring memory is charged to
// RLIMIT_MEMLOCK before Linux 5.12), /proc/sys/kernel/io_uring_disabled
// denies it, or the kernel lacks IORING_FEAT_NODROP, IORING_REGISTER_PROBE,
// IORING_OP_WRITE or IORING_OP_FSYNC. The choice and its reason are logged
// at Info. Other setup failures are returned, as are an invalid or
// read-only fd and Options.Entries outside [0, 32768].
func New(fd int, opts Options) (Writer, error) {
	if fd < 0 {
		return nil, fmt.Errorf("iouring: new: invalid fd %d", fd)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return nil, fmt.Errorf("iouring: new: fd %d: %w", fd, os.NewSyscallError("fcntl", err))
	}
	if fl&unix.O_ACCMODE == unix.O_RDONLY {
		return nil, fmt.Errorf("iouring: new: fd %d is not open for writing", fd)
	}
	entries := opts.Entries
	if entries == 0 {
		entries = DefaultEntries
	}
	if entries < 1 || entries > maxEntries {
		return nil, fmt.Errorf("iouring: new: Entries %d outside [1, %d]", opts.Entries, maxEntries)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}

	reason := "forced by Options.Fallback"
	if !opts.Fallback {
		var w *uringWriter
		w, reason, err = newURing(fd, uint32(entries))
		if w != nil {
			w.mode = opts.Sync
		}
		if err != nil {
			return nil, err
		}
		if w != nil {
			log.Info("iouring: writer opened", "method", MethodIOUring, "fd", fd,
				"sq_entries", w.r.sqEntries, "cq_entries", w.r.cqEntries,
				"features", fmt.Sprintf("%#x", w.r.features))
			return w, nil
		}
	}
	log.Info("iouring: writer opened", "method", MethodPwritev, "fd", fd, "reason", reason)
	return &pwritevWriter{fd: fd}, nil
}

// newURing sets up and checks a ring. It returns the writer, or nil and
// the reason io_uring is unavailable, or an error that should fail New.
func newURing(fd int, entries uint32) (*uringWriter, string, error) {
	r, reason, err := setupRing(entries, opWrite, opFsync)
	if r == nil {
		return nil, reason, err
	}
	return &uringWriter{fd: fd, r: r, chunk: int(min(r.sqEntries, r.cqEntries))}, "", nil
}

// setupRing sets up a ring whose kernel has IORING_FEAT_NODROP and the
// opcodes ops. It returns the ring, or nil and the reason io_uring is
// unavailable here, or nil and an error that should fail the caller.
func setupRing(entries uint32, ops ...uint8) (*ring, string, error) {
	disabled := readDisabled()
	if disabled >= 2 {
		return nil, fmt.Sprintf("kernel.io_uring_disabled=%d: io_uring is off for every process", disabled), nil
	}
	r, err := newRing(entries)
	if err != nil {
		if reason, ok := setupFallbackReason(err, disabled); ok {
			return nil, reason, nil
		}
		return nil, "", fmt.Errorf("iouring: new: %w", err)
	}
	if r.features&featNoDrop == 0 {
		return nil, "kernel lacks IORING_FEAT_NODROP (Linux < 5.5)", r.close()
	}
	missing, ok, err := r.probe(ops...)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("%v (IORING_REGISTER_PROBE needs Linux 5.6)", err), r.close()
	case !ok:
		return nil, fmt.Sprintf("kernel ring lacks %s", opName(missing)), r.close()
	}
	return r, "", nil
}

// readDisabled returns kernel.io_uring_disabled, or 0 if it cannot be read
// (kernels before 6.6 do not have it).
func readDisabled() int {
	b, err := os.ReadFile(disabledPath)
	if err != nil {
		return 0
	}
	v, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0
	}
	return v
}

// setupFallbackReason says whether an io_uring_setup error means io_uring
// is unavailable here, and why.
func setupFallbackReason(err error, disabled int) (string, bool) {
	switch {
	case errors.Is(err, unix.ENOSYS):
		return "io_uring_setup: ENOSYS: kernel built without io_uring", true
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		if disabled == 1 {
			return "kernel.io_uring_disabled=1 and the process is not in kernel.io_uring_group", true
		}
		return fmt.Sprintf("%v: refused by a seccomp filter, LSM or sysctl", err), true
	case errors.Is(err, unix.ENOMEM):
		return fmt.Sprintf("%v: ring memory refused (RLIMIT_MEMLOCK before Linux 5.12)", err), true
	}
	return "", false
}

func opName(op uint8) string {
	switch op {
	case opWrite:
		return "IORING_OP_WRITE"
	case opFsync:
		return "IORING_OP_FSYNC"
	}
	return "opcode " + strconv.Itoa(int(op))
}
