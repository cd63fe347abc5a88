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
	d := newDaemon(t, daemon.Options{FlushLegs: func(uuid string) daemon.LegFlush {
		return legFunc(func() error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, uuid)
			cleanAtCall = append(cleanAtCall, onDisk(t, dev, 3))
			return fail
		})
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

// legFunc is a LegFlush whose Flush is the function itself.
type legFunc func() error

func (f legFunc) Flush() error { return f() }
func (f legFunc) Close() error { return nil }

// closingLegs records its flushes and whether it was closed.
type closingLegs struct {
	mu              sync.Mutex
	flushes         int
	closed          bool
	flushAfterClose bool
}

func (c *closingLegs) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushes++
	c.flushAfterClose = c.flushAfterClose || c.closed
	return nil
}

func (c *closingLegs) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// Each instance of a disk log gets its own LegFlush, which stays open for
// its whole life (it may hold the legs open) and is closed when the DTR is
// answered, after the instance's last flush; a second instance of the same
// uuid (a reload) has its own.
func TestLegFlushClosedAtDtr(t *testing.T) {
	var mu sync.Mutex
	byLUID := map[int]*closingLegs{}
	dev1, dev2 := logFile(t, 1<<20), logFile(t, 1<<20)
	d := newDaemon(t, daemon.Options{FlushLegs: func(uuid string) daemon.LegFlush {
		mu.Lock()
		defer mu.Unlock()
		c := &closingLegs{}
		byLUID[len(byLUID)+1] = c
		return c
	}})
	k := newKernel(t, d)
	k.ctr("m", 1, "131072 clustered-disk "+dev1+" 1024")
	k.ok(ulog.TypeResume, "m", 1, nil)
	k.ctr("m", 2, "131072 clustered-disk "+dev2+" 1024")
	k.ok(ulog.TypeMarkRegion, "m", 1, regions(3))
	k.ok(ulog.TypeFlush, "m", 1, nil)
	k.ok(ulog.TypeClearRegion, "m", 1, regions(3))
	k.ok(ulog.TypeFlush, "m", 1, nil)
	k.ok(ulog.TypeDtr, "m", 1, nil)
	mu.Lock()
	defer mu.Unlock()
	if len(byLUID) != 2 {
		t.Fatalf("%d LegFlushes for two instances", len(byLUID))
	}
	first, second := byLUID[1], byLUID[2]
	if first.flushes != 1 || !first.closed || first.flushAfterClose {
		t.Errorf("first instance: %d flushes, closed %v, flushed after close %v; want 1, closed at its DTR", first.flushes, first.closed, first.flushAfterClose)
	}
	if second.flushes != 0 || second.closed {
		t.Errorf("second instance: %d flushes, closed %v; want none and open", second.flushes, second.closed)
	}
}

// A core log's MARK and FLUSH cost nothing to make durable: with nothing
// queued ahead of them they are answered before Handle returns, without
// the hand-off to the log's worker (the bare responder's cost, #15). A
// disk log's still go to its worker.
func TestCoreFlushAnsweredInline(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	k.ctr("c", 1, "131072 clustered-core 1024")
	k.ok(ulog.TypeResume, "c", 1, nil)
	immediate := func(typ ulog.RequestType, data []byte) bool {
		r := k.request(typ, "c", 1, data)
		k.send(r)
		answered := len(k.p.Replies) > 0
		k.wait(r)
		return answered
	}
	for i := range 200 {
		if !immediate(ulog.TypeMarkRegion, regions(uint64(i%100))) {
			t.Fatalf("MARK %d of a core log was not answered before Handle returned", i)
		}
		if !immediate(ulog.TypeFlush, nil) {
			t.Fatalf("FLUSH %d of a core log was not answered before Handle returned", i)
		}
		if !immediate(ulog.TypeFlush, regions(uint64(i%100+1))) {
			t.Fatalf("integrated FLUSH %d of a core log was not answered before Handle returned", i)
		}
	}
	if !k.isClean("c", 1, 120) || k.isClean("c", 1, 1) {
		t.Fatal("the marks were not applied")
	}
}

// A disk log's FLUSH with nothing to write (the one after a MARK, which
// made its write durable before it was acknowledged) is answered before
// Handle returns, without the hand-off to the worker; the mark is on the
// device by then. A FLUSH after a clear has a write to do and still makes
// it before its reply: the region is clean on the device when it comes.
func TestDiskEmptyFlushAnsweredInline(t *testing.T) {
	dev := logFile(t, 1<<20)
	d := newDaemon(t, daemon.Options{FlushLegs: func(string) daemon.LegFlush { return legFunc(func() error { return nil }) }})
	k := newKernel(t, d)
	k.ctr("m", 1, "131072 clustered-disk "+dev+" 1024")
	k.ok(ulog.TypeResume, "m", 1, nil)
	for i := range 50 {
		r := uint64(i % 20)
		k.ok(ulog.TypeMarkRegion, "m", 1, regions(r))
		f := k.request(ulog.TypeFlush, "m", 1, nil)
		k.send(f)
		if len(k.p.Replies) == 0 {
			t.Fatalf("round %d: the FLUSH after a MARK was not answered before Handle returned", i)
		}
		k.wait(f)
		if onDisk(t, dev, r) {
			t.Fatalf("round %d: region %d is clean on the device after its MARK and FLUSH", i, r)
		}
		k.ok(ulog.TypeClearRegion, "m", 1, regions(r))
		k.ok(ulog.TypeFlush, "m", 1, nil)
		if !onDisk(t, dev, r) {
			t.Fatalf("round %d: the FLUSH after a clear of region %d was answered before the clear was written", i, r)
		}
	}
	if got := d.Status()[0].Phases.Inline; got != 50 {
		t.Errorf("Status phases.inline = %d, want 50 (the FLUSHes after the MARKs)", got)
	}
}
