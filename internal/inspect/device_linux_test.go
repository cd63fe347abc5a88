//go:build linux

package inspect_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/internal/inspect"
)

// fdFlags reads the open flags of fd from /proc/self/fdinfo.
func fdFlags(t *testing.T, fd uintptr) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "flags:"); ok {
			f, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(f)
		}
	}
	t.Fatal("no flags in fdinfo")
	return 0
}

// Ensure that Open reads a file read-only, with O_DIRECT where the
// filesystem has it, and that unaligned reads of any length at any offset
// return the file's bytes.
func TestOpenFile(t *testing.T) {
	want := make([]byte, 3*4096+1000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, want, 0o444); err != nil {
		t.Fatal(err)
	}
	d, err := inspect.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Size != int64(len(want)) || d.Kind != "regular file" {
		t.Errorf("size %d kind %q", d.Size, d.Kind)
	}
	flags := fdFlags(t, inspect.DeviceFd(d))
	if flags&unix.O_ACCMODE != unix.O_RDONLY {
		t.Errorf("opened with flags %#o, not read-only", flags)
	}
	if d.Direct != (flags&unix.O_DIRECT != 0) {
		t.Errorf("Direct %v, flags %#o", d.Direct, flags)
	}
	t.Logf("O_DIRECT: %v", d.Direct)
	for _, c := range []struct{ off, n int }{{0, 16}, {1024, 16}, {1, 4096}, {4095, 2}, {1000, 3 * 4096}, {3*4096 + 999, 1}, {0, len(want)}} {
		got := make([]byte, c.n)
		n, err := d.ReadAt(got, int64(c.off))
		if err != nil || n != c.n || !bytes.Equal(got, want[c.off:c.off+c.n]) {
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v; bytes equal %v", c.n, c.off, n, err, bytes.Equal(got, want[c.off:c.off+c.n]))
		}
	}
	// Past the end: the bytes there are, then io.EOF.
	got := make([]byte, 100)
	n, err := d.ReadAt(got, int64(len(want)-10))
	if n != 10 || !errors.Is(err, io.EOF) || !bytes.Equal(got[:10], want[len(want)-10:]) {
		t.Errorf("read across the end: %d, %v", n, err)
	}
	if n, err := d.ReadAt(got, int64(len(want)+4096)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("read past the end: %d, %v", n, err)
	}
}

func TestOpenRefusals(t *testing.T) {
	if _, err := inspect.Open(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := inspect.Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "neither a block device nor a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, err := inspect.Open("4095:1048575"); err == nil || !strings.Contains(err.Error(), "no block device node for 4095:1048575") {
		t.Errorf("unknown major:minor: %v", err)
	}
}

// Ensure that a kernel image on a real block device (a read-only loop
// device), named by path and by major:minor, reads as the file does.
// Root only; skipped where loop devices cannot be made.
func TestIntegrationOpenBlockDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for losetup")
	}
	img := filepath.Join("..", "..", "engine", "testdata", "kernel", "large-grow-65536-to-100000-resyncing.img")
	out, err := exec.Command("losetup", "--find", "--show", "--read-only", img).CombinedOutput()
	if err != nil {
		t.Skipf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "--detach", dev).Run() })
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	mm := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	for _, arg := range []string{dev, mm} {
		d, err := inspect.Open(arg)
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if d.Kind != "block device "+mm || d.Size != 13824 || !d.Direct {
			t.Errorf("%s: kind %q size %d direct %v", arg, d.Kind, d.Size, d.Direct)
		}
		if flags := fdFlags(t, inspect.DeviceFd(d)); flags&unix.O_ACCMODE != unix.O_RDONLY {
			t.Errorf("%s: flags %#o", arg, flags)
		}
		res, err := inspect.Read(d, d.Size, inspect.Options{Chunk: 1000})
		d.Close()
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if res.Dirty != 34464 || inspect.FormatRanges(res.Ranges) != "65536-99999" {
			t.Errorf("%s: dirty %d ranges %s", arg, res.Dirty, inspect.FormatRanges(res.Ranges))
		}
	}
}
