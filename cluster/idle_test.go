package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/poll"
)

// idleKernel is dm-raid1's worker on a mirror with no I/O and no wake
// (no Options.Wake): it asks GET_RESYNC_WORK, recovers the region it gets,
// reports it and asks again, and stops at its first "no work". It returns
// how many regions it recovered.
func idleKernel(t *testing.T, l *Log) int {
	n := 0
	for {
		r, ok, err := l.GetResyncWork()
		if err != nil {
			t.Error(err)
			return n
		}
		if !ok {
			return n
		}
		if err := l.SetRegionSync(r, true); err != nil {
			t.Error(err)
			return n
		}
		n++
	}
}

// sleepyKernel is dm-raid1's worker on a mirror with no I/O at all: it
// asks GET_RESYNC_WORK, recovers the region it gets, reports it and asks
// again. An answer of "no work" puts it to sleep until Wake (dlogd's read
// of the mirror, queued to the worker) runs it again: nothing else wakes
// an idle mirror's worker (no bio, no finished recovery).
type sleepyKernel struct {
	wake      chan struct{}
	stop      chan struct{}
	recovered atomic.Int64
	wakes     atomic.Int64
	inflight  atomic.Int32
	overlap   atomic.Bool // two Wake calls ran at once
}

func newSleepyKernel() *sleepyKernel {
	return &sleepyKernel{wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

// Wake is Options.Wake: a read queued to the worker (a wake while the
// worker runs makes it run once more, as a queued bio does).
func (k *sleepyKernel) Wake(context.Context, string) error {
	if k.inflight.Add(1) > 1 {
		k.overlap.Store(true)
	}
	defer k.inflight.Add(-1)
	k.wakes.Add(1)
	select {
	case k.wake <- struct{}{}:
	default:
	}
	return nil
}

// run is the worker until stop is closed.
func (k *sleepyKernel) run(t *testing.T, l *Log) {
	for {
		r, ok, err := l.GetResyncWork()
		if err != nil {
			t.Error(err)
			return
		}
		if !ok {
			select {
			case <-k.wake:
				continue
			case <-k.stop:
				return
			}
		}
		if err := l.SetRegionSync(r, true); err != nil {
			t.Error(err)
			return
		}
		k.recovered.Add(1)
	}
}

// TestIdleResync: two nodes resume a fresh clustered-core log (every
// region to resync) and their mirrors stay idle; every message takes 1.2 s
// to arrive, so a vote takes longer than GET_RESYNC_WORK holds its answer
// and each idle kernel is answered "no work" and sleeps. The cluster must
// still reach full sync: a region granted later wakes the kernel (issue
// #12, idle resync stalls).
func TestIdleResync(t *testing.T) {
	c := ctr(t, "4096 clustered-core 1024")
	net := NewFakeNet(2)
	var ls []*Log
	var ks []*sleepyKernel
	for id := uint32(1); id <= 2; id++ {
		k := newSleepyKernel()
		l := openWith(t, net, id, c, func(o *Options) { o.WorkTimeout = 0; o.Wake = k.Wake }) // the default hold
		defer l.Close()
		ls, ks = append(ls, l), append(ks, k)
	}
	resume(t, ls...)
	net.SetLatency(1200 * time.Millisecond)
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Add(1)
		go func() { defer wg.Done(); ks[i].run(t, l) }()
	}
	defer wg.Wait()
	defer func() {
		for _, k := range ks {
			close(k.stop)
		}
	}()
	poll.Until(t, "both idle mirrors in sync", 60*time.Second, 50*time.Millisecond, func() bool {
		return ls[0].SyncCount() == 4 && ls[1].SyncCount() == 4
	})
	if got := ks[0].recovered.Load() + ks[1].recovered.Load(); got != 4 {
		t.Fatalf("%d regions recovered, want 4 (each once)", got)
	}
	if ks[0].wakes.Load()+ks[1].wakes.Load() == 0 {
		t.Fatal("no kernel was woken: the test did not reach a sleeping kernel")
	}
	for i, k := range ks {
		if k.overlap.Load() {
			t.Errorf("node %d: two Wake calls ran at once", i+1)
		}
	}
}

// grabAll makes b's kernel take every region out of sync into b's grant
// without recovering any (its recoveries are still running).
func grabAll(t *testing.T, b *Log, n int) {
	t.Helper()
	poll.Until(t, fmt.Sprintf("every region granted to b (%d)", n), 20*time.Second, 10*time.Millisecond, func() bool {
		if _, _, err := b.GetResyncWork(); err != nil {
			t.Fatal(err)
		}
		in := b.Info()
		return len(in.Grants[in.Me]) == n
	})
}

// TestResyncWorkPromptWhenNothingGrantable: while another member holds
// every region left to resync, GET_RESYNC_WORK answers "no work" at once
// however long Options.WorkTimeout is: dm-raid1 runs the mirror's reads
// and writes on the worker that waits for this answer, so a held answer
// stalled every read and write of the node by up to 10 s (issue #12, no
// stall). When the holder leaves, the sleeping kernel is woken and
// resyncs the regions with no I/O.
func TestResyncWorkPromptWhenNothingGrantable(t *testing.T) {
	c := ctr(t, "4096 clustered-core 1024")
	net := NewFakeNet(2)
	k := newSleepyKernel()
	a := openWith(t, net, 1, c, func(o *Options) { o.WorkTimeout = 5 * time.Second; o.Wake = k.Wake })
	b := openWith(t, net, 2, c, func(o *Options) { o.WorkTimeout = 5 * time.Second })
	defer a.Close()
	resume(t, a, b)
	grabAll(t, b, 4)
	start := time.Now()
	r, ok, err := a.GetResyncWork()
	took := time.Since(start)
	if err != nil || ok {
		t.Fatalf("a's GET_RESYNC_WORK = %d, %v, %v; want no work (b holds every region)", r, ok, err)
	}
	if took > time.Second {
		t.Fatalf("a's GET_RESYNC_WORK took %v with nothing to grant to a; want an answer at once (WorkTimeout 5 s)", took)
	}
	t.Logf("GET_RESYNC_WORK with nothing grantable answered in %v", took)
	if w := k.wakes.Load(); w != 0 {
		t.Fatalf("%d wakes while nothing is granted to a", w)
	}
	done := make(chan struct{})
	go func() { defer close(done); k.run(t, a) }()
	defer func() { close(k.stop); <-done }()
	// b leaves with its grant unrecovered: a proposes by itself (its
	// kernel asks nothing) and wakes its kernel when granted.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "a's idle mirror in sync after b left", 30*time.Second, 20*time.Millisecond, func() bool { return a.SyncCount() == 4 })
	if k.wakes.Load() == 0 || k.recovered.Load() != 4 {
		t.Fatalf("wakes %d, regions recovered by a %d; want a wake and 4", k.wakes.Load(), k.recovered.Load())
	}
}

// TestNoWakeWhileSuspended: a kernel answered "no work" is not woken
// while its log is presuspended or suspended (a read of a suspended mirror
// would wait for its resume, holding the device open), even when a region
// is granted to it meanwhile.
func TestNoWakeWhileSuspended(t *testing.T) {
	c := ctr(t, "4096 clustered-core 1024")
	net := NewFakeNet(2)
	k := newSleepyKernel()
	a := openWith(t, net, 1, c, func(o *Options) { o.Wake = k.Wake })
	b := openNode(t, net, 2, c)
	defer a.Close()
	resume(t, a, b)
	grabAll(t, b, 4)
	if _, ok, _ := a.GetResyncWork(); ok {
		t.Fatal("a got work while b holds every region")
	}
	if err := a.Presuspend(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "a sees b gone", 10*time.Second, 10*time.Millisecond, func() bool { return len(a.Info().Members) == 1 })
	time.Sleep(4 * quorumPoll)
	if err := a.Postsuspend(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * quorumPoll)
	if w := k.wakes.Load(); w != 0 {
		t.Fatalf("%d wakes of a presuspended or suspended mirror", w)
	}
}

// TestProposeBeforeSyncDelivered: a member that reported its granted
// region recovered proposes its next region at once, without waiting for
// its SET_REGION_SYNC to come back: the group delivers the SYNC first,
// which frees the grant. Under emulation every message costs tens of
// milliseconds, and dm-raid1 recovers one region at a time.
func TestProposeBeforeSyncDelivered(t *testing.T) {
	c := ctr(t, "4096 clustered-core 1024")
	net := NewFakeNet(2)
	a, b := openNode(t, net, 1, c), openNode(t, net, 2, c)
	defer a.Close()
	defer b.Close()
	resume(t, a, b)
	r := mustWork(t, a)
	net.Hold(1, 2) // nothing is delivered: a's SYNC stays in flight
	sent := a.Info().Sent
	if err := a.SetRegionSync(r, true); err != nil {
		t.Fatal(err)
	}
	type work struct {
		r  uint64
		ok bool
	}
	next := make(chan work, 1)
	go func() {
		r, ok, _ := a.GetResyncWork()
		next <- work{r, ok}
	}()
	waitFor(t, "a's SYNC and its next PROPOSE sent while its SYNC is undelivered", func() bool { return a.Info().Sent >= sent+2 })
	net.Release()
	w := <-next
	if !w.ok || w.r == r {
		t.Fatalf("GET_RESYNC_WORK after the report = %d, %v; want a region other than %d", w.r, w.ok, r)
	}
}
