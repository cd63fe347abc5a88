//go:build linux

package iouring_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/iouring"
	"golang.org/x/sys/unix"
)

const blockSize = 4096

// scattered returns n blocks of random content at distinct random 4 KiB
// slots among the first slots of the file, in decreasing offset order,
// backed by one page-aligned buffer.
func scattered(t testing.TB, n, slots int) []iouring.Block {
	t.Helper()
	rng := newRand(t)
	buf := alignedBuf(t, n*blockSize)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	offs := rng.Perm(slots)[:n]
	slices.Sort(offs)
	slices.Reverse(offs)
	blocks := make([]iouring.Block, n)
	for i, s := range offs {
		blocks[i] = iouring.Block{Off: int64(s) * blockSize, Buf: buf[i*blockSize : (i+1)*blockSize]}
	}
	return blocks
}

// Ensure that 64 scattered O_DIRECT blocks written in reverse order with a
// sync all land where they were sent, and nothing else changes.
func TestWriteScattered(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, m mechanism) {
		const slots = 1024
		path, f := directFile(t, slots*blockSize)
		w := newWriter(t, int(f.Fd()), m, 0)
		blocks := scattered(t, 64, slots)
		if err := w.Write(blocks, true); err != nil {
			t.Fatalf("Write: %v", err)
		}
		image := readDirect(t, path, 0, slots*blockSize)
		checkBlocks(t, image, blocks, nil)
		written := make(map[int64]bool)
		for _, b := range blocks {
			written[b.Off] = true
		}
		zero := make([]byte, blockSize)
		for off := int64(0); off < slots*blockSize; off += blockSize {
			if !written[off] && !bytes.Equal(image[off:off+blockSize], zero) {
				t.Errorf("slot at %d was not written but is not zero", off)
			}
		}
	})
}

// Ensure that batches larger than the ring are split and still written in
// full, with the sync in the last submission or, when the writes fill it,
// in a submission of its own.
func TestWriteLargerThanRing(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, m mechanism) {
		const slots = 256
		path, f := directFile(t, slots*blockSize)
		w := newWriter(t, int(f.Fd()), m, 8) // 8 SQEs, 16 CQEs
		for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 50} {
			for _, sync := range []bool{true, false} {
				blocks := scattered(t, n, slots)
				if err := w.Write(blocks, sync); err != nil {
					t.Fatalf("Write(%d blocks, sync %v): %v", n, sync, err)
				}
				checkBlocks(t, readDirect(t, path, 0, slots*blockSize), blocks, nil)
			}
		}
	})
}

// Ensure that SQE slots are reused safely batch after batch. Batch sizes
// vary so the fdatasync lands in every slot of a 4-entry ring and writes
// then reuse those slots: giouring's bug left fsync_flags behind as
// rw_flags (RWF_HIPRI), failing such writes with EINVAL.
func TestWriteRepeatedBatchesReuseSlots(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, m mechanism) {
		const slots = 64
		path, f := directFile(t, slots*blockSize)
		w := newWriter(t, int(f.Fd()), m, 4)
		var last []iouring.Block
		for i := range 40 {
			blocks := scattered(t, 1+i%6, slots)
			if err := w.Write(blocks, i%4 != 3); err != nil {
				t.Fatalf("batch %d (%d blocks): %v", i, len(blocks), err)
			}
			last = blocks
		}
		checkBlocks(t, readDirect(t, path, 0, slots*blockSize), last, nil)
	})
}

// Ensure that a batch with no blocks is a plain sync, and that empty
// buffers are no-ops.
func TestWriteNoBlocks(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, m mechanism) {
		_, f := directFile(t, blockSize)
		w := newWriter(t, int(f.Fd()), m, 0)
		if err := w.Write(nil, true); err != nil {
			t.Errorf("Write(nil, sync): %v", err)
		}
		if err := w.Write(nil, false); err != nil {
			t.Errorf("Write(nil, no sync): %v", err)
		}
		if err := w.Write([]iouring.Block{{Off: 100}, {Off: 0, Buf: []byte{}}}, true); err != nil {
			t.Errorf("Write(empty blocks): %v", err)
		}
		if err := w.Sync(); err != nil {
			t.Errorf("Sync: %v", err)
		}
	})
}

// Ensure that each block that the kernel rejects is reported with its own
// index, offset and errno, and that the others, including those adjacent
// on disk (which the fallback coalesces), land.
func TestWriteBlockErrors(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, m mechanism) {
		const slots = 16
		path, f := directFile(t, slots*blockSize)
		w := newWriter(t, int(f.Fd()), m, 0)
		mem, page := randomPages(t, 8)
		blocks := []iouring.Block{
			0: {Off: 0 * blockSize, Buf: page(0)},
			1: {Off: 1 * blockSize, Buf: page(1)},
			2: {Off: 2 * blockSize, Buf: mem[2*blockSize+8 : 3*blockSize+8]}, // memory misaligned
			3: {Off: 3 * blockSize, Buf: page(4)},
			4: {Off: 5*blockSize + 100, Buf: page(5)},   // offset misaligned
			5: {Off: 8 * blockSize, Buf: page(6)[:100]}, // length misaligned
			6: {Off: 10 * blockSize, Buf: page(7)},
			7: {Off: -blockSize, Buf: page(3)}, // negative offset
		}
		bad := map[int]bool{2: true, 4: true, 5: true, 7: true}

		err := w.Write(blocks, true)
		be := batchError(t, err)
		if be.Sync != nil {
			t.Errorf("Sync = %v, want nil: the sync runs despite failed writes", be.Sync)
		}
		var got []int
		for _, e := range be.Writes {
			got = append(got, e.Index)
			if e.Off != blocks[e.Index].Off {
				t.Errorf("block %d: Off = %d, want %d", e.Index, e.Off, blocks[e.Index].Off)
			}
			if !errors.Is(e.Err, unix.EINVAL) {
				t.Errorf("block %d: Err = %v, want EINVAL", e.Index, e.Err)
			}
		}
		if want := []int{2, 4, 5, 7}; !slices.Equal(got, want) {
			t.Errorf("failed blocks = %v, want %v", got, want)
		}
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("errors.Is(%v, EINVAL) = false", err)
		}
		var blockErr iouring.BlockError
		if !errors.As(err, &blockErr) || blockErr.Index != 2 {
			t.Errorf("errors.As(BlockError) = %+v, want the error of block 2", blockErr)
		}
		checkBlocks(t, readDirect(t, path, 0, slots*blockSize), blocks, bad)
	})
}

// Ensure that a short write is retried once from where it stopped and then
// reported, for a lone block and for one inside a run the fallback
// coalesces. RLIMIT_FSIZE makes the kernel cut writes at a chosen offset
// (Go ignores the SIGXFSZ that comes with it).
func TestWriteShortWrite(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, m mechanism) {
		path, f := directFile(t, 0)
		w := newWriter(t, int(f.Fd()), m, 0)
		mem := alignedBuf(t, 6*blockSize)
		for i := range mem {
			mem[i] = byte(i*7 + i/blockSize)
		}
		blocks := []iouring.Block{
			0: {Off: 0, Buf: mem[0:blockSize]},
			1: {Off: blockSize, Buf: mem[blockSize : 3*blockSize]},       // cut after its first 4 KiB
			2: {Off: 4 * blockSize, Buf: mem[3*blockSize : 4*blockSize]}, // wholly past the limit
		}
		const limit = 2 * blockSize

		var old unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: old.Max}); err != nil {
			t.Skipf("cannot lower RLIMIT_FSIZE: %v", err)
		}
		err := w.Write(blocks, true)
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
			t.Fatalf("restoring RLIMIT_FSIZE: %v", err)
		}

		be := batchError(t, err)
		if len(be.Writes) != 2 || be.Writes[0].Index != 1 || be.Writes[1].Index != 2 {
			t.Fatalf("failed blocks = %v, want blocks 1 and 2", be.Writes)
		}
		if e := be.Writes[0].Err; !errors.Is(e, iouring.ErrShortWrite) || !errors.Is(e, unix.EFBIG) {
			t.Errorf("block 1: Err = %v, want ErrShortWrite wrapping EFBIG", e)
		}
		if e := be.Writes[1].Err; errors.Is(e, iouring.ErrShortWrite) || !errors.Is(e, unix.EFBIG) {
			t.Errorf("block 2: Err = %v, want plain EFBIG", e)
		}
		if be.Sync != nil {
			t.Errorf("Sync = %v, want nil", be.Sync)
		}
		image := readDirect(t, path, 0, limit)
		if !bytes.Equal(image, mem[:limit]) {
			t.Errorf("the bytes before the limit did not land")
		}
	})
}

// Ensure that a closed Writer refuses work and that Close is idempotent.
func TestClose(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, m mechanism) {
		_, f := directFile(t, blockSize)
		w := newWriter(t, int(f.Fd()), m, 0)
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := w.Write([]iouring.Block{{Off: 0, Buf: alignedBuf(t, blockSize)}}, true); !errors.Is(err, iouring.ErrClosed) {
			t.Errorf("Write after Close = %v, want ErrClosed", err)
		}
		if err := w.Sync(); !errors.Is(err, iouring.ErrClosed) {
			t.Errorf("Sync after Close = %v, want ErrClosed", err)
		}
		if _, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil {
			t.Errorf("the Writer closed the caller's fd: %v", err)
		}
	})
}

// Ensure that Sync errors come back wrapping the errno: fdatasync on a
// pipe fails with EINVAL.
func TestSyncError(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, m mechanism) {
		r, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer pw.Close()
		w := newWriter(t, int(pw.Fd()), m, 0)
		if err := w.Sync(); !errors.Is(err, unix.EINVAL) {
			t.Errorf("Sync on a pipe = %v, want EINVAL", err)
		}
		err = w.Write(nil, true)
		if be := batchError(t, err); !errors.Is(be.Sync, unix.EINVAL) || len(be.Writes) != 0 {
			t.Errorf("Write(nil, sync) on a pipe = %+v, want Sync EINVAL and no block errors", be)
		}
	})
}

// Ensure that New rejects bad arguments instead of failing later.
func TestNewErrors(t *testing.T) {
	_, f := directFile(t, blockSize)
	ro := openFile(t, f.Name(), os.O_RDONLY)
	for _, tt := range []struct {
		name string
		fd   int
		opts iouring.Options
	}{
		{"negative fd", -1, iouring.Options{}},
		{"closed fd", 1 << 20, iouring.Options{}},
		{"read-only fd", int(ro.Fd()), iouring.Options{}},
		{"negative entries", int(f.Fd()), iouring.Options{Entries: -1}},
		{"too many entries", int(f.Fd()), iouring.Options{Entries: 1 << 16}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Logger = quietLogger
			if w, err := iouring.New(tt.fd, tt.opts); err == nil {
				w.Close()
				t.Errorf("New succeeded, want an error")
			}
		})
	}
}

// Ensure that New logs the mechanism it chose, and why, at Info.
func TestNewLogsChoice(t *testing.T) {
	_, f := directFile(t, blockSize)
	for _, tt := range []struct {
		opts iouring.Options
		want []string
	}{
		{iouring.Options{}, []string{"level=INFO", "method=io_uring", "sq_entries=128"}},
		{iouring.Options{Fallback: true}, []string{"level=INFO", "method=pwritev", `reason="forced by Options.Fallback"`}},
	} {
		var buf bytes.Buffer
		tt.opts.Logger = slog.New(slog.NewTextHandler(&buf, nil))
		w, err := iouring.New(int(f.Fd()), tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		if !tt.opts.Fallback && w.Method() != iouring.MethodIOUring {
			t.Logf("io_uring unavailable here: %s", buf.String())
			continue
		}
		for _, s := range tt.want {
			if !strings.Contains(buf.String(), s) {
				t.Errorf("log %q lacks %q", buf.String(), s)
			}
		}
	}
}
