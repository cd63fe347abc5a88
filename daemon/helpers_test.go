package daemon_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/internal/testutil/diotest"
	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// handle hands the datagram b to d as a transport does.
func handle(d *daemon.Daemon, b []byte, from transport.Peer) { fakekernel.Handle(d, b, from) }

// readDirect reads the first n bytes of a file or device with O_DIRECT:
// what is on the device, not in the page cache.
func readDirect(t testing.TB, path string, n int) []byte { return diotest.ReadDirect(t, path, n) }

// testCtrMajMin constructs a clustered-disk log on a loop device named
// "major:minor", as LVM names log devices, and by its path: both replies
// name it "major:minor", the name the kernel's dm_get_device resolves. A
// resent table-load CTR (the kernel's retry after 15 s without a reply)
// gets the same reply; only the reconnect CTR (trailing NUL, no reply
// room) gets none.
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
	k.ok(ulog.TypeMarkRegion, "mm", 1, regions(3))
	if got := k.ctr("mm", 1, "131072 clustered-disk "+mm+" 1024"); got.err != 0 || string(got.data) != mm+"\x00" {
		t.Fatalf("resent CTR: %d %q, want %q as the first", got.err, got.data, mm)
	}
	if got := k.ctr("mm", 1, "131072 clustered-disk "+mm+" 1024\x00"); got.err != 0 || len(got.data) != 0 {
		t.Fatalf("reconnect CTR: %d %q, want no data", got.err, got.data)
	}
	if k.isClean("mm", 1, 3) {
		t.Fatal("a repeated CTR lost a mark")
	}
	k.ok(ulog.TypeDtr, "mm", 1, nil)
	got = k.ctr("path", 1, "131072 clustered-disk "+dev+" 1024")
	if got.err != 0 || string(got.data) != mm+"\x00" {
		t.Fatalf("CTR with %s: %d %q, want %q", dev, got.err, got.data, mm)
	}
	if got := k.ctr("path", 1, "131072 clustered-disk "+dev+" 1024"); got.err != 0 || string(got.data) != mm+"\x00" {
		t.Fatalf("resent CTR with %s: %d %q, want %q", dev, got.err, got.data, mm)
	}
	k.ok(ulog.TypeDtr, "path", 1, nil)
}
