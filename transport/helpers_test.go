package transport_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/poll"
	"github.com/dlog-dev/dlog/internal/testutil/syncbuf"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// testLogger returns a logger whose output is shown when t fails. (The
// transports log from their own goroutines, possibly after the test has
// returned, so t.Log cannot be the sink.)
func testLogger(t testing.TB) (*slog.Logger, *syncbuf.Buffer) {
	lb := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("transport log:\n%s", lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// inSync returns the datagram of an IN_SYNC request as the kernel sends it.
func inSync(t testing.TB, uuid string, luid uint64, seq uint32, region uint64) []byte {
	t.Helper()
	req := ulog.Request{LUID: luid, Version: ulog.Version, Seq: seq, RawType: uint32(ulog.TypeInSync),
		Data: ulog.AppendUint64(nil, region)}
	if err := req.SetUUID(uuid); err != nil {
		t.Fatal(err)
	}
	return ulog.AppendRequest(nil, &req)
}

// withConnectorID returns a copy of datagram b with cn_msg.id set to
// idx/val.
func withConnectorID(b []byte, idx, val uint32) []byte {
	b = bytes.Clone(b)
	binary.NativeEndian.PutUint32(b[16:], idx)
	binary.NativeEndian.PutUint32(b[20:], val)
	return b
}

// replier is the far end used by most tests: it decodes each request and
// answers it with ulog.AppendReply, echoing the request's payload. With
// deferred set, Handle only queues the reply and workers send it later,
// after Handle has returned, as the daemon does.
type replier struct {
	deferred chan pending
	calls    atomic.Int64
	bad      atomic.Int64 // datagrams the codec rejected
	// seen, if set, is called with every decoded request.
	seen func(f *ulog.Frame, from transport.Peer)
}

type pending struct {
	to  transport.Peer
	out []byte
}

func (r *replier) Handle(d *transport.Datagram, from transport.Peer) {
	r.calls.Add(1)
	if d.Err != nil {
		r.bad.Add(1)
		return
	}
	f := &d.Frame
	if r.seen != nil {
		r.seen(f, from)
	}
	out := ulog.AppendReply(nil, &f.Req, 0, 0, f.Req.Data)
	if r.deferred != nil {
		r.deferred <- pending{from, out}
		return
	}
	_ = from.Send(out)
}

// startWorkers sends the deferred replies from n goroutines until the
// test ends.
func (r *replier) startWorkers(t testing.TB, n int) {
	r.deferred = make(chan pending, 1024)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case p := <-r.deferred:
					// A little delay so that replies overtake
					// each other and Handle has surely returned.
					time.Sleep(time.Duration(len(p.out)%7) * 10 * time.Microsecond)
					_ = p.to.Send(p.out)
				case <-done:
					return
				}
			}
		}()
	}
	t.Cleanup(func() { close(done); wg.Wait() })
}

// serve runs tr.Serve in a goroutine and arranges for the test to fail if
// it returns an error or does not return after Close.
func serve(t testing.TB, tr transport.Transport, h transport.Handler) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- tr.Serve(context.Background(), h) }()
	t.Cleanup(func() {
		_ = tr.Close()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
			errc <- err
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return 5s after Close")
		}
	})
	return errc
}

// servePeers runs Serve with ctx and a handler that hands on the Peer of
// each datagram; it returns those and Serve's result.
func servePeers(ctx context.Context, tr transport.Transport) (<-chan transport.Peer, <-chan error) {
	peers := make(chan transport.Peer, 16)
	errc := make(chan error, 1)
	go func() {
		errc <- tr.Serve(ctx, transport.HandlerFunc(func(_ *transport.Datagram, from transport.Peer) { peers <- from }))
	}()
	return peers, errc
}

// served waits for Serve to return nil after what (a Close, a cancel).
func served(t testing.TB, errc <-chan error, what string) {
	t.Helper()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Serve after %s: %v, want nil", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Serve did not return after %s", what)
	}
}

// answerAfterCancel serves tr, sends req to it with send and cancels
// Serve's ctx while req is still unanswered: Serve must return nil (what
// names the cancel), and the Peer req came from must still take the
// answer, which it returns.
func answerAfterCancel(t testing.TB, tr transport.Transport, req []byte, what string, send func([]byte) error) transport.Peer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	peers, errc := servePeers(ctx, tr)
	if err := send(req); err != nil {
		t.Fatal(err)
	}
	peer := <-peers
	cancel()
	served(t, errc, what)
	if err := answer(t, peer, req); err != nil {
		t.Fatalf("Send after %s, before Close: %v", what, err)
	}
	return peer
}

// answer sends to peer replier's answer to the request req.
func answer(t testing.TB, peer transport.Peer, req []byte) error {
	t.Helper()
	var f ulog.Frame
	if err := ulog.DecodeRequest(req, &f); err != nil {
		t.Fatal(err)
	}
	return peer.Send(ulog.AppendReply(nil, &f.Req, 0, 0, f.Req.Data))
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, what, 5*time.Second, time.Millisecond, cond)
}

// decodeReply decodes a reply and checks it is the canonical answer of
// replier to the IN_SYNC request (luid, seq, region).
func checkReply(t testing.TB, b []byte, luid uint64, seq uint32, region uint64) {
	t.Helper()
	r, err := ulog.DecodeReply(b)
	if err != nil {
		t.Fatalf("DecodeReply: %v", err)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("reply: %v", err)
	}
	if r.Req.LUID != luid || r.Req.Seq != seq {
		t.Fatalf("reply luid %#x seq %d, want luid %#x seq %d", r.Req.LUID, r.Req.Seq, luid, seq)
	}
	if got, err := ulog.Region(r.Req.Data); err != nil || got != region {
		t.Fatalf("reply payload %x (%v), want region %d", r.Req.Data, err, region)
	}
}
