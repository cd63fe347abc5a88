//go:build linux

package iouring_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dlog-dev/dlog/iouring"
	"golang.org/x/sys/unix"
)

// Ensure that a synced Write of one run on disk (one block, or contiguous
// blocks under the fallback, which coalesces them) is written and synced
// with one pwritev2(RWF_DSYNC), that unsynced, scattered or ring-mode
// batches are not, and that every block lands either way.
func TestWriteSyncedRunInOneCall(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, m mechanism) {
		const slots = 8
		path, f := directFile(t, slots*blockSize)
		w := newWriter(t, int(f.Fd()), m, 0)
		_, page := randomPages(t, 6)
		auto := m.fallback || m.sync == iouring.SyncAuto
		steps := []struct {
			name   string
			blocks []iouring.Block
			sync   bool
			dsync  bool // taken with one pwritev2(RWF_DSYNC)
		}{
			{"one block, synced", []iouring.Block{{Off: 0, Buf: page(0)}}, true, auto},
			{"one block, not synced", []iouring.Block{{Off: blockSize, Buf: page(1)}}, false, false},
			{"contiguous, synced", []iouring.Block{{Off: 3 * blockSize, Buf: page(3)}, {Off: 2 * blockSize, Buf: page(2)}}, true, m.fallback},
			{"scattered, synced", []iouring.Block{{Off: 4 * blockSize, Buf: page(4)}, {Off: 6 * blockSize, Buf: page(5)}}, true, false},
		}
		var want uint64
		for _, s := range steps {
			if err := w.Write(s.blocks, s.sync); err != nil {
				t.Fatalf("%s: Write: %v", s.name, err)
			}
			if s.dsync {
				want++
			}
			if got := iouring.DsyncWrites(w); got != want {
				t.Errorf("%s: pwritev2(RWF_DSYNC) runs = %d, want %d", s.name, got, want)
			}
			checkBlocks(t, readDirect(t, path, 0, slots*blockSize), s.blocks, nil)
		}
	})
}

// Ensure that a synced single block whose pwritev2(RWF_DSYNC) comes back
// short or failed is written again the ordinary way and its failure
// reported against it, as without the one-call path: a cut-off block is a
// short write wrapping EFBIG, a block wholly past the limit a plain EFBIG.
func TestWriteSyncedRunFailure(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, m mechanism) {
		const limit = blockSize
		for _, tc := range []struct {
			name  string
			off   int64
			short bool
		}{
			{"cut off", 0, true},
			{"past the limit", 2 * blockSize, false},
		} {
			path, f := directFile(t, 0)
			w := newWriter(t, int(f.Fd()), m, 0)
			mem := alignedBuf(t, 2*blockSize)
			for i := range mem {
				mem[i] = byte(i*5 + 1)
			}
			var old unix.Rlimit
			if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
			if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: old.Max}); err != nil {
				t.Skipf("cannot lower RLIMIT_FSIZE: %v", err)
			}
			err := w.Write([]iouring.Block{{Off: tc.off, Buf: mem}}, true)
			if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
				t.Fatalf("restoring RLIMIT_FSIZE: %v", err)
			}
			be := batchError(t, err)
			if len(be.Writes) != 1 || be.Writes[0].Index != 0 {
				t.Fatalf("%s: failed blocks = %v, want block 0", tc.name, be.Writes)
			}
			if e := be.Writes[0].Err; errors.Is(e, iouring.ErrShortWrite) != tc.short || !errors.Is(e, unix.EFBIG) {
				t.Errorf("%s: Err = %v, want EFBIG (short write: %v)", tc.name, e, tc.short)
			}
			if got := iouring.DsyncWrites(w); got != 0 {
				t.Errorf("%s: pwritev2(RWF_DSYNC) runs = %d, want 0", tc.name, got)
			}
			if tc.short && !bytes.Equal(readDirect(t, path, 0, limit), mem[:limit]) {
				t.Errorf("%s: the bytes before the limit did not land", tc.name)
			}
		}
	})
}
