//go:build linux

// Package loopdev attaches files to loop devices for tests that need a
// real block device (a log device with a given logical block size, one
// that turns read-only, shrinks or vanishes), without the losetup binary:
// LOOP_CTL_GET_FREE and LOOP_CONFIGURE, as losetup does. It needs root.
package loopdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Options of Attach.
type Options struct {
	// BlockSize is the device's logical block size; 0 means 512.
	BlockSize int
	// ReadOnly attaches the device read-only (losetup -r).
	ReadOnly bool
	// DirectIO makes the device do direct I/O on its file
	// (losetup --direct-io=on).
	DirectIO bool
}

// Loop is a loop device over a file.
type Loop struct {
	Dev       string // /dev/loopN
	File      string // the backing file
	Size      int64  // the backing file's size at Attach
	BlockSize int    // logical block size
	Rdev      uint64 // the device number
}

// Attach creates file (size bytes, sparse, zero-filled; an existing file
// is truncated) and attaches it to a free loop device.
func Attach(file string, size int64, o Options) (*Loop, error) {
	if o.BlockSize == 0 {
		o.BlockSize = 512
	}
	bf, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	defer bf.Close()
	if err := bf.Truncate(size); err != nil {
		return nil, fmt.Errorf("loop: size %s: %w", file, err)
	}
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("loop: %w (is the loop module loaded?)", err)
	}
	defer ctl.Close()
	for attempt := 0; ; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("loop: LOOP_CTL_GET_FREE: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		lf, err := openWaiting(dev, 3*time.Second)
		if err != nil {
			return nil, fmt.Errorf("loop: %w", err)
		}
		cfg := unix.LoopConfig{Fd: uint32(bf.Fd()), Size: uint32(o.BlockSize)}
		if o.ReadOnly {
			cfg.Info.Flags |= unix.LO_FLAGS_READ_ONLY
		}
		if o.DirectIO {
			cfg.Info.Flags |= unix.LO_FLAGS_DIRECT_IO
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
			return &Loop{Dev: dev, File: file, Size: size, BlockSize: o.BlockSize, Rdev: uint64(st.Rdev)}, nil
		}
		lf.Close()
		if errors.Is(err, unix.EBUSY) && attempt < 5 {
			continue // raced with another user of loop devices
		}
		return nil, fmt.Errorf("loop: LOOP_CONFIGURE %s on %s (block size %d): %w", file, dev, o.BlockSize, err)
	}
}

// New attaches a loop device over a fresh file in t's temporary directory
// and detaches it at cleanup. It skips the test, saying why, when not root
// or when the machine has no loop devices to give.
func New(t testing.TB, size int64, o Options) *Loop {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: attaching a loop device needs root")
	}
	l, err := Attach(filepath.Join(t.TempDir(), "loop.img"), size, o)
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Detach(); err != nil {
			t.Errorf("detach: %v", err)
		}
	})
	return l
}

// openWaiting opens a device node udev (or devtmpfs) may not have made
// yet, waiting up to timeout for it.
func openWaiting(dev string, timeout time.Duration) (*os.File, error) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err == nil || time.Now().After(deadline) {
			return f, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MajMin is the device number as "major:minor", how LVM names a log device
// in a table.
func (l *Loop) MajMin() string {
	return fmt.Sprintf("%d:%d", unix.Major(l.Rdev), unix.Minor(l.Rdev))
}

// SetCapacity resizes the device to its file's current size.
func (l *Loop) SetCapacity() error {
	return l.ioctl(unix.LOOP_SET_CAPACITY, "LOOP_SET_CAPACITY")
}

// DeviceSize is the device's size as its users see it (BLKGETSIZE64).
func (l *Loop) DeviceSize() (uint64, error) {
	f, err := os.OpenFile(l.Dev, os.O_RDONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("loop: %w", err)
	}
	defer f.Close()
	size, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKGETSIZE64) // a 64-bit int on the 64-bit targets we run on
	if err != nil {
		return 0, fmt.Errorf("loop: BLKGETSIZE64 %s: %w", l.Dev, err)
	}
	return uint64(size), nil
}

// Detach releases the device (one already released is fine) and removes
// its file.
func (l *Loop) Detach() error {
	err := l.ioctl(unix.LOOP_CLR_FD, "LOOP_CLR_FD")
	if errors.Is(err, unix.ENXIO) {
		err = nil
	}
	if rerr := os.Remove(l.File); err == nil && rerr != nil {
		err = fmt.Errorf("loop: %w", rerr)
	}
	return err
}

func (l *Loop) ioctl(req uint, name string) error {
	f, err := os.OpenFile(l.Dev, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), req, 0); err != nil {
		return fmt.Errorf("loop: %s %s: %w", name, l.Dev, err)
	}
	return nil
}
