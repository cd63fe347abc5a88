//go:build linux

package engine

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/iouring"
)

var majMin = regexp.MustCompile(`^([0-9]+):([0-9]+)$`)

// fileDevice is a log device opened from a block device or a regular file.
type fileDevice struct {
	f *os.File
	w iouring.Writer
}

func (d *fileDevice) ReadAt(p []byte, off int64) (int, error)  { return d.f.ReadAt(p, off) }
func (d *fileDevice) Write(b []iouring.Block, sync bool) error { return d.w.Write(b, sync) }
func (d *fileDevice) Sync() error                              { return d.w.Sync() }

func (d *fileDevice) Close() error {
	werr := d.w.Close()
	ferr := d.f.Close()
	return errors.Join(werr, ferr)
}

// OpenDevice opens a log device argument ("major:minor", a block device
// path or a regular file) the way the disk log does, and describes it.
func OpenDevice(arg string, opts Options) (Device, DeviceInfo, error) {
	return openDevice(arg, opts)
}

// DevicePath returns the path to open for a log device argument: arg
// itself, or for "major:minor" the device node that has those numbers.
func DevicePath(arg string) (string, error) {
	if m := majMin.FindStringSubmatch(arg); m != nil {
		return resolveMajMin(m[1] + ":" + m[2])
	}
	return arg, nil
}

func openDevice(arg string, opts Options) (Device, DeviceInfo, error) {
	info := DeviceInfo{Path: arg}
	p, err := DevicePath(arg)
	if err != nil {
		return nil, info, err
	}
	info.Path = p
	f, err := os.OpenFile(info.Path, os.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	info.Direct = true
	if errors.Is(err, unix.EINVAL) {
		// A filesystem without direct I/O (tmpfs before 6.6): buffered
		// writes followed by fdatasync are just as durable.
		f, err = os.OpenFile(info.Path, os.O_RDWR|unix.O_CLOEXEC, 0)
		info.Direct = false
	}
	if err != nil {
		return nil, info, fmt.Errorf("%w: %v", ErrDevice, err) // err names the path
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, info, fmt.Errorf("%w: stat %s: %v", ErrDevice, info.Path, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		size, err := blockDeviceSize(f)
		if err != nil {
			return nil, info, fmt.Errorf("%w: BLKGETSIZE64 %s: %v", ErrDevice, info.Path, err)
		}
		info.Size = int64(size)
		info.Name = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		info.Block = true
		// A read-only block device opens for writing without complaint
		// and fails the first write; the kernel's dm_get_device refuses it
		// at table load, and so do we.
		if ro, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET); err == nil && ro != 0 {
			return nil, info, fmt.Errorf("%w: %s (%s) is read-only", ErrDevice, info.Path, info.Name)
		}
	case unix.S_IFREG:
		info.Size = st.Size
		info.Name = arg
	default:
		return nil, info, fmt.Errorf("%w: %s is neither a block device nor a regular file", ErrDevice, info.Path)
	}
	al, err := iouring.ProbeAlignment(f)
	if err != nil {
		return nil, info, fmt.Errorf("%w: %s: %v", ErrDevice, info.Path, err)
	}
	info.LogicalBlock = max(al.LogicalBlock, 512)
	w, err := iouring.New(int(f.Fd()), iouring.Options{Fallback: opts.IOFallback, Sync: opts.Sync, Logger: opts.Logger})
	if err != nil {
		return nil, info, fmt.Errorf("%w: %s: %v", ErrDevice, info.Path, err)
	}
	info.Method = w.Method()
	ok = true
	return &fileDevice{f: f, w: w}, info, nil
}

// resolveMajMin finds the device node of "major:minor": /dev/block/M:m
// where udev made it, else the DEVNAME sysfs reports, checked against the
// numbers (a /dev/mapper scan, as cmirrord does, is racy and incomplete).
func resolveMajMin(mm string) (string, error) {
	var maj, min uint32
	fmt.Sscanf(mm, "%d:%d", &maj, &min)
	want := unix.Mkdev(maj, min)
	candidates := []string{filepath.Join("/dev/block", mm)}
	if f, err := os.Open(filepath.Join("/sys/dev/block", mm, "uevent")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "DEVNAME="); ok {
				candidates = append(candidates, filepath.Join("/dev", name))
			}
		}
		f.Close()
	}
	for _, p := range candidates {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == want {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no block device node for %s (looked in /dev/block and /sys/dev/block)", ErrDevice, mm)
}

// blockDeviceSize is the BLKGETSIZE64 ioctl.
func blockDeviceSize(f *os.File) (uint64, error) {
	var size uint64
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size)))
	if errno != 0 {
		return 0, errno
	}
	return size, nil
}
