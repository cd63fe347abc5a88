package cluster

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/dlog-dev/dlog/engine"
)

// legProbe is a clustered-disk log's engine.Options.FlushCallback (dlogd's
// flush of the mirror's legs): it counts the calls and records, at each,
// what the caller is about to publish as clean so the test can check that
// it was not published yet.
type legProbe struct {
	mu    sync.Mutex
	calls int
	fail  error
	seen  []func() // run at each call, before it returns
}

func (p *legProbe) flush() error {
	p.mu.Lock()
	p.calls++
	fail, seen := p.fail, slices.Clone(p.seen)
	p.mu.Unlock()
	for _, f := range seen {
		f()
	}
	return fail
}

func (p *legProbe) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// probed resumes a one-node log of CTR arguments args whose leg flushes
// p counts; it is closed at the end of the test.
func probed(t *testing.T, args string) (*Log, *legProbe) {
	t.Helper()
	p := &legProbe{}
	o := testOptions(NewFakeNet(1).Node(1))
	l, err := Open("uuid-1", ctr(t, args), engine.Options{Logger: testLogger(), FlushCallback: p.flush}, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	resume(t, l)
	return l, p
}

// slotMarks is what this member's slot on the shared device holds.
func slotMarks(t *testing.T, l *Log) []uint64 {
	t.Helper()
	l.mu.Lock()
	k := l.st.members[l.me].slot
	l.mu.Unlock()
	_, marks, err := l.raw.readSlot(l.geo, k)
	if err != nil {
		t.Fatal(err)
	}
	return marks
}

// TestLegFlushBeforeSlotClear: a clustered-disk node persists its clears in
// its own slot only after its legs were flushed (the kernel's disk log:
// dm-raid1's flush_callback before a flush that writes cleaned bits), and
// marks alone flush no leg. The node that clears is the node whose kernel
// wrote the region: its CLEAR came after its own writes completed.
func TestLegFlushBeforeSlotClear(t *testing.T) {
	l, p := probed(t, "65536 clustered-disk "+logDevice(t, 1<<20)+" 1024 nosync")
	base := p.count()
	mustFlush(t, l, 5, 9)
	if got := p.count() - base; got != 0 {
		t.Fatalf("a FLUSH with marks only flushed the legs %d times, want 0", got)
	}
	if got := slotMarks(t, l); !slices.Equal(got, []uint64{5, 9}) {
		t.Fatalf("slot holds %v after the marks, want [5 9]", got)
	}
	var atFlush []uint64
	p.seen = []func(){func() { atFlush = slotMarks(t, l) }}
	if err := l.ClearRegion(5); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := p.count() - base; got != 1 {
		t.Fatalf("a FLUSH persisting a clear flushed the legs %d times, want 1", got)
	}
	if !slices.Equal(atFlush, []uint64{5, 9}) {
		t.Fatalf("the slot held %v when the legs were flushed: the clear reached the device first", atFlush)
	}
	if got := slotMarks(t, l); !slices.Equal(got, []uint64{9}) {
		t.Fatalf("slot holds %v after the clear, want [9]", got)
	}
}

// TestLegFlushBeforeRecoveryReport: a clustered-disk node whose kernel
// recovered a region flushes its legs before it reports the region in sync
// to the group: from the report on, the server may write the region as in
// sync into the shared image (a merge, the clean point), and the kernel's
// copy to the other leg may still sit in a volatile cache (the kernel's
// disk log flushes the legs after a recovery pass, before the cleaned
// bits). A leg flush that fails leaves the region out of sync.
func TestLegFlushBeforeRecoveryReport(t *testing.T) {
	l, p := probed(t, "4096 clustered-disk "+logDevice(t, 1<<20)+" 1024")

	r := mustWork(t, l)
	base := p.count()
	inSyncAtFlush := true
	p.seen = []func(){func() { inSyncAtFlush = replicatedInSync(l, r) }}
	if err := l.SetRegionSync(r, true); err != nil {
		t.Fatal(err)
	}
	if got := p.count() - base; got != 1 {
		t.Fatalf("SET_REGION_SYNC(%d, 1) flushed the legs %d times, want 1", r, got)
	}
	if inSyncAtFlush {
		t.Fatalf("region %d was in sync in the group before the legs were flushed", r)
	}
	waitFor(t, "the recovered region in sync", func() bool { return replicatedInSync(l, r) })

	// The legs cannot be flushed: the recovery is not reported done.
	p.seen = nil
	p.fail = errors.New("leg B: input/output error")
	r2, ok, err := l.GetResyncWork()
	if err != nil || !ok || r2 == r {
		t.Fatalf("GET_RESYNC_WORK = %d, %v, %v; want another region than %d", r2, ok, err, r)
	}
	if err := l.SetRegionSync(r2, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the report delivered", func() bool { return l.nover.Load() == 0 })
	if replicatedInSync(l, r2) {
		t.Fatalf("region %d in sync although its legs could not be flushed", r2)
	}
	// A failed write elsewhere flushes nothing.
	base = p.count()
	if err := l.SetRegionSync(r, false); err != nil {
		t.Fatal(err)
	}
	if got := p.count() - base; got != 0 {
		t.Fatalf("SET_REGION_SYNC(%d, 0) flushed the legs %d times, want 0", r, got)
	}
}

// TestCoreNoLegFlush: clustered-core persists nothing (the kernel's core
// log has no flush callback): no leg flush for clears or recoveries.
func TestCoreNoLegFlush(t *testing.T) {
	l, p := probed(t, "4096 clustered-core 1024")
	mustFlush(t, l, 1)
	if err := l.ClearRegion(1); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	r := mustWork(t, l)
	if err := l.SetRegionSync(r, true); err != nil {
		t.Fatal(err)
	}
	if got := p.count(); got != 0 {
		t.Fatalf("a clustered-core log flushed the legs %d times, want 0", got)
	}
}
