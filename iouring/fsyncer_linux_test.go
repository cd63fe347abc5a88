//go:build linux

package iouring_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dlog-dev/dlog/iouring"
	"golang.org/x/sys/unix"
)

// newFsyncer returns an Fsyncer for max fds, closed at cleanup, or skips
// where io_uring is unavailable.
func newFsyncer(t *testing.T, max int) *iouring.Fsyncer {
	t.Helper()
	s, reason, err := iouring.NewFsyncer(max)
	if err != nil {
		t.Fatalf("NewFsyncer: %v", err)
	}
	if s == nil {
		t.Skipf("io_uring is unavailable here: %s", reason)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// Ensure that one call fsyncs every fd and reports each fd's failure
// against it (a pipe cannot be fsynced: EINVAL; a closed fd: EBADF), the
// others succeeding; that a call over the size given is refused before
// any I/O; and that a closed Fsyncer refuses work.
func TestFsyncer(t *testing.T) {
	s := newFsyncer(t, 4)
	dir := t.TempDir()
	var fds []int
	for _, name := range []string{"a", "b"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if _, err := f.WriteString("dirty page cache"); err != nil {
			t.Fatal(err)
		}
		fds = append(fds, int(f.Fd()))
	}
	errs, err := s.Fsync(fds)
	if err != nil || len(errs) != 2 || errs[0] != nil || errs[1] != nil {
		t.Fatalf("Fsync(two files) = %v, %v; want two nil errors", errs, err)
	}

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	closed, err := unix.Dup(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(closed)
	errs, err = s.Fsync([]int{fds[0], p[1], fds[1], closed})
	if err != nil {
		t.Fatalf("Fsync: %v", err)
	}
	for i, want := range []error{nil, unix.EINVAL, nil, unix.EBADF} {
		if want == nil && errs[i] != nil || want != nil && !errors.Is(errs[i], want) {
			t.Errorf("fd %d: err = %v, want %v", i, errs[i], want)
		}
	}

	if _, err := s.Fsync(make([]int, 5)); err == nil {
		t.Errorf("Fsync of 5 fds on an Fsyncer for 4: no error")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fsync(fds); !errors.Is(err, iouring.ErrClosed) {
		t.Errorf("Fsync after Close = %v, want ErrClosed", err)
	}
}
