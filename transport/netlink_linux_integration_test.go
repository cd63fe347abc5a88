//go:build linux

package transport_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/ktrace"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// These tests run the netlink transport in test mode against a fake
// kernel on the real NETLINK_CONNECTOR (root only: multicasting to group 7
// needs CAP_NET_ADMIN). Every listener of group 7 on the machine sees what
// the fake kernel sends, and the transport sees what other fake kernels
// send, so assertions only count what this test sent: datagrams of other
// senders are dropped as foreign (and counted there).
//
// Sequence numbers are >= testSeqBase: netlink_sendmsg also delivers a
// multicast to the kernel's own connector socket, where a loaded
// dm-log-userspace would take a datagram for a reply and match it by seq.
const testSeqBase = 0xf0000000

type portIDer interface{ PortID() uint32 }

// startNetlink returns a fake kernel and a netlink transport in test mode
// that accepts it.
func startNetlink(t *testing.T, opts transport.Options) (transport.Transport, *transport.FakeKernel) {
	t.Helper()
	needRoot(t, "multicasting to netlink group 7 needs CAP_NET_ADMIN")
	fk := dialFakeKernel(t)
	if opts.Logger == nil {
		opts.Logger, _ = testLogger(t)
	}
	tr, err := transport.ListenFakeKernel(opts, fk.PortID())
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr, fk
}

func dialFakeKernel(t *testing.T) *transport.FakeKernel {
	t.Helper()
	fk, err := transport.DialFakeKernel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fk.Close() })
	return fk
}

// testLUID returns a luid no other test run uses, to pick our own
// datagrams out of the group's traffic.
func testLUID() uint64 { return 0x7e57000000000000 | rand.Uint64()>>16 }

// receiveReply reads replies at the fake kernel until one for luid
// arrives, and returns it with its sender's port id.
func receiveReply(t *testing.T, fk *transport.FakeKernel, luid uint64) (ulog.Reply, []byte, uint32) {
	t.Helper()
	if err := fk.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, transport.MaxDatagram)
	for {
		n, from, err := fk.Receive(buf)
		if err != nil {
			t.Fatalf("fake kernel: %v", err)
		}
		r, err := ulog.DecodeReply(buf[:n])
		if err != nil || r.AckOnly || r.Req.LUID != luid {
			continue // not ours
		}
		return r, append([]byte(nil), buf[:n]...), from
	}
}

// A real request from the kernel trace, multicast to group 7, reaches the
// handler byte for byte, and the reply reaches the fake kernel's port.
func TestIntegrationNetlinkRoundTrip(t *testing.T) {
	tr, fk := startNetlink(t, transport.Options{})
	entries := ktrace.Load(t)
	if got := tr.String(); got != "netlink" {
		t.Errorf("String() = %q", got)
	}
	var mu sync.Mutex
	got := make(map[uint32][]byte) // seq -> datagram as handed over
	var peerName string
	r := &replier{}
	serve(t, tr, transport.HandlerFunc(func(d *transport.Datagram, from transport.Peer) {
		mu.Lock()
		if d.Err == nil && d.Frame.Req.Seq >= testSeqBase {
			got[d.Frame.Req.Seq] = append([]byte(nil), d.Bytes...)
			peerName = from.String()
		}
		mu.Unlock()
		r.Handle(d, from)
	}))

	// The first request of every type the trace holds.
	seen := make(map[ulog.RequestType]bool)
	luid := testLUID()
	n := 0
	for i := range entries {
		e := &entries[i]
		if e.Kind != ktrace.KindRequest || seen[e.Type] {
			continue
		}
		seen[e.Type] = true
		req, err := e.Request()
		if err != nil {
			t.Fatal(err)
		}
		// The datagram the kernel sent, byte for byte (with its
		// alignment padding), but our own seq and luid.
		dgram, err := e.AppendDatagram(nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Seq, req.LUID = testSeqBase+uint32(i), luid
		for _, off := range []int{8, 24, 184} { // nlmsg_seq, cn_msg.seq, seq
			binary.NativeEndian.PutUint32(dgram[off:], req.Seq)
		}
		binary.NativeEndian.PutUint64(dgram[36:], luid)
		if want := ulog.AppendRequest(nil, &req); string(dgram) != string(want) {
			t.Fatalf("%s: patched trace datagram %x differs from the request it holds %x", e.Type, dgram, want)
		}
		if err := fk.Multicast(dgram); err != nil {
			t.Fatalf("multicast %s: %v", e.Type, err)
		}
		rep, _, from := receiveReply(t, fk, luid)
		if from != tr.(portIDer).PortID() {
			t.Errorf("%s: reply from port %d, want the transport's %d", e.Type, from, tr.(portIDer).PortID())
		}
		if rep.Req.Seq != req.Seq || rep.Req.Type() != e.Type || string(rep.Req.Data) != string(req.Data) {
			t.Errorf("%s: reply seq %d type %s data %x, want seq %d and the request's payload", e.Type, rep.Req.Seq, rep.Req.Type(), rep.Req.Data, req.Seq)
		}
		mu.Lock()
		if b := got[req.Seq]; string(b) != string(dgram) {
			t.Errorf("%s: handler got %x, want exactly the datagram sent %x", e.Type, b, dgram)
		}
		mu.Unlock()
		n++
	}
	if n < 10 {
		t.Errorf("only %d request types in the trace", n)
	}
	mu.Lock()
	if want := "netlink:pid="; !strings.HasPrefix(peerName, want) {
		t.Errorf("peer %q, want %q + the fake kernel's port id", peerName, want)
	}
	mu.Unlock()
	// The sender counts a reply after sendmsg returns, which can be after
	// the fake kernel has read it: wait for the count, not just the reply.
	waitFor(t, "every reply counted as sent", func() bool { return tr.Stats().Sent >= uint64(n) })
	if st := tr.Stats(); st.Handled < uint64(n) || st.Sent < uint64(n) || st.SendErrors != 0 {
		t.Errorf("stats %+v after %d round trips", st, n)
	}
}

// marker sends an allowed request and waits until the handler got it, so
// that everything sent before it has been read. It resends the marker
// every 100 ms: after an overrun the kernel drops everything for the
// socket until its queue has been drained (NETLINK_S_CONGESTED).
func marker(t *testing.T, fk *transport.FakeKernel, handled <-chan uint64, luid uint64) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		if err := fk.Multicast(inSync(t, "marker", luid, testSeqBase, 0)); err != nil {
			t.Fatal(err)
		}
		resend := time.After(100 * time.Millisecond)
	wait:
		for {
			select {
			case l := <-handled:
				if l == luid {
					return
				}
			case <-resend:
				break wait
			case <-timeout:
				t.Fatalf("marker not handled (%d others handled meanwhile)", len(handled))
			}
		}
	}
}

// handledLUIDs is a handler that reports the luid of every request.
func handledLUIDs() (transport.Handler, <-chan uint64) {
	ch := make(chan uint64, 1024)
	return transport.HandlerFunc(func(d *transport.Datagram, from transport.Peer) {
		if d.Err == nil {
			ch <- d.Frame.Req.LUID
		}
	}), ch
}

// Datagrams from a port id other than the kernel's (0) or the fake kernel's are
// forged requests: dropped and counted, multicast or unicast.
func TestIntegrationNetlinkForeignSender(t *testing.T) {
	tr, fk := startNetlink(t, transport.Options{})
	h, handled := handledLUIDs()
	serve(t, tr, h)
	forger := dialFakeKernel(t)
	forged := testLUID()
	before := tr.Stats()
	if err := forger.Multicast(inSync(t, "forged", forged, testSeqBase, 1)); err != nil {
		t.Fatal(err)
	}
	if err := forger.Unicast(tr.(portIDer).PortID(), inSync(t, "forged", forged, testSeqBase+1, 1)); err != nil {
		t.Fatal(err)
	}
	ours := testLUID()
	marker(t, fk, handled, ours)
	waitFor(t, "two foreign drops", func() bool { return tr.Stats().DroppedForeign >= before.DroppedForeign+2 })
	for len(handled) > 0 {
		if l := <-handled; l == forged {
			t.Fatal("a forged request was handed to the handler")
		}
	}
}

// A datagram with another connector id (the proc connector's 1/1) from an
// allowed sender is dropped and counted; the transport goes on.
func TestIntegrationNetlinkForeignConnectorID(t *testing.T) {
	tr, fk := startNetlink(t, transport.Options{})
	h, handled := handledLUIDs()
	serve(t, tr, h)
	luid := testLUID()
	if err := fk.Multicast(withConnectorID(inSync(t, "proc", luid, testSeqBase, 1), 1, 1)); err != nil {
		t.Fatal(err)
	}
	marker(t, fk, handled, testLUID())
	if got := tr.Stats().DroppedConnectorID; got != 1 {
		t.Errorf("DroppedConnectorID %d, want 1", got)
	}
	for len(handled) > 0 {
		if <-handled == luid {
			t.Fatal("a proc connector datagram was handed to the handler")
		}
	}
}

// A receive queue overrun (ENOBUFS) is counted and logged, and Serve goes
// on reading.
func TestIntegrationNetlinkOverrun(t *testing.T) {
	log, lb := testLogger(t)
	// The smallest buffer the kernel allows, and nobody reading yet.
	tr, fk := startNetlink(t, transport.Options{RcvBuf: 1, Logger: log})
	flood := inSync(t, "flood", testLUID(), testSeqBase, 1)
	for range 200 {
		if err := fk.Multicast(flood); err != nil {
			t.Fatal(err)
		}
	}
	h, handled := handledLUIDs()
	errc := serve(t, tr, h)
	marker(t, fk, handled, testLUID())
	if got := tr.Stats().Overruns; got < 1 {
		t.Errorf("Overruns %d after flooding a full queue, want >= 1", got)
	}
	if !strings.Contains(lb.String(), "ENOBUFS") {
		t.Errorf("overrun not logged")
	}
	select {
	case err := <-errc:
		t.Fatalf("Serve returned after an overrun: %v", err)
	default:
	}
}

// Close makes Serve return nil and Sends fail with net.ErrClosed; a
// cancelled ctx makes Serve return nil with the socket still usable for
// replies.
func TestIntegrationNetlinkCloseAndCancel(t *testing.T) {
	tr, fk := startNetlink(t, transport.Options{})
	luid := testLUID()
	req := inSync(t, "cancel", luid, testSeqBase+7, 7)
	peer := answerAfterCancel(t, tr, req, "cancel", fk.Multicast)
	if rep, _, _ := receiveReply(t, fk, luid); rep.Req.Seq != testSeqBase+7 {
		t.Errorf("reply seq %d", rep.Req.Seq)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := peer.Send(req); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Send after Close: %v, want net.ErrClosed", err)
	}
	if err := tr.Serve(context.Background(), &replier{}); !errors.Is(err, transport.ErrServing) {
		t.Errorf("second Serve: %v, want ErrServing", err)
	}

	// Close while Serve blocks in recvmsg.
	tr2, _ := startNetlink(t, transport.Options{})
	errc2 := make(chan error, 1)
	go func() { errc2 <- tr2.Serve(context.Background(), &replier{}) }()
	time.Sleep(10 * time.Millisecond)
	if err := tr2.Close(); err != nil {
		t.Fatal(err)
	}
	served(t, errc2, "Close")
}

// Without CAP_SYS_ADMIN in the effective set, Listen("netlink") refuses:
// the kernel would drop every reply.
func TestIntegrationNetlinkCapabilityCheck(t *testing.T) {
	needRoot(t, "dropping a capability from a child")
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("skipping: no setpriv")
	}
	exe := testExe(t)
	if out := runChild(t, exe, "listen-netlink", "", nil); out != "ok" {
		t.Fatalf("child with all capabilities: %q, want ok", out)
	}
	out := runChild(t, exe, "listen-netlink", "", nil, setpriv, "--inh-caps=-sys_admin", "--bounding-set=-sys_admin")
	if !strings.HasPrefix(out, "nocap:") || !strings.Contains(out, "CAP_SYS_ADMIN") {
		t.Errorf("child without CAP_SYS_ADMIN: %q, want ErrNoCapability", out)
	}
}

// In a network namespace of its own the connector does not exist:
// Listen("netlink") says so instead of waiting for ever.
func TestIntegrationNetlinkNetNamespace(t *testing.T) {
	needRoot(t, "creating a network namespace")
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("skipping: no unshare")
	}
	if err := exec.Command(unshare, "-n", "true").Run(); err != nil {
		t.Skipf("skipping: cannot create a network namespace here: %v", err)
	}
	out := runChild(t, testExe(t), "listen-netlink", "", nil, unshare, "-n")
	if !strings.HasPrefix(out, "netns:") || !strings.Contains(out, "initial network namespace") {
		t.Errorf("child in a new network namespace: %q, want ErrNetNamespace", out)
	}
}

func TestMain_childModesExist(t *testing.T) {
	// The child modes are reached through TestMain; make sure an unknown
	// one fails loudly rather than running the tests again.
	cmd := exec.Command(testExe(t))
	cmd.Env = childEnviron("no-such-mode", "")
	if err := cmd.Run(); err == nil {
		t.Error("unknown child mode exited 0")
	}
}

// With Options.Poll the reader tries again after the socket runs dry, and
// a request sent within the window is read without parking: counted in
// Stats.Polled. Without it nothing is. Each request goes out as soon as
// the reply to the one before is in, as the kernel's mirror worker does.
// Both ways of waiting: poll(2) on the reader's thread, the runtime's
// poller (Options.NetpollWait).
func TestIntegrationNetlinkPoll(t *testing.T) {
	for _, c := range []struct {
		poll    time.Duration
		netpoll bool
	}{{0, false}, {transport.MaxPoll, false}, {0, true}, {transport.MaxPoll, true}} {
		poll := c.poll
		tr, fk := startNetlink(t, transport.Options{Poll: poll, NetpollWait: c.netpoll})
		serve(t, tr, &replier{})
		luid := testLUID()
		const n = 50
		for i := range n {
			// A pause longer than the window before the first, so that
			// the reader is parked once for certain.
			if i == 0 {
				time.Sleep(2 * transport.MaxPoll)
			}
			if err := fk.Multicast(inSync(t, "poll", luid, testSeqBase+uint32(i), uint64(i))); err != nil {
				t.Fatal(err)
			}
			if rep, _, _ := receiveReply(t, fk, luid); rep.Req.Seq != testSeqBase+uint32(i) {
				t.Fatalf("poll %v: reply seq %d, want %d", poll, rep.Req.Seq, testSeqBase+uint32(i))
			}
		}
		st := tr.Stats()
		switch {
		case poll == 0 && st.Polled != 0:
			t.Errorf("without poll: %d datagrams counted as polled", st.Polled)
		case poll > 0 && (st.Polled == 0 || st.Polled >= n):
			// The first request comes after a pause: it finds the
			// reader parked. Most of the others come within the window
			// on an idle host (40 of 50 here); a loaded one stretches
			// many past it, so only some are required.
			t.Errorf("poll %v: %d of %d requests read while polling, want some and not the first", poll, st.Polled, n)
		}
		t.Logf("poll %v, runtime poller %v: %d of %d requests read while polling", poll, c.netpoll, st.Polled, n)
	}
}
