package daemon_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/ulog"
)

// A daemon started on the state directory of one that died serves its logs
// exactly as they were: sync bits, marks, the resync cursor, the phase. The
// kernel's reconnect (CTR with NUL, RESUME) then changes nothing.
func TestRestoreAfterRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	dev := logFile(t, 1<<20)
	d1 := daemon.New(daemon.Options{Logger: quietLogger(), StateDir: dir})
	if n, err := d1.Restore(); n != 0 || err != nil {
		t.Fatalf("Restore of an empty directory: %d, %v", n, err)
	}
	k := newKernel(t, d1)
	core := "8192 clustered-core 1024"
	disk := "2048 clustered-disk " + dev + " 2"
	k.ctr("c", 0xC, core)
	k.ctr("d", 0xD, disk)
	for _, id := range []struct {
		u string
		l uint64
		n uint64
	}{{"c", 0xC, 8}, {"d", 0xD, 1024}} {
		k.ok(ulog.TypeResume, id.u, id.l, nil)
		for r := uint64(0); r < id.n; r++ {
			k.ok(ulog.TypeSetRegionSync, id.u, id.l, ulog.AppendRegionSync(nil, r, 1))
			k.ok(ulog.TypeClearRegion, id.u, id.l, regions(r))
		}
		k.ok(ulog.TypeMarkRegion, id.u, id.l, regions(3))
		k.ok(ulog.TypeFlush, id.u, id.l, nil)
	}
	k.ctr("gone", 1, core)
	k.ok(ulog.TypeDtr, "gone", 1, nil)
	files, _ := filepath.Glob(filepath.Join(dir, "*.state"))
	if len(files) != 2 {
		t.Fatalf("%d state files, want 2 (DTR removes its log's)", len(files))
	}
	// d1 dies (its memory is gone; its state files stay).
	d2 := newDaemon(t, daemon.Options{StateDir: dir})
	if n, err := d2.Restore(); n != 2 || err != nil {
		t.Fatalf("Restore = %d, %v; want 2 logs", n, err)
	}
	k2 := newKernel(t, d2)
	for _, id := range []struct {
		u, ctr string
		l, n   uint64
	}{{"c", core, 0xC, 8}, {"d", disk, 0xD, 1024}} {
		// Requests before the kernel's reconnect are served, not -ESRCH.
		if n := k2.u64(ulog.TypeGetSyncCount, id.u, id.l); n != id.n {
			t.Fatalf("%s: sync count %d after the restart, want %d", id.u, n, id.n)
		}
		if !k2.inSync(id.u, id.l, 3) || k2.isClean(id.u, id.l, 3) || !k2.isClean(id.u, id.l, 4) {
			t.Fatalf("%s: region 3 must be in sync and dirty, region 4 clean", id.u)
		}
		if got := k2.call(ulog.TypeCtr, id.u, id.l, []byte(id.ctr+"\x00")); got.err != 0 || len(got.data) != 0 {
			t.Fatalf("%s: reconnect CTR: %d %q", id.u, got.err, got.data)
		}
		k2.ok(ulog.TypeResume, id.u, id.l, nil)
		if n := k2.u64(ulog.TypeGetSyncCount, id.u, id.l); n != id.n {
			t.Fatalf("%s: sync count %d after the reconnect, want %d", id.u, n, id.n)
		}
		if i, _ := k2.pair(ulog.TypeGetResyncWork, id.u, id.l, nil); i != 0 {
			t.Fatalf("%s: resync work after the restart of an in-sync log", id.u)
		}
	}
	// DTR removes the state file.
	k2.ok(ulog.TypeDtr, "c", 0xC, nil)
	if files, _ := filepath.Glob(filepath.Join(dir, "*.state")); len(files) != 1 {
		t.Fatalf("%d state files after a DTR, want 1", len(files))
	}
	// A file that is not a state file is removed by Restore, with a warning.
	os.WriteFile(filepath.Join(dir, "junk.state"), []byte("junk"), 0o600)
	d3 := newDaemon(t, daemon.Options{StateDir: dir})
	if n, _ := d3.Restore(); n != 1 {
		t.Fatalf("Restore = %d, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "junk.state")); !os.IsNotExist(err) {
		t.Fatal("junk state file left behind")
	}
}

// An -ESRCH reply for an unknown log carries zeros of the answer's size:
// the kernel keeps that as the capacity for its retry after reconnecting,
// and the real answer must fit.
func TestESRCHKeepsTheKernelsRoom(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	for _, tc := range []struct {
		t    ulog.RequestType
		data []byte
	}{
		{ulog.TypeInSync, regions(1)}, {ulog.TypeIsClean, regions(1)}, {ulog.TypeGetSyncCount, nil},
		{ulog.TypeGetRegionSize, nil}, {ulog.TypeGetResyncWork, nil}, {ulog.TypeIsRemoteRecovering, regions(1)},
		{ulog.TypeFlush, nil}, {ulog.TypeResume, nil},
	} {
		got := k.call(tc.t, "unknown", 1, tc.data)
		capacity, _ := ulog.ReplyCapacity(tc.t)
		res, n := got.rep.Result(capacity)
		if res != fakekernel.ESRCH || n != capacity {
			t.Errorf("%s: the kernel gets %d with room %d for the retry, want -ESRCH and %d", tc.t, res, n, capacity)
		}
	}
}

// A state file whose log no device-mapper table names any more (the kernel
// destroyed it while no daemon ran) is dropped, not restored.
func TestRestoreDropsLogsTheKernelDestroyed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	d1 := daemon.New(daemon.Options{Logger: quietLogger(), StateDir: dir})
	k := newKernel(t, d1)
	k.ctr("live", 1, "8192 clustered-core 1024")
	k.ctr("dead", 2, "8192 clustered-core 1024")
	d2 := newDaemon(t, daemon.Options{StateDir: dir, LiveUUIDs: func() (map[string]bool, bool) {
		return map[string]bool{"live": true}, true
	}})
	if n, err := d2.Restore(); n != 1 || err != nil {
		t.Fatalf("Restore = %d, %v; want only the live log", n, err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.state")); len(files) != 1 {
		t.Fatalf("%d state files left, want 1", len(files))
	}
	// Cannot tell: everything is restored.
	d3 := newDaemon(t, daemon.Options{StateDir: dir, LiveUUIDs: func() (map[string]bool, bool) { return nil, false }})
	if n, _ := d3.Restore(); n != 1 {
		t.Fatalf("Restore without knowing the kernel's tables = %d, want 1", n)
	}
}
