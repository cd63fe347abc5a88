package engine_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dlog-dev/dlog/engine"
)

// reopen opens a second log on the same state file while the first is
// still open: what a restarted daemon sees after the first was killed -9
// (the file is mapped shared, so the dead process's last stores are in
// it).
func TestStateRestoresCoreLog(t *testing.T) {
	sf := filepath.Join(t.TempDir(), "log.state")
	opts := engine.Options{StateFile: sf, StateLabel: "uuid-1/0x10"}
	l := mustOpen(t, 8192, "clustered-core 1024", opts) // 8 regions
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	r0, _, _ := l.GetResyncWork()
	l.SetRegionSync(r0, true)
	l.ClearRegion(r0)
	r1, _, _ := l.GetResyncWork() // handed out, not reported
	l.MarkRegion(5)
	l.SetRegionSync(6, true)

	l2 := mustOpen(t, 8192, "clustered-core 1024", opts)
	st := l2.State()
	if st.Phase != "running" || st.InSync != 2 || st.Recovering != 1 || st.Cursor != r1+1 {
		t.Fatalf("restored state %+v; want running, 2 in sync, 1 recovering, cursor %d", st, r1+1)
	}
	if c, _ := l2.IsClean(5); c {
		t.Fatal("a mark was lost across the restart")
	}
	if y, _ := l2.InSync(6); !y {
		t.Fatal("a sync bit was lost across the restart")
	}
	// The region in flight is handed out again (the kernel lost the reply).
	if r, ok, _ := l2.GetResyncWork(); !ok || r != r1 {
		t.Fatalf("GetResyncWork after restore = %d,%v; want %d", r, ok, r1)
	}
	// A reconnecting kernel's RESUME changes nothing.
	if err := l2.Resume(); err != nil || l2.SyncCount() != 2 {
		t.Fatalf("RESUME after restore: %v, sync count %d", err, l2.SyncCount())
	}
	h, err := engine.ReadStateHeader(sf)
	if err != nil || h.Label != "uuid-1/0x10" || h.Config != "8192 clustered-core 1024" || h.Phase != "running" {
		t.Fatalf("ReadStateHeader = %+v, %v", h, err)
	}
}

// resumedDiskLog opens and resumes a clustered-disk log of 1024 regions
// with a state file; reopen opens a second log on the same device and
// state file, as a restarted daemon does.
func resumedDiskLog(t *testing.T) (l engine.Log, reopen func() engine.Log) {
	t.Helper()
	opts := engine.Options{StateFile: filepath.Join(t.TempDir(), "log.state")}
	args := fmt.Sprintf("clustered-disk %s 2", logFile(t, 1<<20))
	l = mustOpen(t, 2048, args, opts)
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	return l, func() engine.Log { return mustOpen(t, 2048, args, opts) }
}

func TestStateRestoresDiskLog(t *testing.T) {
	l, reopen := resumedDiskLog(t)
	for r := uint64(0); r < 1024; r++ {
		l.SetRegionSync(r, true)
		l.ClearRegion(r)
	}
	l.MarkRegion(77) // a write in flight: dirty but in sync
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	l2 := reopen()
	st := l2.State()
	if st.Phase != "running" || st.InSync != 1024 || st.Dirty != 1 {
		t.Fatalf("restored %+v; want running, all 1024 in sync, 1 dirty", st)
	}
	// Without the state file the region in flight would be out of sync
	// after a resume, and the kernel (which does not resume after a
	// reconnect) would write it to one leg only.
	if y, _ := l2.InSync(77); !y {
		t.Fatal("region 77 out of sync after the restore")
	}
	if c, _ := l2.IsClean(77); c {
		t.Fatal("mark of region 77 lost")
	}
	// A real suspend/resume cycle still follows the kernel's disk_resume.
	l2.Postsuspend()
	if err := l2.Resume(); err != nil {
		t.Fatal(err)
	}
	if y, _ := l2.InSync(77); y {
		t.Fatal("after a real resume a dirty region is out of sync, as in the kernel")
	}
}

// A disk log killed after POSTSUSPEND (its RESUME still to come) is
// restored suspended. It must answer IS_CLEAN as the dead process did, with
// every acknowledged mark dirty, not with the constructor's all-clean bits:
// the soak found 66 marks "lost" this way (a kill -9 while its POSTSUSPEND
// was answered, the kernel's check before the RESUME).
func TestStateRestoresSuspendedDiskLog(t *testing.T) {
	l, reopen := resumedDiskLog(t)
	for r := uint64(0); r < 1024; r++ {
		l.ClearRegion(r)
	}
	for _, r := range []uint64{3, 77, 1023} {
		l.MarkRegion(r)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	l.Presuspend()
	if err := l.Postsuspend(); err != nil {
		t.Fatal(err)
	}
	l2 := reopen()
	st := l2.State()
	if st.Phase != "suspended" || st.Dirty != 3 {
		t.Fatalf("restored %+v; want suspended with the 3 marked regions dirty", st)
	}
	for _, r := range []uint64{3, 77, 1023} {
		if c, _ := l2.IsClean(r); c {
			t.Fatalf("mark of region %d lost by the restore of a suspended log", r)
		}
	}
	if c, _ := l2.IsClean(4); !c {
		t.Fatal("region 4, cleared and flushed, reads dirty")
	}
	// Nothing was written: the device still holds the dead process's image,
	// and the kernel's RESUME reads it as before.
	if err := l2.Resume(); err != nil {
		t.Fatal(err)
	}
	if st := l2.State(); st.Phase != "running" || st.Dirty != 3 {
		t.Fatalf("after RESUME %+v; want running with 3 dirty", st)
	}
	if c, _ := l2.IsClean(77); c {
		t.Fatal("mark of region 77 lost by the RESUME after the restore")
	}
}

func TestStateNotRestored(t *testing.T) {
	dir := t.TempDir()
	sf := filepath.Join(dir, "log.state")
	opts := engine.Options{StateFile: sf}
	l := mustOpen(t, 8192, "clustered-core 1024 nosync", opts)
	l.Resume()
	l.MarkRegion(3)
	// Another log on the same file starts fresh.
	l2 := mustOpen(t, 8192, "clustered-core 1024", opts)
	if st := l2.State(); st.Phase != "constructed" || st.InSync != 0 || st.Dirty != 0 {
		t.Fatalf("a different log restored foreign state: %+v", st)
	}
	// A file from another boot is refused by ReadStateHeader and not
	// restored.
	b, _ := os.ReadFile(sf)
	copy(b[40:], "another-boot-0000-0000-0000-000000000000")
	os.WriteFile(sf, b, 0o600)
	if _, err := engine.ReadStateHeader(sf); !errors.Is(err, engine.ErrState) {
		t.Fatalf("ReadStateHeader of another boot's file: %v", err)
	}
	l3 := mustOpen(t, 8192, "clustered-core 1024", opts)
	if st := l3.State(); st.Phase != "constructed" {
		t.Fatalf("another boot's state restored: %+v", st)
	}
	if _, err := engine.ReadStateHeader(filepath.Join(dir, "nope")); !errors.Is(err, engine.ErrState) {
		t.Fatalf("missing file: %v", err)
	}
}
