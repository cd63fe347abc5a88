//go:build linux

package iouring

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ProbeAlignment reports what O_DIRECT requires of f. It reads
// statx(STATX_DIOALIGN) (Linux 6.1) and, for block devices, BLKSSZGET; it
// never assumes 512 for a device.
//
// For a block device LogicalBlock is BLKSSZGET; Mem and Offset come from
// statx and, where the kernel does not report them, are LogicalBlock (what
// the block layer required of both before Linux 6.0). For a regular file
// Mem and Offset come from statx and may be zero (see Alignment), and
// LogicalBlock is the offset alignment if reported, else 512. Other file
// types are an error.
func ProbeAlignment(f *os.File) (Alignment, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return Alignment{}, fmt.Errorf("iouring: probe alignment of %s: %w", f.Name(), err)
	}
	var a Alignment
	var perr error
	if err := rc.Control(func(fd uintptr) { a, perr = probeAlignment(int(fd)) }); err != nil {
		return Alignment{}, fmt.Errorf("iouring: probe alignment of %s: %w", f.Name(), err)
	}
	if perr != nil {
		return Alignment{}, fmt.Errorf("iouring: probe alignment of %s: %w", f.Name(), perr)
	}
	return a, nil
}

func probeAlignment(fd int) (Alignment, error) {
	var a Alignment
	var mode uint32
	var st unix.Statx_t
	switch err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_TYPE|unix.STATX_DIOALIGN, &st); err {
	case nil:
		mode = uint32(st.Mode)
		if st.Mask&unix.STATX_DIOALIGN != 0 {
			a.Mem, a.Offset = st.Dio_mem_align, st.Dio_offset_align
		}
	case unix.ENOSYS: // before Linux 4.11
		var s unix.Stat_t
		if err := unix.Fstat(fd, &s); err != nil {
			return Alignment{}, os.NewSyscallError("fstat", err)
		}
		mode = s.Mode
	default:
		return Alignment{}, os.NewSyscallError("statx", err)
	}

	switch mode & unix.S_IFMT {
	case unix.S_IFBLK:
		lbs, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
		if err != nil {
			return Alignment{}, os.NewSyscallError("ioctl(BLKSSZGET)", err)
		}
		a.LogicalBlock = uint32(lbs)
		if a.Offset == 0 {
			a.Offset = a.LogicalBlock
		}
		if a.Mem == 0 {
			a.Mem = a.LogicalBlock
		}
	case unix.S_IFREG:
		a.LogicalBlock = a.Offset
		if a.LogicalBlock == 0 {
			a.LogicalBlock = 512
		}
	default:
		return Alignment{}, fmt.Errorf("not a regular file or block device (mode %#o)", mode&unix.S_IFMT)
	}
	return a, nil
}
