package daemon_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// handleDetaching hands r to d as a transport with a spare receiver does:
// the datagram can Detach (which signals detached). It returns when
// Handle returns.
func handleDetaching(t *testing.T, d *daemon.Daemon, k *kernel, r *ulog.Request, detached chan<- uint32) {
	t.Helper()
	var dg transport.Datagram
	if err := dg.Decode(ulog.AppendRequest(nil, r)); err != nil {
		t.Error(err)
		return
	}
	var det, reattached atomic.Bool
	dg.OnDetach(func() bool { det.Store(true); detached <- r.Seq; return true })
	dg.OnReattach(func() { reattached.Store(true) })
	d.Handle(&dg, k.p)
	if det.Load() && !reattached.Load() {
		t.Errorf("seq %d: Handle detached and returned without reattaching", r.Seq)
	}
}

func waitDetached(t *testing.T, detached <-chan uint32) uint32 {
	t.Helper()
	select {
	case s := <-detached:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no request detached within 5 s")
	}
	return 0
}

// A disk log's MARK and the FLUSH after a clear run on the receiving
// goroutine when the transport lets it detach: the MARK is on the device
// when it is acknowledged, the clear only after the legs were flushed; while
// one blocks on the disk, requests for the same log that need the disk
// queue behind it (not answered before it is done, and Handle does not
// block for them), and the rest (IN_SYNC) are answered at once.
func TestDiskFlushOnDetachedReceiver(t *testing.T) {
	dev := logFile(t, 1<<20)
	var block atomic.Bool
	entered, release := make(chan struct{}, 1), make(chan struct{})
	legs := legFunc(func() error {
		if block.Load() {
			entered <- struct{}{}
			<-release
		}
		return nil
	})
	d := newDaemon(t, daemon.Options{FlushLegs: func(string) daemon.LegFlush { return legs }})
	k := newKernel(t, d)
	k.ctr("m", 1, "131072 clustered-disk "+dev+" 1024 nosync") // every region clean: a MARK writes
	k.ok(ulog.TypeResume, "m", 1, nil)
	detached := make(chan uint32, 16)

	for i := range 10 {
		r := uint64(i)
		m := k.request(ulog.TypeMarkRegion, "m", 1, regions(r))
		handleDetaching(t, d, k, m, detached)
		if got := waitDetached(t, detached); got != m.Seq {
			t.Fatalf("round %d: detached for seq %d, want the MARK's %d", i, got, m.Seq)
		}
		k.wait(m)
		if onDisk(t, dev, r) {
			t.Fatalf("round %d: MARK of region %d acknowledged before it was on the device", i, r)
		}
		k.ok(ulog.TypeFlush, "m", 1, nil) // nothing to write: answered inline
		k.ok(ulog.TypeClearRegion, "m", 1, regions(r))
		f := k.request(ulog.TypeFlush, "m", 1, nil)
		handleDetaching(t, d, k, f, detached)
		waitDetached(t, detached)
		k.wait(f)
		if !onDisk(t, dev, r) {
			t.Fatalf("round %d: FLUSH after the clear of region %d answered before the clear was on the device", i, r)
		}
	}

	// A FLUSH blocked in its leg flush on a detached receiver.
	k.ok(ulog.TypeMarkRegion, "m", 1, regions(20))
	k.ok(ulog.TypeClearRegion, "m", 1, regions(20))
	block.Store(true)
	f := k.request(ulog.TypeFlush, "m", 1, nil)
	go handleDetaching(t, d, k, f, detached)
	waitDetached(t, detached)
	<-entered
	// The next receiver: IN_SYNC answered at once; a MARK of the same
	// log queued (Handle returns, no detach: the worker's place is taken).
	if r := k.region(ulog.TypeInSync, "m", 1, 3); r.err != 0 {
		t.Errorf("IN_SYNC: error %d", r.err)
	}
	m := k.request(ulog.TypeMarkRegion, "m", 1, regions(21))
	returned := make(chan struct{})
	go func() { handleDetaching(t, d, k, m, detached); close(returned) }()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Handle of a MARK blocked behind a FLUSH on a detached receiver")
	}
	select {
	case s := <-detached:
		t.Fatalf("seq %d detached while another request of its log held the worker's place", s)
	default:
	}
	if _, err := k.Wait(m, 100*time.Millisecond); err == nil {
		t.Fatal("the MARK was answered while the FLUSH before it was still writing")
	}
	if _, err := k.Wait(f, 10*time.Millisecond); err == nil {
		t.Fatal("the FLUSH was answered before its leg flush returned")
	}
	close(release)
	k.wait(f)
	k.wait(m)
	if onDisk(t, dev, 21) {
		t.Error("the queued MARK of region 21 acknowledged before it was on the device")
	}
	if !onDisk(t, dev, 20) {
		t.Error("the clear of region 20 not on the device after its FLUSH")
	}
	st := d.Status()[0].Phases
	if st.Detached != 21 || st.Inline < 21+10 {
		t.Errorf("Status phases: detached %d (want 21: 10 MARKs, 11 FLUSHes), inline %d (want at least 31)", st.Detached, st.Inline)
	}
}
