package ulog

import "syscall"

// Linux errno values as they travel on the wire. They are spelled out here
// instead of taken from package syscall because the codec builds on every
// platform and syscall's values differ off Linux (EAGAIN is 35 on darwin);
// the kernel on the other end of the socket always means the Linux numbers.
// On Linux each constant equals its syscall counterpart (checked by a test).
const (
	EIO      = syscall.Errno(0x5)  // unix.EIO
	EAGAIN   = syscall.Errno(0xb)  // unix.EAGAIN: the kernel resends the request
	ENOENT   = syscall.Errno(0x2)  // unix.ENOENT
	ESRCH    = syscall.Errno(0x3)  // unix.ESRCH: the kernel's "log server gone" path
	EINVAL   = syscall.Errno(0x16) // unix.EINVAL
	ENOSPC   = syscall.Errno(0x1c) // unix.ENOSPC: reply larger than the kernel offered
	EPROTO   = syscall.Errno(0x47) // unix.EPROTO
	EMSGSIZE = syscall.Errno(0x5a) // unix.EMSGSIZE
)

// maxErrno is the kernel's MAX_ERRNO: errnos are 1..4095.
const maxErrno = 4095
