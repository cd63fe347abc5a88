// Package bench holds dlog's benchmarks against the strategies it competes
// with, each measured beside its baseline in the same run so that figures
// are ratios, not absolute times on a noisy shared machine:
//
//   - flush: dlog's changed-block flush against the kernel disk log's
//     strategy (header and whole bitmap rewritten, then a cache flush, as in
//     dm-log.c disk_flush) and against the floor of one 4 KiB O_DIRECT write
//     plus fdatasync on the same file;
//   - mapping: the engine's anonymous mapping with staged O_DIRECT writes
//     against a MAP_SHARED mapping of the log made durable with msync.
//
// The bitmap's scan and mark benchmarks live in package bitmap, the
// daemon's round-trip benchmarks in package daemon. `make bench` runs them
// all; cmd/benchreport turns the output into bench/results.md.
package bench
