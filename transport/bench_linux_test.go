//go:build linux

package transport_test

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// echoHandler sends every datagram back as it came: the transport's cost
// alone, with no codec work.
type echoHandler struct{}

func (echoHandler) Handle(d *transport.Datagram, from transport.Peer) { _ = from.Send(d.Bytes) }

// benchRoundTrips measures round trips of req through the client.
func benchRoundTrips(b *testing.B, send func([]byte) error, receive func([]byte) (int, error), req []byte) {
	b.Helper()
	buf := make([]byte, transport.MaxDatagram)
	for range 100 {
		if err := send(req); err != nil {
			b.Fatal(err)
		}
		if _, err := receive(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	b.ResetTimer()
	for b.Loop() {
		if err := send(req); err != nil {
			b.Fatal(err)
		}
		if _, err := receive(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnixRoundTrip sends an IN_SYNC request (204 bytes: 196 of
// headers and an 8-byte region) and waits for the answer, through:
//
//	transport/echo   the unix transport, handler sending the bytes back
//	transport/reply  the unix transport, handler decoding and answering
//	                 with ulog.AppendReply (what the daemon does for IN_SYNC)
//	bare/netpoll     a plain Go echo server on the same socket type:
//	                 net.UnixConn Read and Write in a loop
//	bare/blocking    a plain C-style echo server: blocking recv and send
//	                 on a locked OS thread, no runtime poller
//
// The client is the same UnixClient in every case.
func BenchmarkUnixRoundTrip(b *testing.B) {
	req := inSync(b, "bench", 0x42, 1, 12345)
	b.Run("transport/echo", func(b *testing.B) { benchUnixTransport(b, echoHandler{}, req) })
	b.Run("transport/reply", func(b *testing.B) { benchUnixTransport(b, &inSyncReplier{}, req) })
	b.Run("bare/netpoll", func(b *testing.B) { benchUnixBare(b, req, false) })
	b.Run("bare/blocking", func(b *testing.B) { benchUnixBare(b, req, true) })
}

func benchUnixTransport(b *testing.B, h transport.Handler, req []byte) {
	log, _ := testLogger(b)
	path := filepath.Join(b.TempDir(), "bench.sock")
	tr, err := transport.Listen("unix:"+path, transport.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	serve(b, tr, h)
	c := dial(b, path)
	benchRoundTrips(b, c.Send, c.Receive, req)
}

func benchUnixBare(b *testing.B, req []byte, blocking bool) {
	path := filepath.Join(b.TempDir(), "bare.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, transport.MaxDatagram)
		if !blocking {
			for {
				n, err := conn.Read(buf)
				if err != nil || n == 0 {
					return
				}
				if _, err := conn.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		f, err := conn.File() // a blocking duplicate
		if err != nil {
			return
		}
		defer f.Close()
		fd := int(f.Fd())
		if err := unix.SetNonblock(fd, false); err != nil {
			return
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for {
			n, err := unix.Read(fd, buf)
			if err != nil || n == 0 {
				return
			}
			if _, err := unix.Write(fd, buf[:n]); err != nil {
				return
			}
		}
	}()
	c, err := transport.DialUnix(path)
	if err != nil {
		b.Fatal(err)
	}
	benchRoundTrips(b, c.Send, c.Receive, req)
	b.StopTimer()
	_ = c.Close()
	<-done
}

// BenchmarkIntegrationNetlinkRoundTrip is the same over the netlink
// connector: a fake kernel multicasts the IN_SYNC request to group 7 and
// waits for the unicast answer on its port (root only).
//
//	transport/echo, transport/reply  as for unix
//	bare/netpoll   a socket joined to group 7 and connected to the fake
//	               kernel's port, os.File Read and Write in a loop
//	bare/blocking  a socket joined to group 7, blocking recvfrom and sendto
//	               to the fake kernel's port in a loop
func BenchmarkIntegrationNetlinkRoundTrip(b *testing.B) {
	req := inSync(b, "bench", 0x42, testSeqBase, 12345)
	b.Run("transport/echo", func(b *testing.B) { benchNetlinkTransport(b, echoHandler{}, req) })
	b.Run("transport/reply", func(b *testing.B) { benchNetlinkTransport(b, &inSyncReplier{}, req) })
	b.Run("bare/netpoll", func(b *testing.B) { benchNetlinkBare(b, req, false) })
	b.Run("bare/blocking", func(b *testing.B) { benchNetlinkBare(b, req, true) })
}

func benchNetlinkTransport(b *testing.B, h transport.Handler, req []byte) {
	needRoot(b, "multicasting to netlink group 7 needs CAP_NET_ADMIN")
	fk, err := transport.DialFakeKernel()
	if err != nil {
		b.Fatal(err)
	}
	defer fk.Close()
	log, _ := testLogger(b)
	tr, err := transport.ListenFakeKernel(transport.Options{Logger: log}, fk.PortID())
	if err != nil {
		b.Fatal(err)
	}
	serve(b, tr, h)
	benchRoundTrips(b, fk.Multicast, func(buf []byte) (int, error) {
		n, _, err := fk.Receive(buf)
		return n, err
	}, req)
}

func benchNetlinkBare(b *testing.B, req []byte, blocking bool) {
	needRoot(b, "multicasting to netlink group 7 needs CAP_NET_ADMIN")
	fk, err := transport.DialFakeKernel()
	if err != nil {
		b.Fatal(err)
	}
	defer fk.Close()
	flags := unix.SOCK_RAW | unix.SOCK_CLOEXEC
	if !blocking {
		flags |= unix.SOCK_NONBLOCK
	}
	fd, err := unix.Socket(unix.AF_NETLINK, flags, unix.NETLINK_CONNECTOR)
	if err != nil {
		b.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		b.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, ulog.CnIdxDM); err != nil {
		b.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		b.Fatal(err)
	}
	serverPID := sa.(*unix.SockaddrNetlink).Pid
	to := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: fk.PortID()}
	done := make(chan struct{})
	if blocking {
		defer unix.Close(fd)
		go func() {
			defer close(done)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			buf := make([]byte, transport.MaxDatagram)
			for {
				n, from, err := unix.Recvfrom(fd, buf, 0)
				if err != nil || n < ulog.NlmsgHdrLen {
					return // the stop datagram
				}
				if from.(*unix.SockaddrNetlink).Pid != fk.PortID() {
					continue // somebody else's traffic on group 7
				}
				if err := unix.Sendto(fd, buf[:n], 0, to); err != nil {
					return
				}
			}
		}()
	} else {
		// Connected to the fake kernel: write(2) goes there, and the
		// kernel delivers no unicast from anybody else.
		if err := unix.Connect(fd, to); err != nil {
			b.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "bare-netlink")
		defer f.Close()
		go func() {
			defer close(done)
			buf := make([]byte, transport.MaxDatagram)
			for {
				n, err := f.Read(buf)
				if err != nil || n < ulog.NlmsgHdrLen {
					return // the stop datagram
				}
				if _, err := f.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
	benchRoundTrips(b, fk.Multicast, func(buf []byte) (int, error) {
		n, _, err := fk.Receive(buf)
		return n, err
	}, req)
	b.StopTimer()
	if err := fk.Unicast(serverPID, []byte{0}); err != nil {
		b.Fatal(err)
	}
	<-done
}
