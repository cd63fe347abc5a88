//go:build linux

package iouring_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dlog-dev/dlog/iouring"
	"golang.org/x/sys/unix"
)

// The setting of docs/platform.md §4: a preallocated 64 MiB file, fully written
// (no unwritten extents) and fsynced, O_DIRECT, page-aligned buffers, and
// random distinct 4 KiB-aligned offsets within its first 4 MiB.
const (
	benchFileSize = 64 << 20
	benchSlots    = (4 << 20) / blockSize
	benchSets     = 64 // offset sets cycled through by the benchmark loop
)

// BenchmarkWrite64x4KiBSync measures one flush of 64 scattered 4 KiB
// O_DIRECT writes and one fdatasync.
func BenchmarkWrite64x4KiBSync(b *testing.B) { benchWriteSync(b, 64) }

// BenchmarkWrite1x4KiBSync measures one durable 4 KiB O_DIRECT write.
func BenchmarkWrite1x4KiBSync(b *testing.B) { benchWriteSync(b, 1) }

func benchWriteSync(b *testing.B, n int) {
	f := benchFile(b)
	rng := newRand(b)
	buf := alignedBuf(b, n*blockSize)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	sets := make([][]iouring.Block, benchSets)
	for i := range sets {
		sets[i] = make([]iouring.Block, n)
		for j, slot := range rng.Perm(benchSlots)[:n] {
			sets[i][j] = iouring.Block{Off: int64(slot) * blockSize, Buf: buf[j*blockSize : (j+1)*blockSize]}
		}
	}

	for _, m := range mechanisms {
		b.Run(m.name, func(b *testing.B) {
			w := newWriter(b, int(f.Fd()), m, 0)
			i := 0
			for b.Loop() {
				if err := w.Write(sets[i%benchSets], true); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	// The baseline: one pwrite after another, then fdatasync.
	b.Run("serial-pwrite", func(b *testing.B) {
		fd := int(f.Fd())
		i := 0
		for b.Loop() {
			for _, blk := range sets[i%benchSets] {
				if _, err := unix.Pwrite(fd, blk.Buf, blk.Off); err != nil {
					b.Fatal(err)
				}
			}
			if err := unix.Fdatasync(fd); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// benchFile creates the 64 MiB file, writes all of it, fsyncs it, and
// returns it opened O_RDWR|O_DIRECT.
func benchFile(b *testing.B) *os.File {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench")
	f := openFile(b, path, os.O_RDWR|os.O_CREATE|unix.O_DIRECT)
	if err := unix.Fallocate(int(f.Fd()), 0, 0, benchFileSize); err != nil {
		b.Fatalf("fallocate: %v", err)
	}
	chunk := alignedBuf(b, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for off := int64(0); off < benchFileSize; off += int64(len(chunk)) {
		if _, err := f.WriteAt(chunk, off); err != nil {
			b.Fatalf("filling: %v", err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatalf("fsync: %v", err)
	}
	return f
}
