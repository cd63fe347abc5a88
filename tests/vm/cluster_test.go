package vm_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// TestVMCluster is make vmclustertest: for each scenario, 2 or 3 qemu
// guests of the cached Debian kernel boot together, share the mirror legs,
// the log device and a mailbox disk (raw images with cache=none and
// share-rw), talk to each other through a UDP hub on 127.0.0.1 (no host
// networking), and each runs Debian's corosync, the cgo dlogd --cluster
// corosync built from this checkout and a real dm-mirror with a
// clustered-disk or clustered-core userspace log. Every guest writes its
// report to its own results disk; the host checks each node's steps.
//
//	DLOG_VMCLUSTER=1                    run at all
//	DLOG_VMCLUSTER_SCENARIOS=basic,...  scenarios (default: all of clusterScenarios)
//	DLOG_VMCLUSTER_LOG=clustered-disk   the log type (or clustered-core)
//	DLOG_VMCLUSTER_CUT=45s              how long partition cuts the link
//	DLOG_VM_TIMEOUT=9m                  each guest's watchdog
//
// Files stay in build/vm/cluster/<scenario>/: the shared images and
// node<i>/ (console.log, results/). The set-up (make vmcluster-deps) is
// scripts/vm/deps.sh, then scripts/vm/cluster-deps.sh.
func TestVMCluster(t *testing.T) {
	h, extra := prepareCluster(t, "DLOG_VMCLUSTER", "the multi-kernel cluster tests are off: run them with make vmclustertest (DLOG_VMCLUSTER=1)")
	var err error
	logType := os.Getenv("DLOG_VMCLUSTER_LOG")
	if logType == "" {
		logType = "clustered-disk"
	}
	if logType != "clustered-disk" && logType != "clustered-core" {
		t.Fatalf("DLOG_VMCLUSTER_LOG=%q: want clustered-disk or clustered-core", logType)
	}
	cut := 45 * time.Second
	if v := os.Getenv("DLOG_VMCLUSTER_CUT"); v != "" {
		if cut, err = time.ParseDuration(v); err != nil || cut < 5*time.Second {
			t.Fatalf("DLOG_VMCLUSTER_CUT=%q: want a Go duration of at least 5s", v)
		}
	}
	want := vmharness.SplitScenarios(os.Getenv("DLOG_VMCLUSTER_SCENARIOS"))
	all := clusterScenarios()
	if len(want) == 0 {
		for _, sc := range all {
			want = append(want, sc.name)
		}
	}
	byName := make(map[string]clusterScenario)
	for _, sc := range all {
		byName[sc.name] = sc
	}
	for _, name := range want {
		sc, ok := byName[name]
		if !ok {
			t.Errorf("DLOG_VMCLUSTER_SCENARIOS: unknown scenario %q", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			runClusterScenario(t, h, sc, clusterRunOpts{logType: logType, initrd: extra, cut: cut})
			t.Logf("scenario %s (%d guests, %s): %.1f s of wall time", name, sc.nodes, logType, time.Since(start).Seconds())
		})
	}
}

// prepareCluster is prepare plus what every cluster boot needs: the
// cluster initramfs (returned) and the cgo dlogd as the guests' dlogd.
func prepareCluster(t *testing.T, optIn, off string) (*host, string) {
	h := prepare(t, optIn, off)
	extra := filepath.Join(h.kernel.Dir, "cluster.cpio.gz")
	if _, err := os.Stat(extra); err != nil {
		t.Fatalf("%v: run make vmcluster-deps (scripts/vm/cluster-deps.sh) first", err)
	}
	var err error
	if h.dlogd, err = goBuildCluster(t, h.root, filepath.Join(h.root, "build", "vm", "bin", "dlogd-cluster")); err != nil {
		t.Fatal(err)
	}
	return h, extra
}

// clusterScenario is one scenario: the guest's scenario name, how many
// guests, which one the host kills at the guest's kill marker (0: none),
// and whether the host cuts a node's link (partition).
type clusterScenario struct {
	name   string
	guest  string
	nodes  int
	victim int
	// isolate is the node whose link the host cuts when every node has
	// reached phase cutPhase (0: no partition).
	isolate int
	// discard passes the guests' discards through to the shared images
	// (vmharness.Config.SharedDiscard).
	discard bool
}

func clusterScenarios() []clusterScenario {
	return []clusterScenario{
		{name: "basic", guest: "cl-basic", nodes: 2},
		{name: "kill-node", guest: "cl-kill-node", nodes: 2, victim: 2},
		{name: "kill-dlogd", guest: "cl-kill-dlogd", nodes: 2},
		{name: "reconnect", guest: "cl-reconnect", nodes: 2},
		{name: "suspend-write", guest: "cl-suspend-write", nodes: 2},
		{name: "three-node", guest: "cl-three-node", nodes: 3, victim: 3},
		{name: "no-stall", guest: "cl-no-stall", nodes: 2, victim: 2},
		{name: "partition", guest: "cl-partition", nodes: 3, victim: 3, isolate: 3},
		{name: "partition-two-node", guest: "cl-partition", nodes: 2, victim: 2, isolate: 2},
		// A hazard demonstration, not a pass of dlogd: dm-raid1 sends a
		// DISCARD to every leg without asking the log, so a discard racing
		// another node's recovery of its region leaves the legs different
		// (docs/design/cluster.md, "DISCARD and PREFLUSH bios").
		{name: "discard-hazard", guest: "cl-discard-hazard", nodes: 2, discard: true},
	}
}

type clusterRunOpts struct {
	logType string
	initrd  string
	cut     time.Duration
	extra   []string // more kernel command line words for every guest
}

// Sizes of the shared images; tests/vmguest/cluster_linux.go must agree.
const (
	clusterMailboxBytes = 1 << 20
	clusterLegBytes     = 48 << 20
	clusterLogBytes     = 2 << 20
	// mailboxSlot is the mailbox's slot (host at 0, node n at n, the fence
	// record of node n at 64+n), one filesystem block each.
	mailboxSlot = 4096
	// clusterKillMarker on a guest's console makes the host kill its qemu.
	clusterKillMarker = "DLOG-VMC-KILL-NOW"
	// Phases of the host's mailbox sector (sector 0) that the guests of a
	// partition scenario wait for.
	hostPhaseCut    = 1
	hostPhaseHealed = 2
	// cutPhase: every node has published it once its writes are under way.
	cutPhase = 3
)

// runClusterScenario boots the scenario's guests, checks their reports
// and returns their results by node number (index 0 unused; nil for a
// node that produced none).
func runClusterScenario(t *testing.T, h *host, sc clusterScenario, o clusterRunOpts) []*vmharness.Result {
	dir := filepath.Join(h.root, "build", "vm", "cluster", sc.name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := notTmpfs(dir); err != nil {
		t.Fatal(err)
	}
	var shared []string
	for _, img := range []struct {
		name string
		size int64
	}{{"mailbox.img", clusterMailboxBytes}, {"leg-a.img", clusterLegBytes}, {"leg-b.img", clusterLegBytes}, {"log.img", clusterLogBytes}} {
		// Written whole with zeros, not sparse: the guests' O_DIRECT
		// writes are then plain overwrites of allocated blocks (a
		// sub-block direct write into a hole makes the host filesystem
		// zero the rest of the block, which races with another qemu's
		// write to that block).
		p := filepath.Join(dir, img.name)
		if err := os.WriteFile(p, make([]byte, img.size), 0o644); err != nil {
			t.Fatal(err)
		}
		shared = append(shared, p)
	}
	hub, err := vmharness.NewHub(sc.nodes)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if sc.isolate > 0 {
		go partitionDirector(ctx, t, hub, shared[0], sc, o.cut)
	}
	results := make([]*vmharness.Result, sc.nodes+1)
	errs := make([]error, sc.nodes+1)
	var wg sync.WaitGroup
	for i := 1; i <= sc.nodes; i++ {
		work := filepath.Join(dir, fmt.Sprintf("node%d", i))
		cfg := vmharness.Config{
			Kernel:        h.kernel,
			Guest:         h.guest,
			Dlogd:         h.dlogd,
			Options:       vmharness.Options{Scenarios: []string{sc.guest}, Timeout: h.guestTimeout, Verbose: os.Getenv("DLOG_VM_VERBOSE") == "1"},
			Timeout:       h.guestTimeout + 2*time.Minute,
			WorkDir:       work,
			MemoryMB:      768,
			SharedDisks:   shared,
			SharedDiscard: sc.discard,
			Initrds:       []string{o.initrd},
			NetArgs:       hub.NetArgs(i),
			ExtraArgs: []string{
				fmt.Sprintf("dlog.node=%d", i), fmt.Sprintf("dlog.nodes=%d", sc.nodes),
				"dlog.clog=" + o.logType, fmt.Sprintf("dlog.victim=%d", sc.victim),
			},
		}
		cfg.ExtraArgs = append(cfg.ExtraArgs, o.extra...)
		if testing.Verbose() && os.Getenv("DLOG_VM_QUIET") != "1" {
			cfg.Console, cfg.ConsolePrefix = os.Stdout, fmt.Sprintf("n%d| ", i)
		}
		if i == sc.victim && sc.isolate == 0 {
			cfg.KillOn, cfg.KillDelay = clusterKillMarker, 200*time.Millisecond
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = vmharness.Run(ctx, cfg)
			if results[i] != nil && results[i].Killed {
				// The harness's fencing device: qemu has exited, the node
				// can write nothing more; the survivors' dlogd
				// --fence-confirm (dlog-vmguest fenced <node>) reads this.
				if err := recordFenced(shared[0], i); err != nil {
					t.Errorf("node %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	frames, dropped := hub.Stats()
	t.Logf("hub: %d frames, %d dropped", frames, dropped)

	for i := 1; i <= sc.nodes; i++ {
		t.Run(fmt.Sprintf("node%d", i), func(t *testing.T) {
			res, err := results[i], errs[i]
			work := filepath.Join(dir, fmt.Sprintf("node%d", i))
			if res != nil {
				t.Logf("qemu ran %.1f s; console log %s", res.Elapsed.Seconds(), res.ConsoleLog)
				saveResults(t, filepath.Join(work, "results"), res.Files)
			}
			if i == sc.victim && sc.isolate == 0 {
				if res == nil || !res.Killed {
					t.Errorf("node %d was to be killed at %s but was not (err %v)", i, clusterKillMarker, err)
					if res != nil && res.Report != nil {
						checkReport(t, res, []string{sc.guest})
					}
				} else {
					t.Logf("node %d killed at the marker after %.1f s", i, res.Elapsed.Seconds())
				}
				return
			}
			if err != nil {
				t.Error(err)
			}
			if res == nil || res.Report == nil {
				t.Errorf("node %d: no report", i)
				return
			}
			checkReport(t, res, []string{sc.guest})
		})
	}
	return results
}

// partitionDirector cuts node sc.isolate off the hub once every node has
// published cutPhase in the mailbox, heals the segment after cut, and
// publishes each step in the host's mailbox sector for the guests.
func partitionDirector(ctx context.Context, t *testing.T, hub *vmharness.Hub, mailbox string, sc clusterScenario, cut time.Duration) {
	f, err := os.OpenFile(mailbox, os.O_RDWR, 0)
	if err != nil {
		t.Errorf("partition: %v", err)
		return
	}
	defer f.Close()
	publish := func(phase int) {
		b := make([]byte, mailboxSlot)
		copy(b, fmt.Sprintf("dlogvmc phase=%d acked=0\n", phase))
		_, err := f.WriteAt(b, 0)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			t.Errorf("partition: writing the host's mailbox sector: %v", err)
		}
	}
	for {
		ready := true
		for n := 1; n <= sc.nodes; n++ {
			if mailboxPhase(f, n) < cutPhase {
				ready = false
			}
		}
		if ready {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	hub.Isolate(sc.isolate)
	publish(hostPhaseCut)
	t.Logf("partition: node %d cut off at %s for %v", sc.isolate, time.Now().Format(time.TimeOnly), cut)
	select {
	case <-ctx.Done():
		return
	case <-time.After(cut):
	}
	hub.Heal()
	publish(hostPhaseHealed)
	t.Logf("partition: healed at %s", time.Now().Format(time.TimeOnly))
}

// recordFenced writes the fence record of node into the mailbox image
// (tests/vmguest's fenceSector and fenceRecord must agree).
func recordFenced(mailbox string, node int) error {
	f, err := os.OpenFile(mailbox, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("fence record: %w", err)
	}
	defer f.Close()
	b := make([]byte, mailboxSlot)
	copy(b, fmt.Sprintf("dlogvmc fenced node=%d\n", node))
	if _, err := f.WriteAt(b, int64(64+node)*mailboxSlot); err != nil {
		return fmt.Errorf("fence record: %w", err)
	}
	return f.Sync()
}

// mailboxPhase reads node n's phase from the mailbox image (-1: unreadable).
func mailboxPhase(f *os.File, n int) int {
	b := make([]byte, mailboxSlot)
	if _, err := f.ReadAt(b, int64(n)*mailboxSlot); err != nil {
		return -1
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	var phase, acked int
	if _, err := fmt.Sscanf(string(line), "dlogvmc phase=%d acked=%d", &phase, &acked); err != nil {
		return 0
	}
	return phase
}

// notTmpfs fails for a directory on tmpfs: qemu's cache=none opens the
// shared images with O_DIRECT, which tmpfs refuses.
func notTmpfs(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		return fmt.Errorf("%s is on tmpfs: the shared images need O_DIRECT (cache=none); put the repository's build/ elsewhere", dir)
	}
	return nil
}

// goBuildCluster builds the cgo dlogd with corosync support (what make
// build-cluster builds); the cluster initramfs carries its libraries.
func goBuildCluster(t *testing.T, root, out string) (string, error) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "corosync", "-o", out, "./cmd/dlogd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the cgo dlogd (go build -tags corosync ./cmd/dlogd) failed: %v\n%s (run make cluster-deps for libcpg-dev and libquorum-dev)", err, b)
	}
	t.Logf("built the cgo dlogd in %.1f s", time.Since(start).Seconds())
	return out, nil
}
