package vmharness

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// BenchFile is the benchmark's results file on the results disk.
const BenchFile = "bench.json"

// BenchResults is what the guest's bench scenario measured.
type BenchResults struct {
	Kernel  string     `json:"kernel"`
	CPUs    int        `json:"cpus,omitempty"` // online in the guest; 0 in reports from before it was recorded: 1
	Rounds  int        `json:"rounds"`
	Bytes   int        `json:"bytes"` // per timed run
	Fio     bool       `json:"fio"`
	Configs []string   `json:"configs"` // in display order
	Runs    []BenchRun `json:"runs"`
	// CmirrordMissing says why the boot had no cmirrord rows ("" when it
	// had them).
	CmirrordMissing string `json:"cmirrord_missing,omitempty"`
}

// BenchRun is one timed run of one operation on one configuration.
type BenchRun struct {
	Config   string            `json:"config"`
	Round    int               `json:"round"`
	Op       string            `json:"op"` // "write 4K", "read 1M", "fio randwrite 4K", ...
	Seconds  float64           `json:"seconds"`
	Requests map[string]uint64 `json:"requests,omitempty"` // userspace logs: kernel requests during the run, by type
	// dlogd's disk logs: bitmap writes during the run, and the daemon's
	// own p99 flush latency after it (SIGUSR1 dump).
	DiskFlushes uint64 `json:"disk_flushes,omitempty"`
	P99Flush    string `json:"p99_flush,omitempty"`
	// Bytes is what the run moved when it is not BenchResults.Bytes (the
	// cmirrord rows write less).
	Bytes int `json:"bytes,omitempty"`
	// Phases is where dlogd's flushes spent their time during the run
	// (its flush-path timers, per flush).
	Phases string `json:"phases,omitempty"`
	// WriteMs are the latencies of a "write during resync" run's writes,
	// ms, in the order written; Group is the cluster log's group counters
	// (dlogd's state dump, "group") on the writer's node after its writes.
	WriteMs []float64         `json:"write_ms,omitempty"`
	Group   map[string]uint64 `json:"group,omitempty"`
}

// Bench config names the report refers to.
const (
	BenchKernelCore  = "kernel core"
	BenchKernelDisk  = "kernel disk"
	BenchBare        = "bare responder (clustered-core)"
	BenchBarePoll    = "bare responder on Go's netpoller"
	BenchBareIF      = "bare responder + integrated_flush"
	BenchDlogdCore   = "dlogd clustered-core"
	BenchDlogdDisk   = "dlogd clustered-disk"
	BenchDlogdCoreIF = "dlogd clustered-core + integrated_flush"
	BenchDlogdDiskIF = "dlogd clustered-disk + integrated_flush"
	// BenchDlogdCorePoll is dlogd with --poll: run only in a guest with
	// more than one vCPU (DLOG_VM_BENCH_CPUS).
	BenchDlogdCorePoll = "dlogd clustered-core --poll 1ms"
	// BenchCmirrord is the name of a cmirrord row: log type, transport.
	BenchCmirrord = "cmirrord %s, corosync %s"
)

// Anchors measured on this machine kind (docs/anchors.md §8): 16 MiB of
// 4 KiB O_DIRECT writes, seconds.
const (
	AnchorBareLow    = 8.0
	AnchorBareHigh   = 9.2
	AnchorKernelDisk = 1.0
)

// BenchStat is the summary of one (config, op).
type BenchStat struct {
	Median, Min, Max float64
	N                int
	RoundTrips       float64           // kernel requests per dd block (userspace logs), median over rounds
	ByType           map[string]uint64 // requests of the median run, by type
	DiskFlushes      float64           // dlogd disk logs: bitmap writes per dd block, median over rounds
	P99Flush         string            // of the median run
	// PerOp is the median time of one dd block (one 4 KiB write for
	// "write 4K"), ms: comparable across rows that moved different sizes.
	PerOp  float64
	Phases string // dlogd: where its flushes spent their time, in the median run
}

// Stats summarises the runs by config and op.
func (r *BenchResults) Stats() map[string]map[string]BenchStat {
	group := map[string]map[string][]BenchRun{}
	for _, run := range r.Runs {
		if group[run.Config] == nil {
			group[run.Config] = map[string][]BenchRun{}
		}
		group[run.Config][run.Op] = append(group[run.Config][run.Op], run)
	}
	out := map[string]map[string]BenchStat{}
	for c, ops := range group {
		out[c] = map[string]BenchStat{}
		for op, runs := range ops {
			sort.Slice(runs, func(i, j int) bool { return runs[i].Seconds < runs[j].Seconds })
			med := runs[len(runs)/2]
			st := BenchStat{Median: median(runs, func(b BenchRun) float64 { return b.Seconds }), Min: runs[0].Seconds, Max: runs[len(runs)-1].Seconds, N: len(runs),
				Phases: med.Phases}
			if blocks := opBlocks(op, cmp.Or(med.Bytes, r.Bytes)); blocks > 0 {
				st.PerOp = median(runs, func(b BenchRun) float64 {
					return b.Seconds * 1000 / float64(opBlocks(op, cmp.Or(b.Bytes, r.Bytes)))
				})
			}
			if blocks := opBlocks(op, cmp.Or(med.Bytes, r.Bytes)); blocks > 0 && med.Requests != nil {
				st.RoundTrips = median(runs, func(b BenchRun) float64 { return float64(total(b.Requests)) / float64(blocks) })
				st.ByType = med.Requests
				st.DiskFlushes = median(runs, func(b BenchRun) float64 { return float64(b.DiskFlushes) / float64(blocks) })
				st.P99Flush = med.P99Flush
			}
			out[c][op] = st
		}
	}
	return out
}

func median(runs []BenchRun, f func(BenchRun) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func total(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// opBlocks is the number of I/O calls an op makes: "write 4K" of 16 MiB is 4096.
func opBlocks(op string, bytes int) int {
	switch {
	case strings.HasSuffix(op, " 4K"):
		return bytes / 4096
	case strings.HasSuffix(op, " 1M"):
		return bytes / (1 << 20)
	}
	return 0
}

// ByCount returns m's keys (request types, say) in the order reports print
// them: largest count first, equal counts by name.
func ByCount(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b))
	})
	return keys
}

func fmtCounts(m map[string]uint64, per float64) string {
	var parts []string
	for _, k := range ByCount(m) {
		if v := float64(m[k]) / per; v >= 0.005 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, v))
		}
	}
	return strings.Join(parts, ", ")
}

func ratio(a, b float64) string {
	if b <= 0 || a <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// Markdown renders the report: the table, the targets of issue #15, what
// limits the userspace logs, and every run.
func (r *BenchResults) Markdown(date, host string) string {
	st := r.Stats()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	ops := []string{"write 1M", "write 4K", "read 1M", "read 4K"}
	if r.Fio {
		ops = append(ops, "fio randwrite 4K")
	}
	p("# dlog against the real kernel: O_DIRECT through dm-mirror, by dirty log (make vmbench)\n\n")
	p("Measured %s on %s: Debian's kernel %s under qemu TCG (`-smp %d`, no KVM), in one boot. ", date, host, r.Kernel, max(r.CPUs, 1))
	p("Each run moves %d MiB with busybox `dd` and `oflag=direct`/`iflag=direct` through a 64 MiB two-leg mirror ", r.Bytes>>20)
	p("(loop devices in tmpfs, 512 KiB regions, created `nosync`); legs verified by md5 after every write run. ")
	p("LVM2's cmirrord (built from Debian's lvm2 source by scripts/vm/cmirrord.sh) serves its rows over a one-node corosync on loopback; ")
	p("it is so slow here that its rows only write, and less (the size is in the run list): compare them by the ms per 4 KiB write. ")
	p("%d rounds, configurations interleaved within each round; the table shows the median (min–max). ", r.Rounds)
	if !r.Fio {
		p("fio was not available in the guest, so dd only. ")
	}
	p("Ratios are per 4 KiB write against the kernel's own disk log and against the bare responder, in the same boot. Chart: `vm-results.png`; raw runs: `vm-results.json`. ")
	p("The host is shared: the min–max ranges show how much its load moved single runs, and differences of a few tens of µs per request are within that noise.\n\n")
	if r.CmirrordMissing != "" {
		p("No cmirrord rows in this boot: %s.\n\n", r.CmirrordMissing)
	}

	per := func(c string) float64 { return st[c]["write 4K"].PerOp }
	p("| log | ")
	for _, op := range ops {
		p("%s (s) | ", op)
	}
	p("ms per 4K write | 4K write vs kernel disk | 4K write vs bare | requests per 4K write |\n|---|")
	for range ops {
		p("---|")
	}
	p("---|---|---|---|\n")
	for _, c := range r.Configs {
		cs := st[c]
		p("| %s | ", c)
		for _, op := range ops {
			s, ok := cs[op]
			if !ok {
				p("– | ")
				continue
			}
			p("%.2f (%.2f–%.2f) | ", s.Median, s.Min, s.Max)
		}
		w := cs["write 4K"]
		rt := "–"
		if w.RoundTrips > 0 {
			rt = fmt.Sprintf("%.2f", w.RoundTrips)
		}
		p("%s | %s | %s | %s |\n", fmtF(w.PerOp), ratio(w.PerOp, per(BenchKernelDisk)), ratio(w.PerOp, per(BenchBare)), rt)
	}

	// Targets (issue #15), per 4 KiB write, same boot.
	p("\n## Targets\n\n")
	target := func(what string, got, limit float64) {
		verdict := "**met**"
		if !(got > 0 && got <= limit) {
			verdict = "**missed**"
		}
		p("- %s: %s (target ≤ %.2f) — %s\n", what, fmtF(got), limit, verdict)
	}
	kcost := per(BenchKernelDisk) - per(BenchKernelCore)
	dcost := per(BenchDlogdDisk) - per(BenchDlogdCore)
	if kcost > 0 && per(BenchDlogdDisk) > 0 && per(BenchDlogdCore) > 0 {
		target(fmt.Sprintf("the disk path: (dlogd clustered-disk − clustered-core) / (kernel disk − kernel core) per 4 KiB write, %.3f ms / %.3f ms", dcost, kcost), dcost/kcost, 1.5)
	}
	if bif, dif := per(BenchBareIF), per(BenchDlogdDiskIF); bif > 0 && dif > 0 && kcost > 0 {
		target(fmt.Sprintf("dlogd clustered-disk + integrated_flush / (bare responder + integrated_flush + the kernel's disk I/O cost), %.3f ms / (%.3f + %.3f) ms", dif, bif, kcost), dif/(bif+kcost), 1.0)
	}
	if bw, cw := per(BenchBare), per(BenchDlogdCore); bw > 0 && cw > 0 {
		target(fmt.Sprintf("dlogd clustered-core / the bare responder (same requests), %.3f ms / %.3f ms", cw, bw), cw/bw, 1.0)
	}
	if bw, pw := per(BenchBare), per(BenchDlogdCorePoll); bw > 0 && pw > 0 && r.CPUs > 1 {
		target(fmt.Sprintf("dlogd clustered-core --poll / the bare responder, %d vCPUs, %.3f ms / %.3f ms", r.CPUs, pw, bw), pw/bw, 0.8)
	}
	if bif, cif := per(BenchBareIF), per(BenchDlogdCoreIF); bif > 0 && cif > 0 {
		target(fmt.Sprintf("dlogd clustered-core + integrated_flush / the bare responder + integrated_flush, %.3f ms / %.3f ms", cif, bif), cif/bif, 1.0)
	}
	for _, tr := range []string{"udpu", "knet"} {
		for _, lt := range []string{"clustered-core", "clustered-disk"} {
			cm, dl := per(fmt.Sprintf(BenchCmirrord, lt, tr)), per("dlogd "+lt)
			if cm > 0 && dl > 0 {
				p("- cmirrord %s over corosync %s: %.2f ms per 4 KiB write, dlogd %s %.2f ms: dlogd is %.1fx faster (dlogd / cmirrord %.3f).\n", lt, tr, cm, lt, dl, cm/dl, dl/cm)
			}
		}
	}
	p("- Anchors for this machine kind (docs/anchors.md §8, separate boots): kernel disk ~%.1f s, a bare Go responder %.1f–%.1f s. In this boot: kernel disk %s, bare responder %s.\n",
		AnchorKernelDisk, AnchorBareLow, AnchorBareHigh, fmtS(st[BenchKernelDisk]["write 4K"].Median), fmtS(st[BenchBare]["write 4K"].Median))

	// What limits it.
	p("\n## Round trips per write, and what limits a userspace log\n\n")
	for _, c := range r.Configs {
		w := st[c]["write 4K"]
		if w.RoundTrips == 0 {
			continue
		}
		p("- **%s**: %.2f requests per 4 KiB write (%s); %.3f ms per write, %.0f µs per request.",
			c, w.RoundTrips, fmtCounts(w.ByType, float64(opBlocks("write 4K", r.Bytes))), w.PerOp, w.PerOp*1000/w.RoundTrips)
		if w.DiskFlushes > 0 {
			p(" Bitmap writes to the log device: %.2f per 4 KiB write; dlogd's p99 flush latency %s.", w.DiskFlushes, w.P99Flush)
		}
		if w.Phases != "" && w.Phases != "no flushes" {
			p(" Its flushes (median run): %s.", w.Phases)
		}
		p("\n")
		if rd := st[c]["read 4K"]; rd.RoundTrips > 0 {
			p("  4 KiB reads: %.2f requests per read (%s).\n", rd.RoundTrips, fmtCounts(rd.ByType, float64(opBlocks("read 4K", r.Bytes))))
		}
	}
	bare := st[BenchBare]["write 4K"]
	if bare.PerOp > 0 && bare.RoundTrips > 0 {
		perReq := bare.PerOp / bare.RoundTrips * 1000
		p("\nThe bare responder does nothing but answer, so its %.0f µs per request is the kernel round trip itself under emulation: "+
			"the mirror's worker thread sends a netlink multicast, sleeps, the daemon wakes, reads, answers, the kernel's connector callback wakes the worker. "+
			"Every 4 KiB write to a clean region costs that several times (IN_SYNC twice for the region-hash entry, MARK and FLUSH before the write is issued, CLEAR and FLUSH after it), "+
			"which is why any userspace log is an order of magnitude behind the kernel's in-memory calls. ", perReq)
		for _, c := range []string{BenchBarePoll, BenchDlogdCore, BenchDlogdDisk} {
			w := st[c]["write 4K"]
			if w.RoundTrips == 0 {
				continue
			}
			extra := (w.PerOp - bare.PerOp) / w.RoundTrips * 1000
			p("%s: %+.0f µs per request against that floor. ", c, extra)
		}
		if st[BenchBarePoll]["write 4K"].RoundTrips > 0 {
			p("The bare responder on Go's netpoller differs from the plain one only in how it waits for a datagram (non-blocking recvmsg until EAGAIN, park the goroutine, epoll, wake, recvmsg again, instead of one blocking recvfrom): " +
				"its extra cost per request is what a Go daemon pays for receiving through the runtime's poller, before any work of its own. ")
		}
		p("`integrated_flush` folds the marks into the FLUSH and saves a round trip and a half per write; the disk logs add, per write, one O_DIRECT write of the bitmap and a device cache flush for the marks, " +
			"and for the clears a cache flush of both legs, a bitmap write and a device cache flush, as the kernel's disk log does (docs/performance.md).\n")
	}

	p("\n## Every run\n\n| round | log | op | seconds | MiB | requests |\n|---|---|---|---|---|---|\n")
	runs := append([]BenchRun(nil), r.Runs...)
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Round < runs[j].Round })
	for _, run := range runs {
		p("| %d | %s | %s | %.3f | %g | %s |\n", run.Round, run.Config, run.Op, run.Seconds, float64(cmp.Or(run.Bytes, r.Bytes))/(1<<20), fmtCounts(run.Requests, 1))
	}
	return b.String()
}

func fmtF(v float64) string {
	if v <= 0 || math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtS(v float64) string {
	if v <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f s", v)
}
