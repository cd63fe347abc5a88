package daemon_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/ulog"
)

// readDirect reads the first n bytes of a file or device with O_DIRECT:
// what is on the device, not in the page cache.
func readDirect(t testing.TB, path string, n int) []byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := (n + 4095) / 4096 * 4096
	buf, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(buf)
	want := size
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		want = min(size, int(st.Size())/512*512)
	}
	if got, err := f.ReadAt(buf[:want], 0); got < n {
		t.Fatalf("O_DIRECT read of %s: %d bytes, %v", path, got, err)
	}
	return bytes.Clone(buf[:n])
}

// testCtrMajMin constructs a clustered-disk log on a loop device named
// "major:minor", as LVM names log devices.
func testCtrMajMin(t *testing.T, k *kernel) {
	t.Helper()
	backing := logFile(t, 1<<20)
	out, err := exec.Command("losetup", "-f", "--show", backing).CombinedOutput()
	if err != nil {
		t.Logf("skipping the major:minor CTR: losetup: %v: %s", err, out)
		return
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	mm := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	got := k.ctr("mm", 1, "131072 clustered-disk "+mm+" 1024")
	if got.err != 0 || string(got.data) != mm+"\x00" {
		t.Fatalf("CTR with %s (%s): %d %q", mm, dev, got.err, got.data)
	}
	if s := k.status(ulog.TypeStatusInfo, "mm", 1); s != "3 clustered-disk "+mm+" A" {
		t.Fatalf("status %q", s)
	}
	k.ok(ulog.TypeDtr, "mm", 1, nil)
}
