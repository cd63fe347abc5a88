package clustercheck

import (
	"errors"
	"testing"
)

// memLog is a single-node log in memory: marks are durable at Flush, and
// resync work is the lowest region out of sync and not marked.
type memLog struct {
	sync, marked, pending map[uint64]bool
	n                     uint64
	flushes               int
	failAt                int // the flush that fails, 0 for none
}

var errFail = errors.New("flush failed")

// newMemLog returns a log of n regions, the even ones in sync.
func newMemLog(n uint64) *memLog {
	l := &memLog{sync: map[uint64]bool{}, marked: map[uint64]bool{}, pending: map[uint64]bool{}, n: n}
	for r := uint64(0); r < n; r += 2 {
		l.sync[r] = true
	}
	return l
}

func (l *memLog) IsRemoteRecovering(uint64) (bool, uint64, error) { return false, 0, nil }
func (l *memLog) InSync(r uint64) (bool, error)                   { return l.sync[r], nil }
func (l *memLog) MarkRegion(r uint64) error                       { l.pending[r] = true; return nil }
func (l *memLog) ClearRegion(r uint64) error                      { delete(l.marked, r); return nil }
func (l *memLog) SyncCount() (uint64, error)                      { return uint64(len(l.sync)), nil }

func (l *memLog) Flush() error {
	l.flushes++
	if l.flushes == l.failAt {
		return errFail
	}
	for r := range l.pending {
		l.marked[r] = true
	}
	clear(l.pending)
	return nil
}

func (l *memLog) GetResyncWork() (uint64, bool, error) {
	for r := range l.n {
		if !l.sync[r] && !l.marked[r] {
			return r, true, nil
		}
	}
	return 0, false, nil
}

func (l *memLog) Recovered(r uint64) error { l.sync[r] = true; delete(l.marked, r); return nil }

// checkMarked fails the test if a write to a region the model holds dirty
// is in flight without a durable mark.
func checkMarked(t *testing.T, k *Kernel, l *memLog) {
	t.Helper()
	for _, r := range k.inflight {
		if e := k.Entries[r]; e.State == RHDirty && !l.marked[r] {
			t.Fatalf("write to region %d in flight without a durable mark", r)
		}
	}
}

// Ensure that the model marks and flushes before it issues a write to a
// clean region, resyncs each region out of sync once, and after Drain
// holds no write, no recovery and no mark.
func TestKernelModel(t *testing.T) {
	l := newMemLog(64)
	c := New()
	k := NewKernel(0, l, 64, 1, c)
	for range 5000 {
		if err := k.Step(); err != nil {
			t.Fatal(err)
		}
		checkMarked(t, k, l)
	}
	if err := k.Drain(); err != nil {
		t.Fatal(err)
	}
	if len(k.inflight) != 0 || k.recov >= 0 || len(l.marked) != 0 {
		t.Fatalf("after Drain: %d writes in flight, recovering %d, %d regions marked", len(k.inflight), k.recov, len(l.marked))
	}
	st := c.Stats()
	if st.Writes == 0 || st.Flushes == 0 || st.Recoveries == 0 {
		t.Fatalf("the model did not write, flush and recover: %+v", st)
	}
	if v := c.Violations(); len(v) > 0 {
		t.Fatalf("violations: %q", v)
	}
	// Half the regions start out of sync; each recovery brings one in.
	if n, _ := l.SyncCount(); n != 32+uint64(st.Recoveries) {
		t.Fatalf("%d of 64 regions in sync after %d recoveries, want %d", n, st.Recoveries, 32+st.Recoveries)
	}
}

// Ensure that a failed flush stops the model and the write it was for is
// never issued.
func TestKernelModelStopsOnFlushError(t *testing.T) {
	l := newMemLog(64)
	l.failAt = 3
	k := NewKernel(0, l, 64, 2, New())
	var err error
	for i := 0; i < 5000 && err == nil; i++ {
		err = k.Step()
	}
	if !errors.Is(err, errFail) {
		t.Fatalf("Step = %v, want %v", err, errFail)
	}
	checkMarked(t, k, l)
}
