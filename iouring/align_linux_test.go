//go:build linux

package iouring_test

import (
	"errors"
	"math/bits"
	"os"
	"testing"

	"github.com/dlog-dev/dlog/iouring"
	"golang.org/x/sys/unix"
)

// Ensure that ProbeAlignment describes a regular file truthfully: a write
// honouring the reported alignment succeeds on an O_DIRECT fd, and one
// missing it by half fails with EINVAL.
func TestProbeAlignmentFile(t *testing.T) {
	_, f := directFile(t, 1<<20)
	a, err := iouring.ProbeAlignment(f)
	if err != nil {
		t.Fatalf("ProbeAlignment: %v", err)
	}
	t.Logf("%s: %+v", f.Name(), a)
	if a.Offset == 0 {
		t.Skipf("the filesystem of %s reports no direct I/O alignment (tmpfs?); nothing to check", f.Name())
	}
	for name, v := range map[string]uint32{"Mem": a.Mem, "Offset": a.Offset, "LogicalBlock": a.LogicalBlock} {
		if bits.OnesCount32(v) != 1 {
			t.Errorf("%s = %d, want a power of two", name, v)
		}
	}
	if a.LogicalBlock != a.Offset {
		t.Errorf("LogicalBlock = %d, want the offset alignment %d", a.LogicalBlock, a.Offset)
	}

	mem := alignedBuf(t, 2*blockSize)
	n, off := int(a.Offset), int64(a.Offset)
	if _, err := f.WriteAt(mem[:n], off); err != nil {
		t.Errorf("write at the reported alignment: %v", err)
	}
	if a.Offset >= 2 {
		if _, err := f.WriteAt(mem[:n], off+off/2); !errors.Is(err, unix.EINVAL) {
			t.Errorf("write at offset %d: %v, want EINVAL", off+off/2, err)
		}
		if _, err := f.WriteAt(mem[:n/2], off); !errors.Is(err, unix.EINVAL) {
			t.Errorf("write of %d bytes: %v, want EINVAL", n/2, err)
		}
	}
	if a.Mem >= 2 && a.Mem < blockSize {
		// A buffer misaligned by Mem/2 that crosses a page boundary. (Linux
		// 6.18 on ext4 accepts a misaligned buffer that stays inside one
		// page: Mem is a sufficient condition, not an exact one.)
		buf := mem[blockSize-int(a.Mem)/2:][:n]
		if _, err := f.WriteAt(buf, off); !errors.Is(err, unix.EINVAL) {
			t.Errorf("write of %d bytes from memory misaligned by %d across a page boundary: %v, want EINVAL", n, a.Mem/2, err)
		}
	}
}

// Ensure that ProbeAlignment refuses what is neither a file nor a block
// device.
func TestProbeAlignmentPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if a, err := iouring.ProbeAlignment(r); err == nil {
		t.Errorf("ProbeAlignment(pipe) = %+v, want an error", a)
	}
}
