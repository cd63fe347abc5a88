package vmharness

import (
	"fmt"
	"slices"
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
	r.resyncWriteMarkdown(&b)
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

// ClBenchResyncWrite is the cluster benchmark's op of 4 KiB O_DIRECT writes
// on node 1 into a fresh mirror that is resyncing (make vmclusterbench
// VMCLUSTERBENCH_OPS=resyncwrite): BenchRun.WriteMs holds each write's
// latency and Seconds the time from the mirror's create to the last
// write's completion.
const ClBenchResyncWrite = "write during resync"

// ResyncWriteRegions are the regions the "write during resync" op writes,
// in order: one in the middle of each of n equal spans of a mirror of
// regions regions, the spans visited from the far end in a stride of 7
// (n not a multiple of 7: every span once), so that the order is never the
// resync's ascending one and most targets are still out of sync when they
// are written.
func ResyncWriteRegions(regions, n int) []int {
	if n <= 0 || n%7 == 0 || regions < n {
		return nil
	}
	span := regions / n
	out := make([]int, n)
	for i := range out {
		out[i] = (n-1-(i*7)%n)*span + span/2
	}
	return out
}

// ResyncWriteStat summarises one configuration's "write during resync"
// runs: every write of every run pooled for the latencies.
type ResyncWriteStat struct {
	Runs, Writes int
	Median, Max  float64 // ms, of a write
	// Slow counts the writes that took at least SlowWriteMs: those the
	// kernel requeued at least once (see SlowWriteMs).
	Slow int
	// First is the median over runs of the first write's latency, ms:
	// the write into the mirror's far end, out of sync when it is made.
	First  float64
	ToLast float64 // s, median over runs: the mirror's create to its last write's completion
	// RemoteRecovering is IS_REMOTE_RECOVERING requests per write (the
	// kernel asks at most once in 250 ms, answering "recovering" itself in
	// between), pooled over the runs.
	RemoteRecovering float64
	// WantsSent, TakenBack and GivenBack sum the writer's group counters
	// over the runs (cluster configurations): the WANTs its member sent,
	// the regions given back to it, the regions it gave back.
	WantsSent, TakenBack, GivenBack uint64
}

// SlowWriteMs is the latency from which a write during resync counts as
// requeued: dm-raid1 requeues a write the log answers "recovering" for and
// asks again no sooner than 200 ms (its delayed wake) and 250 ms (the
// userspace log's limit) later; an unqueued 4 KiB write under TCG takes
// 2-30 ms.
const SlowWriteMs = 150

// ResyncWrites summarises the "write during resync" runs by configuration.
func (r *BenchResults) ResyncWrites() map[string]ResyncWriteStat {
	out := map[string]ResyncWriteStat{}
	lat := map[string][]float64{}
	var runs = map[string][]BenchRun{}
	for _, run := range r.Runs {
		if run.Op != ClBenchResyncWrite {
			continue
		}
		st := out[run.Config]
		st.Runs++
		st.Writes += len(run.WriteMs)
		st.RemoteRecovering += float64(run.Requests["IS_REMOTE_RECOVERING"])
		st.WantsSent += run.Group["wants_sent"]
		st.TakenBack += run.Group["taken_back"]
		st.GivenBack += run.Group["given_back"]
		for _, ms := range run.WriteMs {
			if ms >= SlowWriteMs {
				st.Slow++
			}
		}
		out[run.Config] = st
		lat[run.Config] = append(lat[run.Config], run.WriteMs...)
		runs[run.Config] = append(runs[run.Config], run)
	}
	for c, st := range out {
		v := slices.Sorted(slices.Values(lat[c]))
		if n := len(v); n > 0 {
			st.Median, st.Max = v[n/2], v[n-1]
			if n%2 == 0 {
				st.Median = (v[n/2-1] + v[n/2]) / 2
			}
			st.RemoteRecovering /= float64(n)
		}
		st.ToLast = median(runs[c], func(b BenchRun) float64 { return b.Seconds })
		st.First = median(runs[c], func(b BenchRun) float64 {
			if len(b.WriteMs) == 0 {
				return 0
			}
			return b.WriteMs[0]
		})
		out[c] = st
	}
	return out
}

// resyncWriteMarkdown renders the "write during resync" section: nothing
// when no such run was made.
func (r *BenchResults) resyncWriteMarkdown(b *strings.Builder) {
	st := r.ResyncWrites()
	if len(st) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("\n## Writes during resync\n\n")
	p("A fresh mirror (no `nosync`) created on the nodes at one barrier, as for the resync; on node 1, as soon as its `dmsetup create` returns, " +
		"one 4 KiB O_DIRECT write (a Go writer: `pwrite` on an aligned buffer, one write at a time, each timed, no process start in the time) " +
		"into the middle of each of 16 equal spans of the mirror, from the far end in a stride of 7 (not the resync's ascending order); " +
		"then full sync, and every written block read back through the mirror and on both legs. Latencies: every write of every round pooled.\n\n")
	p("| log | writes | median write (ms) | max write (ms) | first write (ms, median of the runs) | writes ≥ %d ms (requeued) | create to last write (s) | IS_REMOTE_RECOVERING per write | WANTs sent by node 1 | regions given back to node 1 | given back by node 1 |\n|---|---|---|---|---|---|---|---|---|---|---|\n", SlowWriteMs)
	for _, c := range r.Configs {
		s, ok := st[c]
		if !ok {
			continue
		}
		p("| %s | %d | %.1f | %.1f | %.1f | %d | %.2f | %.2f | %d | %d | %d |\n", c, s.Writes, s.Median, s.Max, s.First, s.Slow, s.ToLast, s.RemoteRecovering, s.WantsSent, s.TakenBack, s.GivenBack)
	}
	p("\nRatios of the median write latency during resync, 2 nodes against single-node (no target):\n\n")
	for _, pair := range [][2]string{{ClBenchClusterCore, ClBenchSingleCore}, {ClBenchClusterDisk, ClBenchSingleDisk}} {
		a, okA := st[pair[0]]
		base, okB := st[pair[1]]
		if !okA || !okB || base.Median <= 0 {
			p("- %s against %s: not measured\n", pair[0], pair[1])
			continue
		}
		p("- %s against %s: %.2fx (%.1f ms against %.1f ms)\n", pair[0], pair[1], a.Median/base.Median, a.Median, base.Median)
	}
	p("\nWhat a write waits for. dm-raid1 asks the log IS_REMOTE_RECOVERING before each write to a region at or above the hint the log last returned; " +
		"the userspace log asks dlogd at most once per 250 ms (a static limit in `dm-log-userspace-base.c`) and answers \"recovering\" itself in between, " +
		"and a write answered \"recovering\" is requeued until dm-raid1's worker runs again (its delayed wake, 200 ms, or an I/O or recovery completion) and asks again: " +
		"any write requeued once takes at least about 250 ms. " +
		"Single-node dlogd answers 0 (no other node recovers) with the hint at its resync cursor: its writes wait only when the kernel's own 250 ms limit answers for them " +
		"(the second write of a run, typically) or when dm-raid1 is copying that region. " +
		"A 2-node log answers 1 for every region out of sync, so each such write waits until the region is recovered and the kernel asks again: " +
		"the writer's member proposes the region first if nobody holds it, or WANTs it from the member that holds it (give-back), " +
		"in both cases only while its own grant has room (fewer than 64 regions); else the write waits for the holder's kernel, or for its own grant to drain, " +
		"as before give-back. The writes that find their region in sync cost what a write to an in-sync region costs (the \"write 4K\" rows): " +
		"most of them here, since the 48 MiB mirror resyncs within 1-1.5 s of its create on either configuration and the first write waits out part of that, " +
		"so the medians and their ratio say little; the first write and the writes requeued are what the resync costs a writer.\n")
}
