package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/header"
)

// golden is the sidecar of an image written by the kernel's disk log
// (testdata/kernel/README.md).
type golden struct {
	Name          string `json:"name"`
	TargetSectors uint64 `json:"target_sectors"`
	RegionSize    uint32 `json:"region_size"`
	RegionCount   uint64 `json:"region_count"`
	LogicalBlock  uint32 `json:"logical_block_size"`
	BufSize       int    `json:"buf_size"`
	SyncCount     uint64 `json:"sync_count"`
	Captured      string `json:"captured"`
	img           []byte
}

func loadGolden(t *testing.T, name string) golden {
	t.Helper()
	var g golden
	js, err := os.ReadFile(filepath.Join("testdata", "kernel", name+".json"))
	if err != nil {
		t.Fatalf("golden image %s: %v (regenerate with `make vmgolden`)", name, err)
	}
	if err := json.Unmarshal(js, &g); err != nil {
		t.Fatal(err)
	}
	if g.img, err = os.ReadFile(filepath.Join("testdata", "kernel", name+".img")); err != nil {
		t.Fatal(err)
	}
	if len(g.img) != g.BufSize {
		t.Fatalf("%s: image is %d bytes, sidecar says %d", name, len(g.img), g.BufSize)
	}
	return g
}

func goldenNames(t *testing.T) []string {
	m, err := filepath.Glob(filepath.Join("testdata", "kernel", "*.json"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no golden images in testdata/kernel: %v", err)
	}
	var names []string
	for _, p := range m {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	return names
}

// deviceWith writes img at the start of a zero-filled file of size bytes
// (the kernel's images come from zero-filled loop devices).
func deviceWith(t *testing.T, img []byte, size int) string {
	t.Helper()
	buf := make([]byte, max(size, len(img)))
	copy(buf, img)
	p := filepath.Join(t.TempDir(), "golden.img")
	if err := os.WriteFile(p, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func popcount(b []byte) (n uint64) {
	for _, x := range b {
		n += uint64(bits.OnesCount8(x))
	}
	return n
}

// TestGoldenResume resumes every kernel-written image with the region
// count it was written for: the dirty set and sync count are the image's,
// and the bytes dlog writes back are the kernel's, byte for byte.
func TestGoldenResume(t *testing.T) {
	for _, name := range goldenNames(t) {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			if g.LogicalBlock != 512 {
				t.Skipf("logical block %d: covered by TestIntegrationGolden4Kn", g.LogicalBlock)
			}
			p := deviceWith(t, g.img, g.BufSize)
			l := mustOpen(t, g.TargetSectors, fmt.Sprintf("disk 2 %s %d", p, g.RegionSize))
			if err := l.Resume(); err != nil {
				t.Fatal(err)
			}
			clean := checkClean(t, l, g.RegionCount, func(r uint64) bool { return cleanBit(g.img, r) })
			if got := l.SyncCount(); got != clean {
				t.Fatalf("SyncCount %d, image has %d clean regions", got, clean)
			}
			if g.Captured == "after remove" && clean != g.SyncCount {
				t.Fatalf("SyncCount %d, the kernel reported %d before the remove", clean, g.SyncCount)
			}
			if io, _ := l.Failed(); io {
				t.Fatal("device failed")
			}
			if got := readDirect(t, p, g.BufSize); !bytes.Equal(got, g.img) {
				t.Fatalf("image written back at resume differs from the kernel's: %s", firstDiff(got, g.img))
			}
		})
	}
}

// TestGoldenTransitions starts from one kernel image, resumes it as the
// kernel did for the next state (grown, forced sync), and must produce the
// image the kernel wrote for that state.
func TestGoldenTransitions(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		syncWord string
	}{
		{"synced-128", "grow-128-to-256-resyncing", ""},
		{"synced-128", "forcesync-128-resyncing", "sync"},
		{"large-nosync-65536", "large-grow-65536-to-100000-resyncing", ""},
		// Shrinks: the kernel clears the tail of its bitset up to its
		// BITS_PER_LONG word (since Linux 5.19); 70 regions end a 32-bit
		// word at 96 and a 64-bit word at 128, so the two differ.
		{"nosync-256", "shrink-256-to-100", ""},
		{"nosync-256", "shrink-256-to-70", ""},
	} {
		t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
			from, to := loadGolden(t, tc.from), loadGolden(t, tc.to)
			p := deviceWith(t, from.img, to.BufSize)
			args := fmt.Sprintf("disk 2 %s %d", p, to.RegionSize)
			if tc.syncWord != "" {
				args = fmt.Sprintf("disk 3 %s %d %s", p, to.RegionSize, tc.syncWord)
			}
			l := mustOpen(t, to.TargetSectors, args)
			if err := l.Resume(); err != nil {
				t.Fatal(err)
			}
			if got := readDirect(t, p, to.BufSize); !bytes.Equal(got, to.img) {
				t.Fatalf("dlog's resume of %s differs from the kernel's %s: %s", tc.from, tc.to, firstDiff(got, to.img))
			}
			want := popcount(to.img[header.BitmapOffset : header.BitmapOffset+int(header.BitsetSize(to.RegionCount))])
			if got := l.SyncCount(); got != want || got != to.SyncCount {
				t.Fatalf("SyncCount %d, image has %d clean, kernel status said %d", got, want, to.SyncCount)
			}
		})
	}
}

// TestGoldenKernelReadsDlog goes the other way: dlog writes the state the
// kernel captured, from a fresh device, and the bytes must match, so the
// kernel's disk log resumes it with the same dirty set.
func TestGoldenKernelReadsDlog(t *testing.T) {
	g := loadGolden(t, "inflight-write-128")
	p := logFile(t, int64(g.BufSize))
	l := mustOpen(t, g.TargetSectors, fmt.Sprintf("disk 3 %s %d nosync", p, g.RegionSize))
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	l.MarkRegion(5) // the write in flight
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readDirect(t, p, g.BufSize); !bytes.Equal(got, g.img) {
		t.Fatalf("dlog's image differs from the kernel's: %s", firstDiff(got, g.img))
	}
}

// TestIntegrationGolden4Kn resumes the image the kernel wrote on a
// 4096-byte-sector device from a loop device with 4096-byte sectors.
func TestIntegrationGolden4Kn(t *testing.T) {
	g := loadGolden(t, "lbs4096-128")
	if os.Geteuid() != 0 {
		t.Skip("needs root for losetup")
	}
	backing := deviceWith(t, g.img, 1<<20)
	out, err := exec.Command("losetup", "-f", "--show", "--sector-size", "4096", backing).CombinedOutput()
	if err != nil {
		t.Skipf("losetup --sector-size 4096: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	l := mustOpen(t, g.TargetSectors, fmt.Sprintf("disk 2 %s %d", dev, g.RegionSize))
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	if got := l.SyncCount(); got != g.SyncCount {
		t.Fatalf("SyncCount %d, kernel said %d", got, g.SyncCount)
	}
	l.MarkRegion(3)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	got := readDirect(t, dev, g.BufSize)
	want := bytes.Clone(g.img)
	want[header.BitmapOffset] &^= 1 << 3
	if !bytes.Equal(got, want) {
		t.Fatalf("4Kn image after a mark: %s", firstDiff(got, want))
	}
	// The status names the device by major:minor, as the kernel does.
	if s := l.Status(0); !strings.HasPrefix(s, "3 disk ") || strings.Contains(s, "/dev/") {
		t.Fatalf("status %q should name the device major:minor", s)
	}
}

func firstDiff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d: got %#02x, want %#02x (%d bytes compared)", i, got[i], want[i], min(len(got), len(want)))
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("lengths %d and %d", len(got), len(want))
	}
	return "no difference"
}
