//go:build linux

package iouring_test

import (
	"bytes"
	"flag"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/iouring"
	"golang.org/x/sys/unix"
)

var seedFlag = flag.Uint64("iouring.seed", 0, "seed for the random block contents and offsets (0: time-based)")

var (
	seedOnce = sync.OnceValue(func() uint64 {
		if *seedFlag != 0 {
			return *seedFlag
		}
		return uint64(time.Now().UnixNano())
	})
	streamsMu sync.Mutex
	streams   = map[string]uint64{} // per test: generators handed out so far
)

// newRand returns a generator determined by the run's seed, the test's
// name and how many generators the test asked for before, and logs the
// seed once per test so a failure can be replayed with -iouring.seed.
func newRand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := seedOnce()
	streamsMu.Lock()
	n := streams[t.Name()]
	streams[t.Name()] = n + 1
	streamsMu.Unlock()
	if n == 0 {
		t.Logf("seed %d (replay with -iouring.seed=%d)", seed, seed)
	}
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	return rand.New(rand.NewPCG(seed, h.Sum64()+n))
}

// mechanism is one Writer implementation; the suite runs over each.
type mechanism struct {
	name     string
	fallback bool
	sync     iouring.SyncMode
}

var mechanisms = []mechanism{
	{iouring.MethodIOUring, false, iouring.SyncAuto},
	{iouring.MethodIOUring, false, iouring.SyncRing},
	{iouring.MethodIOUring, false, iouring.SyncDirect},
	{iouring.MethodPwritev, true, iouring.SyncAuto},
}

// forEachMechanism runs fn as one subtest per mechanism.
func forEachMechanism(t *testing.T, fn func(t *testing.T, m mechanism)) {
	for _, m := range mechanisms {
		name := m.name
		if !m.fallback {
			name += "/sync=" + m.sync.String()
		}
		t.Run(name, func(t *testing.T) { fn(t, m) })
	}
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// newWriter opens a Writer of mechanism m on fd and closes it at cleanup.
// The io_uring half skips, saying why, where the kernel refuses io_uring.
func newWriter(t testing.TB, fd int, m mechanism, entries int) iouring.Writer {
	t.Helper()
	w, err := iouring.New(fd, iouring.Options{Entries: entries, Fallback: m.fallback, Sync: m.sync, Logger: quietLogger})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if got := w.Method(); got != m.name {
		if !m.fallback {
			t.Skipf("io_uring is unavailable here (New chose %s); only the fallback half can run", got)
		}
		t.Fatalf("Method() = %q, want %q", got, m.name)
	}
	return w
}

// randomPages returns n page-aligned blocks of random bytes in one mapping,
// and page(i), the i-th block.
func randomPages(t testing.TB, n int) (mem []byte, page func(i int) []byte) {
	t.Helper()
	rng := newRand(t)
	mem = alignedBuf(t, n*blockSize)
	for i := range mem {
		mem[i] = byte(rng.Uint32())
	}
	return mem, func(i int) []byte { return mem[i*blockSize : (i+1)*blockSize] }
}

// alignedBuf returns n bytes of page-aligned anonymous memory, unmapped at
// cleanup.
func alignedBuf(t testing.TB, n int) []byte {
	t.Helper()
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("mmap %d bytes: %v", n, err)
	}
	t.Cleanup(func() {
		if err := unix.Munmap(b); err != nil {
			t.Errorf("munmap: %v", err)
		}
	})
	return b
}

// openFile opens path with flags and closes it at cleanup.
func openFile(t testing.TB, path string, flags int) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// directFile creates a sparse file of size bytes in t.TempDir and opens it
// O_RDWR|O_DIRECT.
func directFile(t testing.TB, size int64) (string, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data")
	f := openFile(t, path, os.O_RDWR|os.O_CREATE|unix.O_DIRECT)
	if err := f.Truncate(size); err != nil {
		t.Fatalf("truncate: %v", err)
	}
	return path, f
}

// readDirect reads n bytes at off from path through a fresh O_DIRECT fd,
// so the bytes come from the device, not from the page cache.
func readDirect(t testing.TB, path string, off int64, n int) []byte {
	t.Helper()
	f := openFile(t, path, os.O_RDONLY|unix.O_DIRECT)
	buf := alignedBuf(t, n)
	if got, err := f.ReadAt(buf, off); err != nil || got != n {
		t.Fatalf("read %d bytes at %d: got %d, %v", n, off, got, err)
	}
	return bytes.Clone(buf)
}

// checkBlocks fails t unless each block's bytes are in image (the file's
// content from offset 0).
func checkBlocks(t testing.TB, image []byte, blocks []iouring.Block, skip map[int]bool) {
	t.Helper()
	for i, b := range blocks {
		if skip[i] {
			continue
		}
		if got := image[b.Off : b.Off+int64(len(b.Buf))]; !bytes.Equal(got, b.Buf) {
			t.Errorf("block %d at %d: content differs on disk", i, b.Off)
		}
	}
}

// writeError returns the BatchError of err, failing t if err is not one.
func batchError(t testing.TB, err error) *iouring.BatchError {
	t.Helper()
	be, ok := err.(*iouring.BatchError)
	if !ok {
		t.Fatalf("Write error = %v (%T), want *BatchError", err, err)
	}
	return be
}
