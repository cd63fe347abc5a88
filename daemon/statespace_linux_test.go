//go:build linux

package daemon_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/ulog"
)

// smallTmpfs mounts a tmpfs of size bytes for the test (root only: the
// state directory's file system is what is under test).
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// fill writes a file in dir until the file system has no space left.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0xAA}, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			return
		}
	}
}

// A state directory without room for a log's state file (a small /run):
// the CTR succeeds and the log is served without one, which dlogd status
// says; before #13 the first store into the sparse mapping was a SIGBUS.
func TestStateDirFullAtCtr(t *testing.T) {
	dir := smallTmpfs(t, "4m")
	d := newDaemon(t, daemon.Options{StateDir: dir})
	k := newKernel(t, d)
	// 67108864 regions: three 8 MiB bitmaps, more than the tmpfs holds.
	if got := k.ctr("big", 1, "134217728 clustered-core 2"); got.err != 0 {
		t.Fatalf("CTR with a full state directory: %d", got.err)
	}
	k.ok(ulog.TypeResume, "big", 1, nil)
	k.ok(ulog.TypeMarkRegion, "big", 1, regions(7, 60000000))
	k.ok(ulog.TypeFlush, "big", 1, nil)
	if k.isClean("big", 1, 7) || k.isClean("big", 1, 60000000) || !k.isClean("big", 1, 8) {
		t.Fatal("marks not served without a state file")
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.state")); len(files) != 0 {
		t.Fatalf("state files left behind: %v", files)
	}
	st := d.Status()
	if len(st) != 1 || !strings.Contains(st[0].Warning, "no state file") {
		t.Fatalf("status does not say the log has no state file: %+v", st)
	}
	// A log that fits still gets one, and no warning.
	k.ctr("small", 2, "8192 clustered-core 1024")
	if files, _ := filepath.Glob(filepath.Join(dir, "*.state")); len(files) != 1 {
		t.Fatalf("%d state files, want the small log's", len(files))
	}
	for _, s := range d.Status() {
		if s.UUID == "small" && s.Warning != "" {
			t.Fatalf("small log warned: %q", s.Warning)
		}
	}
}

// A restart over a state file with holes (left sparse by a dlogd before
// #13) on a full state directory: Restore reserves before it maps, and
// when it cannot, serves the restored state from memory, removes the file
// (it would go stale) and says so; before #13 the restore was a SIGBUS.
func TestStateDirFullAtRestore(t *testing.T) {
	src := filepath.Join(t.TempDir(), "state")
	d1 := daemon.New(daemon.Options{Logger: quietLogger(), StateDir: src})
	k := newKernel(t, d1)
	// 8388608 regions: three 1 MiB bitmaps.
	k.ctr("c", 0xC, "134217728 clustered-core 16 nosync")
	k.ok(ulog.TypeResume, "c", 0xC, nil)
	k.ok(ulog.TypeMarkRegion, "c", 0xC, regions(3, 5000000))
	k.ok(ulog.TypeFlush, "c", 0xC, nil)
	k.ok(ulog.TypeSetRegionSync, "c", 0xC, ulog.AppendRegionSync(nil, 4000000, 0))
	files, _ := filepath.Glob(filepath.Join(src, "*.state"))
	if len(files) != 1 {
		t.Fatalf("%d state files, want 1", len(files))
	}
	img, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// The same file on a small tmpfs, its zero pages holes, then no space.
	dir := smallTmpfs(t, "4m")
	p := filepath.Join(dir, filepath.Base(files[0]))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(int64(len(img)))
	zero := make([]byte, 4096)
	holes := 0
	for off := 0; off < len(img); off += 4096 {
		if bytes.Equal(img[off:off+4096], zero) {
			holes++
			continue
		}
		if _, err := f.WriteAt(img[off:off+4096], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	if holes == 0 {
		t.Fatal("the state file has no zero page to leave as a hole")
	}
	fill(t, dir)

	d2 := newDaemon(t, daemon.Options{StateDir: dir})
	if n, err := d2.Restore(); n != 1 || err != nil {
		t.Fatalf("Restore = %d, %v; want the log restored", n, err)
	}
	k2 := newKernel(t, d2)
	if k2.isClean("c", 0xC, 3) || k2.isClean("c", 0xC, 5000000) || !k2.isClean("c", 0xC, 4) {
		t.Fatal("marks lost in the restore")
	}
	if k2.inSync("c", 0xC, 4000000) || !k2.inSync("c", 0xC, 4000001) {
		t.Fatal("sync bits lost in the restore")
	}
	if n := k2.u64(ulog.TypeGetSyncCount, "c", 0xC); n != 8388608-1 {
		t.Fatalf("sync count %d after the restore, want %d", n, 8388608-1)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("the state file that cannot be kept current is still there: %v", err)
	}
	st := d2.Status()
	if len(st) != 1 || !strings.Contains(st[0].Warning, "no state file") {
		t.Fatalf("status does not say the log has no state file: %+v", st)
	}
	// The kernel's reconnect changes nothing.
	if got := k2.call(ulog.TypeCtr, "c", 0xC, []byte("134217728 clustered-core 16 nosync\x00")); got.err != 0 || len(got.data) != 0 {
		t.Fatalf("reconnect CTR: %d %q", got.err, got.data)
	}
	k2.ok(ulog.TypeResume, "c", 0xC, nil)
	if k2.isClean("c", 0xC, 3) || k2.inSync("c", 0xC, 4000000) {
		t.Fatal("state lost at the reconnect")
	}
}
