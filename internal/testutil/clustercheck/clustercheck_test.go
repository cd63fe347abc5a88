package clustercheck

import (
	"testing"
	"time"
)

func TestViolations(t *testing.T) {
	c := New()
	c.Issue(0, 5, true)
	c.StartRecovery(1, 5) // node 0 writes it: 1
	c.Issue(2, 5, false)  // node 1 recovers it: 2
	c.StartRecovery(2, 5) // node 1 recovers it, node 0 writes it: 3, 4
	if v := c.Violations(); len(v) != 4 {
		t.Fatalf("violations %d, want 4: %q", len(v), v)
	}
}

func TestCleanRun(t *testing.T) {
	c := New()
	at := time.Now()
	c.Issue(0, 1, true)
	c.Issue(1, 2, true)
	c.Complete(0, 1)
	c.Cleared(0, 1)
	c.StartRecovery(1, 1)
	c.EndRecovery(1, 1)
	c.Dies(1)
	c.Issue(1, 3, true) // a dying node's writes are not held against others
	c.StartRecovery(0, 2)
	if got := c.Died(1); !got[2] || len(got) != 1 {
		t.Fatalf("Died: %v, want region 2 (marked, not cleared)", got)
	}
	if !c.RecoveredSince(1, at) || c.RecoveredSince(2, at) {
		t.Fatal("RecoveredSince wrong")
	}
	if v := c.Violations(); len(v) != 0 {
		t.Fatalf("violations on a clean run: %q", v)
	}
	if a := c.Acked(); len(a) != 0 {
		t.Fatalf("Acked %v, want none", a)
	}
	if st := c.Stats(); st.Writes != 2 || st.Recoveries != 2 || st.Kills != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestHeld: a hand-out is checked against the node's view of every
// member's batch.
func TestHeld(t *testing.T) {
	c := New()
	c.Held(0, 3, 1, map[uint64][]uint64{1: {3, 4, 5}, 2: {6, 7}})
	if v := c.Violations(); len(v) != 0 {
		t.Fatalf("violations on a clean hand-out: %q", v)
	}
	c.Held(0, 6, 1, map[uint64][]uint64{1: {3, 4, 5}, 2: {6, 7}}) // another's region: 1
	c.Held(1, 7, 2, map[uint64][]uint64{1: {3, 7}, 2: {7}})       // 7 held twice: 2
	c.Held(1, 9, 2, map[uint64][]uint64{1: {3}, 2: {7}})          // not held at all: 3
	if v := c.Violations(); len(v) != 3 {
		t.Fatalf("violations %d, want 3: %q", len(v), v)
	}
	if st := c.Stats(); st.HandOuts != 4 || st.Batched != 2 {
		t.Fatalf("stats %+v", st)
	}
}
