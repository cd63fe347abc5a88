//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// bench (make vmbench): the same O_DIRECT workload, timed, through
// mirrors whose logs are the kernel's core and disk logs, the benchmark's
// bare responder (a userspace log that answers from memory: the floor for
// any daemon), and dlogd's clustered-core and clustered-disk logs, with
// and without integrated_flush. Every configuration runs once per round
// and the rounds interleave, so slow phases of a shared host hit all of
// them alike. Results go to /out/bench.json (vmharness.BenchResults).

// BareResponderPath is where the host puts the bare responder.
const BareResponderPath = "/sbin/bareresponder"

const benchBytes = 16 * mib

type benchConfig struct {
	Name    string
	Spec    logSpec
	Bare    bool // served by the bare responder instead of dlogd
	Netpoll bool // the bare responder receives through Go's poller
}

var benchConfigs = []benchConfig{
	{Name: "kernel core", Spec: logSpec{Type: "core"}},
	{Name: "kernel disk", Spec: logSpec{Type: "disk"}},
	{Name: "bare responder (clustered-core)", Spec: logSpec{Type: "clustered-core"}, Bare: true},
	{Name: "bare responder on Go's netpoller", Spec: logSpec{Type: "clustered-core"}, Bare: true, Netpoll: true},
	{Name: "dlogd clustered-core", Spec: logSpec{Type: "clustered-core"}},
	{Name: "dlogd clustered-disk", Spec: logSpec{Type: "clustered-disk"}},
	{Name: "dlogd clustered-core + integrated_flush", Spec: logSpec{Type: "clustered-core", Integrated: true}},
	{Name: "dlogd clustered-disk + integrated_flush", Spec: logSpec{Type: "clustered-disk", Integrated: true}},
}

// benchOps are the timed runs: dd (busybox), 16 MiB each, O_DIRECT.
var benchOps = []struct {
	Name string
	Args func(dev string) []string
	Tool string
}{
	{"write 1M", func(dev string) []string { return ddArgs("/tmp/bench-src", dev, "1M", 16, "oflag=direct") }, "dd"},
	{"write 4K", func(dev string) []string { return ddArgs("/tmp/bench-src", dev, "4k", 4096, "oflag=direct") }, "dd"},
	{"read 1M", func(dev string) []string { return ddArgs(dev, "/dev/null", "1M", 16, "iflag=direct") }, "dd"},
	{"read 4K", func(dev string) []string { return ddArgs(dev, "/dev/null", "4k", 4096, "iflag=direct") }, "dd"},
}

func ddArgs(in, out, bs string, count int, flag string) []string {
	return []string{"if=" + in, "of=" + out, "bs=" + bs, "count=" + strconv.Itoa(count), flag}
}

// fioOps run when /usr/bin/fio is in the initramfs (make vmbench adds it
// when Debian's fio and its libraries can be unpacked).
var fioOps = []struct{ Name, RW, BS string }{
	{"fio randwrite 4K", "randwrite", "4k"},
}

func benchRounds() int {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, w := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(w, "dlog.benchrounds="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 20 {
				return n
			}
		}
	}
	return 3
}

func scenBench(s *S) {
	var names []string
	for _, c := range benchConfigs {
		names = append(names, c.Name)
	}
	res, sum := startBench(s, names, benchBytes, 77)
	rounds := res.Rounds
	_, fioErr := os.Stat("/usr/bin/fio")
	res.Fio = fioErr == nil
	if !res.Fio {
		s.Note("fio", "not in the initramfs: dd only")
	}
	if _, err := os.Stat(BareResponderPath); err != nil {
		s.Skip("bare responder", BareResponderPath+" is missing: make vmbench builds bench/cmd/bareresponder")
	}
	for round := 1; round <= rounds; round++ {
		for _, c := range benchConfigs {
			s.Part(fmt.Sprintf("round %d: %s", round, c.Name), func(p *S) {
				res.Runs = append(res.Runs, benchOne(p, c, round, sum)...)
			})
		}
	}
	s.Do("write /out/bench.json", stepTimeout, func(ctx context.Context) error {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(outDir, vmharness.BenchFile), b, 0o644)
	})
}

// startBench begins a benchmark's results for configs (benchRounds
// rounds of bytes per timed run) and writes its source data, seeded with
// seed, to /tmp/bench-src; it returns the results and the data's md5.
func startBench(s *S, configs []string, bytes int, seed uint64) (vmharness.BenchResults, string) {
	res := vmharness.BenchResults{Kernel: kernelRelease(), Rounds: benchRounds(), Bytes: bytes, Configs: configs}
	src := pattern(seed, bytes)
	s.Do(fmt.Sprintf("%d MiB source file in /tmp", bytes>>20), stepTimeout, func(ctx context.Context) error {
		return os.WriteFile("/tmp/bench-src", src, 0o644)
	})
	return res, md5hex(src)
}

func benchOne(s *S, c benchConfig, round int, sum string) []vmharness.BenchRun {
	var d *Dlogd
	if c.Spec.Userspace() {
		if c.Bare {
			d = &Dlogd{Bin: BareResponderPath, PidFile: "/run/bare.pid", LogPath: outDir + "/bareresponder.log", Args: []string{"--pidfile", "/run/bare.pid"}}
			if c.Netpoll {
				d.Args = append(d.Args, "--netpoll")
			}
			s.Defer("stop the bare responder", 10*time.Second, func(ctx context.Context) error { return d.Stop(5 * time.Second) })
			s.Do("start the bare responder", stepTimeout, func(ctx context.Context) error { return d.Start(ctx, 10*time.Second) })
		} else {
			d = startDlogd(s)
		}
	}
	tag := fmt.Sprintf("b%d%d", round, configIndex(c))
	e := newEnv(s, tag)
	a := e.loop("leg A", legBytes, 512)
	b := e.loop("leg B", legBytes, 512)
	m := &mirrorDev{spec: c.Spec, name: "m" + tag, uuid: "dlog-bench-" + tag, sectors: legSectors, region: regionSize, sync: "nosync",
		legs: []string{a.Dev, b.Dev}, legMM: []string{a.MajMin(), b.MajMin()}}
	if c.Spec.Disk() {
		l := e.loop("the log device", 1*mib, 512)
		m.logPath, m.logMM = l.Dev, l.MajMin()
	}
	m.create(e, "create (nosync)")
	s.MustExpect("in sync", m.full(), stepTimeout, syncWait(m.name))
	var runs []vmharness.BenchRun
	run := func(op string, fn func(ctx context.Context) error) {
		var before []DumpLog
		if d != nil {
			before = s.dumpValue(d, m.uuid, op+": request counters before")
		}
		var took time.Duration
		s.Do(op, 5*time.Minute, func(ctx context.Context) error {
			t := time.Now()
			err := fn(ctx)
			took = time.Since(t)
			return err
		})
		r := vmharness.BenchRun{Config: c.Name, Round: round, Op: op, Seconds: took.Seconds()}
		if d != nil {
			after := s.dumpValue(d, m.uuid, op+": request counters after")
			r.Requests = RequestDelta(before[0].Requests, after[0].Requests)
			if c.Spec.Disk() {
				r.DiskFlushes = after[0].Flushes - before[0].Flushes
				r.P99Flush = after[0].Fields["p99_flush"]
			}
		}
		s.Note(op+": time", fmt.Sprintf("%.3f s %s", took.Seconds(), FormatCounts(r.Requests)))
		runs = append(runs, r)
	}
	for _, op := range benchOps {
		run(op.Name, func(ctx context.Context) error {
			_, err := run1(ctx, "dd", op.Args(m.dev.Path)...)
			return err
		})
		if strings.HasPrefix(op.Name, "write") {
			s.Expect(op.Name+": md5 of leg B", sum, time.Minute, md5Of(b.Dev, 0, benchBytes))
		}
	}
	if _, err := os.Stat("/usr/bin/fio"); err == nil {
		for _, f := range fioOps {
			run(f.Name, func(ctx context.Context) error {
				_, err := run1(ctx, "/usr/bin/fio", "--name=bench", "--filename="+m.dev.Path, "--rw="+f.RW, "--bs="+f.BS,
					"--size=16M", "--direct=1", "--ioengine=psync", "--numjobs=1", "--randrepeat=1", "--output-format=terse")
				return err
			})
		}
	}
	m.dev.remove(s, "remove")
	return runs
}

// run1 is run without the command log's output (dd's statistics).
func run1(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	logCmd("$ %s %s  (%v)", name, shellJoin(args), exitText(err))
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, shellJoin(args), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func configIndex(c benchConfig) int {
	for i, x := range benchConfigs {
		if x.Name == c.Name {
			return i
		}
	}
	return 9
}
