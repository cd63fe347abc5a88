//go:build linux

package main

import (
	"errors"
	"fmt"
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
type loopDev struct {
	dev    string // /dev/loopN
	file   string
	size   int64
	majMin string // "7:N", how LVM names a log device in a table
}

// attachLoop creates file (size bytes) and attaches a free loop device.
func attachLoop(file string, size int64) (*loopDev, error) {
	return attachLoopMode(file, size, false)
}

// attachLoopMode is attachLoop, read-only if ro (losetup -r).
func attachLoopMode(file string, size int64, ro bool) (*loopDev, error) {
	if err := makeFile(file, size); err != nil {
		return nil, err
	}
	bf, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	defer bf.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	defer ctl.Close()
	for attempt := 0; ; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("loop: LOOP_CTL_GET_FREE: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		var lf *os.File
		for wait := 0; ; wait++ {
			if lf, err = os.OpenFile(dev, os.O_RDWR, 0); err == nil || wait > 50 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			return nil, fmt.Errorf("loop: %w", err)
		}
		cfg := unix.LoopConfig{Fd: uint32(bf.Fd()), Size: 512}
		if ro {
			cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY
		}
		copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], file)
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		if err == nil {
			var st unix.Stat_t
			err = unix.Fstat(int(lf.Fd()), &st)
			lf.Close()
			if err != nil {
				return nil, fmt.Errorf("loop: stat %s: %w", dev, err)
			}
			return &loopDev{dev: dev, file: file, size: size, majMin: fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))}, nil
		}
		lf.Close()
		if errors.Is(err, unix.EBUSY) && attempt < 5 {
			continue // raced with another user of loop devices
		}
		return nil, fmt.Errorf("loop: LOOP_CONFIGURE %s on %s: %w", file, dev, err)
	}
}

// setCapacity resizes the loop device to its file's current size.
func (l *loopDev) setCapacity() error {
	f, err := os.OpenFile(l.dev, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_SET_CAPACITY, 0); err != nil {
		return fmt.Errorf("loop: LOOP_SET_CAPACITY %s: %w", l.dev, err)
	}
	return nil
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
		if err := os.Truncate(l.file, 0); err != nil {
			return fmt.Errorf("loop: %w", err)
		}
		if err := l.setCapacity(); err != nil {
			return err
		}
		size, err := l.deviceSize()
		if err != nil {
			return err
		}
		if size == 0 {
			return nil
		}
		if attempt >= 50 {
			return fmt.Errorf("loop: %s still has %d bytes after %d truncates of %s", l.dev, size, attempt+1, l.file)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deviceSize is the loop device's size as its users see it (BLKGETSIZE64).
func (l *loopDev) deviceSize() (uint64, error) {
	f, err := os.OpenFile(l.dev, os.O_RDONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("loop: %w", err)
	}
	defer f.Close()
	size, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKGETSIZE64) // a 64-bit int on the 64-bit targets we run on
	if err != nil {
		return 0, fmt.Errorf("loop: BLKGETSIZE64 %s: %w", l.dev, err)
	}
	return uint64(size), nil
}

// restore gives the device back its size, zero-filled: the old content is
// gone, as after a device replacement.
func (l *loopDev) restore() error {
	if err := os.Truncate(l.file, l.size); err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	return l.setCapacity()
}

// detach releases the loop device and removes its file.
func (l *loopDev) detach() error {
	f, err := os.OpenFile(l.dev, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	err = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
	f.Close()
	os.Remove(l.file)
	if err != nil {
		return fmt.Errorf("loop: LOOP_CLR_FD %s: %w", l.dev, err)
	}
	return nil
}

// under is filepath.Join for readability at call sites.
func under(dir string, elem ...string) string {
	return filepath.Join(append([]string{dir}, elem...)...)
}
