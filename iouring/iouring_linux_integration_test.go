//go:build linux

package iouring_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/iouring"
	"golang.org/x/sys/unix"
)

// loopDevice attaches a direct-I/O loop device with the given logical
// sector size over a fresh size-byte file and detaches it at cleanup. It
// skips, saying why, when not root, without losetup, or when losetup fails.
func loopDevice(t *testing.T, size int64, sectorSize int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: attaching a loop device needs root")
	}
	losetup, err := exec.LookPath("losetup")
	if err != nil {
		t.Skipf("skipping: losetup not found: %v", err)
	}
	backing := filepath.Join(t.TempDir(), "loop.img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(losetup, "-f", "--show", "--direct-io=on", "--sector-size", strconv.Itoa(sectorSize), backing).CombinedOutput()
	if err != nil {
		t.Skipf("skipping: losetup -f --show --direct-io=on --sector-size %d: %v: %s", sectorSize, err, bytes.TrimSpace(out))
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command(losetup, "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, bytes.TrimSpace(out))
		}
	})
	return dev
}

// Ensure that ProbeAlignment reads a 4Kn device's logical block size from
// the kernel instead of assuming 512.
func TestIntegrationProbeAlignmentLoop4Kn(t *testing.T) {
	dev := loopDevice(t, 1<<20, 4096)
	f := openFile(t, dev, os.O_RDWR|unix.O_DIRECT)
	a, err := iouring.ProbeAlignment(f)
	if err != nil {
		t.Fatalf("ProbeAlignment(%s): %v", dev, err)
	}
	t.Logf("%s: %+v", dev, a)
	if a.LogicalBlock != 4096 || a.Offset != 4096 {
		t.Errorf("LogicalBlock, Offset = %d, %d; want 4096, 4096", a.LogicalBlock, a.Offset)
	}
	if a.Mem == 0 || a.Mem > 4096 || a.Mem&(a.Mem-1) != 0 {
		t.Errorf("Mem = %d, want a power of two no larger than the block", a.Mem)
	}
}

// Ensure that, on a 4Kn block device opened O_DIRECT, 4 KiB writes land, a
// 512-byte write fails with EINVAL for that block alone, and writes past the
// end fail for their blocks: ENOSPC wholly past it, and a short write then
// ENOSPC when straddling it.
func TestIntegrationLoop4Kn(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, m mechanism) {
		const size = 1 << 20
		dev := loopDevice(t, size, 4096)
		f := openFile(t, dev, os.O_RDWR|unix.O_DIRECT)
		w := newWriter(t, int(f.Fd()), m, 0)
		mem, page := randomPages(t, 8)
		blocks := []iouring.Block{
			0: {Off: 0, Buf: page(0)},
			1: {Off: blockSize, Buf: page(1)[:512]}, // 512 bytes: below the logical block
			2: {Off: 2 * blockSize, Buf: page(2)},
			3: {Off: 3 * blockSize, Buf: page(3)},
			4: {Off: size, Buf: page(4)},                                    // wholly past the end
			5: {Off: size - blockSize, Buf: mem[5*blockSize : 7*blockSize]}, // straddles the end
			6: {Off: 100 * blockSize, Buf: page(7)},
		}
		err := w.Write(blocks, true)
		be := batchError(t, err)
		if be.Sync != nil {
			t.Errorf("Sync = %v, want nil", be.Sync)
		}
		if len(be.Writes) != 3 {
			t.Fatalf("failed blocks = %v, want 1, 4 and 5", be.Writes)
		}
		for i, want := range []struct {
			index int
			errno unix.Errno
			short bool
		}{{1, unix.EINVAL, false}, {4, unix.ENOSPC, false}, {5, unix.ENOSPC, true}} {
			got := be.Writes[i]
			if got.Index != want.index || got.Off != blocks[want.index].Off ||
				!errors.Is(got.Err, want.errno) || errors.Is(got.Err, iouring.ErrShortWrite) != want.short {
				t.Errorf("failure %d = %v; want block %d with %v (short write: %v)", i, got, want.index, want.errno, want.short)
			}
		}
		image := readDirect(t, dev, 0, size)
		checkBlocks(t, image, blocks, map[int]bool{1: true, 4: true, 5: true})
		if !bytes.Equal(image[size-blockSize:], blocks[5].Buf[:blockSize]) {
			t.Errorf("the part of block 5 before the end did not land")
		}
		if !bytes.Equal(image[blockSize:2*blockSize], make([]byte, blockSize)) {
			t.Errorf("the rejected 512-byte write changed the device")
		}
	})
}
