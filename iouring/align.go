package iouring

// Alignment is what O_DIRECT requires of an fd: memory alignment,
// offset/length alignment, and the logical block size, all in bytes.
//
// Mem and Offset are zero when the kernel did not report them for a regular
// file (statx without STATX_DIOALIGN before Linux 6.1, or a filesystem that
// does not support or does not describe direct I/O, such as tmpfs).
type Alignment struct {
	Mem, Offset, LogicalBlock uint32
}
