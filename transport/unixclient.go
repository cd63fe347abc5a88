//go:build linux

package transport

import (
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UnixClient is the other end of a unix transport: a SOCK_SEQPACKET
// connection that sends and receives one kernel-format datagram per
// message, for tests, replay tools and fake kernels. Neither Send nor
// Receive allocates.
//
// Send and Receive may be called concurrently with each other; concurrent
// Sends (or Receives) are serialised.
type UnixClient struct {
	conn *net.UnixConn
	rc   syscall.RawConn
	path string

	smu   sync.Mutex
	sbuf  []byte
	serr  syscall.Errno
	sendF func(fd uintptr) bool

	rmu   sync.Mutex
	rbuf  []byte
	rn    int
	rerr  syscall.Errno
	rtrnc bool
	recvF func(fd uintptr) bool
}

// DialUnix connects to the unix transport listening at path.
func DialUnix(path string) (*UnixClient, error) {
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("transport: dial unix %s: %w", path, err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("transport: dial unix %s: %w", path, err)
	}
	c := &UnixClient{conn: conn, rc: rc, path: path}
	c.sendF = c.send
	c.recvF = c.recv
	return c, nil
}

// Send sends b as one datagram. It waits for room in the transport's
// receive queue, up to the write deadline.
func (c *UnixClient) Send(b []byte) error {
	c.smu.Lock()
	defer c.smu.Unlock()
	c.sbuf = b
	err := c.rc.Write(c.sendF)
	c.sbuf = nil
	if err == nil && c.serr != 0 {
		err = c.serr
	}
	if err != nil {
		return fmt.Errorf("transport: unix client %s: send: %w", c.path, err)
	}
	return nil
}

func (c *UnixClient) send(fd uintptr) bool {
	switch e := sendto(int(fd), c.sbuf, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, nil, 0); e {
	case unix.EAGAIN:
		return false
	default:
		c.serr = e
		return true
	}
}

// Receive reads one datagram into buf and returns its length. A datagram
// longer than buf fills buf and fails with an error wrapping ErrTruncated;
// a closed connection gives io.EOF. It waits up to the read deadline.
func (c *UnixClient) Receive(buf []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf = buf
	err := c.rc.Read(c.recvF)
	c.rbuf = nil
	if err == nil && c.rerr != 0 {
		err = c.rerr
	}
	if err != nil {
		return 0, fmt.Errorf("transport: unix client %s: receive: %w", c.path, err)
	}
	if c.rn == 0 {
		return 0, io.EOF
	}
	if c.rtrnc {
		return len(buf), fmt.Errorf("transport: unix client %s: receive: %d-byte datagram in a %d-byte buffer: %w", c.path, c.rn, len(buf), ErrTruncated)
	}
	return c.rn, nil
}

func (c *UnixClient) recv(fd uintptr) bool {
	var p unsafe.Pointer
	if len(c.rbuf) > 0 {
		p = unsafe.Pointer(&c.rbuf[0])
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(p), uintptr(len(c.rbuf)), unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		case 0:
			c.rn, c.rerr, c.rtrnc = int(n), 0, int(n) > len(c.rbuf)
		default:
			c.rn, c.rerr, c.rtrnc = 0, e, false
		}
		return true
	}
}

// SetDeadline sets the read and write deadlines.
func (c *UnixClient) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the deadline of Receive.
func (c *UnixClient) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of Send.
func (c *UnixClient) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// Close closes the connection.
func (c *UnixClient) Close() error { return c.conn.Close() }
