package engine_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/dlog-dev/dlog/engine"
)

// kind is one log flavour the common suite runs over.
type kind struct {
	name string
	// args returns the constructor arguments after the type word, for a
	// sync word ("", "sync", "nosync").
	open func(t *testing.T, targetLen uint64, rs uint32, syncWord string) engine.Log
}

func kinds() []kind {
	withSync := func(n int, rest string, syncWord string) string {
		if syncWord != "" {
			return fmt.Sprintf("%d %s %s", n+1, rest, syncWord)
		}
		return fmt.Sprintf("%d %s", n, rest)
	}
	return []kind{
		{"core", func(t *testing.T, tl uint64, rs uint32, s string) engine.Log {
			return mustOpen(t, tl, "core "+withSync(1, fmt.Sprint(rs), s))
		}},
		{"disk", func(t *testing.T, tl uint64, rs uint32, s string) engine.Log {
			p := logFile(t, 1<<20)
			return mustOpen(t, tl, "disk "+withSync(2, fmt.Sprintf("%s %d", p, rs), s))
		}},
		{"clustered-core", func(t *testing.T, tl uint64, rs uint32, s string) engine.Log {
			return mustOpen(t, tl, fmt.Sprintf("clustered-core %d %s", rs, s))
		}},
		{"clustered-disk", func(t *testing.T, tl uint64, rs uint32, s string) engine.Log {
			p := logFile(t, 1<<20)
			return mustOpen(t, tl, fmt.Sprintf("clustered-disk %s %d %s", p, rs, s))
		}},
	}
}

func forEachKind(t *testing.T, fn func(t *testing.T, k kind)) {
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) { fn(t, k) })
	}
}

// A freshly constructed log: clean bits all set; sync bits per the sync
// argument; the region size answered before any resume.
func TestConstructed(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		for _, s := range []string{"", "sync", "nosync"} {
			l := k.open(t, 131072, 1024, s)
			if l.RegionSize() != 1024 || l.RegionCount() != 128 {
				t.Fatalf("%q: region size %d count %d", s, l.RegionSize(), l.RegionCount())
			}
			wantSync := s == "nosync"
			for r := uint64(0); r < 128; r++ {
				c, err1 := l.IsClean(r)
				y, err2 := l.InSync(r)
				if err1 != nil || err2 != nil || !c || y != wantSync {
					t.Fatalf("%q region %d: clean %v in_sync %v (%v %v)", s, r, c, y, err1, err2)
				}
			}
			want := uint64(0)
			if wantSync {
				want = 128
			}
			if got := l.SyncCount(); got != want {
				t.Fatalf("%q: SyncCount = %d, want %d", s, got, want)
			}
		}
	})
}

func TestRegionRange(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		l := k.open(t, 1000, 64, "") // 16 regions, the last one short
		if err := l.Resume(); err != nil {
			t.Fatal(err)
		}
		for _, r := range []uint64{16, 17, 1 << 40, ^uint64(0)} {
			if _, err := l.IsClean(r); !errors.Is(err, engine.ErrRegionRange) {
				t.Errorf("IsClean(%d) err = %v", r, err)
			}
			if _, err := l.InSync(r); !errors.Is(err, engine.ErrRegionRange) {
				t.Errorf("InSync(%d) err = %v", r, err)
			}
			if err := l.MarkRegion(r); !errors.Is(err, engine.ErrRegionRange) {
				t.Errorf("MarkRegion(%d) err = %v", r, err)
			}
			if err := l.ClearRegion(r); !errors.Is(err, engine.ErrRegionRange) {
				t.Errorf("ClearRegion(%d) err = %v", r, err)
			}
			if err := l.SetRegionSync(r, true); !errors.Is(err, engine.ErrRegionRange) {
				t.Errorf("SetRegionSync(%d) err = %v", r, err)
			}
			if _, _, err := l.IsRemoteRecovering(r); !errors.Is(err, engine.ErrRegionRange) {
				t.Errorf("IsRemoteRecovering(%d) err = %v", r, err)
			}
		}
		if got := l.SyncCount(); got != 0 {
			t.Errorf("out-of-range calls changed the sync count to %d", got)
		}
	})
}

func TestMarkClear(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		l := k.open(t, 131072, 1024, "nosync")
		if err := l.Resume(); err != nil {
			t.Fatal(err)
		}
		for _, r := range []uint64{0, 5, 127} {
			if err := l.MarkRegion(r); err != nil {
				t.Fatal(err)
			}
			if c, _ := l.IsClean(r); c {
				t.Fatalf("region %d clean after mark", r)
			}
			// A mark changes neither the sync bit nor the count.
			if y, _ := l.InSync(r); !y {
				t.Fatalf("region %d lost its sync bit on mark", r)
			}
		}
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		l.ClearRegion(5)
		l.ClearRegion(5) // idempotent
		if c, _ := l.IsClean(5); !c {
			t.Fatal("region 5 dirty after clear")
		}
		if c, _ := l.IsClean(0); c {
			t.Fatal("region 0 clean without a clear")
		}
		if got := l.SyncCount(); got != 128 {
			t.Fatalf("SyncCount = %d, want 128", got)
		}
	})
}

// The resync hand-out of docs/protocol.md §3 GET_RESYNC_WORK and §6.3: the
// cursor only moves forward, regions in sync are skipped, the count follows
// the bits, presuspend halts the hand-out and resume restarts it.
func TestResyncHandOut(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		l := k.open(t, 8192, 1024, "") // 8 regions, none in sync
		if err := l.Resume(); err != nil {
			t.Fatal(err)
		}
		get := func(wantR uint64, wantOK bool) {
			t.Helper()
			r, ok, err := l.GetResyncWork()
			if err != nil || ok != wantOK || (ok && r != wantR) {
				t.Fatalf("GetResyncWork = %d,%v,%v; want %d,%v", r, ok, err, wantR, wantOK)
			}
		}
		get(0, true)
		// A re-request before SET_REGION_SYNC (a kernel resend) gets the
		// same region, not a second one.
		get(0, true)
		if _, hint, _ := l.IsRemoteRecovering(3); hint != 0 {
			t.Fatalf("hint %d while region 0 recovers, want 0", hint)
		}
		l.SetRegionSync(0, true)
		l.SetRegionSync(0, true) // no double count
		if got := l.SyncCount(); got != 1 {
			t.Fatalf("SyncCount = %d after two set_region_sync(0,1), want 1", got)
		}
		l.SetRegionSync(2, true) // synced out of order (e.g. by a full write)
		get(1, true)
		l.SetRegionSync(1, false) // recovery failed: stays out of sync
		get(3, true)              // 2 is in sync: skipped; 1 is behind the cursor
		if rec, hint, _ := l.IsRemoteRecovering(5); rec || hint != 3 {
			t.Fatalf("IsRemoteRecovering(5) = %v,%d; want false,3", rec, hint)
		}
		l.SetRegionSync(3, true)
		if _, hint, _ := l.IsRemoteRecovering(5); hint != 4 {
			t.Fatalf("hint %d, want 4 (the cursor)", hint)
		}
		l.Presuspend()
		get(0, false)
		if rec, hint, _ := l.IsRemoteRecovering(5); rec || hint != 8 {
			t.Fatalf("halted IsRemoteRecovering = %v,%d; want false,8", rec, hint)
		}
		if err := l.Postsuspend(); err != nil {
			t.Fatal(err)
		}
		if err := l.Resume(); err != nil {
			t.Fatal(err)
		}
		if k.name == "core" || k.name == "clustered-core" {
			// The core log keeps its sync state across suspend; the cursor
			// restarts at 0, so region 1 (failed) is handed out again.
			if got := l.SyncCount(); got != 3 {
				t.Fatalf("SyncCount after resume = %d, want 3", got)
			}
			get(1, true)
			l.SetRegionSync(1, true)
			for _, r := range []uint64{4, 5, 6, 7} {
				get(r, true)
				l.SetRegionSync(r, true)
			}
		} else {
			// The disk log rebuilds sync from clean bits, which nothing
			// cleared: every region is out of sync again.
			if got := l.SyncCount(); got != 0 {
				t.Fatalf("SyncCount after resume = %d, want 0", got)
			}
			for r := uint64(0); r < 8; r++ {
				get(r, true)
				l.SetRegionSync(r, true)
				l.ClearRegion(r)
			}
		}
		get(0, false)
		if got := l.SyncCount(); got != 8 {
			t.Fatalf("SyncCount = %d, want 8 (all)", got)
		}
		if _, hint, _ := l.IsRemoteRecovering(0); hint != 8 {
			t.Fatalf("hint %d when done, want the region count 8", hint)
		}
	})
}

// Status strings, byte for byte (docs/protocol.md §5.1).
func TestStatusStrings(t *testing.T) {
	p := logFile(t, 1<<20)
	for _, tc := range []struct {
		args        string
		info, table string
	}{
		{"core 1 1024", "1 core", "core 1 1024 "},
		{"core 2 1024 sync", "1 core", "core 2 1024 sync "},
		{"core 2 1024 nosync", "1 core", "core 2 1024 nosync "},
		{"disk 2 " + p + " 1024", "3 disk " + p + " A", "disk 2 " + p + " 1024 "},
		{"disk 3 " + p + " 1024 nosync", "3 disk " + p + " A", "disk 3 " + p + " 1024 nosync "},
		{"clustered-core 1024", "1 clustered-core", "clustered-core 1024 "},
		{"clustered-core 1024 nosync block_on_error", "1 clustered-core", "clustered-core 1024 nosync block_on_error "},
		{"clustered-disk " + p + " 1024 sync", "3 clustered-disk " + p + " A", "clustered-disk " + p + " 1024 sync "},
	} {
		l := mustOpen(t, 131072, tc.args)
		if got := l.Status(engine.StatusInfo); got != tc.info {
			t.Errorf("%s: INFO %q, want %q", tc.args, got, tc.info)
		}
		if got := l.Status(engine.StatusTable); got != tc.table {
			t.Errorf("%s: TABLE %q, want %q", tc.args, got, tc.table)
		}
		l.Close()
	}
}

func TestLifecycle(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		l := k.open(t, 131072, 1024, "")
		// Presuspend and postsuspend succeed on a never-resumed log.
		if err := l.Presuspend(); err != nil {
			t.Fatal(err)
		}
		if err := l.Postsuspend(); err != nil {
			t.Fatal(err)
		}
		if err := l.Resume(); err != nil {
			t.Fatal(err)
		}
		l.MarkRegion(7)
		l.SetRegionSync(9, true)
		// Resume of a running log (a reconnecting kernel) changes nothing.
		if err := l.Resume(); err != nil {
			t.Fatal(err)
		}
		if c, _ := l.IsClean(7); c {
			t.Fatal("second resume lost a mark")
		}
		if y, _ := l.InSync(9); !y || l.SyncCount() != 1 {
			t.Fatal("second resume reset sync state")
		}
		// A suspend aborted after PRESUSPEND: the mirror goes on writing
		// and the RESUME that follows keeps every mark (even one not yet
		// flushed) and the sync state, and lets recovery go on.
		if err := l.Presuspend(); err != nil {
			t.Fatal(err)
		}
		if r, ok, _ := l.GetResyncWork(); ok {
			t.Fatalf("presuspended log handed out region %d", r)
		}
		l.MarkRegion(11)
		if err := l.Resume(); err != nil {
			t.Fatal(err)
		}
		for _, r := range []uint64{7, 11} {
			if c, _ := l.IsClean(r); c {
				t.Fatalf("resume after an aborted suspend lost the mark of region %d", r)
			}
		}
		if y, _ := l.InSync(9); !y || l.SyncCount() != 1 {
			t.Fatal("resume after an aborted suspend reset sync state")
		}
		if r, ok, err := l.GetResyncWork(); err != nil || !ok || r != 0 {
			t.Fatalf("resume after an aborted suspend: resync work %d %v %v, want region 0", r, ok, err)
		}
		if err := l.SetRegionSync(0, true); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := l.InSync(0); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("InSync after Close: %v", err)
		}
		if err := l.MarkRegion(0); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("MarkRegion after Close: %v", err)
		}
		if err := l.Flush(); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("Flush after Close: %v", err)
		}
		if err := l.Resume(); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("Resume after Close: %v", err)
		}
		if err := l.Close(); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestZeroAllocHotPath(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		l := k.open(t, 1<<20, 2, "nosync")
		if err := l.Resume(); err != nil {
			t.Fatal(err)
		}
		r := uint64(0)
		if a := testing.AllocsPerRun(2000, func() {
			r = (r + 7919) % l.RegionCount()
			l.InSync(r)
			l.IsClean(r)
			l.MarkRegion(r)
			l.ClearRegion(r)
		}); a != 0 {
			t.Fatalf("%v allocations per in_sync+is_clean+mark+clear, want 0", a)
		}
	})
}
