//go:build linux

package transport

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/ulog"
)

// netlinkTransport is the kernel's transport: an AF_NETLINK socket of
// protocol NETLINK_CONNECTOR, member of multicast group 7.
type netlinkTransport struct {
	gate
	conn  *netlink.Conn   // the socket, registered with the runtime poller; nil once the reader blocks in recvmsg (not NetpollWait)
	rc    syscall.RawConn // conn's; nil with conn
	pid   uint32          // our port id
	allow uint32          // the fake kernel's port id in test mode, else 0
	peer  nlPeer

	// fd is the socket's descriptor, used by senders outside RawConn so
	// that they neither allocate nor serialise on the descriptor's write
	// lock. mu keeps it open under them: senders hold mu.RLock for the
	// one non-blocking sendto, Close takes mu.Lock before closing.
	fd     int
	mu     sync.RWMutex
	closed atomic.Bool

	served   atomic.Bool
	stopping atomic.Bool   // ctx of Serve is done
	netpoll  bool          // Options.NetpollWait
	spin     time.Duration // Options.Poll when the reader blocks in recvmsg

	rx        *receiver // the first receiver's (Serve's own goroutine); the others' are made by Serve
	receivers int       // Options.Receivers, 1 with netpoll or spin

	// lead holds the one token that lets a receiver receive and handle
	// (buffer 1): the receiver that holds it is the only one in recvmsg or
	// Handle, so datagrams are handled one at a time, and the others wait
	// on the channel, not in recvmsg, where each would be woken for
	// datagrams the leader would have read on its own. A Handle that
	// detaches passes the token on. attached counts the receivers that
	// have not detached (under amu); stop ends the wait of the others.
	lead     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	amu      sync.Mutex
	attached int
}

// nlReceiver is one of the netlink transport's receiving goroutines.
type nlReceiver struct {
	t    *netlinkTransport
	rx   *receiver
	dg   Datagram
	held bool // this receiver holds the lead token
	// detached: this receiver's Handle detached and has not reattached
	// (it is not counted in attached).
	detached bool
}

// detach is Datagram.Detach for r's datagram: it passes the lead token on
// (to a receiver waiting for it, or the next one that does), unless r is
// the last receiver attached.
func (r *nlReceiver) detach() bool {
	t := r.t
	if !r.held {
		return false
	}
	t.amu.Lock()
	if t.attached <= 1 {
		t.amu.Unlock()
		return false
	}
	t.attached--
	t.amu.Unlock()
	t.c.detached.Add(1)
	r.held, r.detached = false, true
	t.lead <- struct{}{} // never blocks: r held the one token
	return true
}

// reattach is Datagram.Reattach for r's datagram.
func (r *nlReceiver) reattach() {
	if r.held || !r.detached {
		return
	}
	r.t.amu.Lock()
	r.t.attached++
	r.detached = false
	r.t.amu.Unlock()
}

// stopAll ends the wait of every receiver for the lead token.
func (t *netlinkTransport) stopAll() { t.stopOnce.Do(func() { close(t.stop) }) }

// nlPeer is the one peer of the netlink transport: the kernel (nl_pid 0),
// or the fake kernel in test mode (export_test.go).
type nlPeer struct {
	t    *netlinkTransport
	dst  unix.RawSockaddrNetlink // read-only after Listen
	name string
}

var (
	_ Transport = (*netlinkTransport)(nil)
	_ Peer      = (*nlPeer)(nil)
)

// listenNetlink listens on the connector. allow is 0 in production
// (accept only nl_pid 0, reply to nl_pid 0); tests set it to a fake
// kernel's port id (export_test.go): datagrams from it are accepted too,
// replies go to it, and the network namespace check is skipped (a fake
// kernel works in any namespace).
func listenNetlink(opts Options, allow uint32) (Transport, error) {
	if err := checkCapSysAdmin(); err != nil {
		return nil, err
	}
	conn, rc, pid, err := dialConnector()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (Transport, error) {
		_ = conn.Close()
		return nil, err
	}
	fd, err := rawFD(rc)
	if err != nil {
		return fail(fmt.Errorf("transport: netlink: %w", err))
	}
	// NETLINK_BROADCAST_ERROR and NETLINK_NO_ENOBUFS stay off: the first
	// would turn an overrun into an -ENOBUFS the kernel never retries
	// instead of the -ESRCH that starts its reconnect sequence; the
	// second would hide overruns from us.
	rcvbuf, forced, err := setRcvBuf(rc, opts.RcvBuf)
	if err != nil {
		return fail(fmt.Errorf("transport: netlink: receive buffer: %w", err))
	}
	if allow == 0 {
		if err := checkNetNamespace(); err != nil {
			return fail(err)
		}
	}
	t := &netlinkTransport{
		conn:    conn,
		rc:      rc,
		fd:      fd,
		pid:     pid,
		allow:   allow,
		rx:      newReceiver(MaxDatagram, true, false),
		netpoll: opts.NetpollWait,
		stop:    make(chan struct{}),
	}
	t.rx.polled = &t.c.polled
	t.receivers = min(max(opts.Receivers, 0), MaxReceivers)
	if t.receivers == 0 {
		t.receivers = DefaultReceivers
	}
	if opts.NetpollWait || opts.Poll > 0 {
		t.receivers = 1
	}
	if opts.NetpollWait {
		t.rx.poll = min(opts.Poll, MaxPoll)
	} else {
		// The reader blocks in recvmsg itself (readBlocking): the
		// socket is made blocking, with a receive timeout so that the
		// reader sees Close and the end of Serve within waitSlice.
		// Sends pass MSG_DONTWAIT and never block. The socket leaves
		// the runtime's poller: a copy of the descriptor is kept and
		// the Conn closed, which takes the socket out of the runtime's
		// epoll set (poll.FD.Close deletes it before the close), so
		// that no request wakes a thread waiting in epoll_wait for
		// nothing.
		t.spin = min(max(opts.Poll, 0), MaxPoll)
		t.rx.recvFlags &^= unix.MSG_DONTWAIT
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("transport: netlink: blocking receive: dup: %w", err))
		}
		if err := conn.Close(); err != nil {
			unix.Close(nfd)
			return nil, fmt.Errorf("transport: netlink: blocking receive: leave the poller: %w", err)
		}
		t.conn, t.rc, t.fd = nil, nil, nfd
		err = unix.SetNonblock(nfd, false)
		if err == nil {
			err = unix.SetsockoptTimeval(nfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: waitSlice * 1000})
		}
		if err != nil {
			unix.Close(nfd)
			return nil, fmt.Errorf("transport: netlink: blocking receive: %w", err)
		}
	}
	t.log = opts.Logger
	t.peer = nlPeer{t: t, name: "kernel"}
	t.peer.dst.Family = unix.AF_NETLINK
	if allow != 0 {
		t.peer.dst.Pid = allow
		t.peer.name = "netlink:pid=" + strconv.FormatUint(uint64(allow), 10)
	}
	t.log.Info("transport: listening on the netlink connector",
		"group", ulog.CnIdxDM, "port_id", t.pid, "rcvbuf", rcvbuf, "rcvbuf_forced", forced,
		"reply_to", t.peer.name, "poll", max(t.rx.poll, t.spin), "receivers", t.receivers, "wait", map[bool]string{false: "blocking recvmsg", true: "runtime poller"}[t.netpoll])
	if !forced && rcvbuf < opts.RcvBuf {
		t.log.Warn("transport: netlink receive buffer smaller than asked (SO_RCVBUFFORCE needs CAP_NET_ADMIN; SO_RCVBUF is capped by net.core.rmem_max)",
			"asked", opts.RcvBuf, "got", rcvbuf)
	}
	if allow == 0 {
		warnIfNoDMLog(t.log)
	}
	return t, nil
}

// dialConnector opens the connector socket through mdlayher/netlink:
// AF_NETLINK, protocol NETLINK_CONNECTOR, bound with NO group bitmask (a
// bitmask of 7 would mean groups 1-3, cmirrord's bug), then
// NETLINK_ADD_MEMBERSHIP 7, the group the kernel multicasts dm-log
// requests to. The socket is non-blocking and registered with the runtime
// poller; the transport reads and writes it with its own preallocated
// buffers (through the returned RawConn with Options.NetpollWait, else on
// a blocking copy of the descriptor taken out of the poller: listenNetlink),
// because Conn.Receive and Conn.Send allocate on every message.
func dialConnector() (*netlink.Conn, syscall.RawConn, uint32, error) {
	c, err := netlink.Dial(unix.NETLINK_CONNECTOR, &netlink.Config{})
	if err != nil {
		hint := ""
		if errors.Is(err, unix.EPROTONOSUPPORT) {
			hint = " (kernel built without CONFIG_CONNECTOR?)"
		}
		return nil, nil, 0, fmt.Errorf("transport: netlink: dial NETLINK_CONNECTOR%s: %w", hint, err)
	}
	if err := c.JoinGroup(ulog.CnIdxDM); err != nil {
		_ = c.Close()
		return nil, nil, 0, fmt.Errorf("transport: netlink: join group %d: %w", ulog.CnIdxDM, err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		_ = c.Close()
		return nil, nil, 0, fmt.Errorf("transport: netlink: %w", err)
	}
	return c, rc, c.PID(), nil
}

// setRcvBuf asks for a receive buffer of n bytes: SO_RCVBUFFORCE (needs
// CAP_NET_ADMIN, ignores net.core.rmem_max), else SO_RCVBUF. It returns
// the size the kernel reports (twice what was set: it counts its
// bookkeeping) and whether the forced size was accepted.
func setRcvBuf(rc syscall.RawConn, n int) (got int, forced bool, err error) {
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n); e == nil {
			forced = true
		} else if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n); e != nil {
			serr = fmt.Errorf("setsockopt SO_RCVBUF %d: %w", n, e)
			return
		}
		got, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	if cerr != nil {
		return 0, false, cerr
	}
	return got, forced, serr
}

// checkCapSysAdmin fails with ErrNoCapability unless CAP_SYS_ADMIN is in
// the effective set: the connector core discards replies from a sender
// without it (cn_ulog_callback checks capable(CAP_SYS_ADMIN) in the
// sender's context), and joining group 7 succeeds without it, so nothing
// else would notice before every mirror hangs.
func checkCapSysAdmin() error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("transport: netlink: cannot check for CAP_SYS_ADMIN: %w", err)
	}
	caps, err := parseCapEff(status)
	if err != nil {
		return fmt.Errorf("transport: netlink: cannot check for CAP_SYS_ADMIN: /proc/self/status: %w", err)
	}
	return capSysAdminError(caps)
}

// capSysAdminError returns the error for an effective set caps without
// CAP_SYS_ADMIN, nil if it has it.
func capSysAdminError(caps uint64) error {
	if hasCap(caps, capSysAdmin) {
		return nil
	}
	return fmt.Errorf("transport: netlink: %w (CapEff %016x): the kernel silently drops replies from a sender without it, "+
		"so every mirror using the log would hang; run dlogd as root or give it CAP_SYS_ADMIN", ErrNoCapability, caps)
}

// checkNetNamespace fails with ErrNetNamespace when the process is not in
// the initial network namespace. The connector registers its kernel
// socket, and /proc/net/connector, in the initial namespace only
// (connector.c cn_init), so a missing /proc/self/net/connector (with a
// connector socket that could be created) means another namespace: the
// daemon would listen forever and never get a request.
func checkNetNamespace() error {
	_, err := os.Stat("/proc/self/net/connector")
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil // there, or cannot tell: do not refuse on a guess
	}
	detail := ""
	if self, err := os.Readlink("/proc/self/ns/net"); err == nil {
		detail = " (this process: " + self
		if init, err := os.Readlink("/proc/1/ns/net"); err == nil && init != self {
			detail += ", pid 1: " + init
		}
		detail += ")"
	}
	return fmt.Errorf("transport: netlink: %w%s: /proc/self/net/connector does not exist; "+
		"the connector exists only in the initial network namespace, so no request would ever arrive; "+
		"run dlogd in the host's network namespace", ErrNetNamespace, detail)
}

// warnIfNoDMLog logs when dm-log-userspace has not registered its
// connector callback ("dmlogusr 7:1" in /proc/net/connector): the daemon
// works, but no request arrives until the module is loaded.
func warnIfNoDMLog(log *slog.Logger) {
	b, err := os.ReadFile("/proc/self/net/connector")
	if err != nil || strings.Contains(string(b), "dmlogusr") {
		return
	}
	log.Info("transport: dm-log-userspace is not loaded (no dmlogusr in /proc/net/connector); requests will arrive once it is")
}

// Serve reads requests until ctx is done or Close is called, on
// t.receivers goroutines (Options.Receivers); it returns when all of them
// have returned, with the first fatal error.
func (t *netlinkTransport) Serve(ctx context.Context, h Handler) error {
	if !t.served.CompareAndSwap(false, true) {
		return fmt.Errorf("transport: netlink: %w", ErrServing)
	}
	if t.closed.Load() || ctx.Err() != nil {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		t.stopping.Store(true)
		t.stopAll()
		if t.conn != nil {
			_ = t.conn.SetReadDeadline(time.Unix(1, 0))
		}
	})
	defer stop()
	rs := make([]*nlReceiver, t.receivers)
	for i := range rs {
		rx := t.rx
		if i > 0 {
			rx = newReceiver(MaxDatagram, true, false)
			rx.recvFlags, rx.polled = t.rx.recvFlags, t.rx.polled
		}
		rs[i] = &nlReceiver{t: t, rx: rx}
		if len(rs) > 1 {
			rs[i].dg.OnDetach(rs[i].detach)
			rs[i].dg.OnReattach(rs[i].reattach)
		}
	}
	t.attached = len(rs)
	t.lead = make(chan struct{}, 1)
	t.lead <- struct{}{}
	errs := make(chan error, len(rs))
	var wg sync.WaitGroup
	for _, r := range rs[1:] {
		wg.Go(func() { errs <- r.serve(h) })
	}
	errs <- rs[0].serve(h)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// serve is one receiver's loop. A fatal error stops every receiver.
func (r *nlReceiver) serve(h Handler) error {
	t := r.t
	err := r.loop(h)
	if err != nil {
		t.stopping.Store(true)
		t.stopAll()
	}
	return err
}

func (r *nlReceiver) loop(h Handler) error {
	t, rx := r.t, r.rx
	read := func(fn func(uintptr) bool) error { return t.readBlocking(rx, fn) }
	if t.netpoll {
		read = t.rc.Read
	}
	for !t.stopping.Load() {
		if !r.held {
			select {
			case <-t.lead:
				r.held = true
			case <-t.stop:
				return nil
			}
		}
		if err := read(rx.fn); err != nil {
			if t.closed.Load() || t.stopping.Load() {
				return nil
			}
			return fmt.Errorf("transport: netlink: receive: %w", err)
		}
		switch rx.errno {
		case 0:
		case unix.ENOBUFS:
			// The receive queue overflowed and the kernel dropped
			// messages for us; the socket is fine. The kernel saw
			// -ESRCH for the requests it could not deliver and resends
			// them after its reconnect sequence (docs/protocol.md §1.3, §1.6).
			t.overrunSeen()
			continue
		default:
			if t.closed.Load() || t.stopping.Load() {
				return nil
			}
			return fmt.Errorf("transport: netlink: recvmsg: %w", rx.errno)
		}
		b, truncated := rx.datagram()
		// Only the kernel (nl_pid 0) sends requests. A privileged
		// process can multicast to group 7 too; its datagrams carry its
		// own port id (docs/protocol.md §1.3, docs/conformance.md item 4).
		if src := rx.src.Pid; src != 0 && src != t.allow {
			t.foreign(nlPID(src), rx.n)
			continue
		}
		if !t.admit(b, rx.n, truncated, &r.dg, &t.peer) {
			continue
		}
		h.Handle(&r.dg, &t.peer)
		if !r.held {
			r.reattach()
		}
	}
	return nil
}

// waitSlice bounds one blocking recvmsg of readBlocking (SO_RCVTIMEO),
// so that it sees Close and the end of Serve's context within it.
const waitSlice = 200 // ms

// readBlocking is rc.Read without the runtime's poller: fn, a recvmsg
// that blocks on this goroutine's thread (up to waitSlice), as a C
// daemon's does, until it has a result; with Options.Poll, a bounded
// busy-poll first. The kernel's wake-up of that thread is the only hop
// from a request's arrival to its reading; through the poller it is a
// wake-up of whichever thread waits in epoll_wait, which readies the
// goroutine, often for another thread to run. The descriptor is held open
// (mu.RLock) across the call; Close waits for at most waitSlice.
func (t *netlinkTransport) readBlocking(rx *receiver, fn func(uintptr) bool) error {
	for {
		t.mu.RLock()
		if t.closed.Load() || t.stopping.Load() {
			t.mu.RUnlock()
			return net.ErrClosed
		}
		ok := (t.spin > 0 && rx.spin(uintptr(t.fd), t.spin)) || fn(uintptr(t.fd))
		t.mu.RUnlock()
		if ok {
			return nil
		}
	}
}

// nlPID names a netlink sender in the log, formatted only when logged.
type nlPID uint32

func (p nlPID) String() string { return "netlink:pid=" + strconv.FormatUint(uint64(p), 10) }

// Close closes the socket.
func (t *netlinkTransport) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	t.stopAll()
	t.mu.Lock()
	var err error
	if t.conn != nil {
		err = t.conn.Close()
	} else {
		err = unix.Close(t.fd)
	}
	t.mu.Unlock()
	if err != nil {
		return fmt.Errorf("transport: netlink: close: %w", err)
	}
	return nil
}

// Stats returns the counters.
func (t *netlinkTransport) Stats() Stats { return t.c.snapshot() }

// String returns "netlink".
func (t *netlinkTransport) String() string { return "netlink" }

// PortID returns the socket's netlink port id, the nlmsg_pid a daemon may
// put in its replies (the kernel does not look at it).
func (t *netlinkTransport) PortID() uint32 { return t.pid }

// Send sends one datagram to the kernel (or the fake kernel): a unicast sendto of
// the preallocated address. It never waits: netlink input to the kernel is
// processed synchronously in sendto, and a full queue at a test peer is a
// lost datagram, as it would be for the kernel.
func (p *nlPeer) Send(b []byte) error {
	t := p.t
	t.mu.RLock()
	if t.closed.Load() {
		t.mu.RUnlock()
		return t.sendError(p, net.ErrClosed)
	}
	errno := sendto(t.fd, b, unix.MSG_DONTWAIT, unsafe.Pointer(&p.dst), unix.SizeofSockaddrNetlink)
	t.mu.RUnlock()
	if errno != 0 {
		return t.sendError(p, errno)
	}
	t.c.sent.Add(1)
	return nil
}

func (t *netlinkTransport) sendError(p *nlPeer, err error) error {
	t.sendFailed(p, err)
	return fmt.Errorf("transport: netlink: send to %s: %w", p.name, err)
}

// String returns "kernel", or "netlink:pid=N" in test mode.
func (p *nlPeer) String() string { return p.name }
