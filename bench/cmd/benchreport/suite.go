package main

import (
	"regexp"
	"strings"
)

// A benchmark is one top-level Benchmark function and how the report
// reads its sub-benchmarks.
type benchmark struct {
	Dir   string // package directory relative to the module root
	Name  string // top-level function, e.g. "BenchmarkFlush"
	Title string // section title in results.md
	About string // what is measured against what (one paragraph)
	// Keep selects the sub-benchmarks to run (nil: all of them).
	Keep *regexp.Regexp
	// Baseline names the baseline a sub-benchmark is compared with: ""
	// when it has none, the sub-benchmark itself when it is a baseline.
	Baseline func(sub string) string
	// Extra lists metrics reported beside ns/op, in column order.
	Extra []string
	// Label renames sub-benchmarks whose names say too little (nil: none).
	Label func(sub string) string
}

// key is the sample key of a sub-benchmark of b.
func (b *benchmark) key(sub string) string { return b.Dir + " " + b.Name + "/" + sub }

// id is "dir.Name", what -only matches.
func (b *benchmark) id() string { return b.Dir + "." + b.Name }

func (b *benchmark) label(sub string) string {
	if b.Label != nil {
		return b.Label(sub)
	}
	return sub
}

// lastElem replaces the last /-separated element of sub by elem.
func lastElem(sub, elem string) string {
	if i := strings.LastIndexByte(sub, '/'); i >= 0 {
		return sub[:i+1] + elem
	}
	return elem
}

// fixed returns a Baseline function comparing every sub-benchmark with
// one named baseline.
func fixed(base string) func(string) string {
	return func(string) string { return base }
}

// suite is every benchmark the report runs, in the order it runs them in
// each round.
var suite = []*benchmark{
	{
		Dir: "bench", Name: "BenchmarkFlush",
		Title: "Flush: dlog against the kernel's whole-bitmap strategy",
		About: "One flush carrying a fixed number of marks (32, then 1) at random regions of a disk log of 2^16 to 2^28 regions " +
			"on a preallocated file: dlog's engine.Flush (only the changed 4 KiB blocks, then one cache flush) against " +
			"the kernel disk log's strategy (dm-log.c disk_flush: header and whole bitmap in one O_DIRECT write, then fdatasync), " +
			"and the floor of one 4 KiB O_DIRECT write + fdatasync.",
		Keep: regexp.MustCompile(`/(impl=dlog|baseline=kernel-strategy|baseline=one-4k-write)$`),
		Baseline: func(sub string) string {
			return lastElem(sub, "baseline=kernel-strategy")
		},
		Extra: []string{"bytes/flush"},
	},
	{
		Dir: "bench", Name: "BenchmarkMapping",
		Title: "One durable mark: anonymous memory + O_DIRECT against MAP_SHARED + msync",
		About: "The engine's choice of mapping (docs/design/engine.md): one mark made durable through the engine " +
			"against a store into a MAP_SHARED mapping of the log made durable by msync of its page.",
		Baseline: fixed("baseline=shared-msync"),
	},
	{
		Dir: "bitmap", Name: "BenchmarkScan",
		Title: "Scan bandwidth: finding the set bits of a sparse 2^30-bit bitmap",
		About: "Every set bit (16 in all) of a 128 MiB bitmap: the find kernels over every word and Bitmap.NextSet " +
			"(which skips empty shards through their counts), against a plain memory read (8 words ORed at a time). " +
			"MB/s is bitmap bytes per second; the summary path reads far less than the bitmap, so its MB/s is effective bandwidth.",
		Keep:     regexp.MustCompile(`^(baseline=word-or|impl=.*)$`),
		Baseline: fixed("baseline=word-or"),
		Extra:    []string{"MB/s"},
	},
	{
		Dir: "bitmap", Name: "BenchmarkPopcount",
		Title:    "Recount: population count of a dense 2^30-bit bitmap",
		About:    "Bitmap.Recount with each kernel against a plain bits.OnesCount64 loop.",
		Baseline: fixed("baseline=onescount"),
		Extra:    []string{"MB/s"},
	},
	{
		Dir: "bitmap", Name: "BenchmarkMarkClear",
		Title: "Mark/clear throughput against goroutines",
		About: "Set then clear distinct regions of a 2^24-region tracked bitmap from 1, 2 and 4 goroutines, each in its own range; " +
			"ns/op is per mark+clear pair over all goroutines, so the speed-up against one goroutine is the throughput scaling. " +
			"The machine has as many cores as GOMAXPROCS says (above): more goroutines than cores cannot scale.",
		Baseline: fixed("goroutines=1"),
	},
	{
		Dir: "iouring", Name: "BenchmarkWrite64x4KiBSync",
		Title: "64 scattered 4 KiB O_DIRECT writes + one fdatasync",
		About: "The iouring writers against serial pwrite calls then fdatasync. The sub-benchmarks are named after the " +
			"method only; in the order of iouring's test suite they are SyncAuto, SyncRing, SyncDirect, then the pwritev fallback.",
		Baseline: fixed("serial-pwrite"),
		Label:    iouringLabel,
	},
	{
		Dir: "iouring", Name: "BenchmarkWrite1x4KiBSync",
		Title:    "One durable 4 KiB O_DIRECT write",
		About:    "As above with one block.",
		Baseline: fixed("serial-pwrite"),
		Label:    iouringLabel,
	},
	{
		Dir: "transport", Name: "BenchmarkUnixRoundTrip",
		Title: "Unix transport round trip",
		About: "An IN_SYNC request and its answer through the unix SOCK_SEQPACKET transport (echo handler, and decoding + replying) " +
			"against a bare Go echo server on the same socket type (and a blocking C-style one).",
		Baseline: fixed("bare/netpoll"),
	},
	{
		Dir: "transport", Name: "BenchmarkIntegrationNetlinkRoundTrip",
		Title:    "Netlink connector round trip",
		About:    "The same over NETLINK_CONNECTOR with a fake kernel multicasting to group 7 (root only; skipped otherwise).",
		Baseline: fixed("bare/netpoll"),
	},
	{
		Dir: "daemon", Name: "BenchmarkInSyncRoundTrip",
		Title: "IN_SYNC round trip through dlogd against a bare echo",
		About: "One IN_SYNC request through the unix transport and the daemon (decode, engine call, reply) against a bare echo " +
			"server on the same socket type with the same frame sizes (issue target: within 1.2x).",
		Baseline: fixed("baseline=echo"),
	},
	{
		Dir: "daemon", Name: "BenchmarkRequestsPerSecond",
		Title: "Requests per second, closed-loop clients",
		About: "1, 2 and 8 clients, each on its own connection and log, sending IN_SYNC, MARK_REGION and CLEAR_REGION in turn; " +
			"the speed-up is against one client.",
		Baseline: fixed("clients=1"),
		Extra:    []string{"req/s"},
	},
}

// iouringLabel names the iouring writers after their sync mode; the
// testing package numbers repeated names (#01, #02) in the order of the
// mechanisms table of iouring's tests.
func iouringLabel(sub string) string {
	switch sub {
	case "io_uring":
		return "io_uring (SyncAuto)"
	case "io_uring#01":
		return "io_uring (SyncRing)"
	case "io_uring#02":
		return "io_uring (SyncDirect)"
	case "pwritev":
		return "pwritev fallback"
	}
	return sub
}
