package vmharness

import (
	"slices"
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

// TestResyncWriteRegions: 16 distinct regions, one in each sixteenth of the
// mirror, the first at the far end, never in ascending order.
func TestResyncWriteRegions(t *testing.T) {
	got := ResyncWriteRegions(192, 16)
	want := []int{186, 102, 18, 126, 42, 150, 66, 174, 90, 6, 114, 30, 138, 54, 162, 78}
	if !slices.Equal(got, want) {
		t.Fatalf("ResyncWriteRegions(192, 16) = %v; want %v", got, want)
	}
	span := map[int]bool{}
	for _, r := range got {
		span[r/12] = true
	}
	if len(span) != 16 {
		t.Fatalf("%v covers %d of the 16 spans", got, len(span))
	}
	for _, bad := range [][2]int{{192, 14}, {192, 0}, {8, 16}} {
		if r := ResyncWriteRegions(bad[0], bad[1]); r != nil {
			t.Fatalf("ResyncWriteRegions(%d, %d) = %v; want nil", bad[0], bad[1], r)
		}
	}
}

// TestResyncWriteMarkdown: the write-during-resync section pools every
// write of every round for the median and max, takes the median of the
// runs' create-to-last-write times, sums the give-back counters, and
// gives the 2-node / single-node ratio of the median write latency.
func TestResyncWriteMarkdown(t *testing.T) {
	r := &BenchResults{Kernel: "6.1.0-57-amd64", Rounds: 2, Bytes: 16 << 20,
		Configs: []string{ClBenchClusterCore, ClBenchClusterDisk, ClBenchSingleCore, ClBenchSingleDisk}}
	add := func(cfg string, round int, secs float64, group map[string]uint64, irr uint64, ms ...float64) {
		r.Runs = append(r.Runs, BenchRun{Config: cfg, Round: round, Op: ClBenchResyncWrite, Seconds: secs, WriteMs: ms, Group: group,
			Requests: map[string]uint64{"IS_REMOTE_RECOVERING": irr, "FLUSH": 9}})
	}
	add(ClBenchClusterCore, 1, 3, map[string]uint64{"wants_sent": 4, "taken_back": 3}, 6, 400, 10, 300)
	add(ClBenchClusterCore, 2, 5, map[string]uint64{"wants_sent": 2, "taken_back": 2, "given_back": 1}, 6, 200, 900, 100)
	add(ClBenchSingleCore, 1, 1, nil, 2, 5, 1, 3)
	add(ClBenchSingleCore, 2, 2, nil, 2, 2, 4, 250)
	// 2-node core: latencies 10 100 200 300 400 900, median 250, max 900;
	// single-node core: 1 2 3 4 5 250, median 3.5: 71.43x.
	md := r.ClusterMarkdown(ClusterBenchMeta{Date: "2026-12-08", Host: "test host", LoadBefore: "1 1 1", LoadAfter: "1 1 1", Command: "make vmclusterbench"})
	mustContain(t, md,
		"## Writes during resync",
		"| 2-node clustered-core | 6 | 250.0 | 900.0 | 300.0 | 4 | 4.00 | 2.00 | 6 | 5 | 1 |",
		"| single-node clustered-core | 6 | 3.5 | 250.0 | 3.5 | 1 | 1.50 | 0.67 | 0 | 0 | 0 |",
		"- 2-node clustered-core against single-node clustered-core: 71.43x (250.0 ms against 3.5 ms)",
		"- 2-node clustered-disk against single-node clustered-disk: not measured",
		"| 1 | 2-node clustered-core | write during resync | 3.000 |",
	)
	if strings.Contains(md, "| 2-node clustered-disk | 0 |") {
		t.Fatal("a configuration without write-during-resync runs has a row")
	}
	// No such runs: no section.
	r.Runs = nil
	if md := r.ClusterMarkdown(ClusterBenchMeta{Command: "make vmclusterbench"}); strings.Contains(md, "Writes during resync") {
		t.Fatal("a section for writes during resync without any run")
	}
}
