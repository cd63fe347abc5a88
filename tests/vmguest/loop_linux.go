//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Loop is a loop device over a sparse file in the guest's tmpfs.
type Loop struct {
	Dev       string // /dev/loopN
	File      string
	Size      int64
	BlockSize int // logical block size: 512 or 4096
	Rdev      uint64
}

// MajMin is the device number as the kernel prints it in tables ("7:0").
func (l *Loop) MajMin() string { return fmt.Sprintf("%d:%d", unix.Major(l.Rdev), unix.Minor(l.Rdev)) }

// attachLoop creates file (size bytes, sparse, zero-filled) and attaches it
// to a free loop device with LOOP_CONFIGURE, which also sets the logical
// block size (busybox losetup has no --sector-size).
func attachLoop(file string, size int64, blockSize int) (*Loop, error) {
	if blockSize == 0 {
		blockSize = 512
	}
	bf, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer bf.Close()
	if err := bf.Truncate(size); err != nil {
		return nil, err
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
		if err := waitPath(dev, 3*time.Second); err != nil {
			return nil, fmt.Errorf("loop: %w", err)
		}
		lf, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("loop: %w", err)
		}
		cfg := unix.LoopConfig{Fd: uint32(bf.Fd()), Size: uint32(blockSize)}
		copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], file)
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		if err == nil {
			var st unix.Stat_t
			if err := unix.Fstat(int(lf.Fd()), &st); err != nil {
				lf.Close()
				return nil, fmt.Errorf("loop: stat %s: %w", dev, err)
			}
			lf.Close()
			return &Loop{Dev: dev, File: file, Size: size, BlockSize: blockSize, Rdev: uint64(st.Rdev)}, nil
		}
		lf.Close()
		if errors.Is(err, unix.EBUSY) && attempt < 5 { // raced with another attach
			continue
		}
		return nil, fmt.Errorf("loop: LOOP_CONFIGURE %s on %s (block size %d): %w", file, dev, blockSize, err)
	}
}

// Detach releases the loop device and removes its file.
func (l *Loop) Detach() error {
	f, err := os.OpenFile(l.Dev, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
	f.Close()
	if err != nil && !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("loop: LOOP_CLR_FD %s: %w (still in use?)", l.Dev, err)
	}
	return os.Remove(l.File)
}
