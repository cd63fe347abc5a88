//go:build linux

package fakekernel_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// listen serves h on a unix transport and returns its socket.
func listen(t *testing.T, h transport.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	tr, err := transport.Listen("unix:"+sock, transport.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tr.Serve(context.Background(), h) }()
	t.Cleanup(func() { tr.Close(); <-done })
	return sock
}

// Call resends as the kernel does: after Patience without a reply (with a
// new seq, the late reply to the old one ignored) and at once on -EAGAIN.
func TestConnResends(t *testing.T) {
	var n atomic.Int32
	var late []byte
	sock := listen(t, func(d *transport.Datagram, from transport.Peer) {
		req := &d.Frame.Req
		switch n.Add(1) {
		case 1: // no answer in time: kept for later
			late = ulog.AppendReply(nil, req, 0, 0, ulog.AppendBool(nil, false))
		case 2: // busy: the ack-only form
			from.Send(late)
			from.Send(ulog.AppendAck(nil, req.Seq, 0, uint32(ulog.EAGAIN)))
		default:
			from.Send(ulog.AppendReply(nil, req, 0, 0, ulog.AppendBool(nil, true)))
		}
	})
	c, err := fakekernel.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Patience = 100 * time.Millisecond
	st := &fakekernel.Stats{}
	c.Stats = st
	res, err := c.Call(context.Background(), ulog.TypeInSync, "conn", 1, ulog.AppendUint64(nil, 4), ulog.Int64Len)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ulog.Int64(res.Data); res.Err != 0 || v != 1 {
		t.Errorf("result %d, %d; want 0, 1 (the third answer)", res.Err, v)
	}
	if c.Sends != 3 {
		t.Errorf("sent %d times, want 3 (timeout, -EAGAIN, answer)", c.Sends)
	}
	if st.Timeouts.Load() != 1 || st.Stale.Load() != 1 || st.EAGAIN.Load() != 1 || st.ByType[ulog.TypeInSync].Load() != 2 {
		t.Errorf("stats: %d timeouts, %d stale, %d -EAGAIN, %d IN_SYNC answered; want 1, 1, 1, 2",
			st.Timeouts.Load(), st.Stale.Load(), st.EAGAIN.Load(), st.ByType[ulog.TypeInSync].Load())
	}
}

// A reply that breaks the kernel's rules is ErrProtocol; a daemon that
// hangs up is ErrGone; a context that ends stops the resends.
func TestConnErrors(t *testing.T) {
	sock := listen(t, func(d *transport.Datagram, from transport.Peer) {
		req := d.Frame.Req
		switch req.Type() {
		case ulog.TypeInSync: // answers 2
			from.Send(ulog.AppendReply(nil, &req, 0, 0, ulog.AppendInt64(nil, 2)))
		case ulog.TypeIsClean: // never answers
		}
	})
	c, err := fakekernel.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Call(context.Background(), ulog.TypeInSync, "conn", 1, ulog.AppendUint64(nil, 4), ulog.Int64Len); !errors.Is(err, fakekernel.ErrProtocol) {
		t.Errorf("IN_SYNC answered 2: %v, want ErrProtocol", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c.Patience = 50 * time.Millisecond
	if _, err := c.Call(ctx, ulog.TypeIsClean, "conn", 1, ulog.AppendUint64(nil, 4), ulog.Int64Len); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("no answer: %v, want the context's deadline", err)
	}
	if c.Sends < 2 {
		t.Errorf("sent %d times in 200 ms with a patience of 50 ms", c.Sends)
	}
	c.Close()
	if _, err := c.Call(context.Background(), ulog.TypeIsClean, "conn", 1, ulog.AppendUint64(nil, 4), ulog.Int64Len); !errors.Is(err, fakekernel.ErrGone) {
		t.Errorf("after Close: %v, want ErrGone", err)
	}
}
