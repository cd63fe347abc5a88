package cluster

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/iouring"
)

// writeCounter counts the writes a log makes to its device.
type writeCounter struct {
	engine.Device
	n *atomic.Int64
}

func (d writeCounter) Write(bs []iouring.Block, sync bool) error {
	d.n.Add(1)
	return d.Device.Write(bs, sync)
}

// lingering opens node id with Options.ClearLinger set to linger, then
// opts applied, and its device writes counted in writes.
func lingering(t *testing.T, net *FakeNet, id uint32, c engine.Config, linger time.Duration, writes *atomic.Int64, opts ...func(*Options)) *Log {
	t.Helper()
	o := testOptions(net.Node(id))
	o.ClearLinger = linger
	for _, opt := range opts {
		opt(&o)
	}
	eo := engine.Options{Logger: testLogger(), WrapDevice: func(d engine.Device) engine.Device { return writeCounter{d, writes} }}
	l, err := Open("uuid-1", c, eo, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// markedFor reports whether l's group view holds r marked by member id
// (clustered-core) or l's own slot on the device does (clustered-disk).
func markedFor(t *testing.T, l *Log, id MemberID, r uint64) bool {
	t.Helper()
	if !l.core {
		for _, m := range slotMarks(t, l) {
			if m == r {
				return true
			}
		}
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	mk, ok := l.st.marksOf[id]
	return ok && mk.Test(r)
}

// holdingNodes opens n nodes of a nosync log of CTR arguments args that
// hold every clear back for an hour.
func holdingNodes(t *testing.T, args string, n int) (*FakeNet, []*Log) {
	t.Helper()
	c := ctr(t, "65536 "+args+" nosync")
	net := NewFakeNet(1)
	ls := make([]*Log, n)
	for i := range ls {
		ls[i] = lingering(t, net, uint32(i+1), c, time.Hour, new(atomic.Int64))
	}
	return net, ls
}

// holdClear marks r on l, then clears it: with a long ClearLinger, l holds
// the clear back.
func holdClear(t *testing.T, l *Log, r uint64) {
	t.Helper()
	mustFlush(t, l, r)
	if err := l.ClearRegion(r); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestClearLingerRemark: with ClearLinger, a CLEAR of a region followed by
// a MARK of it (a sequential writer crossing a region: the kernel clears
// it each time its writes drain) sends no cluster message and writes no
// slot block; the region stays marked in the group meanwhile; the held
// clear goes out at the first FLUSH after ClearLinger.
func TestClearLingerRemark(t *testing.T) { coreAndDisk(t, testClearLingerRemark) }

func testClearLingerRemark(t *testing.T, args string) {
	c := ctr(t, "65536 "+args+" nosync")
	net := NewFakeNet(1)
	var writes atomic.Int64
	const linger = 300 * time.Millisecond
	a := lingering(t, net, 1, c, linger, &writes)
	b := lingering(t, net, 2, c, linger, new(atomic.Int64))
	resume(t, a, b)
	me := a.Info().Me
	watch := b
	if !a.core {
		watch = a
	}
	mustFlush(t, a, 7)
	waitFor(t, "7 marked", func() bool { return markedFor(t, watch, me, 7) })
	sent, wrote := a.Info().Sent, writes.Load()
	for i := 0; i < 20; i++ {
		if err := a.ClearRegion(7); err != nil {
			t.Fatal(err)
		}
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
		mustFlush(t, a, 7)
	}
	if got := a.Info().Sent - sent; got != 0 {
		t.Errorf("20 clears and marks of region 7 within ClearLinger sent %d cluster messages, want 0", got)
	}
	if got := writes.Load() - wrote; got != 0 {
		t.Errorf("20 clears and marks of region 7 within ClearLinger wrote the log device %d times, want 0", got)
	}
	if !markedFor(t, watch, me, 7) {
		t.Fatal("region 7 not marked while its clears are held back")
	}
	if err := a.ClearRegion(7); err != nil {
		t.Fatal(err)
	}
	time.Sleep(linger + 50*time.Millisecond)
	mustFlush(t, a, 9) // the next FLUSH releases the clear of 7
	waitFor(t, "the held clear of 7 released", func() bool { return !markedFor(t, watch, me, 7) })
	if !markedFor(t, watch, me, 9) {
		t.Fatal("region 9 not marked")
	}
}

// TestClearLingerSuspend: a suspend releases every held clear before this
// member leaves: a region its kernel cleared is not handed to the group
// as dirty (out of sync) at the leave.
func TestClearLingerSuspend(t *testing.T) { coreAndDisk(t, testClearLingerSuspend) }

func testClearLingerSuspend(t *testing.T, args string) {
	_, ls := holdingNodes(t, args, 2)
	a, b := ls[0], ls[1]
	resume(t, a, b)
	mustFlush(t, a, 8)
	holdClear(t, a, 7)
	if err := a.Presuspend(); err != nil {
		t.Fatal(err)
	}
	if err := a.Postsuspend(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's mark of 8 out of sync on b", func() bool { return !replicatedInSync(b, 8) })
	if !replicatedInSync(b, 7) {
		t.Fatal("region 7, cleared by a's kernel before the suspend, went out of sync at a's leave: its held clear was not released")
	}
}

// TestClearLingerVote: a member holding back the clear of a region that
// another member asks to recover releases it and votes yes; it never
// vetoes a recovery for a clear it holds (an idle node would hold it, and
// veto, for ever).
func TestClearLingerVote(t *testing.T) { coreAndDisk(t, testClearLingerVote) }

func testClearLingerVote(t *testing.T, args string) {
	net, ls := holdingNodes(t, args, 3)
	a, b, d := ls[0], ls[1], ls[2]
	resume(t, a)
	resume(t, b, d)
	holdClear(t, a, 10)
	mustFlush(t, d, 10)
	net.Kill(3)
	d.crash()
	waitFor(t, "d's mark out of sync on b", func() bool { return !replicatedInSync(b, 10) })
	recoverRegion(t, b, 10, "d died with it marked; a's kernel cleared it")
}

// TestFlushNoIO: FlushNoIO says true only when a Flush would send, write
// and wait for nothing: never with a mark not yet durable (new, or taken by
// a Flush still waiting for its delivery), nor with a held clear due for
// release; a MARK of a region whose clear is held back needs nothing.
func TestFlushNoIO(t *testing.T) { coreAndDisk(t, testFlushNoIO) }

func testFlushNoIO(t *testing.T, args string) {
	c := ctr(t, "65536 "+args+" nosync")
	net := NewFakeNet(1)
	const linger = 300 * time.Millisecond
	a := lingering(t, net, 1, c, linger, new(atomic.Int64))
	b := lingering(t, net, 2, c, linger, new(atomic.Int64))
	resume(t, a, b)
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if !a.FlushNoIO() {
		t.Fatal("FlushNoIO false right after a Flush with nothing new")
	}
	if err := a.MarkRegion(7); err != nil {
		t.Fatal(err)
	}
	if a.FlushNoIO() {
		t.Fatal("FlushNoIO true with a new mark")
	}
	// A Flush that has taken the mark and waits for the group: a FLUSH
	// behind it must wait too.
	if a.core {
		net.SetLatency(200 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- a.Flush() }()
	if a.core {
		waitFor(t, "the Flush to take the mark", func() bool {
			a.pmu.Lock()
			defer a.pmu.Unlock()
			return a.flushing > 0
		})
		if a.FlushNoIO() {
			t.Fatal("FlushNoIO true while a Flush waits for the delivery of its mark")
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	net.SetLatency(0)
	if !a.FlushNoIO() {
		t.Fatal("FlushNoIO false after the mark's Flush returned")
	}
	if err := a.ClearRegion(7); err != nil {
		t.Fatal(err)
	}
	if !a.FlushNoIO() {
		t.Fatal("FlushNoIO false with a clear held back and not due")
	}
	if err := a.MarkRegion(7); err != nil {
		t.Fatal(err)
	}
	if !a.FlushNoIO() {
		t.Fatal("FlushNoIO false after a MARK of a region whose clear is held back")
	}
	if err := a.ClearRegion(7); err != nil {
		t.Fatal(err)
	}
	time.Sleep(linger + 50*time.Millisecond)
	if a.FlushNoIO() {
		t.Fatal("FlushNoIO true with a held clear due for release")
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if !a.FlushNoIO() {
		t.Fatal("FlushNoIO false after the Flush that released the clear")
	}
	mustFlush(t, a, 9)
	if err := a.ClearRegion(9); err != nil {
		t.Fatal(err)
	}
	if err := a.Presuspend(); err != nil {
		t.Fatal(err)
	}
	if a.FlushNoIO() {
		t.Fatal("FlushNoIO true while presuspended with a held clear (a suspend releases it)")
	}
}

// TestMarkAhead: a sequential writer's new mark of a region carries the
// next Options.MarkAhead regions in sync with it, in the same FLUSH; its
// MARKs of them then need no cluster message (clustered-core) and no slot
// write (clustered-disk); a writer that does not go on has them cleared
// after their hold; a random mark, and a region out of sync, are not
// marked ahead.
func TestMarkAhead(t *testing.T) { coreAndDisk(t, testMarkAhead) }

func testMarkAhead(t *testing.T, args string) {
	c := ctr(t, "65536 "+args+" nosync")
	net := NewFakeNet(1)
	const linger = 100 * time.Millisecond
	var writes atomic.Int64
	ahead := func(o *Options) { o.MarkAhead = 3 }
	a := lingering(t, net, 1, c, linger, &writes, ahead)
	b := lingering(t, net, 2, c, linger, new(atomic.Int64), ahead)
	resume(t, a, b)
	me := a.Info().Me
	watch := b
	if !a.core {
		watch = a
	}
	marked := func(r uint64) bool { return markedFor(t, watch, me, r) }
	// The kernel's pattern for a sequential writer: MARK and FLUSH at a
	// region's first write, CLEAR and FLUSH when its writes drain.
	write := func(r uint64) {
		t.Helper()
		mustFlush(t, a, r)
		if err := a.ClearRegion(r); err != nil {
			t.Fatal(err)
		}
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	write(10) // not after another mark: nothing ahead
	waitFor(t, "10 marked", func() bool { return marked(10) })
	if marked(11) {
		t.Fatal("region 11 marked ahead of a first, random mark")
	}
	sent, wrote := a.Info().Sent, writes.Load()
	write(11) // sequential: 12, 13 and 14 with it
	for _, r := range []uint64{11, 12, 13, 14} {
		waitFor(t, "marked ahead", func() bool { return marked(r) })
	}
	if marked(15) {
		t.Fatal("region 15 marked: MarkAhead is 3")
	}
	if got := a.Info().Sent - sent; a.core && got != 1 {
		t.Errorf("the mark of 11 and its marks ahead took %d cluster messages, want 1", got)
	}
	if got := writes.Load() - wrote; !a.core && got != 1 {
		t.Errorf("the mark of 11 and its marks ahead took %d slot writes, want 1", got)
	}
	sent, wrote = a.Info().Sent, writes.Load()
	for _, r := range []uint64{12, 13, 14} {
		write(r)
	}
	if got := a.Info().Sent - sent; a.core && got != 0 {
		t.Errorf("writes to regions marked ahead sent %d cluster messages, want 0", got)
	}
	if got := writes.Load() - wrote; !a.core && got != 0 {
		t.Errorf("writes to regions marked ahead wrote the slot %d times, want 0", got)
	}
	// Out of sync regions are not marked ahead.
	if err := a.SetRegionSync(42, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "42 out of sync everywhere", func() bool { ok, _ := b.InSync(42); return !ok })
	write(40)
	write(41) // 42 out of sync: 43 and 44 only
	for _, r := range []uint64{43, 44} {
		waitFor(t, "marked ahead past an out-of-sync region", func() bool { return marked(r) })
	}
	if marked(42) {
		t.Fatal("region 42, out of sync, marked ahead")
	}
	// Unused marks ahead are cleared after their hold.
	time.Sleep((1 + markAheadHold) * linger)
	mustFlush(t, a, 60)
	for _, r := range []uint64{11, 12, 13, 14, 43, 44} {
		waitFor(t, "an unused or released mark ahead cleared", func() bool { return !marked(r) })
	}
}
