package vmharness

import (
	"fmt"
	"strings"
)

// ClusterBenchFile is the cluster benchmark's results file on node 1's
// results disk (make vmclusterbench; a BenchResults with ops "write 4K"
// and "resync").
const ClusterBenchFile = "clbench.json"

// Cluster benchmark configurations: dlogd --cluster serving a mirror on
// both nodes of a two-node cluster, and the same binary without --cluster
// serving a mirror only node 1 has, single-node.
const (
	ClBenchClusterCore = "2-node clustered-core"
	ClBenchClusterDisk = "2-node clustered-disk"
	ClBenchSingleCore  = "single-node clustered-core"
	ClBenchSingleDisk  = "single-node clustered-disk"
)

// ClusterTarget is one of the cluster benchmark's targets: the median of
// Op on Config against Against's, at most Max.
type ClusterTarget struct {
	What, Config, Against, Op string
	Max                       float64
}

// ClusterTargets are issue #12's.
var ClusterTargets = []ClusterTarget{
	{"clustered-disk 4 KiB writes, 2 nodes vs single-node", ClBenchClusterDisk, ClBenchSingleDisk, "write 4K", 1.3},
	{"clustered-core 4 KiB writes, 2 nodes vs single-node", ClBenchClusterCore, ClBenchSingleCore, "write 4K", 2.0},
	{"idle initial resync, clustered-disk, 2 nodes vs single-node", ClBenchClusterDisk, ClBenchSingleDisk, "resync", 1.5},
	{"idle initial resync, clustered-core, 2 nodes vs single-node", ClBenchClusterCore, ClBenchSingleCore, "resync", 1.5},
}

// ClusterBenchMeta is how and where the cluster benchmark ran.
type ClusterBenchMeta struct {
	Date, Host, LoadBefore, LoadAfter, Command string
	Mirror                                     string // the mirror's geometry, for the text
	Cores                                      int    // the host's CPUs: a 1-minute load above them is flagged
}

// overloaded reports whether a 1-minute load average ("1.5 1.2 1.0")
// exceeds cores.
func overloaded(load string, cores int) bool {
	var l1 float64
	if cores <= 0 {
		return false
	}
	if _, err := fmt.Sscan(load, &l1); err != nil {
		return false
	}
	return l1 > float64(cores)
}

// ClusterMarkdown renders the cluster benchmark's report: the table of
// medians, the targets with their ratios, requests per write, every run.
func (r *BenchResults) ClusterMarkdown(m ClusterBenchMeta) string {
	st := r.Stats()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# dlog cluster mode against real kernels: two qemu guests (make vmclusterbench)\n\n")
	p("Measured %s on %s; host load average before %s, after %s. Command: `%s`. ", m.Date, m.Host, m.LoadBefore, m.LoadAfter, m.Command)
	p("Debian's kernel %s under qemu TCG in two guests booted together, sharing the legs and the log device (raw images, `cache=none`, `share-rw=on`), "+
		"each running corosync 3 and `dlogd --cluster corosync`. %s. ", r.Kernel, m.Mirror)
	p("On node 1, 16 MiB of 4 KiB O_DIRECT writes (busybox `dd`) through a `nosync` mirror; node 2 has the cluster mirrors too (a member of their groups) and does no I/O. "+
		"The single-node mirrors exist on node 1 only, with the same log types served by the same dlogd binary without `--cluster` (node 1 switches daemons between the two sets of runs, outside the timings). "+
		"Resync: a fresh mirror (no `nosync`) created on the nodes at one barrier, timed on node 1 from its `dmsetup create` to full sync, with no I/O, after one untimed resync of each configuration (a warm-up: under TCG the first recovery after boot runs through code qemu has not translated yet). "+
		"%d rounds, configurations interleaved within each round; the table shows the median (min–max).\n\n", r.Rounds)
	if overloaded(m.LoadBefore, m.Cores) || overloaded(m.LoadAfter, m.Cores) {
		p("**The host's 1-minute load average (%s before, %s after) exceeded its %d cores: other work shared the CPUs with the guests, "+
			"single-node and 2-node runs alike were slowed by it, and the ratios below measure that as much as dlog.**\n\n", m.LoadBefore, m.LoadAfter, m.Cores)
	}
	p("| log | write 4K (s) | resync (s) | requests per 4K write | log device writes per 4K write |\n|---|---|---|---|---|\n")
	for _, c := range r.Configs {
		w, rs := st[c]["write 4K"], st[c]["resync"]
		flushes := "–"
		if w.DiskFlushes > 0 {
			flushes = fmt.Sprintf("%.2f", w.DiskFlushes)
		}
		p("| %s | %s | %s | %s | %s |\n", c, medRange(w), medRange(rs), fmtF(w.RoundTrips), flushes)
	}
	p("\n## Targets (ratios of medians in the same boots)\n\n")
	for _, t := range ClusterTargets {
		a, base := st[t.Config][t.Op], st[t.Against][t.Op]
		if a.N == 0 || base.N == 0 || base.Median <= 0 {
			p("- %s: not measured\n", t.What)
			continue
		}
		got := a.Median / base.Median
		verdict := "**met**"
		if got > t.Max {
			verdict = "**missed**"
		}
		p("- %s: %.2fx (%s against %s; target ≤ %.1fx) — %s\n", t.What, got, fmtS(a.Median), fmtS(base.Median), t.Max, verdict)
	}
	p("\n## Requests per 4 KiB write (node 1's kernel to its dlogd)\n\n")
	for _, c := range r.Configs {
		w := st[c]["write 4K"]
		if w.N == 0 || w.ByType == nil {
			continue
		}
		p("- **%s**: %.2f (%s); %.3f ms per write\n", c, w.RoundTrips, fmtCounts(w.ByType, float64(opBlocks("write 4K", r.Bytes))), w.Median*1000/float64(opBlocks("write 4K", r.Bytes)))
	}
	p("\n## Every run\n\n| round | log | op | seconds |\n|---|---|---|---|\n")
	for _, run := range r.Runs {
		p("| %d | %s | %s | %.3f |\n", run.Round, run.Config, run.Op, run.Seconds)
	}
	return b.String()
}

func medRange(s BenchStat) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.Median, s.Min, s.Max)
}
