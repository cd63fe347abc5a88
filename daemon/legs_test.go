package daemon_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/header"
	"github.com/dlog-dev/dlog/ulog"
)

// onDisk reports whether region r is clean in the image on the device.
func onDisk(t *testing.T, dev string, r uint64) bool {
	img := readDirect(t, dev, 4096)
	return img[header.BitmapOffset+int(r/8)]&(1<<(r%8)) != 0
}

// A disk log flushes its mirror's legs (Options.FlushLegs, with its uuid)
// before it writes an image that records clears, and only then: marks
// never wait for the legs. When the legs cannot be flushed the clear never
// reaches the disk (#13 item 4; the VM scenario legflush shows it against
// the kernel's own leg flush counters).
func TestLegFlushBeforeClears(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	var fail error
	dev := logFile(t, 1<<20)
	var cleanAtCall []bool
	d := newDaemon(t, daemon.Options{FlushLegs: func(uuid string) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, uuid)
			cleanAtCall = append(cleanAtCall, onDisk(t, dev, 3))
			return fail
		}
	}})
	k := newKernel(t, d)
	k.ctr("m", 1, "131072 clustered-disk "+dev+" 1024")
	k.ctr("c", 2, "131072 clustered-core 1024")
	k.ok(ulog.TypeResume, "m", 1, nil)
	k.ok(ulog.TypeResume, "c", 2, nil)
	ncalls := func() int { mu.Lock(); defer mu.Unlock(); return len(calls) }
	if n := ncalls(); n != 0 {
		t.Fatalf("%d leg flushes at resume", n)
	}
	// Marks: no leg flush.
	k.ok(ulog.TypeMarkRegion, "m", 1, regions(3))
	k.ok(ulog.TypeFlush, "m", 1, nil)
	k.ok(ulog.TypeMarkRegion, "c", 2, regions(3))
	k.ok(ulog.TypeFlush, "c", 2, nil)
	if n := ncalls(); n != 0 {
		t.Fatalf("%d leg flushes for marks", n)
	}
	// A clear: one leg flush, while the region is still dirty on disk.
	k.ok(ulog.TypeClearRegion, "m", 1, regions(3))
	k.ok(ulog.TypeFlush, "m", 1, nil)
	mu.Lock()
	if len(calls) != 1 || calls[0] != "m" || cleanAtCall[0] {
		t.Fatalf("leg flushes %v (region clean on disk at the call: %v), want one for m before the clear is written", calls, cleanAtCall)
	}
	mu.Unlock()
	if !onDisk(t, dev, 3) {
		t.Fatal("the clear was not written after the leg flush")
	}
	// A core log's clears are not persisted: no leg flush.
	k.ok(ulog.TypeClearRegion, "c", 2, regions(3))
	k.ok(ulog.TypeFlush, "c", 2, nil)
	if n := ncalls(); n != 1 {
		t.Fatalf("%d leg flushes, a core log asked for one", n)
	}
	// Legs that cannot be flushed: the clear stays off the disk.
	mu.Lock()
	fail = errors.New("no mirror names this log")
	mu.Unlock()
	k.ok(ulog.TypeMarkRegion, "m", 1, regions(5))
	k.ok(ulog.TypeFlush, "m", 1, nil)
	k.ok(ulog.TypeClearRegion, "m", 1, regions(5))
	k.call(ulog.TypeFlush, "m", 1, nil)
	if n := ncalls(); n != 2 {
		t.Fatalf("%d leg flushes, want 2", n)
	}
	if onDisk(t, dev, 5) {
		t.Fatal("a clear reached the disk though the legs could not be flushed")
	}
	if k.isClean("m", 1, 5) {
		t.Fatal("region 5 reported clean though its clear could not be persisted")
	}
}
