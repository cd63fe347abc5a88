package iouring_test

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/dlog-dev/dlog/iouring"
)

// Ensure that a BatchError reads well and exposes every cause to errors.Is
// and errors.As.
func TestBatchError(t *testing.T) {
	err := error(&iouring.BatchError{
		Writes: []iouring.BlockError{
			{Index: 3, Off: 12288, Err: syscall.EINVAL},
			{Index: 9, Off: 40960, Err: fs.ErrPermission},
		},
		Sync: os.NewSyscallError("fdatasync", syscall.EIO),
	})
	if want, got := "iouring: 2 writes failed, first: block 3 at offset 12288: invalid argument; sync failed: fdatasync: input/output error", err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	for _, target := range []error{syscall.EINVAL, fs.ErrPermission, syscall.EIO} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(err, %v) = false", target)
		}
	}
	if errors.Is(err, syscall.ENOSPC) {
		t.Errorf("errors.Is(err, ENOSPC) = true")
	}
	var be iouring.BlockError
	if !errors.As(err, &be) || be.Index != 3 {
		t.Errorf("errors.As = %+v, want block 3", be)
	}

	for _, tt := range []struct {
		err  *iouring.BatchError
		want string
	}{
		{&iouring.BatchError{Writes: []iouring.BlockError{{Index: 0, Off: 0, Err: syscall.EIO}}}, "iouring: write failed: block 0 at offset 0: input/output error"},
		{&iouring.BatchError{Sync: syscall.EIO}, "iouring: sync failed: input/output error"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
