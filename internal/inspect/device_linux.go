//go:build linux

package inspect

import (
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/engine"
)

// direct is the O_DIRECT state of a Device on Linux.
type direct struct {
	align  int64
	bounce []byte // aligned staging memory of O_DIRECT reads
}

// bounceSize is the largest O_DIRECT read; an unaligned request of
// DefaultChunk bytes fits in one.
const bounceSize = DefaultChunk + 2*4096

// Open opens a log device argument as the disk log names it ("major:minor",
// a block device path or a regular file) with O_RDONLY, and O_DIRECT where
// possible: it never writes.
func Open(arg string) (*Device, error) {
	p, err := engine.DevicePath(arg)
	if err != nil {
		return nil, err
	}
	d := &Device{Path: p}
	f, err := os.OpenFile(d.Path, os.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	d.Direct = err == nil
	if errors.Is(err, unix.EINVAL) {
		f, err = os.OpenFile(d.Path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("log device: %w", err)
	}
	d.f = f
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("log device: stat %s: %w", d.Path, err)
	}
	d.align = 4096 // a multiple of every logical block size up to 4 KiB
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		var size uint64
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); errno != 0 {
			f.Close()
			return nil, fmt.Errorf("log device: BLKGETSIZE64 %s: %w", d.Path, errno)
		}
		d.Size = int64(size)
		if lbs, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET); err == nil && lbs > 4096 {
			d.align = int64(lbs)
		}
		d.Kind = fmt.Sprintf("block device %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case unix.S_IFREG:
		d.Size = st.Size
		d.Kind = "regular file"
	default:
		f.Close()
		return nil, fmt.Errorf("log device: %s is neither a block device nor a regular file", d.Path)
	}
	if d.Direct {
		// Aligned staging memory: the Go heap does not move objects.
		raw := make([]byte, bounceSize+int(d.align))
		skip := int(-uintptr(unsafe.Pointer(&raw[0])) & uintptr(d.align-1))
		d.bounce = raw[skip : skip+bounceSize]
		// A filesystem may accept O_DIRECT at open and refuse the read.
		if _, err := d.ReadAt(make([]byte, 1), 0); errors.Is(err, unix.EINVAL) {
			b, err := os.OpenFile(d.Path, os.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("log device: %w", err)
			}
			f.Close()
			d.f, d.Direct, d.bounce = b, false, nil
		}
	}
	return d, nil
}

// ReadAt reads len(p) bytes at off. With O_DIRECT, it reads whole aligned
// blocks into the staging memory and copies out the bytes asked for; it is
// not safe for concurrent use.
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	if !d.Direct {
		return d.f.ReadAt(p, off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		start := pos &^ (d.align - 1)
		skip := int(pos - start)
		want := min(int64(len(d.bounce)), (int64(skip+len(p)-n)+d.align-1)&^(d.align-1))
		m, err := pread(int(d.f.Fd()), d.bounce[:want], start)
		if err != nil {
			return n, fmt.Errorf("read %s at %d: %w", d.Path, start, err)
		}
		if m <= skip {
			return n, io.EOF
		}
		n += copy(p[n:], d.bounce[skip:m])
		if int64(m) < want && n < len(p) {
			return n, io.EOF // the end of the file or device
		}
	}
	return n, nil
}

func pread(fd int, b []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// Close closes the device.
func (d *Device) Close() error { return d.f.Close() }
