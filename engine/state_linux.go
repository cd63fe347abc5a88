//go:build linux

package engine

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// fallocate allocates f's first size bytes (mode 0: the holes of an
// existing file are filled with zeros, its data kept). It fails with
// errors.ErrUnsupported where the file system has no fallocate.
func fallocate(f *os.File, size int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
			return errors.ErrUnsupported
		default:
			return os.NewSyscallError("fallocate", err)
		}
	}
}
