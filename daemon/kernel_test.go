package daemon_test

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/internal/testutil/diotest"
	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/ulog"
)

// kernel plays the kernel's side of the protocol against a Daemon
// (fakekernel.Local: requests built as dm-log-userspace-transfer.c does,
// replies checked against the kernel's acceptance rules and dlog's
// stricter ones, docs/conformance.md items 10-13), failing the test on a
// broken reply.
type kernel struct {
	*fakekernel.Local
	t testing.TB
	d *daemon.Daemon
	p *fakekernel.Peer
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
	l := fakekernel.NewLocal(d)
	return &kernel{Local: l, t: t, d: d, p: l.P}
}

// request builds the request the kernel would send.
func (k *kernel) request(t ulog.RequestType, uuid string, luid uint64, data []byte) *ulog.Request {
	r, err := k.Request(t, uuid, luid, data)
	if err != nil {
		k.t.Fatal(err)
	}
	return r
}

// send hands the datagram of r to the daemon.
func (k *kernel) send(r *ulog.Request) { k.Send(r) }

// wait returns the reply to seq, checking it.
func (k *kernel) wait(r *ulog.Request) ulog.Reply {
	k.t.Helper()
	rep, err := k.Wait(r, 10*time.Second)
	if err != nil {
		k.t.Fatal(err)
	}
	return rep
}

// check decodes a reply and applies the kernel's and dlog's rules.
func (k *kernel) check(b []byte) ulog.Reply {
	k.t.Helper()
	rep, err := fakekernel.Decode(b)
	if err != nil {
		k.t.Fatal(err)
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
	got, err := k.Finish(r, 10*time.Second)
	if err != nil {
		k.t.Fatal(err)
	}
	return res{err: got.Err, data: got.Data, rep: got.Reply}
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

// boolean asks a yes/no question about a region (IN_SYNC, IS_CLEAN).
func (k *kernel) boolean(t ulog.RequestType, uuid string, luid uint64, region uint64) bool {
	k.t.Helper()
	r := k.region(t, uuid, luid, region)
	if r.err != 0 {
		k.t.Fatalf("%s %d: error %d", t, region, r.err)
	}
	v, _ := ulog.Int64(r.data)
	return v == 1
}

func (k *kernel) inSync(uuid string, luid uint64, region uint64) bool {
	k.t.Helper()
	return k.boolean(ulog.TypeInSync, uuid, luid, region)
}

func (k *kernel) isClean(uuid string, luid uint64, region uint64) bool {
	k.t.Helper()
	return k.boolean(ulog.TypeIsClean, uuid, luid, region)
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
