package cluster

import (
	"testing"
	"time"
)

// idleKernel is dm-raid1's worker on a mirror with no I/O at all: it asks
// GET_RESYNC_WORK, recovers the region it gets, reports it and asks again.
// An answer of "no work" puts it to sleep for good: nothing wakes an idle
// mirror's worker (no bio, no finished recovery). It returns how many
// regions it recovered.
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

// TestIdleResync: two nodes resume a fresh clustered-core log (every
// region to resync) and their mirrors stay idle; every message takes 1.2 s
// to arrive, so a vote takes longer than the 2 s GET_RESYNC_WORK used to
// wait before answering "no work". Each idle kernel sleeps at its first
// "no work": the cluster must still reach full sync (issue #12, idle
// resync stalls).
func TestIdleResync(t *testing.T) {
	c := ctr(t, "4096 clustered-core 1024")
	net := NewFakeNet(2)
	var ls []*Log
	for id := uint32(1); id <= 2; id++ {
		l := openWith(t, net, id, c, func(o *Options) { o.WorkTimeout = 0 }) // the default
		defer l.Close()
		ls = append(ls, l)
	}
	resume(t, ls...)
	net.SetLatency(1200 * time.Millisecond)
	done := make(chan int, 2)
	for _, l := range ls {
		go func() { done <- idleKernel(t, l) }()
	}
	got := <-done + <-done
	for _, l := range ls {
		if n := l.SyncCount(); n != 4 {
			t.Fatalf("%s: idle mirrors asleep with %d of 4 regions in sync (%d recovered)", l.Info().Me, n, got)
		}
	}
	if got != 4 {
		t.Fatalf("%d regions recovered, want 4 (each once)", got)
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
	r, ok, err := a.GetResyncWork()
	if err != nil || !ok {
		t.Fatalf("GET_RESYNC_WORK = %d, %v, %v; want a region", r, ok, err)
	}
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
