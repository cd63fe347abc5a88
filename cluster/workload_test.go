package cluster

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/header"
	"github.com/dlog-dev/dlog/internal/testutil/clustercheck"
)

// The workload test plays each node's kernel (a model of dm-raid1's use of
// the log: IS_REMOTE_RECOVERING before a write above the hint, IN_SYNC for
// a new region-hash entry, mark + flush before the write is issued, clear
// after it completes, one recovery at a time, the hint rules of
// dm-log-userspace) against three cluster logs on a FakeNet, kills nodes in
// the middle of writes again and again, restarts them, and checks:
//
//   - no acknowledged mark is lost: after every membership change, every
//     region a dead node had marked (flush answered, no clear sent yet) is
//     out of sync on every survivor, unless it was resynced since;
//   - resync excludes writes: no region is recovered by two nodes at once,
//     no node starts recovering a region another node has writes in flight
//     to, and no node issues a write to a region another node recovers;
//   - clustered-disk: after the whole cluster is killed, the next members
//     find every acknowledged mark dirty; after a clean shutdown, the
//     kernel's disk log reads an exact image;
//   - at the end, every member holds the same replicated sync bits.

// Region-hash states of the kernel model.
const (
	rhClean = iota
	rhDirty
	rhNosync
	rhRecovering
)

type entry struct{ state, pending int }

// kernel models one node's dm-raid1 over its log.
type kernel struct {
	node     int
	l        *Log
	n        uint64
	rng      *rand.Rand
	c        *clustercheck.Checker
	dead     atomic.Bool
	hint     uint64
	entries  map[uint64]*entry
	inflight []uint64
	toClear  []uint64
	recov    int64 // region being recovered, -1 if none
	stopped  chan struct{}
}

func (k *kernel) alive() bool { return !k.dead.Load() }

func (k *kernel) run(stop <-chan struct{}) {
	defer close(k.stopped)
	for k.alive() {
		select {
		case <-stop:
			return
		default:
		}
		if !k.step() {
			return
		}
	}
}

// step does one random kernel action; false when the log failed (the node
// was killed under it).
func (k *kernel) step() bool {
	l := k.l
	switch p := k.rng.IntN(100); {
	case p < 40: // a write
		r := k.rng.Uint64N(k.n)
		if r >= k.hint {
			rec, h, err := l.IsRemoteRecovering(r)
			if err != nil {
				return false
			}
			k.hint = h
			if rec {
				return true // requeued
			}
		}
		e := k.entries[r]
		if e == nil {
			in, err := l.InSync(r)
			if err != nil {
				return false
			}
			e = &entry{state: rhNosync}
			if in {
				e.state = rhClean
			} else {
				k.c.Note(r, fmt.Sprintf("node %d NOSYNC entry: hint %d promised %d running %v", k.node, k.hint, l.promised.Load(), l.running.Load()))
			}
			k.entries[r] = e
		}
		if e.state == rhRecovering {
			return true // delayed until the recovery ends
		}
		marked := false
		if e.state == rhClean {
			l.MarkRegion(r)
			e.state = rhDirty
			marked = true
		}
		e.pending++
		if marked {
			if err := l.Flush(); err != nil || !k.alive() {
				return false
			}
		}
		k.c.Issue(k.node, r, marked)
		k.inflight = append(k.inflight, r)
	case p < 65: // a write completes
		if len(k.inflight) == 0 {
			return true
		}
		i := k.rng.IntN(len(k.inflight))
		r := k.inflight[i]
		k.inflight = slices.Delete(k.inflight, i, i+1)
		k.c.Complete(k.node, r)
		e := k.entries[r]
		e.pending--
		if e.pending == 0 && e.state == rhDirty {
			e.state = rhClean
			k.toClear = append(k.toClear, r)
		}
	case p < 75: // the state-update pass: clears, then a flush
		if len(k.toClear) == 0 {
			return true
		}
		for _, r := range k.toClear {
			if e := k.entries[r]; e != nil && e.state == rhClean && e.pending == 0 {
				k.c.Cleared(k.node, r)
				l.ClearRegion(r)
				delete(k.entries, r)
			}
		}
		k.toClear = k.toClear[:0]
		if err := l.Flush(); err != nil {
			return false
		}
	case p < 92: // recovery
		if k.recov < 0 {
			if k.hint >= k.n {
				return true
			}
			r, ok, err := l.GetResyncWork()
			if err != nil {
				return false
			}
			if !ok || !k.alive() {
				return true
			}
			e := k.entries[r]
			if e == nil {
				e = &entry{}
				k.entries[r] = e
			}
			e.state = rhRecovering
			k.recov = int64(r)
			return true
		}
		r := uint64(k.recov)
		if e := k.entries[r]; e.pending > 0 {
			return true // quiescing
		}
		k.c.StartRecovery(k.node, r)
		k.c.EndRecovery(k.node, r)
		if err := l.SetRegionSync(r, true); err != nil {
			return false
		}
		l.ClearRegion(r)
		k.c.Cleared(k.node, r)
		delete(k.entries, r)
		k.recov = -1
	case p < 97:
		if l.SyncCount() >= k.n {
			k.hint = k.n
		}
	default:
		time.Sleep(time.Duration(k.rng.IntN(300)) * time.Microsecond)
	}
	return true
}

type cnode struct {
	id  uint32
	l   *Log
	k   *kernel
	gen int
}

func TestWorkloadCore(t *testing.T) {
	testWorkload(t, "65536 clustered-core 1024", nil)
}

func TestWorkloadDisk(t *testing.T) {
	testWorkload(t, "65536 clustered-disk "+logDevice(t, 1<<20)+" 1024", nil)
}

// The same with clears held back (Options.ClearLinger, as dlogd runs):
// the checker sees every held clear as a mark still in force.
func TestWorkloadLinger(t *testing.T) {
	linger := func(o *Options) { o.ClearLinger = 50 * time.Millisecond }
	t.Run("clustered-core", func(t *testing.T) { testWorkload(t, "65536 clustered-core 1024", linger) })
	t.Run("clustered-disk", func(t *testing.T) { testWorkload(t, "65536 clustered-disk "+logDevice(t, 1<<20)+" 1024", linger) })
}

func testWorkload(t *testing.T, table string, opt func(*Options)) {
	dur := 3 * time.Second
	if s := os.Getenv("DLOG_CLUSTER_SOAK"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			dur = d
		}
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	// DLOG_CLUSTER_DEBUG=1 go test -v traces every hand-out (testLogger).
	c := ctr(t, table)
	net := NewFakeNet(3)
	ch := clustercheck.New()
	stop := make(chan struct{})
	nodes := make([]*cnode, 3)
	start := func(i int) {
		nd := &cnode{id: uint32(i + 1), gen: 0}
		if nodes[i] != nil {
			nd.gen = nodes[i].gen + 1
		}
		nd.l = openWith(t, net, nd.id, c, opt)
		resume(t, nd.l)
		nd.k = &kernel{node: i, l: nd.l, n: c.RegionCount(), rng: rand.New(rand.NewPCG(rng.Uint64(), uint64(i))), c: ch,
			entries: map[uint64]*entry{}, recov: -1, stopped: make(chan struct{})}
		nodes[i] = nd
		go nd.k.run(stop)
	}
	for i := range nodes {
		net.Node(uint32(i + 1))
	}
	for i := range nodes {
		start(i)
	}
	kill := func(i int) (map[uint64]bool, MemberID, time.Time) {
		nd := nodes[i]
		me := nd.l.Info().Me
		nd.k.dead.Store(true)
		ch.Dies(i)
		at := time.Now()
		net.Kill(nd.id)
		nd.l.crash()
		<-nd.k.stopped
		return ch.Died(i), me, at
	}
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(50+rng.IntN(150)) * time.Millisecond)
		i := rng.IntN(3)
		acked, dead, at := kill(i)
		survivors := []*Log{}
		for j, nd := range nodes {
			if j != i {
				survivors = append(survivors, nd.l)
			}
		}
		for _, l := range survivors {
			waitFor(t, "survivors to settle", func() bool { return settled(l, dead) })
			for r := range acked {
				if replicatedInSync(l, r) && !ch.RecoveredSince(r, at) {
					t.Fatalf("region %d, marked by killed node %d (%s), is in sync on %s and was not resynced since", r, i+1, dead, l.Info().Me)
				}
			}
		}
		ch.Checked(len(acked) * len(survivors))
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		start(i)
	}
	if !c.Disk() {
		close(stop)
		for _, nd := range nodes {
			<-nd.k.stopped
		}
		checkSame(t, nodes)
		for _, nd := range nodes {
			nd.l.Close()
		}
	} else {
		// The whole cluster dies at once; the next activation finds every
		// acknowledged mark dirty.
		all := map[uint64]bool{}
		for i := range nodes {
			a, _, _ := kill(i)
			for r := range a {
				all[r] = true
			}
		}
		for i := range nodes {
			nodes[i].l.Close()
			net.Node(uint32(i + 1))
		}
		for i := range nodes {
			start(i)
		}
		for r := range all {
			for _, nd := range nodes {
				if replicatedInSync(nd.l, r) && !ch.RecoveredSince(r, time.Now().Add(-time.Hour)) {
					t.Fatalf("after the whole cluster died, region %d (an acknowledged mark) is in sync", r)
				}
			}
		}
		close(stop)
		for _, nd := range nodes {
			<-nd.k.stopped
		}
		checkSame(t, nodes)
		// A clean shutdown: the image is the kernel's, exact.
		var marked []uint64
		for r := range ch.Acked() {
			marked = append(marked, r)
		}
		for _, nd := range nodes {
			nd.l.Presuspend()
			if err := nd.l.Postsuspend(); err != nil {
				t.Fatal(err)
			}
		}
		kc := c
		kc.Type = engine.TypeDisk
		kl, err := engine.Open(kc, engine.Options{Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if err := kl.Resume(); err != nil {
			t.Fatal(err)
		}
		if io, _ := kl.Failed(); io {
			t.Fatal("the kernel-format log failed to read the clean image")
		}
		for _, r := range marked {
			if in, _ := kl.InSync(r); in {
				t.Fatalf("clean image: region %d, still marked at shutdown, is clean", r)
			}
		}
		dirty := kl.State().Dirty
		kl.Close()
		for _, nd := range nodes {
			nd.l.Close()
		}
		t.Logf("clean image: %d dirty regions, %d still marked", dirty, len(marked))
	}
	st := ch.Stats()
	t.Logf("writes %d, recoveries %d, kills %d, membership checks %d, dead marks checked %d", st.Writes, st.Recoveries, st.Kills, st.Checks, st.MarksChecked)
	if v := ch.Violations(); len(v) > 0 {
		t.Fatalf("%d violations, first: %s", len(v), v[0])
	}
	if st.Recoveries == 0 || st.Kills == 0 {
		t.Fatal("the workload did not exercise recovery and kills")
	}
	_ = header.Magic
}

// settled reports that l processed dead's departure and merged its slot.
func settled(l *Log, dead MemberID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.Contains(l.cur, dead) || len(l.events) > 0 || l.status != stSynced {
		return false
	}
	for k := 0; k < l.st.nslots; k++ {
		if l.st.slots[k].state == slotDeparted {
			return false
		}
	}
	return true
}

// checkSame waits for the members to agree on the replicated sync bits.
func checkSame(t *testing.T, nodes []*cnode) {
	t.Helper()
	snap := func(l *Log) []uint64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return slices.Clone(l.st.sync.words)
	}
	waitFor(t, "members to agree", func() bool {
		a := snap(nodes[0].l)
		for _, nd := range nodes[1:] {
			if !slices.Equal(a, snap(nd.l)) {
				return false
			}
		}
		return true
	})
}
