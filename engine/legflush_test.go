package engine_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dlog-dev/dlog/engine"
)

// gatedLegs is a FlushCallback that counts its calls and, while armed,
// reports entry and blocks until released.
type gatedLegs struct {
	calls   atomic.Int32
	mu      sync.Mutex
	entered chan struct{}
	release chan struct{}
	onCall  func() // run at every call, before blocking
}

func (g *gatedLegs) flush() error {
	g.calls.Add(1)
	g.mu.Lock()
	entered, release, onCall := g.entered, g.release, g.onCall
	g.entered, g.release = nil, nil
	g.mu.Unlock()
	if onCall != nil {
		onCall()
	}
	if entered != nil {
		close(entered)
		<-release
	}
	return nil
}

// arm makes the next call block; it returns the channel closed when that
// call is entered and the function that releases it.
func (g *gatedLegs) arm() (entered chan struct{}, release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.entered, g.release = make(chan struct{}), make(chan struct{})
	rel := g.release
	return g.entered, func() { close(rel) }
}

// openLegLog opens a 2048-region disk log (its bitmap in one image block)
// with g as its FlushCallback, resumed, every region in sync and clean on
// the device, then regions 5 and 6 marked and flushed.
func openLegLog(t *testing.T, g *gatedLegs) (engine.Log, string) {
	t.Helper()
	p := logFile(t, 8192)
	l := mustOpen(t, 2097152, "disk 2 "+p+" 1024", engine.Options{FlushCallback: g.flush})
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	for r := uint64(0); r < 2048; r++ {
		l.SetRegionSync(r, true)
		l.ClearRegion(r)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	l.MarkRegion(5)
	l.MarkRegion(6)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	img := readDirect(t, p, 8192)
	if cleanBit(img, 5) || cleanBit(img, 6) {
		t.Fatal("marked regions 5, 6 clean on the device")
	}
	return l, p
}

// flushDuringLegFlush clears region 6 and runs a Flush whose leg flush
// blocks; during it, during runs; then the leg flush is released and the
// Flush's error returned.
func flushDuringLegFlush(t *testing.T, l engine.Log, g *gatedLegs, during func()) error {
	t.Helper()
	l.ClearRegion(6) // makes the flush call the leg flush and write block 0
	entered, release := g.arm()
	done := make(chan error, 1)
	go func() { done <- l.Flush() }()
	<-entered
	during()
	release()
	return <-done
}

// A clear made while a flush's leg flush runs must not be written by that
// flush: the leg flush, issued before the clear, may not cover the
// region's leg writes. The next flush leg-flushes first, then writes it.
func TestDiskClearDuringLegFlushHeld(t *testing.T) {
	g := &gatedLegs{}
	l, p := openLegLog(t, g)
	err := flushDuringLegFlush(t, l, g, func() {
		if err := l.ClearRegion(5); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	img := readDirect(t, p, 8192)
	if !cleanBit(img, 6) {
		t.Fatal("region 6, cleared before the flush, not clean on the device")
	}
	if cleanBit(img, 5) {
		t.Fatal("region 5, cleared during the leg flush, written clean by the same flush")
	}
	if c, _ := l.IsClean(5); !c {
		t.Fatal("region 5 not clean in memory after the flush")
	}
	calls := g.calls.Load()
	var dirtyAtLegFlush atomic.Bool
	g.mu.Lock()
	g.onCall = func() { dirtyAtLegFlush.Store(!cleanBit(readDirect(t, p, 8192), 5)) }
	g.mu.Unlock()
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if g.calls.Load() != calls+1 {
		t.Fatalf("leg flushes by the second Flush = %d, want 1", g.calls.Load()-calls)
	}
	if !dirtyAtLegFlush.Load() {
		t.Fatal("region 5 written clean before the second flush's leg flush")
	}
	if !cleanBit(readDirect(t, p, 8192), 5) {
		t.Fatal("region 5 not clean on the device after the second flush")
	}
}

// A mark made after a held clear wins: the region stays dirty in memory
// and on the device.
func TestDiskMarkAfterHeldClearWins(t *testing.T) {
	g := &gatedLegs{}
	l, p := openLegLog(t, g)
	err := flushDuringLegFlush(t, l, g, func() {
		l.ClearRegion(5)
		l.MarkRegion(5)
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := l.IsClean(5); c {
		t.Fatal("region 5 clean in memory: the held clear beat the later mark")
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if c, _ := l.IsClean(5); c {
		t.Fatal("region 5 clean in memory after the next flush")
	}
	if cleanBit(readDirect(t, p, 8192), 5) {
		t.Fatal("region 5 clean on the device: the held clear beat the later mark")
	}
	// A clear after the mark, outside any flush, is applied as usual.
	l.ClearRegion(5)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if !cleanBit(readDirect(t, p, 8192), 5) {
		t.Fatal("region 5 not clean on the device after a later clear and flush")
	}
}

// A failed leg flush drops the clears held during it: clears are ignored
// until reload (the kernel's flush_failed).
func TestDiskHeldClearDroppedOnLegFlushFailure(t *testing.T) {
	g := &gatedLegs{}
	p := logFile(t, 8192)
	var fail atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	cb := func() error {
		if fail.Load() {
			close(entered)
			<-release
			return errTest
		}
		return g.flush()
	}
	l := mustOpen(t, 2097152, "disk 2 "+p+" 1024", engine.Options{FlushCallback: cb})
	l.Resume()
	for r := uint64(0); r < 2048; r++ {
		l.SetRegionSync(r, true)
	}
	l.ClearRegion(6)
	fail.Store(true)
	done := make(chan error, 1)
	go func() { done <- l.Flush() }()
	<-entered
	l.ClearRegion(5)
	close(release)
	<-done
	for _, r := range []uint64{5, 6} {
		if c, _ := l.IsClean(r); c {
			t.Fatalf("region %d clean after a failed leg flush", r)
		}
	}
}

var errTest = errors.New("leg flush failed")

// Marks, clears and flushes racing with a leg flush callback (run with
// -race): once they stop, two flushes leave memory and device equal, and
// every region whose last call was a mark is dirty.
func TestDiskHeldClearsConcurrent(t *testing.T) {
	p := logFile(t, 8192)
	var legs atomic.Int32
	l := mustOpen(t, 2097152, "disk 2 "+p+" 1024", engine.Options{FlushCallback: func() error { legs.Add(1); return nil }})
	l.Resume()
	for r := uint64(0); r < 2048; r++ {
		l.SetRegionSync(r, true)
	}
	const workers, regionsEach, rounds = 4, 64, 200
	var stopped atomic.Bool
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for !stopped.Load() {
			l.Flush()
		}
	}()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := uint64(w * regionsEach)
			for i := range rounds {
				for r := base; r < base+regionsEach; r++ {
					l.MarkRegion(r)
					if (int(r)+i)%3 != 0 || i < rounds-1 {
						l.ClearRegion(r)
					}
				}
			}
		}()
	}
	wg.Wait()
	stopped.Store(true)
	<-flushed
	for range 2 {
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if legs.Load() == 0 {
		t.Fatal("no leg flush")
	}
	img := readDirect(t, p, 8192)
	for r := uint64(0); r < workers*regionsEach; r++ {
		c, _ := l.IsClean(r)
		wantClean := (int(r)+rounds-1)%3 != 0
		if c != wantClean || cleanBit(img, r) != wantClean {
			t.Fatalf("region %d: clean in memory %v, on the device %v; want %v", r, c, cleanBit(img, r), wantClean)
		}
	}
}
