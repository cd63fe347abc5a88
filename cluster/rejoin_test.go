package cluster

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/iouring"
)

// markOnWrite calls mark before every write to the device: a kernel MARK
// that arrives while the log writes.
type markOnWrite struct {
	engine.Device
	mark func()
}

func (d markOnWrite) Write(bs []iouring.Block, sync bool) error {
	d.mark()
	return d.Device.Write(bs, sync)
}

// TestReestablishSlotKeepsConcurrentMark: a clustered-disk member back in
// the quorate group re-opens its slot from its marks while its kernel
// writes; a MARK that lands after the marks were copied into the new slot
// and before the slot is in place must still reach the slot before its
// FLUSH is answered. Before, the slot lacked it and the FLUSH wrote
// nothing: a crash then under-reported.
func TestReestablishSlotKeepsConcurrentMark(t *testing.T) {
	c := ctr(t, "65536 clustered-disk "+logDevice(t, 1<<20)+" 1024 nosync")
	net := NewFakeNet(3)
	var d *Log
	var armed atomic.Bool
	var next atomic.Uint64
	next.Store(30)
	hook := func() {
		if armed.Load() && d != nil {
			if err := d.MarkRegion(next.Add(1)); err != nil {
				t.Error(err)
			}
		}
	}
	a, b := openNode(t, net, 1, c), openNode(t, net, 2, c)
	d = openDiskNode(t, net, 3, c, func(dev engine.Device) engine.Device { return markOnWrite{dev, hook} })
	defer a.Close()
	defer b.Close()
	defer d.Close()
	resume(t, a)
	resume(t, b, d)
	mustFlush(t, d, 5)
	net.Partition(func(node uint32) bool { return node != 3 }, []uint32{1, 2}, []uint32{3})
	waitFor(t, "d demoted", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.rejoining })
	armed.Store(true)
	net.Heal(nil)
	healed(t, a, b, d)
	waitFor(t, "d re-established", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.pmu.Lock()
		defer d.pmu.Unlock()
		return !d.rejoining && d.slot != nil
	})
	armed.Store(false)
	time.Sleep(100 * time.Millisecond)
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	var mine []uint64
	for r, ok := d.mine.NextSet(0); ok; r, ok = d.mine.NextSet(r + 1) {
		mine = append(mine, r)
	}
	onDisk := slotMarks(t, d)
	for _, r := range mine {
		if !slices.Contains(onDisk, r) {
			t.Errorf("region %d: marked (MarkRegion returned, FLUSH acknowledged) but not in the slot %v", r, onDisk)
		}
	}
}

// TestReestablishedMarkHeldForGrant: a FLUSH that waited for quorum with
// a new mark of a region another member holds for recovery still waits
// (or taints the region) after the heal, as it would without the
// partition. Before, the rejoin re-sent every mark and dropped the queued
// ones, so the FLUSH found nothing to hold and answered while the other
// member's copy of the region could still run.
func TestReestablishedMarkHeldForGrant(t *testing.T) {
	c := ctr(t, "65536 clustered-core 1024 nosync")
	net := NewFakeNet(3)
	a, b, d := threeNodes(t, net, c, nil)
	defer a.Close()
	defer b.Close()
	defer d.Close()
	const x = 9
	if err := a.SetRegionSync(x, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "x out of sync on d", func() bool { return !replicatedInSync(d, x) })
	var r uint64
	var ok bool
	waitFor(t, "a handed x", func() bool { r, ok, _ = a.GetResyncWork(); return ok })
	if r != x {
		t.Fatalf("a handed %d, want %d", r, x)
	}
	net.Partition(func(node uint32) bool { return node != 3 }, []uint32{1, 2}, []uint32{3})
	waitFor(t, "d demoted", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.rejoining })
	if err := d.MarkRegion(x); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- d.Flush() }()
	time.Sleep(300 * time.Millisecond)
	net.Heal(nil)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	holder, held := d.st.lockedBy(x)
	tainted := d.st.tainted[x]
	d.mu.Unlock()
	if held && holder != d.me && !tainted {
		t.Fatalf("d's FLUSH of %d answered while %s holds it for recovery, untainted", x, holder)
	}
}

// TestClearThenMarkSameFlush: in one worker pass dm-raid1 sends CLEAR r
// (dm_rh_update_states) and then FLUSH [r] (do_writes): with no clears
// held back, both reach one FLUSH. The group must end with r marked.
// Before, one message carried the mark and the clear, the clear applied
// last, and r was unmarked while the kernel wrote it.
func TestClearThenMarkSameFlush(t *testing.T) {
	c := ctr(t, "65536 clustered-core 1024 nosync")
	net := NewFakeNet(1)
	a, b := openNode(t, net, 1, c), openNode(t, net, 2, c) // ClearLinger 0
	defer a.Close()
	defer b.Close()
	resume(t, a, b)
	me := a.Info().Me
	mustFlush(t, a, 5)
	waitFor(t, "5 marked", func() bool { return markedFor(t, b, me, 5) })
	if err := a.ClearRegion(5); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, a, 5)
	mustFlush(t, a, 6)
	waitFor(t, "6 marked", func() bool { return markedFor(t, b, me, 6) })
	if !markedFor(t, b, me, 5) {
		t.Fatal("a's FLUSH [5] after CLEAR 5 acknowledged; the group holds 5 unmarked by a")
	}
}

// TestReleasedMarkAheadNotResent: a mark ahead that this member's vote
// released (the region went out of sync and a peer proposed it) before
// the FLUSH that carries it must not be sent after its CLEAR: the group
// would hold the region marked by a member that neither holds nor will
// clear it.
func TestReleasedMarkAheadNotResent(t *testing.T) {
	c := ctr(t, "65536 clustered-core 1024 nosync")
	net := NewFakeNet(1)
	open := func(id uint32) *Log {
		l := openWith(t, net, id, c, func(o *Options) { o.ClearLinger, o.MarkAhead = time.Hour, 7 })
		t.Cleanup(func() { l.Close() })
		return l
	}
	a, b := open(1), open(2)
	resume(t, a, b)
	if err := a.MarkRegion(0); err != nil { // not sequential: nothing ahead yet
		t.Fatal(err)
	}
	if err := a.MarkRegion(1); err != nil { // 2..8 marked ahead, no FLUSH yet
		t.Fatal(err)
	}
	if !a.mine.Test(3) {
		t.Fatal("region 3 not marked ahead")
	}
	if err := b.SetRegionSync(3, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 out of sync on a", func() bool { return !replicatedInSync(a, 3) })
	r, ok, err := b.GetResyncWork()
	if err != nil || !ok || r != 3 {
		t.Fatalf("b's resync work: %d %v %v, want 3", r, ok, err)
	}
	if a.mine.Test(3) {
		t.Fatal("a still holds its mark ahead of 3 after voting for b's recovery of it")
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "1 marked in b's view", func() bool { return markedFor(t, b, a.Info().Me, 1) })
	if markedFor(t, b, a.Info().Me, 3) && !a.mine.Test(3) {
		t.Fatal("the group holds region 3 marked by a, which a released and does not hold")
	}
}
