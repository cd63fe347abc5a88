//go:build linux

package transport

import (
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// receiver is the state of one reader: a reused buffer and a preallocated
// msghdr, iovec and source address for recvmsg(2), and the function given
// to syscall.RawConn.Read, created once. x/sys/unix.Recvmsg would allocate
// the source address on every call; this does not allocate at all.
//
// A receiver belongs to one goroutine at a time. It must stay where it
// was allocated (it points into itself), so it is only used by pointer.
type receiver struct {
	buf []byte
	iov unix.Iovec
	msg unix.Msghdr
	src unix.RawSockaddrNetlink // the sender, when named

	// Results of the last call of fn.
	n     int           // bytes received (the datagram's length with MSG_TRUNC in flags)
	flags int32         // msg_flags: MSG_TRUNC
	errno syscall.Errno // 0, or the error of recvmsg
	// hup is set on a stream-like socket (unix SOCK_SEQPACKET) when recvmsg
	// returned 0 because the peer hung up, rather than for an empty
	// datagram.
	hup bool

	named     bool // fill src (netlink)
	checkHup  bool // tell EOF from an empty datagram (unix)
	recvFlags int

	// poll, when positive, is how long recv keeps trying after EAGAIN
	// before it lets RawConn.Read park the goroutine (Options.Poll).
	// polled counts the datagrams that arrived while it tried.
	poll   time.Duration
	polled *atomic.Uint64

	fn func(fd uintptr) bool
}

// newReceiver returns a receiver with a buffer of size bytes. named asks
// for the sender's netlink address; checkHup for EOF detection on a
// connected socket.
func newReceiver(size int, named, checkHup bool) *receiver {
	r := &receiver{buf: make([]byte, size), named: named, checkHup: checkHup}
	r.iov.Base = &r.buf[0]
	r.iov.SetLen(len(r.buf))
	r.msg.Iov = &r.iov
	r.msg.SetIovlen(1)
	if named {
		r.msg.Name = (*byte)(unsafe.Pointer(&r.src))
	}
	// MSG_TRUNC in the call's flags makes recvmsg return the datagram's
	// real length even when it did not fit (netlink and unix both honour
	// it), so an oversize datagram is seen for what it is.
	r.recvFlags = unix.MSG_DONTWAIT | unix.MSG_TRUNC
	r.fn = r.recv
	return r
}

// recv is r.fn: one non-blocking recvmsg. It returns false on EAGAIN so
// that RawConn.Read waits for the socket to become readable.
func (r *receiver) recv(fd uintptr) bool {
	for {
		r.msg.Flags = 0
		if r.named {
			r.msg.Namelen = unix.SizeofSockaddrNetlink
		}
		n, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), uintptr(r.recvFlags))
		switch e {
		case 0:
			r.n, r.flags, r.errno, r.hup = int(n), r.msg.Flags, 0, false
			if n == 0 && r.checkHup {
				r.hup = hungUp(int(fd))
			}
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if r.poll > 0 && r.spin(fd, r.poll) {
				return true
			}
			return false
		default:
			r.n, r.flags, r.errno, r.hup = 0, 0, e, false
			return true
		}
	}
}

// spin is the bounded busy-poll of Options.Poll: non-blocking recvmsg
// until a datagram (or an error other than EAGAIN) comes or d has
// passed. It reports whether recv has a result.
// The thread stays on its CPU meanwhile, so the request that comes within
// the window is read without the park, the epoll wake-up and the
// goroutine's rescheduling.
func (r *receiver) spin(fd uintptr, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		r.msg.Flags = 0
		if r.named {
			r.msg.Namelen = unix.SizeofSockaddrNetlink
		}
		n, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), uintptr(r.recvFlags|unix.MSG_DONTWAIT))
		switch e {
		case unix.EAGAIN, unix.EINTR:
			continue
		case 0:
			r.n, r.flags, r.errno, r.hup = int(n), r.msg.Flags, 0, false
			r.polled.Add(1)
		default:
			r.n, r.flags, r.errno, r.hup = 0, 0, e, false
		}
		return true
	}
	return false
}

// datagram returns the bytes of the last datagram received and whether it
// was truncated.
func (r *receiver) datagram() ([]byte, bool) {
	if r.flags&unix.MSG_TRUNC != 0 || r.n > len(r.buf) {
		return r.buf, true
	}
	return r.buf[:r.n], false
}

// hungUp reports whether the peer of a connected unix socket has closed
// its end: recvmsg returns 0 both for that and for an empty datagram.
func hungUp(fd int) bool {
	var pfd [1]unix.PollFd
	pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}
	for {
		n, err := unix.Poll(pfd[:], 0)
		if err == unix.EINTR {
			continue
		}
		return err != nil || (n > 0 && pfd[0].Revents&(unix.POLLHUP|unix.POLLRDHUP|unix.POLLERR|unix.POLLNVAL) != 0)
	}
}

// sendto is sendto(2) of b on fd to the raw socket address to (nil for a
// connected socket), retried on EINTR. Unlike x/sys/unix.Sendto it writes
// nothing into the address, so many goroutines can send to the same
// preallocated address at once, and it does not allocate.
func sendto(fd int, b []byte, flags int, to unsafe.Pointer, tolen uintptr) syscall.Errno {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(b)), uintptr(flags), uintptr(to), tolen)
		if e != unix.EINTR {
			return e
		}
	}
}

// rawFD returns the descriptor behind rc. The caller must make sure the
// descriptor stays open for as long as it uses it: the transports do so
// with a lock that Close takes before closing.
func rawFD(rc syscall.RawConn) (int, error) {
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, err
	}
	return fd, nil
}
