//go:build linux

package iouring

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Fsyncer fsyncs several file descriptors at once: one IORING_OP_FSYNC
// per fd, all in one io_uring_enter that also waits for them. The kernel
// runs them in parallel (each on an io-wq worker), as dm-raid1 flushes its
// legs with one empty REQ_PREFLUSH bio each, sent together; a caller
// without io_uring issues fsync(2) per fd itself. It is safe for
// concurrent use (calls are serialised).
type Fsyncer struct {
	mu  sync.Mutex
	r   *ring
	max int     // most fds per call: min(SQ size, CQ size)
	res []int32 // per fd: the CQE result, or pending
	err error   // sticky: the ring failed
}

// NewFsyncer returns an Fsyncer for up to max fds per call. Where io_uring
// is unavailable (see New) it returns nil and the reason, with no error.
func NewFsyncer(max int) (*Fsyncer, string, error) {
	if max < 1 || max > maxEntries {
		return nil, "", fmt.Errorf("iouring: new fsyncer: %d fds outside [1, %d]", max, maxEntries)
	}
	r, reason, err := setupRing(uint32(max), opFsync)
	if r == nil {
		return nil, reason, err
	}
	return &Fsyncer{r: r, max: int(min(r.sqEntries, r.cqEntries)), res: make([]int32, max)}, "", nil
}

// Fsync fsyncs every fd in fds (at most the max given to NewFsyncer) and
// waits for all. errs[i] is the error of fds[i] (an *os.SyscallError
// "fsync" wrapping the errno), nil if it succeeded. err is set, and errs
// nil, if the ring itself failed; the Fsyncer is then unusable and the
// caller must fsync the fds itself, since whether they were is unknown.
func (s *Fsyncer) Fsync(fds []int) (errs []error, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.r == nil:
		return nil, ErrClosed
	case s.err != nil:
		return nil, s.err
	case len(fds) > s.max:
		return nil, fmt.Errorf("iouring: fsync of %d fds, more than %d", len(fds), s.max)
	case len(fds) == 0:
		return nil, nil
	}
	res := s.res[:len(fds)]
	for i, fd := range fds {
		res[i] = pending
		q := s.r.nextSQE()
		if q == nil {
			panic("iouring: assertion failed: submission queue full")
		}
		q.opcode = opFsync
		q.fd = int32(fd)
		q.userData = uint64(i)
	}
	if err := s.r.submitAndWait(len(fds), func(c *cqe) bool {
		if c.userData >= uint64(len(res)) || res[c.userData] != pending {
			return false // not ours: a stray from an earlier failed call
		}
		res[c.userData] = c.res
		return true
	}); err != nil {
		s.err = fmt.Errorf("iouring: ring unusable: %w", err)
		return nil, s.err
	}
	errs = make([]error, len(fds))
	for i, r := range res {
		if r < 0 {
			errs[i] = os.NewSyscallError("fsync", unix.Errno(-r))
		}
	}
	return errs, nil
}

// Close releases the ring. It is idempotent; Fsync after Close returns
// ErrClosed.
func (s *Fsyncer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r == nil {
		return nil
	}
	err := s.r.close()
	s.r = nil
	return err
}
