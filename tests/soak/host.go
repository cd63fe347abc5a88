//go:build linux

package main

import (
	"errors"
	"fmt"
	"github.com/dlog-dev/dlog/internal/testutil/loopdev"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Host-side fault helpers: a small tmpfs to fill up, loop devices to
// shrink, holes to punch. They need root (CAP_SYS_ADMIN); without it the
// faults that need them are skipped and the report says why.

// mountTmpfs mounts a tmpfs of size bytes at dir.
func mountTmpfs(dir string, size int64) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tmpfs mount point: %w", err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// unmount detaches the filesystem at dir, even if busy.
func unmount(dir string) error {
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// makeFile creates path (size bytes, zero-filled, sparse).
func makeFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("size %s: %w", path, err)
	}
	return nil
}

// replaceFile puts a new zero-filled file of size bytes at path, by rename:
// a process holding the old file keeps the old inode.
func replaceFile(path string, size int64) error {
	tmp := path + ".new"
	if err := makeFile(tmp, size); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// punchHole deallocates [off, off+n) of the file at path (it reads as
// zeros after, and writing there needs new space).
func punchHole(path string, off, n int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("punch hole: %w", err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
		return fmt.Errorf("punch hole in %s at %d+%d: %w", path, off, n, err)
	}
	return nil
}

// fill writes path until the filesystem is full; it returns the bytes
// written.
func fill(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("fill: %w", err)
	}
	defer f.Close()
	var total int64
	for _, chunk := range []int{64 << 10, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			n, err := f.Write(buf)
			total += int64(n)
			if errors.Is(err, unix.ENOSPC) {
				break
			}
			if err != nil {
				return total, fmt.Errorf("fill %s: %w", path, err)
			}
		}
	}
	return total, nil
}

// loopDev is a loop device over a file.
type loopDev struct{ *loopdev.Loop }

// attachLoop creates file (size bytes) and attaches a free loop device.
func attachLoop(file string, size int64) (*loopDev, error) {
	return attachLoopMode(file, size, false)
}

// attachLoopMode is attachLoop, read-only if ro (losetup -r).
func attachLoopMode(file string, size int64, ro bool) (*loopDev, error) {
	l, err := loopdev.Attach(file, size, loopdev.Options{ReadOnly: ro})
	if err != nil {
		return nil, err
	}
	return &loopDev{l}, nil
}

// vanish shrinks the device to nothing: every read and write fails.
//
// A write dlogd has in flight through the loop device between the
// truncate and LOOP_SET_CAPACITY extends the file again, and the device
// then keeps a few KiB (enough for a small log: a reload would succeed).
// Once the capacity is 0 no new write gets through, so truncate and
// resize again until the device reads as empty.
func (l *loopDev) vanish() error {
	for attempt := 0; ; attempt++ {
		if err := os.Truncate(l.File, 0); err != nil {
			return fmt.Errorf("loop: %w", err)
		}
		if err := l.SetCapacity(); err != nil {
			return err
		}
		size, err := l.DeviceSize()
		if err != nil {
			return err
		}
		if size == 0 {
			return nil
		}
		if attempt >= 50 {
			return fmt.Errorf("loop: %s still has %d bytes after %d truncates of %s", l.Dev, size, attempt+1, l.File)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// restore gives the device back its size, zero-filled: the old content is
// gone, as after a device replacement.
func (l *loopDev) restore() error {
	if err := os.Truncate(l.File, l.Size); err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	return l.SetCapacity()
}

// under is filepath.Join for readability at call sites.
func under(dir string, elem ...string) string {
	return filepath.Join(append([]string{dir}, elem...)...)
}
