package daemon_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/internal/testutil/diotest"
	"github.com/dlog-dev/dlog/ulog"
)

// peer is the reply side of a fake kernel: it keeps what the daemon sends.
type peer struct {
	name string
	ch   chan []byte
}

func newPeer(name string) *peer { return &peer{name: name, ch: make(chan []byte, 4096)} }

func (p *peer) Send(b []byte) error { p.ch <- bytes.Clone(b); return nil }
func (p *peer) String() string      { return p.name }

// kernel plays the kernel's side of the protocol against a Daemon: it
// builds requests exactly as dm-log-userspace-transfer.c does, hands them
// to Handle, and checks every reply against the kernel's acceptance rules
// and dlog's stricter ones (docs/conformance.md items 10-13).
type kernel struct {
	t       testing.TB
	d       *daemon.Daemon
	p       *peer
	seq     uint32
	version uint32
	mu      sync.Mutex
	stash   map[uint32]ulog.Reply
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newDaemon(t testing.TB, opts ...daemon.Options) *daemon.Daemon {
	o := daemon.Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	d := daemon.New(o)
	t.Cleanup(func() { d.Close(t.Context()) })
	return d
}

func newKernel(t testing.TB, d *daemon.Daemon) *kernel {
	return &kernel{t: t, d: d, p: newPeer("test-kernel"), version: 3, stash: map[uint32]ulog.Reply{}}
}

// request builds the request the kernel would send.
func (k *kernel) request(t ulog.RequestType, uuid string, luid uint64, data []byte) *ulog.Request {
	k.mu.Lock()
	k.seq++
	seq := k.seq
	k.mu.Unlock()
	r := &ulog.Request{LUID: luid, Version: k.version, Seq: seq, RawType: uint32(t), Data: data}
	if err := r.SetUUID(uuid); err != nil {
		k.t.Fatal(err)
	}
	return r
}

// send hands the datagram of r to the daemon.
func (k *kernel) send(r *ulog.Request) {
	k.d.Handle(ulog.AppendRequest(nil, r), k.p)
}

// wait returns the reply to seq, checking it.
func (k *kernel) wait(r *ulog.Request) ulog.Reply {
	k.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		k.mu.Lock()
		if rep, ok := k.stash[r.Seq]; ok {
			delete(k.stash, r.Seq)
			k.mu.Unlock()
			return rep
		}
		k.mu.Unlock()
		select {
		case b := <-k.p.ch:
			rep := k.check(b)
			k.mu.Lock()
			k.stash[rep.MatchSeq()] = rep
			k.mu.Unlock()
		case <-deadline:
			k.t.Fatalf("no reply to %s seq %d within 10 s", r.Type(), r.Seq)
		}
	}
}

// check decodes a reply and applies the kernel's and dlog's rules.
func (k *kernel) check(b []byte) ulog.Reply {
	k.t.Helper()
	rep, err := ulog.DecodeReply(b)
	if err != nil {
		k.t.Fatalf("the kernel would drop this reply: %v", err)
	}
	if err := rep.Validate(); err != nil {
		k.t.Fatalf("reply breaks the reply rules: %v", err)
	}
	return rep
}

// res is what a kernel caller gets.
type res struct {
	err  int32
	data []byte
	rep  ulog.Reply
}

// call sends a request and waits for its reply. The reply must echo the
// request's header, and a successful one must carry exactly the payload
// size the kernel expects.
func (k *kernel) call(t ulog.RequestType, uuid string, luid uint64, data []byte) res {
	k.t.Helper()
	r := k.request(t, uuid, luid, data)
	k.send(r)
	return k.finish(r)
}

func (k *kernel) finish(r *ulog.Request) res {
	k.t.Helper()
	rep := k.wait(r)
	if rep.AckOnly {
		return res{err: -int32(rep.CnAck), rep: rep}
	}
	q := &rep.Req
	if q.LUID != r.LUID || q.UUID != r.UUID || q.RawType != r.RawType || q.Version != r.Version || q.Seq != r.Seq {
		k.t.Fatalf("%s reply does not echo the request header: %+v", r.Type(), q)
	}
	if rep.CnSeq != r.Seq {
		k.t.Fatalf("%s reply cn_msg.seq %d, want %d", r.Type(), rep.CnSeq, r.Seq)
	}
	if q.Error == 0 {
		if n, fixed := ulog.ReplyCapacity(r.Type()); fixed && r.Type() != ulog.TypeCtr && int(q.DataSize) != n {
			k.t.Fatalf("%s success reply carries %d bytes, the kernel expects exactly %d", r.Type(), q.DataSize, n)
		}
		if r.Type() == ulog.TypeIsClean || r.Type() == ulog.TypeInSync {
			if v, _ := ulog.Int64(q.Data); v != 0 && v != 1 {
				k.t.Fatalf("%s answered %d, want exactly 0 or 1", r.Type(), v)
			}
		}
		if r.Type() == ulog.TypeGetResyncWork || r.Type() == ulog.TypeIsRemoteRecovering {
			if v, _, _ := ulog.Pair(q.Data); v != 0 && v != 1 {
				k.t.Fatalf("%s answered %d, want exactly 0 or 1", r.Type(), v)
			}
		}
	} else if q.DataSize != 0 {
		// Only -ESRCH (unknown log) may carry data: zeros of the size of
		// the real answer, so the kernel's retry after its reconnect has
		// room for it (daemon.Handle).
		n, _ := ulog.ReplyCapacity(r.Type())
		if q.Error != esrch || int(q.DataSize) != n || !allZero(q.Data) {
			k.t.Fatalf("%s error %d reply carries %d bytes", r.Type(), q.Error, q.DataSize)
		}
	}
	return res{err: q.Error, data: bytes.Clone(q.Data), rep: rep}
}

// Helpers for the common requests. They fail the test on an unexpected
// error.

func (k *kernel) ctr(uuid string, luid uint64, s string) res {
	return k.call(ulog.TypeCtr, uuid, luid, []byte(s))
}

func (k *kernel) ok(t ulog.RequestType, uuid string, luid uint64, data []byte) res {
	k.t.Helper()
	r := k.call(t, uuid, luid, data)
	if r.err != 0 {
		k.t.Fatalf("%s %s/%#x: error %d", t, uuid, luid, r.err)
	}
	return r
}

func (k *kernel) region(t ulog.RequestType, uuid string, luid uint64, region uint64) res {
	k.t.Helper()
	return k.call(t, uuid, luid, ulog.AppendUint64(nil, region))
}

func (k *kernel) inSync(uuid string, luid uint64, region uint64) bool {
	k.t.Helper()
	r := k.region(ulog.TypeInSync, uuid, luid, region)
	if r.err != 0 {
		k.t.Fatalf("IN_SYNC %d: error %d", region, r.err)
	}
	v, _ := ulog.Int64(r.data)
	return v == 1
}

func (k *kernel) isClean(uuid string, luid uint64, region uint64) bool {
	k.t.Helper()
	r := k.region(ulog.TypeIsClean, uuid, luid, region)
	if r.err != 0 {
		k.t.Fatalf("IS_CLEAN %d: error %d", region, r.err)
	}
	v, _ := ulog.Int64(r.data)
	return v == 1
}

func (k *kernel) u64(t ulog.RequestType, uuid string, luid uint64) uint64 {
	k.t.Helper()
	r := k.ok(t, uuid, luid, nil)
	v, err := ulog.Region(r.data)
	if err != nil {
		k.t.Fatal(err)
	}
	return v
}

func (k *kernel) pair(t ulog.RequestType, uuid string, luid uint64, data []byte) (int64, uint64) {
	k.t.Helper()
	r := k.ok(t, uuid, luid, data)
	i, v, err := ulog.Pair(r.data)
	if err != nil {
		k.t.Fatal(err)
	}
	return i, v
}

func regions(rs ...uint64) []byte {
	var b []byte
	for _, r := range rs {
		b = ulog.AppendUint64(b, r)
	}
	return b
}

// logFile returns a zero-filled file of size bytes for a disk log.
func logFile(t testing.TB, size int64) string { return diotest.LogFile(t, size) }

// statusOf returns a log's STATUS_INFO string, NUL stripped.
func (k *kernel) status(t ulog.RequestType, uuid string, luid uint64) string {
	k.t.Helper()
	r := k.ok(t, uuid, luid, nil)
	if len(r.data) == 0 || r.data[len(r.data)-1] != 0 {
		k.t.Fatalf("%s reply %q is not NUL-terminated", t, r.data)
	}
	return string(r.data[:len(r.data)-1])
}

var _ = engine.Open
var _ = fmt.Sprint

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
