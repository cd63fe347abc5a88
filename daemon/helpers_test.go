package daemon_test

import (
	"path/filepath"
	"testing"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/internal/testutil/diotest"
	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/internal/testutil/loopdev"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// handle hands the datagram b to d as a transport does.
func handle(d *daemon.Daemon, b []byte, from transport.Peer) { fakekernel.Handle(d, b, from) }

// readDirect reads the first n bytes of a file or device with O_DIRECT:
// what is on the device, not in the page cache.
func readDirect(t testing.TB, path string, n int) []byte { return diotest.ReadDirect(t, path, n) }

// testCtrMajMin constructs a clustered-disk log on a loop device named
// "major:minor", as LVM names log devices.
func testCtrMajMin(t *testing.T, k *kernel) {
	t.Helper()
	l, err := loopdev.Attach(filepath.Join(t.TempDir(), "mm.img"), 1<<20, loopdev.Options{})
	if err != nil {
		t.Logf("skipping the major:minor CTR: %v", err)
		return
	}
	t.Cleanup(func() { l.Detach() })
	mm := l.MajMin()
	got := k.ctr("mm", 1, "131072 clustered-disk "+mm+" 1024")
	if got.err != 0 || string(got.data) != mm+"\x00" {
		t.Fatalf("CTR with %s (%s): %d %q", mm, l.Dev, got.err, got.data)
	}
	if s := k.status(ulog.TypeStatusInfo, "mm", 1); s != "3 clustered-disk "+mm+" A" {
		t.Fatalf("status %q", s)
	}
	k.ok(ulog.TypeDtr, "mm", 1, nil)
}
