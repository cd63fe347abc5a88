//go:build linux

package iouring

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// newTestRing sets up a ring or skips, saying why, where io_uring is refused.
func newTestRing(t *testing.T, entries uint32) *ring {
	t.Helper()
	r, err := newRing(entries)
	if err != nil {
		if reason, ok := setupFallbackReason(err, readDisabled()); ok {
			t.Skipf("io_uring unavailable: %s", reason)
		}
		t.Fatalf("newRing: %v", err)
	}
	t.Cleanup(func() {
		if err := r.close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return r
}

// queueNops fills n SQEs with NOPs tagged first, first+1, ...
func queueNops(t *testing.T, r *ring, first, n int) {
	t.Helper()
	for i := range n {
		s := r.nextSQE()
		if s == nil {
			t.Fatalf("SQ full after %d of %d", i, n)
		}
		s.opcode = opNop
		s.userData = uint64(first + i)
	}
}

// Ensure that the ring recovers completions beyond its CQ size: with
// IORING_FEAT_NODROP the kernel keeps them on an overflow list, flags
// IORING_SQ_CQ_OVERFLOW, and submitAndWait gets every one back.
func TestRingCQOverflow(t *testing.T) {
	r := newTestRing(t, 4)
	if r.features&featNoDrop == 0 {
		t.Skip("kernel lacks IORING_FEAT_NODROP; New would not use io_uring")
	}
	total := 3 * int(r.sqEntries) // more than cqEntries (2 * sqEntries)
	for i := 0; i < total; i += int(r.sqEntries) {
		queueNops(t, r, i, int(r.sqEntries))
		if n, err := r.enter(true, 0, 0); err != nil || n != int(r.sqEntries) {
			t.Fatalf("submit: %d, %v", n, err)
		}
	}
	if atomic.LoadUint32(r.sqFlags)&sqCQOverflow == 0 {
		t.Fatalf("IORING_SQ_CQ_OVERFLOW not set after %d completions into a %d-entry CQ: the test does not overflow", total, r.cqEntries)
	}
	seen := make([]int, total)
	err := r.submitAndWait(total, func(c *cqe) bool {
		if c.res != 0 || c.userData >= uint64(total) {
			t.Errorf("unexpected CQE %+v", *c)
			return false
		}
		seen[c.userData]++
		return true
	})
	if err != nil {
		t.Fatalf("submitAndWait: %v", err)
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("NOP %d completed %d times, want 1", i, n)
		}
	}
	if ready := atomic.LoadUint32(r.cqTail) - atomic.LoadUint32(r.cqHead); ready != 0 {
		t.Errorf("%d CQEs left in the ring", ready)
	}
}

// Ensure that nextSQE hands out zeroed entries even for a slot that held
// an fsync, and never more than the SQ holds.
func TestRingSQEZeroed(t *testing.T) {
	r := newTestRing(t, 2)
	for round := range 3 * int(r.sqEntries) {
		s := r.nextSQE()
		if *s != (sqe{}) {
			t.Fatalf("round %d: SQE not zeroed: %+v", round, *s)
		}
		// Leave everything set that a previous user might: an fsync's flags
		// and a write's buffer. NOP ignores them.
		*s = sqe{opcode: opNop, flags: sqeIODrain, opFlags: fsyncDatasync, addr: 1 << 40, len: 4096, off: 8, userData: uint64(round)}
		if err := r.submitAndWait(1, func(*cqe) bool { return true }); err != nil {
			t.Fatal(err)
		}
	}
	for range r.sqEntries {
		if r.nextSQE() == nil {
			t.Fatal("nextSQE returned nil before the SQ was full")
		}
	}
	if s := r.nextSQE(); s != nil {
		t.Fatal("nextSQE returned an entry with the SQ full")
	}
	r.rewind()
	if n := r.unsubmitted(); n != 0 {
		t.Errorf("after rewind %d SQEs are still queued", n)
	}
}

// Ensure that the kernel has what New probes for on this machine, and that
// an unknown opcode is reported missing.
func TestRingProbe(t *testing.T) {
	r := newTestRing(t, 2)
	if missing, ok, err := r.probe(opWrite, opFsync, opNop); err != nil || !ok {
		t.Errorf("probe(WRITE, FSYNC, NOP) = %d, %v, %v", missing, ok, err)
	}
	if missing, ok, err := r.probe(opWrite, 250); err != nil || ok || missing != 250 {
		t.Errorf("probe(WRITE, 250) = %d, %v, %v; want 250 missing", missing, ok, err)
	}
}

// Ensure that the setup errors that mean "no io_uring here" lead to the
// fallback and others do not.
func TestSetupFallbackReason(t *testing.T) {
	for _, tt := range []struct {
		err      error
		disabled int
		fallback bool
	}{
		{unix.ENOSYS, 0, true},
		{unix.EPERM, 0, true},
		{unix.EPERM, 1, true},
		{unix.EACCES, 0, true},
		{unix.ENOMEM, 0, true},
		{unix.EINVAL, 0, false},
		{unix.EMFILE, 0, false},
		{unix.EFAULT, 0, false},
	} {
		err := fmt.Errorf("io_uring_setup: %w", tt.err)
		reason, ok := setupFallbackReason(err, tt.disabled)
		if ok != tt.fallback || ok == (reason == "") {
			t.Errorf("setupFallbackReason(%v, disabled=%d) = %q, %v; want fallback %v", tt.err, tt.disabled, reason, ok, tt.fallback)
		}
	}
}

// Ensure that an io_uring failure in the middle of a batch leaves the
// writer unusable and the batch's buffers referenced, with every block
// that never completed reported. The failure is made real by closing the
// ring fd under the writer (io_uring_enter then fails with EBADF).
func TestRingFailureMidBatch(t *testing.T) {
	r := newTestRing(t, 4)
	path := t.TempDir() + "/f"
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	w := &uringWriter{fd: fd, r: r, chunk: int(r.sqEntries), mode: SyncRing}
	if err := unix.Close(r.fd); err != nil {
		t.Fatal(err)
	}
	r.fd = -1
	blocks := []Block{{Off: 0, Buf: make([]byte, 512)}, {Off: 512, Buf: make([]byte, 512)}}
	err = w.Write(blocks, true)
	var be *BatchError
	if !errors.As(err, &be) || len(be.Writes) != 2 || !errors.Is(be.Writes[1].Err, unix.EBADF) || !errors.Is(be.Sync, unix.EBADF) {
		t.Fatalf("Write = %v, want both blocks and the sync failed with EBADF", err)
	}
	if len(w.pinned) != 2 {
		t.Errorf("the batch's buffers are not kept referenced")
	}
	if n := r.unsubmitted(); n != 0 {
		t.Errorf("%d SQEs left queued after the failure", n)
	}
	if err := w.Write(blocks, false); !errors.Is(err, unix.EBADF) {
		t.Errorf("second Write = %v, want the sticky EBADF", err)
	}
	if err := w.Sync(); !errors.Is(err, unix.EBADF) {
		t.Errorf("Sync = %v, want the sticky EBADF", err)
	}
}

// Ensure that New honours kernel.io_uring_disabled=2 by falling back, and
// says so.
func TestNewIOUringDisabled(t *testing.T) {
	path := t.TempDir() + "/io_uring_disabled"
	if err := writeFile(path, "2\n"); err != nil {
		t.Fatal(err)
	}
	defer SetDisabledPath(path)()
	fd, err := unix.Open(t.TempDir()+"/f", unix.O_RDWR|unix.O_CREAT, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var log bytes.Buffer
	w, err := New(fd, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := w.Method(); got != MethodPwritev {
		t.Errorf("Method() = %q with io_uring_disabled=2, want %q", got, MethodPwritev)
	}
	if want := "kernel.io_uring_disabled=2"; !strings.Contains(log.String(), want) {
		t.Errorf("log %q does not give the reason %q", log.String(), want)
	}
}

func writeFile(path, s string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = unix.Write(fd, []byte(s))
	return errors.Join(err, unix.Close(fd))
}
