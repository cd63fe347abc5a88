//go:build linux

package transport

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCapSysAdminError(t *testing.T) {
	if err := capSysAdminError(1 << capSysAdmin); err != nil {
		t.Errorf("with CAP_SYS_ADMIN: %v", err)
	}
	err := capSysAdminError(0x1ffffdfffff)
	if !errors.Is(err, ErrNoCapability) {
		t.Fatalf("without CAP_SYS_ADMIN: %v, want ErrNoCapability", err)
	}
	// The message must say what goes wrong and what to do.
	for _, want := range []string{"CAP_SYS_ADMIN", "000001ffffdfffff", "silently drops replies", "hang", "run dlogd as root"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// Listen("netlink") refuses whenever this process lacks CAP_SYS_ADMIN,
// and gets past the check when it has it.
func TestNetlinkListenCapability(t *testing.T) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	caps, err := parseCapEff(status)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Listen("netlink", Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if tr != nil {
		_ = tr.Close()
	}
	if hasCap(caps, capSysAdmin) {
		if errors.Is(err, ErrNoCapability) {
			t.Errorf("with CAP_SYS_ADMIN (CapEff %x): %v", caps, err)
		}
		return
	}
	if !errors.Is(err, ErrNoCapability) {
		t.Errorf("without CAP_SYS_ADMIN (CapEff %x): %v, want ErrNoCapability", caps, err)
	}
}

// The socket is set up the way docs/protocol.md §1.1 and docs/conformance.md items 1 and 9
// ask: bound with no group bitmask and a member of group 7 only (not 1-3,
// cmirrord's bug), a large receive buffer, NETLINK_BROADCAST_ERROR and
// NETLINK_NO_ENOBUFS off.
func TestIntegrationNetlinkSocketOptions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (SO_RCVBUFFORCE, and the capability check)")
	}
	tr, err := ListenFakeKernel(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	nt := tr.(*netlinkTransport)
	fd := nt.fd

	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	// getsockname reports the memberships of groups 1-32 as a bitmask.
	if got := sa.(*unix.SockaddrNetlink).Groups; got != 1<<6 {
		t.Errorf("group bitmask %#x, want %#x (group 7 alone)", got, 1<<6)
	}
	if got := sa.(*unix.SockaddrNetlink).Pid; got != nt.PortID() || got == 0 {
		t.Errorf("port id %d, PortID() %d", got, nt.PortID())
	}
	for _, opt := range []struct {
		name string
		opt  int
	}{{"NETLINK_BROADCAST_ERROR", unix.NETLINK_BROADCAST_ERROR}, {"NETLINK_NO_ENOBUFS", unix.NETLINK_NO_ENOBUFS}} {
		v, err := unix.GetsockoptInt(fd, unix.SOL_NETLINK, opt.opt)
		if err != nil {
			t.Fatalf("%s: %v", opt.name, err)
		}
		if v != 0 {
			t.Errorf("%s is %d, want 0", opt.name, v)
		}
	}
	rcv, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		t.Fatal(err)
	}
	if rcv < 2*DefaultRcvBuf {
		t.Errorf("SO_RCVBUF %d, want %d (SO_RCVBUFFORCE as root, doubled by the kernel)", rcv, 2*DefaultRcvBuf)
	}
}
