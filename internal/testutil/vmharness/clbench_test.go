package vmharness

import (
	"strings"
	"testing"
)

// TestClusterMarkdown: the targets are ratios of medians of the same op,
// judged against each target's bound; a missing config says so.
func TestClusterMarkdown(t *testing.T) {
	r := &BenchResults{Kernel: "6.1.0-57-amd64", Rounds: 3, Bytes: 16 << 20,
		Configs: []string{ClBenchClusterCore, ClBenchClusterDisk, ClBenchSingleDisk}}
	add := func(cfg, op string, secs ...float64) {
		for i, s := range secs {
			r.Runs = append(r.Runs, BenchRun{Config: cfg, Round: i + 1, Op: op, Seconds: s,
				Requests: map[string]uint64{"FLUSH": 8192, "IN_SYNC": 8192, "MARK_REGION": 4096, "CLEAR_REGION": 4096}})
		}
	}
	add(ClBenchClusterDisk, "write 4K", 30, 24, 99) // median 30
	add(ClBenchSingleDisk, "write 4K", 20, 25, 10)  // median 20: 1.50x, missed
	add(ClBenchClusterDisk, "resync", 9, 8, 10)     // median 9
	add(ClBenchSingleDisk, "resync", 7, 6, 8)       // median 7: 1.29x, met
	md := r.ClusterMarkdown(ClusterBenchMeta{Date: "2026-12-07", Host: "test host", LoadBefore: "1 1 1", LoadAfter: "2 2 2", Command: "make vmclusterbench"})
	mustContain(t, md,
		"- clustered-disk 4 KiB writes, 2 nodes vs single-node: 1.50x (30.00 s against 20.00 s; target ≤ 1.3x) — **missed**",
		"- idle initial resync, clustered-disk, 2 nodes vs single-node: 1.29x (9.00 s against 7.00 s; target ≤ 1.5x) — **met**",
		"- clustered-core 4 KiB writes, 2 nodes vs single-node: not measured",
		"| 2-node clustered-disk | 30.00 (24.00–99.00) | 9.00 (8.00–10.00) | 6.00 | – |",
		"- **2-node clustered-disk**: 6.00 (FLUSH 2.00, IN_SYNC 2.00, CLEAR_REGION 1.00, MARK_REGION 1.00); 7.324 ms per write",
		"load average before 1 1 1, after 2 2 2. Command: `make vmclusterbench`",
	)
	if strings.Contains(md, "exceeded its") {
		t.Fatal("a load within the host's cores flagged as overload")
	}
	// A host busier than its cores: the ratios are flagged.
	md = r.ClusterMarkdown(ClusterBenchMeta{Date: "2026-12-07", Host: "test host", LoadBefore: "1.50 1 1", LoadAfter: "9.17 8.26 6.68", Command: "make vmclusterbench", Cores: 2})
	mustContain(t, md, "**The host's 1-minute load average (1.50 1 1 before, 9.17 8.26 6.68 after) exceeded its 2 cores:")
}
