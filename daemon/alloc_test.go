package daemon_test

import (
	"sync/atomic"
	"testing"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/internal/metrics"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// discard is a peer that drops replies without allocating (replies come
// from the reader and from the logs' workers).
type discard struct{ n atomic.Int64 }

func (d *discard) Send(b []byte) error { d.n.Add(int64(len(b))); return nil }
func (d *discard) String() string      { return "discard" }

// The steady-state request path allocates nothing for MARK, CLEAR and
// IN_SYNC (issue: "0 allocations per MARK, CLEAR and IN_SYNC request").
func TestZeroAllocRequests(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testZeroAlloc(t, newDaemon(t)) })
	// With the metrics observer that dlogd serve --metrics installs.
	t.Run("metrics", func(t *testing.T) {
		testZeroAlloc(t, newDaemon(t, daemon.Options{Observer: metrics.New().Observer()}))
	})
}

func testZeroAlloc(t *testing.T, d *daemon.Daemon) {
	k := newKernel(t, d)
	coreLog(t, k, "alloc", 1, " nosync")
	mark := ulog.AppendRequest(nil, k.request(ulog.TypeMarkRegion, "alloc", 1, regions(3, 4)))
	clear := ulog.AppendRequest(nil, k.request(ulog.TypeClearRegion, "alloc", 1, regions(3, 4)))
	inSync := ulog.AppendRequest(nil, k.request(ulog.TypeInSync, "alloc", 1, regions(3)))
	isClean := ulog.AppendRequest(nil, k.request(ulog.TypeIsClean, "alloc", 1, regions(3)))
	p := &discard{}
	handle := reader(d, p)
	for name, b := range map[string][]byte{"MARK_REGION": mark, "CLEAR_REGION": clear, "IN_SYNC": inSync, "IS_CLEAN": isClean} {
		handle(b) // warm the pool
		if a := testing.AllocsPerRun(1000, func() { handle(b) }); a != 0 {
			t.Errorf("%s: %v allocations per request, want 0", name, a)
		}
	}
	if p.n.Load() == 0 {
		t.Fatal("no replies were sent")
	}
}

// reader hands datagrams from one peer to d as a transport's reader
// does, decoding each into the one Datagram it reuses, so that only the
// daemon's allocations count.
func reader(d *daemon.Daemon, from transport.Peer) func(b []byte) {
	dg := new(transport.Datagram)
	return func(b []byte) {
		if dg.Decode(b) == nil {
			d.Handle(dg, from)
		}
	}
}

// waitPeer signals each reply without allocating.
type waitPeer struct{ got chan struct{} }

func (w *waitPeer) Send(b []byte) error { w.got <- struct{}{}; return nil }
func (w *waitPeer) String() string      { return "wait" }

// A MARK of a disk log is answered by the log's worker after a flush; that
// path allocates nothing either.
func TestZeroAllocDurableMark(t *testing.T) {
	k, _ := diskLog(t, "alloc-disk", "262144", "2 nosync")
	d := k.d
	w := &waitPeer{got: make(chan struct{}, 1)}
	reqs := make([][]byte, 64)
	for i := range reqs {
		t := ulog.TypeMarkRegion
		if i%2 == 1 {
			t = ulog.TypeClearRegion
		}
		reqs[i] = ulog.AppendRequest(nil, k.request(t, "alloc-disk", 1, regions(uint64(i/2*4099))))
	}
	i := 0
	handle := reader(d, w)
	call := func() {
		handle(reqs[i%len(reqs)])
		<-w.got
		i++
	}
	for range 8 {
		call() // warm up the queue and the pool
	}
	if a := testing.AllocsPerRun(200, call); a != 0 {
		t.Fatalf("%v allocations per durable MARK or CLEAR, want 0", a)
	}
}
