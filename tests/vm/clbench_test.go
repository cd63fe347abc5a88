package vm_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// TestVMClusterBench is make vmclusterbench: one two-guest cluster boot
// running the guest's cl-bench scenario (tests/vmguest/scen_clbench_linux.go:
// 4 KiB O_DIRECT writes on node 1, idle initial resyncs and writes during
// a resync, dlogd
// --cluster's clustered-core and clustered-disk logs on both nodes against
// the same logs served single-node on node 1 by dlogd without --cluster),
// then the report:
// bench/vmcluster-results.md and .json.
//
//	DLOG_VMCLUSTER_BENCH=1               run at all
//	DLOG_VMCLUSTER_BENCH_ROUNDS=2        interleaved rounds
//	DLOG_VMCLUSTER_BENCH_OUT=dir         where the report goes (default <repo>/bench)
//	DLOG_VMCLUSTER_BENCH_OPS=resync      only the resyncs (write: only the writes; resyncwrite: only the writes during resync)
//	DLOG_VMCLUSTER_BENCH_DEBUG=1         dlogd --log-level debug: the cluster log's timeline in each node's dlogd.log
func TestVMClusterBench(t *testing.T) {
	h, extra := prepareCluster(t, "DLOG_VMCLUSTER_BENCH", "the real-kernel cluster benchmark is off: run it with make vmclusterbench (DLOG_VMCLUSTER_BENCH=1)")
	rounds := envRounds(t, "DLOG_VMCLUSTER_BENCH_ROUNDS", 2)
	// About four minutes a round on a shared 2-core host, plus the boot.
	h.guestTimeout = max(h.guestTimeout, time.Duration(rounds)*6*time.Minute+5*time.Minute)
	loadBefore := loadAverage()
	start := time.Now()
	sc := clusterScenario{name: "bench", guest: "cl-bench", nodes: 2}
	params := []string{fmt.Sprintf("dlog.benchrounds=%d", rounds)}
	switch v := os.Getenv("DLOG_VMCLUSTER_BENCH_OPS"); v {
	case "":
	case "resync", "write", "resyncwrite":
		params = append(params, "dlog.benchops="+v)
	default:
		t.Fatalf("DLOG_VMCLUSTER_BENCH_OPS=%q: want resync, write or resyncwrite", v)
	}
	if os.Getenv("DLOG_VMCLUSTER_BENCH_DEBUG") == "1" {
		params = append(params, "dlog.cldebug=1")
	}
	results := runClusterScenario(t, h, sc, clusterRunOpts{initrd: extra, logType: "clustered-disk", cut: time.Minute, extra: params})
	t.Logf("cluster benchmark: %.1f s of wall time", time.Since(start).Seconds())
	res := results[1]
	if res == nil || t.Failed() {
		t.FailNow()
	}
	br := benchResults(t, res, vmharness.ClusterBenchFile, "node 1's results disk")
	out := reportDir(t, "DLOG_VMCLUSTER_BENCH_OUT", h.root)
	md := br.ClusterMarkdown(vmharness.ClusterBenchMeta{
		Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Host: hostDescription(),
		LoadBefore: loadBefore, LoadAfter: loadAverage(),
		Command: fmt.Sprintf("make vmclusterbench VMCLUSTERBENCH_ROUNDS=%d", rounds),
		Mirror:  fmt.Sprintf("The mirror: %d MiB, two legs, %d KiB regions, the log device %d MiB", clusterLegBytes>>20, 256, clusterLogBytes>>20),
		Cores:   runtime.NumCPU(),
	})
	writeReport(t, out, "vmcluster-results", br, md, nil)
}

// loadAverage is the host's 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
