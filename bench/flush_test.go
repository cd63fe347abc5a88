package bench

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/header"
	"github.com/dlog-dev/dlog/iouring"
)

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))

// preallocated returns a file of size bytes, written in full and synced, so
// that no benchmark pays for unwritten extents.
func preallocated(b *testing.B, size int) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "log.img")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for off := 0; off < size; off += len(buf) {
		if _, err := f.Write(buf[:min(len(buf), size-off)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return p
}

// alignedBuf maps n bytes of page-aligned memory.
func alignedBuf(b *testing.B, n int) []byte {
	b.Helper()
	m, err := unix.Mmap(-1, 0, max(n, 4096), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Munmap(m) })
	return m[:n]
}

func openDirect(b *testing.B, p string) *os.File {
	b.Helper()
	f, err := os.OpenFile(p, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// BenchmarkFlush: a flush carrying marks of `marks` scattered regions of a
// 2^`bits`-region disk log.
//
//	dlog              engine.Flush: the changed 4 KiB blocks (iouring.SyncAuto: one block by pwrite + fdatasync,
//	                  more on io_uring with a drained fsync)
//	dlog-sync-ring    always the drained ring fsync
//	dlog-sync-direct  always fdatasync(2) after the ring writes are reaped
//	dlog-pwritev      pwritev + fdatasync, no io_uring
//	kernel-strategy   header + whole bitmap in one O_DIRECT write, then fdatasync (dm-log.c disk_flush)
//	one-4k-write      the floor: one 4 KiB O_DIRECT write + fdatasync
//
// bytes/flush is reported for each. The region count runs from 2^16 to
// 2^28 (a 32 MiB bitmap) in steps of 4x, each with a fixed 32 and 1 marks
// per flush, so that cmd/benchreport can plot flush cost against log size.
func BenchmarkFlush(b *testing.B) {
	var cases []struct{ bits, marks int }
	for bits := 16; bits <= 28; bits += 2 {
		for _, marks := range []int{32, 1} {
			cases = append(cases, struct{ bits, marks int }{bits, marks})
		}
	}
	for _, tc := range cases {
		regions := uint64(1) << tc.bits
		bs, _ := header.BufSize(regions, 512)
		name := fmt.Sprintf("regions=2^%d/marks=%d", tc.bits, tc.marks)
		for _, v := range []struct {
			impl     string
			fallback bool
			sync     iouring.SyncMode
		}{{"dlog", false, iouring.SyncAuto}, {"dlog-sync-ring", false, iouring.SyncRing}, {"dlog-sync-direct", false, iouring.SyncDirect}, {"dlog-pwritev", true, iouring.SyncAuto}} {
			impl, fallback, sync := v.impl, v.fallback, v.sync
			b.Run(name+"/impl="+impl, func(b *testing.B) {
				benchEngineFlush(b, regions, tc.marks, engine.Options{IOFallback: fallback, Sync: sync})
			})
		}
		b.Run(name+"/baseline=kernel-strategy", func(b *testing.B) {
			p := preallocated(b, int(bs))
			f := openDirect(b, p)
			img := alignedBuf(b, int(bs))
			header.Header{Magic: header.Magic, Version: 2, NrRegions: regions}.Encode(img)
			rng := rand.New(rand.NewPCG(1, 2))
			for b.Loop() {
				for i := 0; i < tc.marks; i++ {
					r := rng.Uint64N(regions)
					img[header.BitmapOffset+r/8] &^= 1 << (r % 8)
				}
				if _, err := f.WriteAt(img, 0); err != nil {
					b.Fatal(err)
				}
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(img)), "bytes/flush")
		})
		b.Run(name+"/baseline=one-4k-write", func(b *testing.B) {
			p := preallocated(b, int(bs))
			f := openDirect(b, p)
			blk := alignedBuf(b, 4096)
			rng := rand.New(rand.NewPCG(1, 2))
			nblk := int64(bs) / 4096
			for b.Loop() {
				blk[0]++
				if _, err := f.WriteAt(blk, rng.Int64N(nblk)*4096); err != nil {
					b.Fatal(err)
				}
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(4096, "bytes/flush")
		})
	}
}

// BenchmarkMapping measures the cost of the engine's choice of mapping for
// one mark made durable: anonymous memory with a staged O_DIRECT write
// (engine), against a MAP_SHARED mapping of the log file with the store
// made durable by msync of the touched page (which also pays a
// write-protect fault on the first store after each msync).
func BenchmarkMapping(b *testing.B) {
	const regions = 1 << 20
	bs, _ := header.BufSize(regions, 512)
	b.Run("impl=anon-odirect", func(b *testing.B) {
		p := preallocated(b, int(bs))
		c, _ := engine.ParseCtr(fmt.Sprintf("%d disk 3 %s 2 nosync", 2*regions, p))
		l, err := engine.Open(c, engine.Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		l.Resume()
		rng := rand.New(rand.NewPCG(3, 4))
		for b.Loop() {
			r := rng.Uint64N(regions)
			l.ClearRegion(r)
			l.MarkRegion(r)
			if err := l.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline=shared-msync", func(b *testing.B) {
		// Whole pages: msync works on pages, and the last region's page
		// runs past buf_size.
		size := (int(bs) + 4095) / 4096 * 4096
		p := preallocated(b, size)
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Munmap(m)
		rng := rand.New(rand.NewPCG(3, 4))
		for b.Loop() {
			r := rng.Uint64N(regions)
			at := header.BitmapOffset + int(r/8)
			m[at] ^= 1 << (r % 8)
			page := at / 4096 * 4096
			if err := unix.Msync(m[page:page+4096], unix.MS_SYNC); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMergeGap chooses engine.DefaultMergeGap: a flush of 32
// scattered marks at 2^22 to 2^26 regions with changed blocks up to `gap`
// unchanged blocks apart written as one I/O (-1: only changed blocks, each
// run of adjacent ones as one I/O). A larger gap means fewer, larger
// writes; which wins depends on what one more I/O costs against one more
// block on the device. ios/flush and bytes/flush are reported for each.
func BenchmarkMergeGap(b *testing.B) {
	for _, bits := range []int{22, 24, 26} {
		regions := uint64(1) << bits
		for _, gap := range []int{-1, 1, 2, 4, 8} {
			b.Run(fmt.Sprintf("regions=2^%d/gap=%d", bits, gap), func(b *testing.B) {
				writes := benchEngineFlush(b, regions, 32, engine.Options{MergeGap: gap})
				b.ReportMetric(float64(writes)/float64(b.N), "ios/flush")
			})
		}
	}
}

// benchEngineFlush times engine.Flush of a disk log of regions regions on
// a preallocated file, each flush carrying marks fresh marks at random
// regions. It reports bytes/flush and returns the write I/Os issued.
func benchEngineFlush(b *testing.B, regions uint64, marks int, opts engine.Options) (writes uint64) {
	b.Helper()
	bs, _ := header.BufSize(regions, 512)
	p := preallocated(b, int(bs))
	c, err := engine.ParseCtr(fmt.Sprintf("%d disk 3 %s 2 nosync", 2*regions, p))
	if err != nil {
		b.Fatal(err)
	}
	opts.Logger = quiet
	l, err := engine.Open(c, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if err := l.Resume(); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	before := l.Stats()
	b.ResetTimer()
	for b.Loop() {
		for range marks {
			r := rng.Uint64N(regions)
			l.MarkRegion(r)
			l.ClearRegion(r) // the next round finds it clean again
			l.MarkRegion(r)
		}
		if err := l.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	after := l.Stats()
	b.ReportMetric(float64(after.BytesWritten-before.BytesWritten)/float64(b.N), "bytes/flush")
	return after.Writes - before.Writes
}
