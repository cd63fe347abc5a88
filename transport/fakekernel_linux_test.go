//go:build linux

package transport

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/ulog"
)

// FakeKernel plays the kernel's side of the netlink connector in tests: it
// multicasts request datagrams to group 7, as dm-log-userspace does, and
// receives replies on its own port id. Run the netlink transport with
// ListenFakeKernel(opts, PortID()) to accept its requests and send replies
// to it instead of to the kernel.
//
// Multicasting needs CAP_NET_ADMIN (the connector does not allow non-root
// senders); without it Multicast fails with EPERM. Every process listening
// on group 7 on the machine receives what it sends, and so does the
// kernel's own connector socket (netlink_sendmsg also unicasts a multicast
// message to its nl_pid, here 0), where a loaded dm-log-userspace takes it
// for a reply and matches it by seq: on a machine with userspace-log
// mirrors, use sequence numbers far from the kernel's counter.
//
// Neither Multicast nor Receive allocates. Concurrent calls of the same
// method are serialised.
type FakeKernel struct {
	file *os.File
	rc   syscall.RawConn
	pid  uint32

	smu   sync.Mutex
	sbuf  []byte
	sdst  unix.RawSockaddrNetlink
	serr  syscall.Errno
	sendF func(fd uintptr) bool

	rmu sync.Mutex
	rx  *receiver
}

// DialFakeKernel opens the fake kernel's socket: NETLINK_CONNECTOR, bound
// to an automatic port id, member of no group.
func DialFakeKernel() (*FakeKernel, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("transport: fake kernel: %w", os.NewSyscallError("socket", err))
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("transport: fake kernel: %w", os.NewSyscallError("bind", err))
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("transport: fake kernel: %w", os.NewSyscallError("getsockname", err))
	}
	f := os.NewFile(uintptr(fd), "netlink-fake-kernel")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("transport: fake kernel: %w", err)
	}
	k := &FakeKernel{file: f, rc: rc, pid: sa.(*unix.SockaddrNetlink).Pid, rx: newReceiver(MaxDatagram, true, false)}
	k.sdst.Family = unix.AF_NETLINK
	k.sendF = k.send
	return k, nil
}

// PortID returns the fake kernel's netlink port id, for ListenFakeKernel.
func (k *FakeKernel) PortID() uint32 { return k.pid }

// Multicast sends b to netlink group 7 (sendto nl_pid 0, nl_groups 1<<6),
// the way the kernel delivers dm-log-userspace requests.
func (k *FakeKernel) Multicast(b []byte) error {
	return k.sendTo(0, 1<<(ulog.CnIdxDM-1), b)
}

// Unicast sends b to the netlink port id pid.
func (k *FakeKernel) Unicast(pid uint32, b []byte) error {
	return k.sendTo(pid, 0, b)
}

func (k *FakeKernel) sendTo(pid, groups uint32, b []byte) error {
	k.smu.Lock()
	defer k.smu.Unlock()
	k.sbuf, k.sdst.Pid, k.sdst.Groups = b, pid, groups
	err := k.rc.Write(k.sendF)
	k.sbuf = nil
	if err == nil && k.serr != 0 {
		err = k.serr
	}
	if err != nil {
		return fmt.Errorf("transport: fake kernel: sendto pid %d groups %#x: %w", pid, groups, err)
	}
	return nil
}

func (k *FakeKernel) send(fd uintptr) bool {
	e := sendto(int(fd), k.sbuf, unix.MSG_DONTWAIT, unsafe.Pointer(&k.sdst), unix.SizeofSockaddrNetlink)
	if e == unix.EAGAIN {
		return false
	}
	k.serr = e
	return true
}

// Receive reads one datagram into buf and returns its length and the
// sender's port id. A datagram longer than buf fills buf and fails with
// an error wrapping ErrTruncated. It waits up to the read deadline.
func (k *FakeKernel) Receive(buf []byte) (n int, from uint32, err error) {
	k.rmu.Lock()
	defer k.rmu.Unlock()
	rx := k.rx
	if err := k.rc.Read(rx.fn); err != nil {
		return 0, 0, fmt.Errorf("transport: fake kernel: receive: %w", err)
	}
	if rx.errno != 0 {
		return 0, 0, fmt.Errorf("transport: fake kernel: receive: %w", rx.errno)
	}
	b, truncated := rx.datagram()
	n = copy(buf, b)
	if truncated || n < len(b) {
		return n, rx.src.Pid, fmt.Errorf("transport: fake kernel: receive: %d-byte datagram: %w", rx.n, ErrTruncated)
	}
	return n, rx.src.Pid, nil
}

// SetReadDeadline sets the deadline of Receive.
func (k *FakeKernel) SetReadDeadline(t time.Time) error { return k.file.SetReadDeadline(t) }

// Close closes the socket.
func (k *FakeKernel) Close() error { return k.file.Close() }
