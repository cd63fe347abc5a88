//go:build linux

package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The host changes only the edge tests make: read-only devices, immutable
// files and read-only mounts.

// setReadOnly sets or clears the block device's read-only flag (BLKROSET).
func setReadOnly(dev string, ro bool) error {
	f, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("BLKROSET: %w", err)
	}
	defer f.Close()
	v := 0
	if ro {
		v = 1
	}
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.BLKROSET, v); err != nil {
		return fmt.Errorf("BLKROSET %s: %w", dev, err)
	}
	return nil
}

// setImmutable sets or clears the immutable attribute (chattr +i), which
// stops even root from opening the file for writing or creating entries
// in a directory.
func setImmutable(path string, on bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("chattr: %w", err)
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return fmt.Errorf("chattr %s: FS_IOC_GETFLAGS: %w", path, err)
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags)); err != nil {
		return fmt.Errorf("chattr %s: FS_IOC_SETFLAGS: %w", path, err)
	}
	return nil
}

// bindReadOnly bind-mounts src on dst read-only.
func bindReadOnly(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("bind mount point: %w", err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", src, dst, err)
	}
	if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		unmount(dst)
		return fmt.Errorf("remount %s read-only: %w", dst, err)
	}
	return nil
}

// fsImmutableFL is FS_IMMUTABLE_FL of linux/fs.h (chattr +i).
const fsImmutableFL = 0x00000010
