package cluster

import (
	"errors"
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

// kernel is one node's kernel model (clustercheck.Kernel) over its Log.
type kernel struct {
	*clustercheck.Kernel
	dead    atomic.Bool
	stopped chan struct{}
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
		if k.Step() != nil {
			return // the log failed: the node was killed under it
		}
	}
}

var errKilled = errors.New("node killed")

// modelLog is what the kernel model calls: the node's Log, the node's
// death turning a flush answered after it into an error and work handed
// out after it into none.
type modelLog struct {
	*Log
	k *kernel
	c *clustercheck.Checker
}

func (m modelLog) InSync(r uint64) (bool, error) {
	in, err := m.Log.InSync(r)
	if err == nil && !in {
		m.c.Note(r, fmt.Sprintf("node %d NOSYNC entry: promised %d running %v", m.k.Node, m.Log.promised.Load(), m.Log.running.Load()))
	}
	return in, err
}

func (m modelLog) Flush() error {
	if err := m.Log.Flush(); err != nil {
		return err
	}
	if !m.k.alive() {
		return errKilled
	}
	return nil
}

func (m modelLog) GetResyncWork() (uint64, bool, error) {
	r, ok, err := m.Log.GetResyncWork()
	if ok && err == nil && m.k.alive() {
		in := m.Log.Info()
		grants := map[uint64][]uint64{}
		for id, g := range in.Grants {
			grants[uint64(id)] = g
		}
		m.c.Held(m.k.Node, r, uint64(in.Me), grants)
	}
	return r, ok && m.k.alive(), err
}

func (m modelLog) Recovered(r uint64) error {
	if err := m.Log.SetRegionSync(r, true); err != nil {
		return err
	}
	m.Log.ClearRegion(r)
	return nil
}

func (m modelLog) SyncCount() (uint64, error) { return m.Log.SyncCount(), nil }

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

// The same with marks ahead (Options.MarkAhead, as dlogd runs) and a
// kernel that writes region after region more often than not.
func TestWorkloadMarkAhead(t *testing.T) {
	ahead := func(o *Options) { o.ClearLinger, o.MarkAhead = 50*time.Millisecond, 3 }
	t.Run("clustered-core", func(t *testing.T) { testWorkload(t, "65536 clustered-core 1024", ahead) })
	t.Run("clustered-disk", func(t *testing.T) { testWorkload(t, "65536 clustered-disk "+logDevice(t, 1<<20)+" 1024", ahead) })
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
	var probe Options
	if opt != nil {
		opt(&probe)
	}
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
		nd.k = &kernel{stopped: make(chan struct{})}
		nd.k.Kernel = clustercheck.NewKernel(i, modelLog{Log: nd.l, k: nd.k, c: ch}, c.RegionCount(), rng.Uint64(), ch)
		nd.k.Idle = 300 * time.Microsecond
		if probe.MarkAhead > 0 {
			nd.k.Sequential = 60 // a writer that goes on to the next region
		}
		nodes[i] = nd
		go nd.k.run(stop)
	}
	for i := range nodes {
		net.Node(uint32(i + 1))
	}
	for i := range nodes {
		start(i)
	}
	var givenBack, markedAhead uint64 // by the killed nodes' logs, then by all
	count := func(nd *cnode) {
		in := nd.l.Info()
		givenBack += in.GivenBack
		markedAhead += in.MarkedAhead
	}
	kill := func(i int) (map[uint64]bool, MemberID, time.Time) {
		nd := nodes[i]
		me := nd.l.Info().Me
		count(nd)
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
			count(nd)
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
			count(nd)
			nd.l.Close()
		}
		t.Logf("clean image: %d dirty regions, %d still marked", dirty, len(marked))
	}
	st := ch.Stats()
	t.Logf("writes %d, recoveries %d (hand-outs from a batch %d of %d, regions given back %d), kills %d, membership checks %d, dead marks checked %d",
		st.Writes, st.Recoveries, st.Batched, st.HandOuts, givenBack, st.Kills, st.Checks, st.MarksChecked)
	if v := ch.Violations(); len(v) > 0 {
		t.Fatalf("%d violations, first: %s", len(v), v[0])
	}
	if st.Recoveries == 0 || st.Kills == 0 || st.Batched == 0 || givenBack == 0 {
		t.Fatal("the workload did not exercise recovery, batched hand-outs, give-backs and kills")
	}
	if probe.MarkAhead > 0 {
		t.Logf("regions marked ahead: %d", markedAhead)
		if markedAhead == 0 {
			t.Fatal("the workload did not exercise marks ahead")
		}
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
