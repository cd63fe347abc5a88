//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// cl-bench (make vmclusterbench): on node 1 of a two-node cluster (node 2
// a member that does no I/O), 16 MiB of 4 KiB O_DIRECT writes through a
// mirror over the shared legs with a clustered-core and a clustered-disk
// log served by dlogd --cluster corosync on both nodes, against the same
// writes through a mirror that only node 1 has, with the same log types
// served by the same dlogd binary without --cluster (single-node: node 1
// stops its cluster dlogd and starts a plain one for those runs, then
// switches back); then the time a fresh mirror takes to resync with no
// I/O, the same pairs, after one untimed resync of each; then 4 KiB
// O_DIRECT writes on node 1 into a fresh mirror while it resyncs, each
// timed (vmharness.ClBenchResyncWrite). Every configuration runs once per
// round and the rounds interleave. Results: /out/clbench.json
// (vmharness.BenchResults, ops "write 4K", "resync" and "write during
// resync").

// ClusterBenchFile is the cluster benchmark's results file.
const ClusterBenchFile = vmharness.ClusterBenchFile

type clBenchConfig struct {
	Name    string
	Type    string // the userspace log type
	Cluster bool   // on both nodes, served by dlogd --cluster; else node 1 only, dlogd without it
}

var clBenchConfigs = []clBenchConfig{
	{Name: vmharness.ClBenchClusterCore, Type: "clustered-core", Cluster: true},
	{Name: vmharness.ClBenchClusterDisk, Type: "clustered-disk", Cluster: true},
	{Name: vmharness.ClBenchSingleCore, Type: "clustered-core"},
	{Name: vmharness.ClBenchSingleDisk, Type: "clustered-disk"},
}

const clBenchBytes = 16 * mib

// clBenchParams are the kernel parameters that narrow a cluster
// benchmark run (make vmclusterbench VMCLUSTERBENCH_OPS=resync
// VMCLUSTERBENCH_DEBUG=1): dlog.benchops=resync|write|resyncwrite
// (default all three) and
// dlog.cldebug=1 (dlogd --log-level debug: the cluster log's timeline,
// docs/design/cluster.md, "Idle resync timeline").
func clBenchParams() (ops []string, debug bool) {
	ops = []string{"write 4K", "resync", vmharness.ClBenchResyncWrite}
	b, _ := os.ReadFile("/proc/cmdline")
	for _, w := range strings.Fields(string(b)) {
		switch w {
		case "dlog.benchops=resync":
			ops = []string{"resync"}
		case "dlog.benchops=write":
			ops = []string{"write 4K"}
		case "dlog.benchops=resyncwrite":
			ops = []string{vmharness.ClBenchResyncWrite}
		case "dlog.cldebug=1":
			debug = true
		}
	}
	return ops, debug
}

func scenClBench(s *S) {
	ops, debug := clBenchParams()
	var dlogdArgs []string
	if debug {
		dlogdArgs = []string{"--log-level", "debug"}
	}
	cr := startCluster(s, "bench", dlogdArgs...)
	var names []string
	for _, c := range clBenchConfigs {
		names = append(names, c.Name)
	}
	res, sum := startBench(s, names, clBenchBytes, 91)
	rounds := res.Rounds
	b := &clBench{cr: cr, phase: 10, sum: sum, d: cr.d, plain: NewDlogd()}
	s.Defer("stop the single-node dlogd", 10*time.Second, func(ctx context.Context) error { return b.plain.Stop(5 * time.Second) })
	if slices.Contains(ops, "resync") || slices.Contains(ops, vmharness.ClBenchResyncWrite) {
		// An untimed resync of every configuration first: under TCG the
		// first recovery after boot runs through code qemu has not
		// translated yet (dm-raid1's recovery, kcopyd, dlogd's paths),
		// and it measured up to 2.6 times a warm one; without this the
		// configurations that come first in round 1 (the 2-node ones)
		// pay it alone.
		for _, cluster := range []bool{true, false} {
			b.serve(s, cluster)
			for i, c := range clBenchConfigs {
				if c.Cluster == cluster {
					s.Part(fmt.Sprintf("warm-up: %s: resync (untimed)", c.Name), func(p *S) { b.resync(p, c, fmt.Sprintf("r0%d", i)) })
				}
			}
		}
	}
	for round := 1; round <= rounds; round++ {
		for _, cluster := range []bool{true, false} {
			b.serve(s, cluster)
			for _, op := range ops {
				for i, c := range clBenchConfigs {
					if c.Cluster != cluster {
						continue
					}
					s.Part(fmt.Sprintf("round %d: %s: %s", round, c.Name, op), func(p *S) {
						run, name := b.writes, fmt.Sprintf("w%d%d", round, i)
						switch op {
						case "resync":
							run, name = b.resync, fmt.Sprintf("r%d%d", round, i)
						case vmharness.ClBenchResyncWrite:
							run, name = b.resyncWrites, fmt.Sprintf("x%d%d", round, i)
						}
						if r, ok := run(p, c, name); ok {
							r.Round = round
							res.Runs = append(res.Runs, r)
						}
					})
				}
			}
		}
	}
	if cr.c.node != 1 {
		return
	}
	s.Do("write /out/"+ClusterBenchFile, stepTimeout, func(ctx context.Context) error {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(outDir, ClusterBenchFile), b, 0o644)
	})
}

// clBench runs the benchmark's steps; node 1 measures, node 2 follows
// the barriers and holds the cluster mirrors.
type clBench struct {
	cr    *clusterRun
	phase int
	sum   string
	d     *Dlogd // the daemon node 1's kernel talks to now
	plain *Dlogd // node 1's dlogd without --cluster
}

// serve makes node 1's kernel talk to its cluster dlogd (cluster) or to
// the same binary without --cluster, stopping the other one; node 2 keeps
// its cluster dlogd. Both nodes meet at a barrier after it.
func (b *clBench) serve(s *S, cluster bool) {
	want, other, what := b.cr.d, b.plain, "--cluster corosync"
	if !cluster {
		want, other, what = b.plain, b.cr.d, "without --cluster"
	}
	if b.cr.c.node == 1 && b.d != want {
		s.Do("node 1's kernel served by dlogd "+what, 90*time.Second, func(ctx context.Context) error {
			if err := other.Stop(10 * time.Second); err != nil {
				return err
			}
			return want.Start(ctx, 60*time.Second)
		})
		b.d = want
	}
	b.step()
}

// step is the next barrier of both nodes.
func (b *clBench) step() {
	b.phase++
	b.cr.barrier(b.phase, b.cr.all)
}

// on reports whether this node takes part in configuration c.
func (b *clBench) on(c clBenchConfig) bool { return c.Cluster || b.cr.c.node == 1 }

// setUp zeroes the log device (node 1: no slot or image of a previous
// run is left) and creates mirror name on the nodes that take part; sync
// is "" or "nosync". It registers the removal.
func (b *clBench) setUp(s *S, c clBenchConfig, name, sync string) (string, time.Time) {
	cr := b.cr
	if cr.c.node == 1 {
		s.Do("zero the log device", stepTimeout, func(ctx context.Context) error {
			return writeDirect(ctx, clogDev, 0, make([]byte, clogBytes), 1<<20)
		})
	}
	b.step()
	var start time.Time
	if b.on(c) {
		t, err := tableFor("LVM-dlogvmc-"+name, c.Type, sync)
		if err != nil {
			s.Fail("log device number", "maj:min of "+clogDev, "error", err.Error())
		}
		s.Defer("remove "+name, stepTimeout, func(ctx context.Context) error {
			if ok, err := dmExists(ctx, name); err != nil || !ok {
				return err
			}
			return dmRemove(ctx, name)
		})
		start = time.Now()
		logCmd("# %s: dmsetup create at %s", name, start.UTC().Format("15:04:05.000"))
		s.Do("dmsetup create "+name+": "+t, time.Minute, func(ctx context.Context) error { return dmCreate(ctx, name, t) })
	}
	return "/dev/mapper/" + name, start
}

// tearDown removes the mirror on every node that has it.
func (b *clBench) tearDown(s *S, c clBenchConfig, name string) {
	b.step()
	if b.on(c) {
		s.Do("dmsetup remove "+name, time.Minute, func(ctx context.Context) error { return dmRemove(ctx, name) })
	}
	b.step()
}

// writes times 16 MiB of 4 KiB O_DIRECT writes (busybox dd) on node 1
// through a nosync mirror, with the kernel's requests to node 1's dlogd.
func (b *clBench) writes(s *S, c clBenchConfig, name string) (vmharness.BenchRun, bool) {
	dev, _ := b.setUp(s, c, name, "nosync")
	if b.on(c) {
		s.MustExpect("in sync", "in sync", stepTimeout, func(ctx context.Context) (string, error) {
			_, err := waitSync(ctx, name)
			return "in sync", err
		})
	}
	b.step()
	r := vmharness.BenchRun{Config: c.Name, Op: "write 4K"}
	if b.cr.c.node == 1 {
		uuid := "LVM-dlogvmc-" + name
		before := s.dumpValue(b.d, uuid, "request counters before")
		var took time.Duration
		s.Do("16 MiB in 4 KiB O_DIRECT writes (dd)", 5*time.Minute, func(ctx context.Context) error {
			t := time.Now()
			_, err := run1(ctx, "dd", ddArgs("/tmp/bench-src", dev, "4k", clBenchBytes/4096, "oflag=direct")...)
			took = time.Since(t)
			return err
		})
		after := s.dumpValue(b.d, uuid, "request counters after")
		r.Seconds = took.Seconds()
		r.Requests = RequestDelta(before[0].Requests, after[0].Requests)
		if c.Type == "clustered-disk" {
			r.DiskFlushes = after[0].Flushes - before[0].Flushes
		}
		s.Note("time", fmt.Sprintf("%.3f s %s", took.Seconds(), FormatCounts(r.Requests)))
		// Where the FLUSHes and MARKs spent their time (the queue phase
		// is the hand-off to the log's worker; a cluster log's engine
		// phase holds its round trip to the group).
		if ph, err := PhaseDelta(before[0], after[0]); err == nil {
			s.Note("flush phases", ph)
		}
		s.Expect("md5 of the 16 MiB on leg B", b.sum, time.Minute, md5Of(legBDev, 0, clBenchBytes))
	}
	b.tearDown(s, c, name)
	return r, b.cr.c.node == 1 && !s.Failed()
}

// resync times a fresh mirror's initial resync with no I/O on node 1,
// from its create to full sync (node 2, for the cluster logs, creates it
// at the same barrier and waits for full sync too).
func (b *clBench) resync(s *S, c clBenchConfig, name string) (vmharness.BenchRun, bool) {
	_, start := b.setUp(s, c, name, "")
	r := vmharness.BenchRun{Config: c.Name, Op: "resync"}
	if b.on(c) {
		s.Do("full sync with no I/O", clusterSyncTimeout, func(ctx context.Context) error {
			_, err := waitSync(ctx, name)
			return err
		})
		r.Seconds = time.Since(start).Seconds()
		s.Note("time from create to full sync", secs(time.Since(start)))
	}
	b.tearDown(s, c, name)
	return r, b.cr.c.node == 1 && !s.Failed()
}

// clResyncWrites is how many writes the "write during resync" op makes:
// one into each of as many equal spans of the mirror
// (vmharness.ResyncWriteRegions).
const clResyncWrites = 16

// resyncWrites times 4 KiB O_DIRECT writes on node 1 into a fresh mirror
// from the moment its create returns, while it resyncs (node 2, for the
// cluster logs, creates it at the same barrier and stays idle, as in
// resync): one into the middle of each of clResyncWrites regions spread
// over the mirror, in vmharness.ResyncWriteRegions' order, one at a time.
// Then full sync on every node that has the mirror, and the data oracle:
// every written block reads back as written through the mirror and on
// both legs. The blocks differ from run to run (the name seeds them), so
// a block left by an earlier run does not pass.
func (b *clBench) resyncWrites(s *S, c clBenchConfig, name string) (vmharness.BenchRun, bool) {
	const regionBytes = clusterRegion * 512
	regions := vmharness.ResyncWriteRegions(clLegBytes/regionBytes, clResyncWrites)
	offs := make([]int64, len(regions))
	for i, r := range regions {
		offs[i] = int64(r)*regionBytes + regionBytes/2
	}
	var seed uint64
	for _, ch := range name {
		seed = seed*131 + uint64(ch)
	}
	data := pattern(seed, len(offs)*clusterBlock)
	dev, start := b.setUp(s, c, name, "")
	r := vmharness.BenchRun{Config: c.Name, Op: vmharness.ClBenchResyncWrite}
	uuid := "LVM-dlogvmc-" + name
	if b.cr.c.node == 1 {
		s.Do(fmt.Sprintf("%d 4 KiB O_DIRECT writes during the resync, regions %v", len(offs), regions), 5*time.Minute, func(ctx context.Context) error {
			var err error
			r.WriteMs, err = timedWrites(ctx, dev, offs, data)
			return err
		})
		r.Seconds = time.Since(start).Seconds()
		lat := make([]string, len(r.WriteMs))
		for i, ms := range r.WriteMs {
			lat[i] = fmt.Sprintf("%.1f", ms)
		}
		s.Note("write latencies (ms, in order)", strings.Join(lat, " "))
		s.Note("time from create to the last write", secs(time.Since(start)))
		after := s.dumpValue(b.d, uuid, "request and group counters after the writes")
		r.Requests, r.Group = after[0].Requests, after[0].Group
		s.Note("group counters", FormatCounts(r.Group))
	}
	if b.on(c) {
		s.Do("full sync", clusterSyncTimeout, func(ctx context.Context) error {
			_, err := waitSync(ctx, name)
			return err
		})
	}
	if b.cr.c.node == 1 {
		for _, d := range []string{dev, legADev, legBDev} {
			s.Expect("the written blocks on "+d, "as written", time.Minute, func(ctx context.Context) (string, error) {
				return blocksAsWritten(d, offs, data)
			})
		}
	}
	b.tearDown(s, c, name)
	return r, b.cr.c.node == 1 && !s.Failed()
}

// timedWrites writes data's blocks (len(data)/len(offs) bytes each) at
// offs of path, one O_DIRECT pwrite at a time from an aligned buffer, and
// returns each write's latency in ms (the pwrite alone).
func timedWrites(ctx context.Context, path string, offs []int64, data []byte) ([]float64, error) {
	if len(offs) == 0 || len(data)%len(offs) != 0 {
		return nil, fmt.Errorf("timedWrites: %d bytes in %d writes", len(data), len(offs))
	}
	bs := len(data) / len(offs)
	f, buf, done, err := openDirectBuf(path, os.O_WRONLY, bs)
	if err != nil {
		return nil, err
	}
	defer done()
	lat := make([]float64, 0, len(offs))
	for i, off := range offs {
		if err := ctx.Err(); err != nil {
			return lat, fmt.Errorf("write %s at %d: %w", path, off, err)
		}
		copy(buf, data[i*bs:(i+1)*bs])
		t := time.Now()
		n, err := f.WriteAt(buf, off)
		lat = append(lat, float64(time.Since(t).Microseconds())/1000)
		if err != nil || n != bs {
			return lat, fmt.Errorf("write %s at %d: %d of %d bytes: %v", path, off, n, bs, err)
		}
	}
	return lat, nil
}

// blocksAsWritten reads the blocks timedWrites wrote back from path with
// O_DIRECT: "as written", or the blocks that differ.
func blocksAsWritten(path string, offs []int64, data []byte) (string, error) {
	bs := len(data) / len(offs)
	var bad []string
	for i, off := range offs {
		got, err := readDirect(path, off, bs)
		if err != nil {
			return "", err
		}
		if !bytes.Equal(got, data[i*bs:(i+1)*bs]) {
			bad = append(bad, fmt.Sprint(off))
		}
	}
	if len(bad) > 0 {
		return fmt.Sprintf("%d of %d blocks differ, at offsets %s", len(bad), len(offs), strings.Join(bad, " ")), nil
	}
	return "as written", nil
}
