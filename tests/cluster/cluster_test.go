package cluster

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/header"
	"github.com/dlog-dev/dlog/internal/testutil/clustercheck"
	"github.com/dlog-dev/dlog/ulog"
)

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func envString(name, def string) string {
	if s := os.Getenv(name); s != "" {
		return s
	}
	return def
}

const (
	uuid    = "dlogc-mirror"
	regions = 128
)

// TestClusterKill is the multi-node kill test (package doc).
func TestClusterKill(t *testing.T) {
	if os.Getenv("DLOG_CLUSTERTEST") == "" {
		t.Skip("set DLOG_CLUSTERTEST=1 (make clustertest): needs root, network namespaces and corosync")
	}
	types := strings.Split(envString("DLOG_CLUSTERTEST_TYPES", "clustered-disk,clustered-core"), ",")
	dur := envDuration("DLOG_CLUSTERTEST_DURATION", 60*time.Second) / time.Duration(len(types))
	tr := envString("DLOG_CLUSTERTEST_TRANSPORT", "udpu")
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) { runKill(t, typ, dur, tr) })
	}
}

type harness struct {
	t    *testing.T
	net  *testNet
	ctr  string
	ch   *clustercheck.Checker
	ks   []*kernel
	gen  []uint64
	stop chan struct{}
	rng  *rand.Rand
}

// attach constructs and resumes node i's log through its dlogd and starts
// its kernel.
func (h *harness) attach(i int) error {
	h.gen[i]++
	cl, err := dial(h.net.sock(i+1), uuid, uint64(i+1)<<32|h.gen[i])
	if err != nil {
		return err
	}
	if _, err := cl.ok(ulog.TypeCtr, []byte(h.ctr)); err != nil {
		return fmt.Errorf("node %d CTR: %w", i+1, err)
	}
	if _, err := cl.ok(ulog.TypeGetRegionSize, nil); err != nil {
		return err
	}
	if _, err := cl.ok(ulog.TypeResume, nil); err != nil {
		return fmt.Errorf("node %d RESUME: %w", i+1, err)
	}
	k := newKernel(i, cl, regions, h.rng.Uint64(), h.ch)
	h.ks[i] = k
	go k.run(h.stop)
	return nil
}

func (h *harness) attachAll() {
	h.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(h.ks))
	for i := range h.ks {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = h.attach(i) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			h.t.Fatal(err)
		}
	}
}

// killNode kills node i (dlogd and corosync, SIGKILL) under its kernel and
// returns the regions its kernel had marked, acknowledged and not cleared.
func (h *harness) killNode(i int) map[uint64]bool {
	h.ch.Dies(i)
	h.net.kill(i + 1)
	select {
	case <-h.ks[i].stopped:
	case <-time.After(30 * time.Second):
		h.t.Fatalf("node %d's kernel did not notice its dlogd die", i+1)
	}
	return h.ch.Died(i)
}

// pause drains the kernels in live and returns a function that resumes
// them.
func (h *harness) pause(live []int) func() {
	var reqs []pauseReq
	for _, j := range live {
		p := pauseReq{drained: make(chan struct{}), resume: make(chan struct{})}
		select {
		case h.ks[j].pause <- p:
			reqs = append(reqs, p)
		case <-h.ks[j].stopped:
			h.t.Fatalf("node %d's kernel stopped: %v", j+1, h.ks[j].err)
		}
	}
	for k, p := range reqs {
		<-p.drained
		if err := h.ks[live[k]].err; err != nil {
			h.t.Fatalf("node %d draining: %v", live[k]+1, err)
		}
	}
	return func() {
		for _, p := range reqs {
			close(p.resume)
		}
	}
}

// checkDirty waits until every region of acked is dirty (not clean) on
// every node of live, unless it was resynchronised after at; it fails the
// test if one stays clean: a lost mark.
func (h *harness) checkDirty(live []int, acked map[uint64]bool, at time.Time, what string) {
	h.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		var bad []string
		for _, j := range live {
			for r := range acked {
				v, _, err := h.ks[j].cl.region(ulog.TypeIsClean, r)
				if err != nil {
					h.t.Fatalf("node %d IS_CLEAN: %v", j+1, err)
				}
				if v == 1 && !h.ch.RecoveredSince(r, at) {
					bad = append(bad, fmt.Sprintf("node %d region %d", j+1, r))
				}
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: acknowledged marks lost (clean, never resynced): %v", what, bad)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func runKill(t *testing.T, typ string, dur time.Duration, tr string) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DLOG_CLUSTERTEST_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("%s over corosync %s for %v, seed %d", typ, tr, dur, seed)
	net := newTestNet(t, 3, tr)
	dev := filepath.Join(net.dir, "log")
	if err := os.WriteFile(dev, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ctr := fmt.Sprintf("%d %s 1024", regions*1024, typ)
	if typ == "clustered-disk" {
		ctr = fmt.Sprintf("%d %s %s 1024", regions*1024, typ, dev)
	}
	h := &harness{t: t, net: net, ctr: ctr, ch: clustercheck.New(), ks: make([]*kernel, 3), gen: make([]uint64, 3),
		stop: make(chan struct{}), rng: rand.New(rand.NewPCG(seed, 7))}
	for i := 1; i <= 3; i++ {
		net.startNode(i, true)
	}
	h.attachAll()
	kills, checks, joins, marks := 0, 0, 0, 0
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(300+h.rng.IntN(1200)) * time.Millisecond)
		i := h.rng.IntN(3)
		at := time.Now()
		acked := h.killNode(i)
		kills++
		var live []int
		for j := range 3 {
			if j != i {
				live = append(live, j)
			}
		}
		resume := h.pause(live)
		h.checkDirty(live, acked, at, fmt.Sprintf("after node %d was killed", i+1))
		checks++
		marks += len(acked)
		resume()
		net.startNode(i+1, true)
		if err := h.attach(i); err != nil {
			t.Fatal(err)
		}
		joins++ // a rejoin (state transfer); the next kill's check covers it
	}
	if typ == "clustered-disk" {
		// The whole cluster dies at once, mid-write.
		at := time.Now()
		all := map[uint64]bool{}
		for i := range 3 {
			h.ch.Dies(i)
		}
		for i := range 3 {
			for r := range h.killNode(i) {
				all[r] = true
			}
		}
		for i := 1; i <= 3; i++ {
			net.startNode(i, true)
		}
		h.attachAll()
		resume := h.pause([]int{0, 1, 2})
		h.checkDirty([]int{0, 1, 2}, all, at, "after the whole cluster was killed")
		marks += len(all)
		resume()
	}
	close(h.stop)
	for _, k := range h.ks {
		<-k.stopped
		if k.err != nil {
			t.Fatalf("node %d: %v", k.Node+1, k.err)
		}
	}
	// Clean shutdown of every node.
	marked := map[uint64]bool{}
	for _, k := range h.ks {
		for r, e := range k.Entries {
			if e.State == clustercheck.RHDirty {
				marked[r] = true
			}
		}
		for _, tt := range []ulog.RequestType{ulog.TypePresuspend, ulog.TypePostsuspend, ulog.TypeDtr} {
			if _, err := k.cl.ok(tt, nil); err != nil {
				t.Fatalf("node %d %s: %v", k.Node+1, tt, err)
			}
		}
	}
	if typ == "clustered-disk" {
		img, err := os.ReadFile(dev)
		if err != nil {
			t.Fatal(err)
		}
		hd, _ := header.Decode(img)
		if hd.Magic != header.Magic || hd.NrRegions != regions {
			t.Fatalf("after a clean shutdown the image header is %v, want the kernel's", hd)
		}
		for r := range marked {
			if img[header.BitmapOffset+r/8]&(1<<(r%8)) != 0 {
				t.Fatalf("clean image: region %d, marked at shutdown, is clean", r)
			}
		}
		t.Logf("clean image in the kernel's format; %d regions marked at shutdown are dirty in it", len(marked))
	}
	st := h.ch.Stats()
	t.Logf("%s/%s: %d writes (%d mark+flush), %d recoveries, %d kills, %d lost-mark checks after them, %d rejoins, %d acknowledged marks of dead nodes checked",
		typ, tr, st.Writes, st.Flushes, st.Recoveries, kills, checks, joins, marks)
	if v := h.ch.Violations(); len(v) > 0 {
		t.Fatalf("%d violations; first: %s", len(v), v[0])
	}
	if kills == 0 || st.Recoveries == 0 {
		t.Fatal("the run killed no node or recovered no region: too short")
	}
}

// TestClusterNoCorosync: a dlogd with --cluster corosync on a node whose
// corosync is not running fails CTR of a clustered log with a clear
// message, and still serves the kernel's own core and disk logs.
func TestClusterNoCorosync(t *testing.T) {
	if os.Getenv("DLOG_CLUSTERTEST") == "" {
		t.Skip("set DLOG_CLUSTERTEST=1 (make clustertest): needs root, network namespaces and corosync")
	}
	net := newTestNet(t, 1, "udpu")
	net.startDlogd(1, true)
	cl, err := dial(net.sock(1), "nocoro", 1)
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := cl.call(ulog.TypeCtr, []byte("131072 clustered-core 1024"), 30*time.Second)
	if err != nil || e == 0 {
		t.Fatalf("CTR of a clustered log without corosync: error %d, %v; want a failure", e, err)
	}
	log, _ := os.ReadFile(filepath.Join(net.nodeDir(1), "dlogd.log"))
	if !strings.Contains(string(log), "corosync is not reachable") {
		t.Fatalf("dlogd does not say why CTR failed:\n%s", log)
	}
	core, _ := dial(net.sock(1), "plain-core", 2)
	if _, err := core.ok(ulog.TypeCtr, []byte("131072 core 1 1024")); err != nil {
		t.Fatalf("a core log on a cluster dlogd without corosync: %v", err)
	}
	if _, err := core.ok(ulog.TypeResume, nil); err != nil {
		t.Fatal(err)
	}
}
