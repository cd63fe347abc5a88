// Package clustercheck is the cluster safety checker that every cluster
// test shares (package cluster's in-process workload, tests/cluster's
// corosync runs): the global view of what each node's kernel did with the
// mirror, and the invariants a cluster log must keep:
//
//   - resync excludes writes: no region is recovered by two nodes at once,
//     no node starts recovering a region another node has writes in
//     flight to, and no node issues a write to a region another node
//     recovers;
//   - no acknowledged mark is lost: Died returns the regions a dead node
//     had marked (flush answered, no clear sent yet), which the test then
//     checks out of sync on every survivor unless RecoveredSince says they
//     were resynced.
//
// Kernel is the model of one node's dm-raid1 that drives a log and reports
// to the Checker; each test gives it its Log (package cluster's Log in
// process, tests/cluster's requests to a dlogd).
//
// Nodes are numbered by the test. A Checker is safe for concurrent use.
package clustercheck

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Stats counts what the checker saw.
type Stats struct {
	Writes, Flushes, Recoveries, Kills, Checks, MarksChecked int
	// HandOuts counts the hand-outs Held checked; Batched those made
	// while the node held more than one region for recovery.
	HandOuts, Batched int
}

// Checker is the global view of what the kernels did.
type Checker struct {
	mu         sync.Mutex
	active     map[uint64]map[int]int // region -> node -> writes in flight
	recovering map[uint64]int         // region -> node
	acked      map[int]map[uint64]bool
	recovered  map[uint64]time.Time
	notes      map[uint64][]string
	dying      map[int]bool
	violations []string
	stats      Stats
}

// New returns an empty checker.
func New() *Checker {
	return &Checker{active: map[uint64]map[int]int{}, recovering: map[uint64]int{}, acked: map[int]map[uint64]bool{},
		recovered: map[uint64]time.Time{}, notes: map[uint64][]string{}, dying: map[int]bool{}}
}

func (c *Checker) fail(f string, a ...any) { c.violations = append(c.violations, fmt.Sprintf(f, a...)) }

// Issue records a write of node to r going to the legs; marked says the
// node's log acknowledged a mark for it (a flush answered).
func (c *Checker) Issue(node int, r uint64, marked bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dying[node] {
		return
	}
	if x, ok := c.recovering[r]; ok && x != node {
		c.fail("node %d issued a write to region %d while node %d recovers it", node, r, x)
	}
	if c.active[r] == nil {
		c.active[r] = map[int]int{}
	}
	c.active[r][node]++
	if marked {
		if c.acked[node] == nil {
			c.acked[node] = map[uint64]bool{}
		}
		c.acked[node][r] = true
	}
	c.stats.Writes++
}

// Complete records the end of a write Issue recorded.
func (c *Checker) Complete(node int, r uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.active[r]; m != nil {
		m[node]--
	}
}

// Cleared records a CLEAR of r sent by node's kernel.
func (c *Checker) Cleared(node int, r uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.acked[node], r)
}

// Flushed counts a flush.
func (c *Checker) Flushed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Flushes++
}

// StartRecovery records node starting to resync r.
func (c *Checker) StartRecovery(node int, r uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if x, ok := c.recovering[r]; ok && x != node {
		c.fail("region %d handed to node %d while node %d recovers it", r, node, x)
	}
	for k, n := range c.active[r] {
		if k != node && n > 0 && !c.dying[k] {
			c.fail("region %d handed to node %d while node %d has %d writes in flight to it (notes: %v)", r, node, k, n, c.notes[r])
		}
	}
	c.recovering[r] = node
	c.stats.Recoveries++
}

// Held checks one node's view of the log's hand-outs when its log handed
// r to its kernel: grants maps each member to the regions its log holds
// for recovery (several per member: a batch granted by one vote) and own
// is the node's member. No region may be held by two members, and r must be
// one of own's. Recovery races are StartRecovery's to find.
func (c *Checker) Held(node int, r uint64, own uint64, grants map[uint64][]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Every holder of each region, in member order: the checks below do
	// not depend on the map's iteration order.
	members := slices.Sorted(maps.Keys(grants))
	holders := map[uint64][]uint64{}
	for _, m := range members {
		for _, x := range grants[m] {
			if hs := holders[x]; len(hs) > 0 && !slices.Contains(hs, m) {
				c.fail("node %d's view: region %d held for recovery by members %#x and %#x", node, x, hs[0], m)
			}
			holders[x] = append(holders[x], m)
		}
	}
	if hs := holders[r]; !slices.Contains(hs, own) {
		var o uint64
		if len(hs) > 0 {
			o = hs[0]
		}
		c.fail("node %d was handed region %d, which its view holds for member %#x (held: %v), not its own %#x", node, r, o, len(hs) > 0, own)
	}
	c.stats.HandOuts++
	if len(grants[own]) > 1 {
		c.stats.Batched++
	}
}

// EndRecovery records the end of node's resync of r.
func (c *Checker) EndRecovery(node int, r uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recovering[r] == node {
		delete(c.recovering, r)
	}
	c.recovered[r] = time.Now()
}

// Note attaches a remark to r, reported with a violation on it.
func (c *Checker) Note(r uint64, s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notes[r] = append(c.notes[r], s)
}

// Dies records that node is being killed: from now on its writes are not
// held against others (a dead kernel's I/O stops with it).
func (c *Checker) Dies(node int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dying[node] = true
}

// Died forgets a dead node's kernel: its writes stop, its recovery ends. It
// returns the regions it had marked and not cleared.
func (c *Checker) Died(node int) map[uint64]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.active {
		delete(m, node)
	}
	for r, x := range c.recovering {
		if x == node {
			delete(c.recovering, r)
		}
	}
	a := c.acked[node]
	delete(c.acked, node)
	delete(c.dying, node)
	c.stats.Kills++
	return a
}

// RecoveredSince reports whether r was resynced after t.
func (c *Checker) RecoveredSince(r uint64, t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recovered[r].After(t)
}

// Acked returns every region some live node has marked and not cleared.
func (c *Checker) Acked() map[uint64]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := map[uint64]bool{}
	for _, a := range c.acked {
		maps.Copy(all, a)
	}
	return all
}

// Checked counts one membership check over marks dead regions.
func (c *Checker) Checked(marks int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Checks++
	c.stats.MarksChecked += marks
}

// Stats returns the counts so far.
func (c *Checker) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Violations returns every invariant broken so far.
func (c *Checker) Violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}
