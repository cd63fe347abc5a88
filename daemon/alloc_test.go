package daemon_test

import (
	"testing"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/internal/metrics"
	"github.com/dlog-dev/dlog/ulog"
)

// discard is a peer that drops replies without allocating.
type discard struct{ n int }

func (d *discard) Send(b []byte) error { d.n += len(b); return nil }
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
	for name, b := range map[string][]byte{"MARK_REGION": mark, "CLEAR_REGION": clear, "IN_SYNC": inSync, "IS_CLEAN": isClean} {
		d.Handle(b, p) // warm the pool
		if a := testing.AllocsPerRun(1000, func() { d.Handle(b, p) }); a != 0 {
			t.Errorf("%s: %v allocations per request, want 0", name, a)
		}
	}
	if p.n == 0 {
		t.Fatal("no replies were sent")
	}
}
