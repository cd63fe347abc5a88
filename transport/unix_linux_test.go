//go:build linux

package transport_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// listenUnix starts a unix transport in a fresh directory.
func listenUnix(t *testing.T, opts transport.Options) (transport.Transport, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dlogd.sock")
	if opts.Logger == nil {
		opts.Logger, _ = testLogger(t)
	}
	tr, err := transport.Listen("unix:"+path, opts)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr, path
}

func dial(t testing.TB, path string) *transport.UnixClient {
	t.Helper()
	c, err := transport.DialUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUnixString(t *testing.T) {
	tr, path := listenUnix(t, transport.Options{})
	if got, want := tr.String(), "unix:"+path; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// Many clients at once, each with its own log instance: every client must
// get exactly the replies to its own requests, each exactly once, although
// the replies are sent by worker goroutines in whatever order they come.
func TestUnixConcurrentConnections(t *testing.T) {
	tr, path := listenUnix(t, transport.Options{})
	r := &replier{}
	r.startWorkers(t, 4)
	serve(t, tr, r)

	const clients, perClient = 16, 100
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	for i := range clients {
		c := dial(t, path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- func() error {
				luid := uint64(0xc0ffee00) + uint64(i)
				uuid := fmt.Sprintf("client-%d", i)
				// Pipeline: send everything, then read everything.
				for seq := range uint32(perClient) {
					if err := c.Send(inSyncNoT(uuid, luid, seq, uint64(i)*1000+uint64(seq))); err != nil {
						return err
					}
				}
				got := make(map[uint32]bool)
				buf := make([]byte, transport.MaxDatagram)
				for range perClient {
					n, err := c.Receive(buf)
					if err != nil {
						return err
					}
					rep, err := ulog.DecodeReply(buf[:n])
					if err != nil {
						return err
					}
					if rep.Req.LUID != luid || string(rep.Req.UUIDBytes()) != uuid {
						return fmt.Errorf("client %d got a reply for %q/%#x", i, rep.Req.UUIDBytes(), rep.Req.LUID)
					}
					seq := rep.Req.Seq
					if got[seq] || seq >= perClient {
						return fmt.Errorf("client %d: reply seq %d duplicate or unknown", i, seq)
					}
					got[seq] = true
					if region, _ := ulog.Region(rep.Req.Data); region != uint64(i)*1000+uint64(seq) {
						return fmt.Errorf("client %d seq %d: payload region %d", i, seq, region)
					}
				}
				// Nothing more may arrive.
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				if n, err := c.Receive(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
					return fmt.Errorf("client %d: extra datagram (%d bytes, %v)", i, n, err)
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
	st := tr.Stats()
	if st.Accepted != clients || st.Handled != clients*perClient || st.Sent != clients*perClient || st.Dropped() != 0 || st.SendErrors != 0 {
		t.Errorf("stats %+v, want %d accepted, %d handled and sent, no drops or send errors", st, clients, clients*perClient)
	}
}

// inSyncNoT is inSync for goroutines that have no *testing.T to fail.
func inSyncNoT(uuid string, luid uint64, seq uint32, region uint64) []byte {
	req := ulog.Request{LUID: luid, Version: ulog.Version, Seq: seq, RawType: uint32(ulog.TypeInSync),
		Data: ulog.AppendUint64(nil, region)}
	if err := req.SetUUID(uuid); err != nil {
		panic(err)
	}
	return ulog.AppendRequest(nil, &req)
}

// The Peer of a datagram outlives Handle: the daemon's workers reply
// later, from other goroutines. And b is only lent: the transport reuses
// it for the next datagram.
func TestUnixReplyAfterHandleReturned(t *testing.T) {
	tr, path := listenUnix(t, transport.Options{})
	type held struct {
		from transport.Peer
		b    []byte // the slice Handle got, not a copy
		copy []byte
	}
	heldc := make(chan held, 2)
	serve(t, tr, transport.HandlerFunc(func(d *transport.Datagram, from transport.Peer) {
		heldc <- held{from, d.Bytes, append([]byte(nil), d.Bytes...)}
	}))
	c := dial(t, path)
	first, second := inSync(t, "late", 1, 1, 11), inSync(t, "late", 1, 2, 22)
	if err := c.Send(first); err != nil {
		t.Fatal(err)
	}
	h1 := <-heldc
	if err := c.Send(second); err != nil {
		t.Fatal(err)
	}
	h2 := <-heldc
	// Handle has returned for both; the buffer it lent was reused.
	if string(h1.b) == string(h1.copy) {
		t.Logf("note: buffer of the first datagram not overwritten (same length and bytes?)")
	}
	if string(h2.copy) != string(second) || string(h1.copy) != string(first) {
		t.Fatalf("Handle got other bytes than sent")
	}
	if h1.from != h2.from {
		t.Errorf("two datagrams of one connection came from different Peers %v, %v", h1.from, h2.from)
	}
	if s := h1.from.String(); !strings.HasPrefix(s, "unix:@") || !strings.Contains(s, fmt.Sprintf("pid=%d uid=%d", os.Getpid(), os.Geteuid())) {
		t.Errorf("Peer.String() = %q, want unix:@N pid=%d uid=%d", s, os.Getpid(), os.Geteuid())
	}
	// Reply from another goroutine, second one first.
	done := make(chan error)
	go func() {
		for _, h := range []held{h2, h1} {
			var f ulog.Frame
			if err := ulog.DecodeRequest(h.copy, &f); err != nil {
				done <- err
				return
			}
			if err := h.from.Send(ulog.AppendReply(nil, &f.Req, 0, 0, f.Req.Data)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	for _, want := range []struct {
		seq    uint32
		region uint64
	}{{2, 22}, {1, 11}} {
		n, err := c.Receive(buf)
		if err != nil {
			t.Fatal(err)
		}
		checkReply(t, buf[:n], 1, want.seq, want.region)
	}
}

// A peer whose SO_PEERCRED uid is neither 0 nor the daemon's is refused:
// the connection is closed at once and nothing it sends is handled.
func TestUnixRefusesOtherUID(t *testing.T) {
	needRoot(t, "running a client as uid 65534")
	dir, exe := publicDir(t)
	path := filepath.Join(dir, "dlogd.sock")
	log, lb := testLogger(t)
	// Mode 0666: the file mode must not be what stops the client, so
	// that the credential check is what is tested.
	tr, err := transport.Listen("unix:"+path, transport.Options{Logger: log, Mode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	r := &replier{}
	serve(t, tr, r)

	out := runChild(t, exe, "dial", path, &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}},
	})
	if !strings.HasPrefix(out, "closed") {
		t.Errorf("child as uid 65534: %q, want the connection closed without a reply", out)
	}
	waitFor(t, "the refusal to be counted", func() bool { return tr.Stats().Refused == 1 })
	if st := tr.Stats(); st.Accepted != 0 || st.Received != 0 || r.calls.Load() != 0 {
		t.Errorf("refused peer got through: stats %+v, %d Handle calls", st, r.calls.Load())
	}
	if !strings.Contains(lb.String(), "refused unix connection") || !strings.Contains(lb.String(), "uid=65534") {
		t.Errorf("refusal not logged with the uid:\n%s", lb.String())
	}

	// Our own uid (root) in a child process is accepted.
	if out := runChild(t, exe, "dial", path, nil); out != fmt.Sprintf("reply %d bytes", ulog.HeaderLen+8) {
		t.Errorf("child as root: %q, want a reply", out)
	}
}

func TestUnixSocketMode(t *testing.T) {
	for _, tc := range []struct {
		mode, want os.FileMode
	}{{0, 0o600}, {0o660, 0o660}} {
		t.Run(tc.want.String(), func(t *testing.T) {
			_, path := listenUnix(t, transport.Options{Mode: tc.mode})
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != tc.want {
				t.Errorf("socket file mode %v, want socket with %v", fi.Mode(), tc.want)
			}
		})
	}
}

// A socket file left by a process that was killed is replaced; one with a
// live listener is refused and left alone; a file that is not a socket is
// never removed.
func TestUnixStaleAndLiveSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dlogd.sock")

	// A child listens at path and is killed: its socket file stays.
	cmd := exec.Command(testExe(t))
	cmd.Env = childEnviron("listen-unix", path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "listening" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child: %q", line)
	}
	// While the child lives, the socket is in use.
	log, _ := testLogger(t)
	if _, err := transport.Listen("unix:"+path, transport.Options{Logger: log}); !errors.Is(err, transport.ErrInUse) {
		t.Errorf("Listen on a live socket: %v, want ErrInUse", err)
	} else if !strings.Contains(err.Error(), "socket "+path+" in use by another process") {
		t.Errorf("error %q does not say the socket is in use by another process", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the killed child's socket file is gone (%v); the test cannot test anything", err)
	}

	tr, err := transport.Listen("unix:"+path, transport.Options{Logger: log})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	serve(t, tr, &replier{})
	c := dial(t, path)
	if err := c.Send(inSync(t, "stale", 3, 3, 3)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	n, err := c.Receive(buf)
	if err != nil {
		t.Fatal(err)
	}
	checkReply(t, buf[:n], 3, 3, 3)

	// In-process, a second Listen on the live socket fails and leaves the
	// first one working.
	if _, err := transport.Listen("unix:"+path, transport.Options{Logger: log}); !errors.Is(err, transport.ErrInUse) {
		t.Errorf("second Listen: %v, want ErrInUse", err)
	}
	if err := c.Send(inSync(t, "stale", 3, 4, 4)); err != nil {
		t.Fatal(err)
	}
	if n, err = c.Receive(buf); err != nil {
		t.Fatalf("first transport broken by a second Listen: %v", err)
	}
	checkReply(t, buf[:n], 3, 4, 4)
	c2 := dial(t, path) // the file is still the live one
	_ = c2

	// Not a socket: refused, untouched.
	notSock := filepath.Join(dir, "regular")
	if err := os.WriteFile(notSock, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := transport.Listen("unix:"+notSock, transport.Options{Logger: log}); err == nil || !errors.Is(err, fs.ErrExist) {
		t.Errorf("Listen over a regular file: %v, want an error wrapping fs.ErrExist", err)
	}
	if b, err := os.ReadFile(notSock); err != nil || string(b) != "keep" {
		t.Errorf("regular file touched: %q, %v", b, err)
	}
}

// Datagrams the transport must not hand on are dropped and counted, and
// the connection goes on: an oversize one (MSG_TRUNC), an empty one, one
// with a foreign connector id, one too short for the headers.
func TestUnixDropsAndContinues(t *testing.T) {
	tr, path := listenUnix(t, transport.Options{})
	r := &replier{}
	serve(t, tr, r)
	c := dial(t, path)
	buf := make([]byte, transport.MaxDatagram)

	good := inSync(t, "drops", 5, 1, 7)
	// The largest datagram accepted, padded after a valid request: handled.
	maxed := append(inSync(t, "drops", 5, 2, 8), make([]byte, transport.MaxDatagram-len(good))...)
	oversize := append(inSync(t, "drops", 5, 3, 9), make([]byte, transport.MaxDatagram+1-len(good))...)

	steps := []struct {
		name   string
		b      []byte
		reply  bool
		seq    uint32
		region uint64
		stat   func(transport.Stats) uint64
	}{
		{"good", good, true, 1, 7, nil},
		{"oversize", oversize, false, 0, 0, func(s transport.Stats) uint64 { return s.DroppedTruncated }},
		{"empty", []byte{}, false, 0, 0, func(s transport.Stats) uint64 { return s.DroppedShort }},
		{"proc-connector-id", withConnectorID(good, 1, 1), false, 0, 0, func(s transport.Stats) uint64 { return s.DroppedConnectorID }},
		{"short", good[:10], false, 0, 0, func(s transport.Stats) uint64 { return s.DroppedShort }},
		{"cut", good[:100], false, 0, 0, func(s transport.Stats) uint64 { return s.DroppedBadLength }},
		{"max-size", maxed, true, 2, 8, nil},
		{"good-after", good, true, 1, 7, nil},
	}
	for _, s := range steps {
		before := tr.Stats()
		if err := c.Send(s.b); err != nil {
			t.Fatalf("%s: send: %v", s.name, err)
		}
		if s.reply {
			n, err := c.Receive(buf)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			checkReply(t, buf[:n], 5, s.seq, s.region)
			continue
		}
		waitFor(t, s.name+" to be counted", func() bool { return s.stat(tr.Stats()) > s.stat(before) })
		if got := s.stat(tr.Stats()) - s.stat(before); got != 1 {
			t.Errorf("%s: counted %d times", s.name, got)
		}
	}
	st := tr.Stats()
	if st.Received != uint64(len(steps)) || st.Handled != 3 || st.Dropped() != 5 || r.bad.Load() != 0 {
		t.Errorf("stats %+v (%d undecodable handed on), want %d received, 3 handled, 5 dropped", st, r.bad.Load(), len(steps))
	}
	if st.Conns != 1 {
		t.Errorf("%d connections open, want 1: a drop must not close the connection", st.Conns)
	}
}

// A request the codec wants answered with an error (ActionReplyError,
// ActionAckAgain) is handed to the Handler, which owes the sender that
// answer.
func TestUnixHandsOnRequestsToAnswer(t *testing.T) {
	tr, path := listenUnix(t, transport.Options{})
	var got [][]byte
	var mu sync.Mutex
	serve(t, tr, transport.HandlerFunc(func(d *transport.Datagram, from transport.Peer) {
		mu.Lock()
		got = append(got, append([]byte(nil), d.Bytes...))
		mu.Unlock()
	}))
	c := dial(t, path)
	badType := inSync(t, "x", 1, 1, 1)
	badType[188] = 0 // request_type 0: reply -EINVAL
	if err := c.Send(badType); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bad-type request to be handled", func() bool { return tr.Stats().Handled == 1 })
	mu.Lock()
	defer mu.Unlock()
	var f ulog.Frame
	var fe *ulog.FrameError
	if err := ulog.DecodeRequest(got[0], &f); !errors.As(err, &fe) || fe.Action != ulog.ActionReplyError {
		t.Errorf("handed on %v, want a request DecodeRequest answers with reply-error", err)
	}
}

// Close makes Serve return nil, closes every connection, removes the
// socket file, and makes Peers fail with net.ErrClosed.
func TestUnixCloseUnblocksServe(t *testing.T) {
	log, _ := testLogger(t)
	path := filepath.Join(t.TempDir(), "dlogd.sock")
	tr, err := transport.Listen("unix:"+path, transport.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	peers, errc := servePeers(context.Background(), tr)
	c := dial(t, path)
	if err := c.Send(inSync(t, "close", 1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	peer := <-peers
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	served(t, errc, "Close")
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: %v, want it removed", err)
	}
	if err := peer.Send(inSync(t, "close", 1, 1, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Send after Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Receive(make([]byte, 1024)); !errors.Is(err, io.EOF) {
		t.Errorf("client after Close: %v, want EOF", err)
	}
	if err := tr.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := tr.Serve(context.Background(), &replier{}); !errors.Is(err, transport.ErrServing) {
		t.Errorf("Serve again: %v, want ErrServing", err)
	}
	if st := tr.Stats(); st.Conns != 0 || st.SendErrors != 1 {
		t.Errorf("stats %+v, want no open connections and one send error", st)
	}
}

// When ctx is done Serve stops reading and returns nil, but connections
// stay open until Close, so replies still pending go out.
func TestUnixContextCancel(t *testing.T) {
	tr, path := listenUnix(t, transport.Options{})
	c := dial(t, path)
	req := inSync(t, "cancel", 9, 9, 9)
	answerAfterCancel(t, tr, req, "ctx was cancelled", c.Send)
	// The pending reply still reaches the client.
	buf := make([]byte, 1024)
	n, err := c.Receive(buf)
	if err != nil {
		t.Fatal(err)
	}
	checkReply(t, buf[:n], 9, 9, 9)
	// Nothing more is read.
	if err := c.Send(req); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if got := tr.Stats().Received; got != 1 {
		t.Errorf("received %d datagrams, want 1: reading must stop with ctx", got)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("socket file gone before Close: %v", err)
	}
}

// A Peer whose client hung up fails with net.ErrClosed, and the
// connection is forgotten.
func TestUnixPeerHangUp(t *testing.T) {
	tr, path := listenUnix(t, transport.Options{})
	peers := make(chan transport.Peer, 1)
	serve(t, tr, transport.HandlerFunc(func(_ *transport.Datagram, from transport.Peer) { peers <- from }))
	c, err := transport.DialUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(inSync(t, "hup", 1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	peer := <-peers
	_ = c.Close()
	waitFor(t, "the connection to be closed", func() bool { return tr.Stats().Conns == 0 })
	if err := peer.Send([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Send to a hung-up peer: %v, want net.ErrClosed", err)
	}
	if st := tr.Stats(); st.RecvErrors != 0 || st.Dropped() != 0 {
		t.Errorf("a hang-up counted as an error or a drop: %+v", st)
	}
}

// A client that does not read its replies makes Send fail after
// SendTimeout instead of blocking a worker for ever.
func TestUnixSendTimeout(t *testing.T) {
	tr, path := listenUnix(t, transport.Options{SendTimeout: 100 * time.Millisecond})
	peers := make(chan transport.Peer, 1)
	serve(t, tr, transport.HandlerFunc(func(_ *transport.Datagram, from transport.Peer) { peers <- from }))
	c := dial(t, path)
	if err := c.Send(inSync(t, "slow", 1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	peer := <-peers
	big := make([]byte, 16<<10)
	start := time.Now()
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = peer.Send(big)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send to a client that does not read: %v, want os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to give up", d)
	}
	// The connection itself is fine: the client can still read.
	if _, err := c.Receive(make([]byte, transport.MaxDatagram)); err != nil {
		t.Errorf("client receive after the timeout: %v", err)
	}
}

func TestListenSpec(t *testing.T) {
	for _, spec := range []string{"", "netlink:", "unix:", "udp:1", "Netlink", "unix", "unix:@abstract"} {
		if _, err := transport.Listen(spec, transport.Options{}); !errors.Is(err, transport.ErrSpec) {
			t.Errorf("Listen(%q): %v, want ErrSpec", spec, err)
		}
	}
	// A directory that does not exist is an error naming the path.
	path := filepath.Join(t.TempDir(), "no", "such", "dir.sock")
	if _, err := transport.Listen("unix:"+path, transport.Options{}); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Listen in a missing directory: %v", err)
	}
}
