// Package diotest has the test helpers that look at log devices the way
// the kernel does: files to hold disk logs, and reads that bypass the page
// cache (O_DIRECT), so that a test sees what is on the device and not what
// a write left in memory.
package diotest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/engine"
)

// LogFile returns a zero-filled regular file of size bytes in a test's
// temporary directory, to hold a disk log.
func LogFile(t testing.TB, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "log.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

// ReadDirect reads the first n bytes of a file or block device with
// O_DIRECT into page-aligned memory and returns a copy.
func ReadDirect(t testing.TB, path string, n int) []byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := (n + 4095) / 4096 * 4096
	buf, free, err := engine.AlignedBuf(size)
	if err != nil {
		t.Fatal(err)
	}
	defer free()
	want := size
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		want = min(size, int(st.Size())/512*512)
	}
	if got, err := f.ReadAt(buf[:want], 0); got < n {
		t.Fatalf("O_DIRECT read of %s: %d of %d bytes: %v", path, got, n, err)
	}
	return bytes.Clone(buf[:n])
}
