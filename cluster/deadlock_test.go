package cluster

import (
	"slices"
	"testing"
	"time"
)

// TestFlushGrantCycle: a holds region 0 for recovery, b holds region 1.
// Each kernel's single mirror worker then writes the region the other
// recovers (below its hint, no IS_REMOTE_RECOVERING): a's FLUSH waits for
// b's hand-out to end, b's FLUSH for a's, and each hand-out ends only with
// a SET_REGION_SYNC from the worker that is waiting. Both FLUSHes must
// answer (issue #12, deadlock), and since each write raced the other's
// recovery, both regions must stay out of sync after the recoveries are
// reported.
func TestFlushGrantCycle(t *testing.T) {
	a, b := freshPair(t)
	ra, oka, _ := a.GetResyncWork()
	rb, okb, _ := b.GetResyncWork()
	if !oka || !okb || ra == rb {
		t.Fatalf("hand-outs a=%d,%v b=%d,%v; want two different regions", ra, oka, rb, okb)
	}
	waitFor(t, "both hand-outs known to both", func() bool {
		return len(a.Info().Grants) == 2 && len(b.Info().Grants) == 2
	})
	worker := func(l *Log, write, recovered uint64, done chan<- error) {
		if err := l.MarkRegion(write); err != nil {
			done <- err
			return
		}
		if err := l.Flush(); err != nil {
			done <- err
			return
		}
		done <- l.SetRegionSync(recovered, true)
	}
	da, db := make(chan error, 1), make(chan error, 1)
	go worker(a, rb, ra, da)
	go worker(b, ra, rb, db)
	for _, ch := range []chan error{da, db} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("deadlock: each FLUSH waits for the other node's recovery, whose report is behind it")
		}
	}
	waitFor(t, "the reports delivered", func() bool { return !held(a, ra, rb) && !held(b, ra, rb) })
}

// TestTaintDiscardsRecovery: b writes region r while a recovers it (b's
// FLUSH waited GrantWait and went on): a's report of r must not put it in
// sync, the write may have raced the copy.
func TestTaintDiscardsRecovery(t *testing.T) {
	a, b := freshPair(t)
	r, ok, _ := a.GetResyncWork()
	if !ok {
		t.Fatal("no hand-out")
	}
	waitFor(t, "a's hand-out known to b", func() bool { return len(b.Info().Grants) == 1 })
	start := time.Now()
	mustFlush(t, b, r)
	if d := time.Since(start); d < time.Second {
		t.Fatalf("b's FLUSH answered after %v, while a recovers the region (GrantWait 1 s)", d)
	}
	if err := a.SetRegionSync(r, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's report delivered", func() bool { return !held(a, r) && !held(b, r) })
	for _, l := range []*Log{a, b} {
		if replicatedInSync(l, r) {
			t.Fatalf("%s: region %d in sync, but b's write raced its recovery", l.Info().Me, r)
		}
	}
}

// held reports whether l's state holds any of rs granted to a member (the
// member that reported a region may hold the next ones already).
func held(l *Log, rs ...uint64) bool {
	for _, g := range l.Info().Grants {
		for _, r := range rs {
			if slices.Contains(g, r) {
				return true
			}
		}
	}
	return false
}
