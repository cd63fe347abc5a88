//go:build linux

package loopdev_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dlog-dev/dlog/internal/testutil/loopdev"
)

// A device attaches with the asked block size and size, resizes with its
// file, and detaches, taking its file along.
func TestAttach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: loop devices need root")
	}
	file := filepath.Join(t.TempDir(), "loop.img")
	l, err := loopdev.Attach(file, 1<<20, loopdev.Options{BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if size, err := l.DeviceSize(); err != nil || size != 1<<20 {
		t.Fatalf("device size %d, %v; want %d", size, err, 1<<20)
	}
	if l.MajMin() == "0:0" || l.BlockSize != 4096 {
		t.Errorf("loop %+v", l)
	}
	if err := os.Truncate(file, 1<<19); err != nil {
		t.Fatal(err)
	}
	if err := l.SetCapacity(); err != nil {
		t.Fatal(err)
	}
	if size, err := l.DeviceSize(); err != nil || size != 1<<19 {
		t.Fatalf("device size after shrinking %d, %v; want %d", size, err, 1<<19)
	}
	if err := l.Detach(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("file after Detach: %v", err)
	}
}
