package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/header"
	"github.com/dlog-dev/dlog/internal/testutil/faultio"
)

// checkDevice compares the device, read back with O_DIRECT, with what the
// log says: the header and every region's clean bit.
func checkDevice(t *testing.T, l engine.Log, path string, bufSize int) []byte {
	t.Helper()
	img := readDirect(t, path, bufSize)
	h, _ := header.Decode(img)
	if h.Magic != header.Magic || h.NrRegions != l.RegionCount() {
		t.Fatalf("device header %v, want magic and %d regions", h, l.RegionCount())
	}
	for r := uint64(0); r < l.RegionCount(); r++ {
		c, _ := l.IsClean(r)
		if cleanBit(img, r) != c {
			t.Fatalf("region %d: device clean bit %v, log says %v", r, cleanBit(img, r), c)
		}
	}
	return img
}

// checkClean fails the test unless each of the first n regions of l is
// clean and in sync exactly where want says, and returns how many are.
func checkClean(t *testing.T, l engine.Log, n uint64, want func(r uint64) bool) uint64 {
	t.Helper()
	var clean uint64
	for r := range n {
		c, _ := l.IsClean(r)
		y, _ := l.InSync(r)
		if c != want(r) || y != c {
			t.Fatalf("region %d: clean %v in_sync %v, want %v", r, c, y, want(r))
		}
		if c {
			clean++
		}
	}
	return clean
}

// The worked example of docs/disk-format.md §2: 2048 regions need 1536 bytes.
func TestDiskTooSmall(t *testing.T) {
	ok := logFile(t, 1536)
	mustOpen(t, 2097152, "disk 2 "+ok+" 1024")
	small := logFile(t, 1535)
	c, _ := engine.ParseCtr("2097152 disk 2 " + small + " 1024")
	if _, err := engine.Open(c, engine.Options{Logger: quiet()}); !errors.Is(err, engine.ErrDeviceTooSmall) {
		t.Fatalf("1535-byte device: err = %v, want ErrDeviceTooSmall", err)
	}
	c, _ = engine.ParseCtr("2097152 disk 2 /nonexistent/log 1024")
	if _, err := engine.Open(c, engine.Options{Logger: quiet()}); !errors.Is(err, engine.ErrDevice) {
		t.Fatalf("missing device: err = %v, want ErrDevice", err)
	}
	c, _ = engine.ParseCtr("2097152 disk 2 " + t.TempDir() + " 1024")
	if _, err := engine.Open(c, engine.Options{Logger: quiet()}); !errors.Is(err, engine.ErrDevice) {
		t.Fatalf("directory as device: err = %v, want ErrDevice", err)
	}
}

// A zeroed device has no magic: a fresh log, every region out of sync,
// header written little-endian at resume (docs/disk-format.md §4).
func TestDiskFreshResume(t *testing.T) {
	p := logFile(t, 4096)
	// Fill bytes 16..1023 and the tail: the kernel preserves them as read.
	junk := bytes.Repeat([]byte{0x5A}, 4096)
	copy(junk[header.BitmapOffset:], make([]byte, 256))
	os.WriteFile(p, junk, 0o600)
	l := mustOpen(t, 2097152, "disk 2 "+p+" 1024")
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	if got := l.SyncCount(); got != 0 {
		t.Fatalf("SyncCount = %d, want 0", got)
	}
	img := checkDevice(t, l, p, 1536)
	want := []byte{0x72, 0x52, 0x69, 0x4D, 2, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(img[:16], want) {
		t.Fatalf("header % x, want % x", img[:16], want)
	}
	for i := 16; i < header.BitmapOffset; i++ {
		if img[i] != 0x5A {
			t.Fatalf("byte %d of the unused header area changed to %#x", i, img[i])
		}
	}
	for i := header.BitmapOffset + 256; i < 1536; i++ {
		if img[i] != 0x5A {
			t.Fatalf("byte %d after the bitset changed to %#x", i, img[i])
		}
	}
	// Nothing beyond buf_size was written.
	all, _ := os.ReadFile(p)
	if !bytes.Equal(all[1536:], junk[1536:]) {
		t.Fatal("bytes beyond buf_size were written")
	}
}

// Resume honours a valid image, grows and shrinks it, and applies sync and
// nosync exactly as disk_resume does.
func TestDiskResumeRules(t *testing.T) {
	odd := func(i uint64) bool { return i%2 == 1 }
	good := func(n uint64) header.Header { return header.Header{Magic: header.Magic, Version: 2, NrRegions: n} }
	for _, tc := range []struct {
		name      string
		h         header.Header
		bits      uint64 // regions whose bits the image holds
		regions   uint64
		syncWord  string
		wantClean func(uint64) bool
		wantD     bool
	}{
		{"honoured", good(128), 128, 128, "", odd, false},
		{"grown: new regions dirty", good(100), 100, 128, "", func(i uint64) bool { return i < 100 && odd(i) }, false},
		{"shrunk", good(128), 128, 100, "", odd, false},
		{"sync ignores the image", good(128), 128, 128, "sync", func(uint64) bool { return false }, false},
		{"nosync ignores the image", good(128), 128, 128, "nosync", func(uint64) bool { return true }, false},
		{"nosync grown", good(64), 64, 128, "nosync", func(uint64) bool { return true }, false},
		{"wrong magic is fresh", header.Header{Magic: 1, Version: 2, NrRegions: 128}, 128, 128, "", func(uint64) bool { return false }, false},
		{"version 1 upgraded", header.Header{Magic: header.Magic, Version: 1, NrRegions: 128}, 128, 128, "", odd, false},
		{"version 3 fails the device", header.Header{Magic: header.Magic, Version: 3, NrRegions: 128}, 128, 128, "", func(uint64) bool { return false }, true},
		// nr_regions of 2^32 or more is taken modulo 2^32 as the kernel's
		// unsigned int loop takes it: never more bits trusted than by the
		// kernel (#13).
		{"nr_regions 2^62 is 0", good(1 << 62), 128, 128, "", func(uint64) bool { return false }, false},
		{"nr_regions 2^32+40", good(1<<32 + 40), 128, 128, "", func(i uint64) bool { return i < 40 && odd(i) }, false},
		{"nr_regions 2^32+200 clamped", good(1<<32 + 200), 128, 128, "", odd, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeImage(t, 4096, tc.h, tc.bits, odd)
			args := fmt.Sprintf("disk 2 %s 2", p)
			if tc.syncWord != "" {
				args = fmt.Sprintf("disk 3 %s 2 %s", p, tc.syncWord)
			}
			l := mustOpen(t, 2*tc.regions, args)
			if err := l.Resume(); err != nil {
				t.Fatal(err)
			}
			want := checkClean(t, l, tc.regions, tc.wantClean)
			if got := l.SyncCount(); got != want {
				t.Fatalf("SyncCount = %d, want %d", got, want)
			}
			if io, _ := l.Failed(); io != tc.wantD {
				t.Fatalf("device failed = %v, want %v (status %q)", io, tc.wantD, l.Status(engine.StatusInfo))
			}
			bs, _ := header.BufSize(tc.regions, 512)
			img := readDirect(t, p, int(bs))
			h, _ := header.Decode(img)
			wantH := header.Header{Magic: header.Magic, Version: 2, NrRegions: tc.regions}
			if tc.wantD {
				wantH.Version = 3 // the kernel writes the unsupported version back
			}
			if h != wantH {
				t.Fatalf("header after resume %v, want %v", h, wantH)
			}
			// Tail bits up to the next multiple of 64 are cleared.
			for r := tc.regions; r%64 != 0; r++ {
				if cleanBit(img, r) {
					t.Fatalf("stale tail bit %d left set", r)
				}
			}
			for r := uint64(0); r < tc.regions; r++ {
				if cleanBit(img, r) != tc.wantClean(r) {
					t.Fatalf("device bit %d = %v, want %v", r, cleanBit(img, r), tc.wantClean(r))
				}
			}
		})
	}
}

// Marks survive a close and reopen; clears too once flushed.
func TestDiskPersistence(t *testing.T) {
	p := logFile(t, 8192)
	l := mustOpen(t, 2097152, "disk 2 "+p+" 1024")
	l.Resume()
	for r := uint64(0); r < 2048; r++ {
		l.SetRegionSync(r, true)
		l.ClearRegion(r)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []uint64{3, 700, 2047} {
		l.MarkRegion(r)
	}
	l.ClearRegion(700)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	checkDevice(t, l, p, 1536)
	l.Close()
	l2 := mustOpen(t, 2097152, "disk 2 "+p+" 1024")
	if err := l2.Resume(); err != nil {
		t.Fatal(err)
	}
	if got := l2.SyncCount(); got != 2046 {
		t.Fatalf("SyncCount after reopen = %d, want 2046", got)
	}
	for _, r := range []uint64{3, 2047} {
		if y, _ := l2.InSync(r); y {
			t.Fatalf("marked region %d in sync after reopen", r)
		}
	}
	if r, ok, _ := l2.GetResyncWork(); !ok || r != 3 {
		t.Fatalf("GetResyncWork = %d,%v; want 3", r, ok)
	}
}

// Flush writes only the changed blocks, flushes the cache only when marks
// are among them, and does nothing when nothing changed. The device is
// read back with O_DIRECT after every flush.
func TestDiskFlushWritesChangedBlocks(t *testing.T) {
	const regions = 1 << 20 // 128 KiB bitset: blocks 0..32
	bs, _ := header.BufSize(regions, 512)
	p := logFile(t, int64(bs))
	// MergeGap -1: only changed blocks are written, so they can be counted.
	l := mustOpen(t, 2*regions, fmt.Sprintf("disk 3 %s 2 nosync", p), engine.Options{MergeGap: -1})
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	base := l.Stats()
	if base.BytesWritten != bs || base.Syncs != 1 {
		t.Fatalf("resume wrote %d bytes with %d syncs, want %d and 1", base.BytesWritten, base.Syncs, bs)
	}
	nf := l.(interface{ FlushNoIO() bool })
	step := func(name string, wantBlocks, wantSyncs uint64) {
		t.Helper()
		if noIO := nf.FlushNoIO(); noIO != (wantBlocks == 0) {
			t.Fatalf("%s: FlushNoIO before the Flush = %v, want %v", name, noIO, wantBlocks == 0)
		}
		before := l.Stats()
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		if !nf.FlushNoIO() {
			t.Fatalf("%s: FlushNoIO false right after a Flush", name)
		}
		after := l.Stats()
		if b := after.BlocksWritten - before.BlocksWritten; b != wantBlocks {
			t.Fatalf("%s: %d blocks written, want %d", name, b, wantBlocks)
		}
		if s := after.Syncs - before.Syncs; s != wantSyncs {
			t.Fatalf("%s: %d cache flushes, want %d", name, s, wantSyncs)
		}
		checkDevice(t, l, p, int(bs))
	}
	step("nothing changed", 0, 0)
	l.MarkRegion(0)           // block 0 (with the header)
	l.MarkRegion(24576)       // block 1
	l.MarkRegion(24577)       // block 1 again
	l.MarkRegion(regions - 1) // last block
	step("three blocks of marks", 3, 1)
	l.MarkRegion(0) // already dirty: no change
	step("re-mark", 0, 0)
	l.ClearRegion(24576)
	step("clear only: written, no cache flush", 1, 0)
	l.MarkRegion(100)
	l.ClearRegion(100) // net no change, but the block was touched
	step("mark+clear", 1, 1)
	rng := rand.New(rand.NewPCG(5, 5))
	seen := map[uint64]bool{}
	for i := 0; i < 32; i++ {
		r := rng.Uint64N(regions)
		l.MarkRegion(r)
		seen[(header.BitmapOffset+r/8)/4096] = true
	}
	step("32 scattered marks", uint64(len(seen)), 1)
	l.SetRegionSync(5, false) // sync bits are not on disk
	step("sync bit only", 0, 0)
}

// Changed blocks close together are written as one I/O with the
// unchanged blocks between them; blocks further apart are not.
func TestDiskFlushMergesNearbyBlocks(t *testing.T) {
	const regions = 1 << 20 // blocks 0..32
	bs, _ := header.BufSize(regions, 512)
	p := logFile(t, int64(bs))
	l := mustOpen(t, 2*regions, fmt.Sprintf("disk 3 %s 2 nosync", p), engine.Options{MergeGap: 3})
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	region := func(blk int) uint64 { return uint64(blk*4096-1024)*8 + 5 } // a region in image block blk
	for _, blk := range []int{2, 4, 8, 20, 32} {
		l.MarkRegion(region(blk))
	}
	before := l.Stats()
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	after := l.Stats()
	// 2..8 (gaps of 1 and 3) is one run of 7 blocks; 20 and 32 stand alone;
	// the last block is cut at buf_size.
	if w := after.Writes - before.Writes; w != 3 {
		t.Fatalf("%d write I/Os, want 3", w)
	}
	if b := after.BlocksWritten - before.BlocksWritten; b != 9 {
		t.Fatalf("%d blocks written, want 9", b)
	}
	if n := after.BytesWritten - before.BytesWritten; n != 8*4096+bs-32*4096 {
		t.Fatalf("%d bytes written, want %d", n, 8*4096+bs-32*4096)
	}
	checkDevice(t, l, p, int(bs))
	// A failed merged write is retried whole by the next flush.
	l.Close()
	p2 := logFile(t, int64(bs))
	faults := &faultio.Faults{}
	l2 := mustOpen(t, 2*regions, fmt.Sprintf("disk 3 %s 2 nosync", p2), faulty(faults, engine.Options{MergeGap: 3}))
	l2.Resume()
	l2.MarkRegion(region(2))
	l2.MarkRegion(region(5))
	faults.FailWrites = 1
	if err := l2.Flush(); err == nil {
		t.Fatal("flush with a failing write succeeded")
	}
	if err := l2.Flush(); err != nil {
		t.Fatal(err)
	}
	checkDevice(t, l2, p2, int(bs))
}

// EIO and failed cache flushes show as D and F, as in the kernel, and the
// next flush retries what failed.
func TestDiskIOErrors(t *testing.T) {
	p := logFile(t, 4096)
	faults := &faultio.Faults{}
	l := mustOpen(t, 131072, "disk 3 "+p+" 1024 nosync", faulty(faults, engine.Options{}))
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	if got := l.Status(engine.StatusInfo); got != "3 disk "+p+" A" {
		t.Fatalf("status %q", got)
	}
	l.MarkRegion(1)
	faults.FailSyncs = 1
	flushFails(t, l, "a failing cache flush", "3 disk "+p+" F")
	// cmirrord's clustered-disk status knows only A and D (docs/protocol.md
	// §5.1): the same failure shows as D there.
	lc, pc, fc := markedFaulty(t, "clustered-disk %s 1024 nosync")
	fc.FailSyncs = 1
	flushFails(t, lc, "a failing cache flush", "3 clustered-disk "+pc+" D")
	// The sync is still owed: the next flush issues it.
	before := l.Stats().Syncs
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if l.Stats().Syncs != before+1 {
		t.Fatal("owed cache flush not retried")
	}

	l2, p2, faults2 := markedFaulty(t, "disk 3 %s 1024 nosync")
	faults2.FailWrites = 1
	flushFails(t, l2, "a failing write", "3 disk "+p2+" D")
	// The failed block is written by the next flush.
	if err := l2.Flush(); err != nil {
		t.Fatal(err)
	}
	if img := readDirect(t, p2, 1536); cleanBit(img, 1) {
		t.Fatal("mark lost after a failed write and a good retry")
	}

	// A read error at resume: device failed, every region out of sync,
	// resume itself succeeds (the kernel only logs it).
	p3 := writeImage(t, 4096, header.Header{Magic: header.Magic, Version: 2, NrRegions: 128}, 128, func(uint64) bool { return true })
	faults3 := &faultio.Faults{FailReads: 1}
	l3 := mustOpen(t, 131072, "disk 2 "+p3+" 1024", faulty(faults3, engine.Options{}))
	if err := l3.Resume(); err != nil {
		t.Fatalf("resume after read error: %v", err)
	}
	if got := l3.SyncCount(); got != 0 {
		t.Fatalf("SyncCount after failed read = %d, want 0", got)
	}
	if io, _ := l3.Failed(); !io {
		t.Fatal("read error did not fail the device")
	}
}

// markedFaulty opens a log of 128 regions with args (its %s the path of a
// fresh 4 KiB log file) through a fault injector, resumes it and marks
// region 1.
func markedFaulty(t *testing.T, args string) (engine.Log, string, *faultio.Faults) {
	t.Helper()
	p := logFile(t, 4096)
	f := &faultio.Faults{}
	l := mustOpen(t, 131072, fmt.Sprintf(args, p), faulty(f, engine.Options{}))
	l.Resume()
	l.MarkRegion(1)
	return l, p, f
}

// flushFails fails the test unless l's next flush, with the fault why
// armed, fails with ErrIO and leaves the status want.
func flushFails(t *testing.T, l engine.Log, why, want string) {
	t.Helper()
	if err := l.Flush(); !errors.Is(err, engine.ErrIO) {
		t.Fatalf("flush with %s: %v", why, err)
	}
	if got := l.Status(engine.StatusInfo); got != want {
		t.Fatalf("status after %s %q, want %q", why, got, want)
	}
}

// Torn flushes (power lost while a flush writes) leave a log that
// over-reports: every mark acknowledged by an earlier flush is dirty after
// resume.
func TestDiskTornFlush(t *testing.T) {
	const regions = 1 << 18
	bs, _ := header.BufSize(regions, 512)
	rng := rand.New(rand.NewPCG(11, 12))
	for trial := 0; trial < 40; trial++ {
		p := logFile(t, int64(bs))
		faults := &faultio.Faults{Rand: rand.New(rand.NewPCG(uint64(trial), 1))}
		l := mustOpen(t, 2*regions, fmt.Sprintf("disk 3 %s 2 nosync", p), faulty(faults, engine.Options{}))
		if err := l.Resume(); err != nil {
			t.Fatal(err)
		}
		mustDirty := map[uint64]bool{}
		for round := 0; ; round++ {
			pending := map[uint64]bool{}
			for i := 0; i < 20; i++ {
				r := rng.Uint64N(regions)
				if rng.IntN(3) == 0 {
					l.ClearRegion(r)
					delete(pending, r)
					delete(mustDirty, r)
				} else {
					l.MarkRegion(r)
					pending[r] = true
				}
			}
			if round == 3+trial%5 {
				faults.TearNext = true
			}
			if err := l.Flush(); err != nil {
				if !faults.Dead() {
					t.Fatalf("flush failed without a tear: %v", err)
				}
				break
			}
			for r := range pending {
				mustDirty[r] = true
			}
		}
		l.Close()
		l2 := mustOpen(t, 2*regions, fmt.Sprintf("disk 2 %s 2", p))
		if err := l2.Resume(); err != nil {
			t.Fatal(err)
		}
		for r := range mustDirty {
			if c, _ := l2.IsClean(r); c {
				t.Fatalf("trial %d: acknowledged mark of region %d lost by a torn flush", trial, r)
			}
		}
	}
}

// An image written by this engine is what the kernel's disk log reads: the
// same bytes for the same bits, whatever the write granularity.
func TestDiskImageIsKernelFormat(t *testing.T) {
	p := logFile(t, 4096)
	l := mustOpen(t, 131072, "disk 2 "+p+" 1024")
	l.Resume()
	for r := uint64(0); r < 128; r++ {
		l.SetRegionSync(r, true)
		if r%3 != 0 {
			l.ClearRegion(r)
		}
	}
	l.Flush()
	img := readDirect(t, p, 1536)
	want := make([]byte, 1536)
	header.Header{Magic: header.Magic, Version: 2, NrRegions: 128}.Encode(want)
	for r := uint64(0); r < 128; r++ {
		if r%3 != 0 {
			want[header.BitmapOffset+r/8] |= 1 << (r % 8)
		}
	}
	if !bytes.Equal(img, want) {
		t.Fatalf("image differs from the kernel format:\n got % x\nwant % x", img[1024:1040], want[1024:1040])
	}
}

// With ClearDelay, a flush of clears alone writes nothing; the clears go
// out after the delay, with the next flush that carries marks, or at
// postsuspend.
func TestDiskClearDelay(t *testing.T) {
	const regions = 1 << 16
	bs, _ := header.BufSize(regions, 512)
	p := logFile(t, int64(bs))
	l := mustOpen(t, 2*regions, fmt.Sprintf("disk 3 %s 2 nosync", p), engine.Options{ClearDelay: 100 * time.Millisecond})
	l.Resume()
	l.MarkRegion(10)
	l.Flush()
	written := func() uint64 { return l.Stats().Writes }
	w0 := written()
	l.ClearRegion(10)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if written() != w0 {
		t.Fatal("a flush of clears alone wrote at once")
	}
	if img := readDirect(t, p, int(bs)); cleanBit(img, 10) {
		t.Fatal("the clear is on the device before the delay")
	}
	deadline := time.Now().Add(5 * time.Second)
	for written() == w0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if img := readDirect(t, p, int(bs)); !cleanBit(img, 10) {
		t.Fatal("the clear never reached the device")
	}
	// A clear waiting when marks are flushed goes out with them.
	l.ClearRegion(11)
	l.Flush()
	l.MarkRegion(40000)
	l.Flush()
	if img := readDirect(t, p, int(bs)); !cleanBit(img, 11) || cleanBit(img, 40000) {
		t.Fatal("a flush with marks did not carry the waiting clear")
	}
	// Postsuspend writes clears at once.
	l.ClearRegion(40000)
	l.Flush()
	if err := l.Postsuspend(); err != nil {
		t.Fatal(err)
	}
	if img := readDirect(t, p, int(bs)); !cleanBit(img, 40000) {
		t.Fatal("postsuspend left a clear unwritten")
	}
}

// A mark whose write failed is retried as a mark: written and synced by
// the next flush, never deferred as if it were a clear.
func TestDiskFailedMarkRetriedAsMark(t *testing.T) {
	for _, delay := range []time.Duration{0, time.Hour} {
		p := logFile(t, 1<<20)
		faults := &faultio.Faults{}
		l := mustOpen(t, 131072, "disk 3 "+p+" 1024 nosync", faulty(faults, engine.Options{ClearDelay: delay}))
		l.Resume()
		l.MarkRegion(20)
		faults.FailWrites = 1
		if err := l.Flush(); err == nil {
			t.Fatalf("delay %v: flush with a failing write succeeded", delay)
		}
		before := l.Stats()
		l.MarkRegion(20) // the kernel resends the mark: no bit changes
		if err := l.Flush(); err != nil {
			t.Fatalf("delay %v: retry: %v", delay, err)
		}
		after := l.Stats()
		if after.Writes == before.Writes || after.Syncs == before.Syncs {
			t.Fatalf("delay %v: the retried mark was not written and synced (%+v -> %+v)", delay, before, after)
		}
		if img := readDirect(t, p, 1536); cleanBit(img, 20) {
			t.Fatalf("delay %v: mark not on the device after the retry", delay)
		}
	}
}

// A clear timer that fires while the log closes must not flush after the
// image and the device are gone (it would read unmapped memory).
func TestDiskClearTimerAgainstClose(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	p := logFile(t, 1<<20)
	for i := range 200 {
		delay := time.Duration(1+rng.IntN(300)) * time.Microsecond
		c, err := engine.ParseCtr("131072 disk 3 " + p + " 1024 nosync")
		if err != nil {
			t.Fatal(err)
		}
		l, err := engine.Open(c, engine.Options{Logger: quiet(), ClearDelay: delay})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Resume(); err != nil {
			t.Fatal(err)
		}
		l.MarkRegion(uint64(i % 128))
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		l.ClearRegion(uint64(i % 128))
		if err := l.Flush(); err != nil { // arms the clear timer
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
		if err := l.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", i, err)
		}
	}
	// The last close wrote every clear.
	if img := readDirect(t, p, 1536); !cleanBit(img, 199%128) {
		t.Fatal("a clear was lost at close")
	}
}

// A failed cache flush may have lost every write it was to make durable:
// the next flush writes each block of that flush again (in every
// submission, not only the last) before its own cache flush, as the kernel
// rewrites its whole buffer before the next PREFLUSH.
func TestDiskFailedSyncRewritesBlocks(t *testing.T) {
	const regions = 1 << 24 // a 2 MiB bitset: 512 blocks, more than one submission
	const perBlock = 4096 * 8
	p := logFile(t, 1024+regions/8+4096)
	faults := &faultio.Faults{}
	l := mustOpen(t, regions*1024, "disk 3 "+p+" 1024 nosync", faulty(faults, engine.Options{}))
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	var marked uint64
	for r := uint64(5); r < regions; r += perBlock {
		l.MarkRegion(r)
		marked++
	}
	faults.FailSyncs = 1
	before := l.Stats()
	if err := l.Flush(); !errors.Is(err, engine.ErrIO) {
		t.Fatalf("flush with a failing cache flush: %v", err)
	}
	first := l.Stats()
	if w := first.BlocksWritten - before.BlocksWritten; w < marked {
		t.Fatalf("the failing flush wrote %d blocks, want at least %d", w, marked)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	second := l.Stats()
	if w := second.BlocksWritten - first.BlocksWritten; w != first.BlocksWritten-before.BlocksWritten {
		t.Fatalf("the flush after a failed cache flush rewrote %d blocks, want the %d the failed one wrote", w, first.BlocksWritten-before.BlocksWritten)
	}
	if second.Syncs != first.Syncs+1 {
		t.Fatalf("syncs %d then %d: the owed cache flush was not issued", first.Syncs, second.Syncs)
	}
	// And the image holds every mark.
	img := readDirect(t, p, 1024+regions/8)
	for r := uint64(5); r < regions; r += perBlock {
		if cleanBit(img, r) {
			t.Fatalf("region %d clean on disk after the retry", r)
		}
	}
}
