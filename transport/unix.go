//go:build linux

package transport

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// unixTransport is a listening AF_UNIX SOCK_SEQPACKET socket: the protocol
// of the kernel's connector, one datagram per message, for peers that are
// not the kernel (tests, replay tools, fake kernels).
type unixTransport struct {
	gate
	path    string
	name    string // "unix:" + path
	ln      *net.UnixListener
	euid    int
	timeout time.Duration // Options.SendTimeout
	dev     uint64        // the socket file we created, to remove only it
	ino     uint64

	mu    sync.Mutex // guards conns
	conns map[*unixConn]struct{}

	closed   atomic.Bool
	served   atomic.Bool
	stopping atomic.Bool // ctx of Serve is done
	nextID   atomic.Uint64
	readers  sync.WaitGroup
	done     chan struct{} // closed by Close
}

// unixConn is one accepted connection and the Peer of its datagrams.
type unixConn struct {
	t    *unixTransport
	c    *net.UnixConn
	rc   syscall.RawConn
	name string // "unix:@3 pid=123 uid=0"

	// fd is used by senders outside RawConn, under mu.RLock; close takes
	// mu.Lock before closing it (see netlinkTransport.fd).
	fd     int
	mu     sync.RWMutex
	closed atomic.Bool

	rx *receiver // the reader goroutine only
	dg Datagram  // the reader goroutine only
}

var (
	_ Transport = (*unixTransport)(nil)
	_ Peer      = (*unixConn)(nil)
)

// listenBacklog is the listen(2) backlog of the unix socket.
const listenBacklog = 128

func listenUnix(path string, opts Options) (Transport, error) {
	fd, err := bindUnix(path, opts)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (Transport, error) {
		_ = unix.Close(fd)
		_ = os.Remove(path)
		return nil, fmt.Errorf("transport: listen unix %s: %w", path, err)
	}
	// The mode is set between bind and listen: before listen(2) nobody can
	// connect, so the file is never reachable with the umask's mode.
	if err := os.Chmod(path, opts.Mode.Perm()); err != nil {
		return fail(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fail(err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		return fail(os.NewSyscallError("listen", err))
	}
	f := os.NewFile(uintptr(fd), "unix:"+path)
	ln, err := net.FileListener(f) // dups the descriptor
	_ = f.Close()
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("transport: listen unix %s: %w", path, err)
	}
	t := &unixTransport{
		path:    path,
		name:    "unix:" + path,
		ln:      ln.(*net.UnixListener),
		euid:    os.Geteuid(),
		timeout: opts.SendTimeout,
		dev:     st.Dev,
		ino:     st.Ino,
		conns:   make(map[*unixConn]struct{}),
		done:    make(chan struct{}),
	}
	t.log = opts.Logger
	t.log.Info("transport: listening", "transport", t.name, "mode", opts.Mode.Perm().String())
	return t, nil
}

// bindUnix creates a SOCK_SEQPACKET socket bound to path. A socket file
// left at path by a process that died is removed first, but only if
// nothing answers a connect on it.
func bindUnix(path string, opts Options) (int, error) {
	for attempt := 0; ; attempt++ {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			return -1, fmt.Errorf("transport: listen unix %s: %w", path, os.NewSyscallError("socket", err))
		}
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: path})
		if err == nil {
			return fd, nil
		}
		_ = unix.Close(fd)
		if err != unix.EADDRINUSE || attempt > 0 {
			return -1, fmt.Errorf("transport: listen unix %s: %w", path, os.NewSyscallError("bind", err))
		}
		if err := removeStale(path, opts); err != nil {
			return -1, err
		}
	}
}

// removeStale removes the socket file at path if no process listens on it.
// It refuses to touch anything that is not a socket.
func removeStale(path string, opts Options) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // gone meanwhile
	}
	if err != nil {
		return fmt.Errorf("transport: listen unix %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("transport: listen unix %s: %s exists and is not a socket: %w", path, path, fs.ErrExist)
	}
	// Probe with a non-blocking connect: a listener with a full backlog
	// answers EAGAIN instead of making us wait.
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("transport: listen unix %s: %w", path, os.NewSyscallError("socket", err))
	}
	err = unix.Connect(s, &unix.SockaddrUnix{Name: path})
	_ = unix.Close(s)
	switch err {
	case unix.ECONNREFUSED:
		// Nobody listens: a socket file left behind by a process that
		// died without removing it.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("transport: listen unix %s: removing stale socket: %w", path, err)
		}
		opts.Logger.Info("transport: removed stale socket file", "path", path)
		return nil
	case unix.ENOENT:
		return nil
	case nil, unix.EAGAIN, unix.EPROTOTYPE:
		return fmt.Errorf("transport: listen unix %s: socket %s %w", path, path, ErrInUse)
	default:
		return fmt.Errorf("transport: listen unix %s: socket %s may be %w (connect: %v)", path, path, ErrInUse, err)
	}
}

// Serve accepts connections and reads each on its own goroutine until ctx
// is done or Close is called.
func (t *unixTransport) Serve(ctx context.Context, h Handler) error {
	if !t.served.CompareAndSwap(false, true) {
		return fmt.Errorf("transport: %s: %w", t.name, ErrServing)
	}
	if t.closed.Load() || ctx.Err() != nil {
		return nil
	}
	stop := context.AfterFunc(ctx, t.interrupt)
	defer stop()
	defer t.readers.Wait()
	var backoff time.Duration
	for {
		c, err := t.ln.AcceptUnix()
		if err != nil {
			if t.closed.Load() || t.stopping.Load() {
				return nil
			}
			if !isTemporaryAccept(err) {
				return fmt.Errorf("transport: %s: accept: %w", t.name, err)
			}
			// Out of descriptors or memory: wait and retry, as
			// net/http does, instead of failing the daemon.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t.recvError(t.name, err)
			select {
			case <-time.After(backoff):
			case <-t.done:
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		uc := t.admitConn(c)
		if uc == nil {
			continue
		}
		t.readers.Add(1)
		go func() {
			defer t.readers.Done()
			t.read(uc, h)
		}()
	}
}

func isTemporaryAccept(err error) bool {
	for _, e := range []error{unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM, unix.ECONNABORTED, unix.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// interrupt stops the accept loop and every reader, leaving the
// connections open for replies still to be sent.
func (t *unixTransport) interrupt() {
	t.stopping.Store(true)
	past := time.Unix(1, 0)
	_ = t.ln.SetDeadline(past)
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		_ = c.c.SetReadDeadline(past)
	}
}

// admitConn checks a new connection's SO_PEERCRED and registers it. It
// returns nil if the peer was refused or the transport is closing.
func (t *unixTransport) admitConn(c *net.UnixConn) *unixConn {
	rc, err := c.SyscallConn()
	if err != nil {
		t.recvError(t.name, err)
		_ = c.Close()
		return nil
	}
	var cred *unix.Ucred
	var cerr error
	fd := -1
	if err := rc.Control(func(f uintptr) {
		fd = int(f)
		cred, cerr = unix.GetsockoptUcred(int(f), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		cerr = err
	}
	if cerr != nil {
		t.recvError(t.name, fmt.Errorf("SO_PEERCRED: %w", cerr))
		_ = c.Close()
		return nil
	}
	id := t.nextID.Add(1)
	if cred.Uid != 0 && int(cred.Uid) != t.euid {
		t.c.refused.Add(1)
		t.log.Warn("transport: refused unix connection: peer uid is neither 0 nor the daemon's",
			"transport", t.name, "conn", id, "pid", cred.Pid, "uid", cred.Uid, "euid", t.euid)
		_ = c.Close()
		return nil
	}
	uc := &unixConn{
		t:    t,
		c:    c,
		rc:   rc,
		fd:   fd,
		name: "unix:@" + strconv.FormatUint(id, 10) + " pid=" + strconv.Itoa(int(cred.Pid)) + " uid=" + strconv.FormatUint(uint64(cred.Uid), 10),
		rx:   newReceiver(MaxDatagram, false, true),
	}
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		_ = c.Close()
		return nil
	}
	t.conns[uc] = struct{}{}
	if t.stopping.Load() {
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}
	t.mu.Unlock()
	t.c.accepted.Add(1)
	t.c.conns.Add(1)
	t.log.Debug("transport: unix connection", "peer", uc.name)
	return uc
}

// read is the reader goroutine of one connection.
func (t *unixTransport) read(c *unixConn, h Handler) {
	rx := c.rx
	for !t.stopping.Load() {
		if err := c.rc.Read(rx.fn); err != nil {
			if c.closed.Load() || t.stopping.Load() {
				return
			}
			t.recvError(c, err)
			c.close()
			return
		}
		if rx.errno != 0 {
			if !c.closed.Load() {
				t.recvError(c, rx.errno)
				c.close()
			}
			return
		}
		if rx.hup {
			t.log.Debug("transport: unix connection closed by peer", "peer", c.name)
			c.close()
			return
		}
		b, truncated := rx.datagram()
		if !t.admit(b, rx.n, truncated, &c.dg, c) {
			continue
		}
		h.Handle(&c.dg, c)
	}
}

// Close closes the listener and every connection, and removes the socket
// file if it is still the one Listen created.
func (t *unixTransport) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(t.done)
	err := t.ln.Close()
	t.mu.Lock()
	conns := make([]*unixConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	var st unix.Stat_t
	if unix.Lstat(t.path, &st) == nil && st.Dev == t.dev && st.Ino == t.ino {
		if rerr := os.Remove(t.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("transport: %s: close: %w", t.name, err)
	}
	return nil
}

// Stats returns the counters of all connections together.
func (t *unixTransport) Stats() Stats { return t.c.snapshot() }

// String returns "unix:PATH".
func (t *unixTransport) String() string { return t.name }

// close closes the connection once; senders see net.ErrClosed after it.
func (c *unixConn) close() {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	c.mu.Lock()
	_ = c.c.Close()
	c.mu.Unlock()
	t := c.t
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	t.c.conns.Add(-1)
}

// Send sends one datagram on the connection. It does not hold any lock
// while it waits: if the peer's queue is full it polls for room, at most
// Options.SendTimeout in all.
func (c *unixConn) Send(b []byte) error {
	t := c.t
	var deadline time.Time
	for {
		c.mu.RLock()
		if c.closed.Load() {
			c.mu.RUnlock()
			return c.sendError(net.ErrClosed)
		}
		errno := sendto(c.fd, b, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, nil, 0)
		c.mu.RUnlock()
		switch errno {
		case 0:
			t.c.sent.Add(1)
			return nil
		case unix.EAGAIN, unix.ENOBUFS:
		default:
			if errno == unix.EPIPE || errno == unix.ECONNRESET || errno == unix.ENOTCONN {
				return c.sendError(fmt.Errorf("%w: %w", net.ErrClosed, errno))
			}
			return c.sendError(errno)
		}
		// The peer's receive queue is full: wait for room.
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(t.timeout)
		} else if !now.Before(deadline) {
			return c.sendError(fmt.Errorf("peer not reading for %v: %w", t.timeout, os.ErrDeadlineExceeded))
		}
		c.waitWritable(min(deadline.Sub(now), 50*time.Millisecond))
	}
}

// waitWritable polls the descriptor for room without holding c.mu: if the
// connection is closed meanwhile, poll sees a dead or reused descriptor,
// returns early, and the next send attempt finds c.closed set.
func (c *unixConn) waitWritable(d time.Duration) {
	pfd := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLOUT}}
	_, _ = unix.Poll(pfd, int(max(d/time.Millisecond, 1)))
}

func (c *unixConn) sendError(err error) error {
	c.t.sendFailed(c, err)
	return fmt.Errorf("transport: send to %s: %w", c.name, err)
}

// String returns "unix:@N pid=P uid=U".
func (c *unixConn) String() string { return c.name }
