//go:build linux

package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
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
	// Cmirrord, when set, is the corosync transport of a one-node
	// corosync that LVM2's cmirrord serves the log over.
	Cmirrord string
	// DlogdArgs are more options for dlogd serve (the low-latency mode).
	DlogdArgs []string
	// Env is added to the daemon's environment (GOMAXPROCS=...).
	Env []string
	// SMP, when set, runs the configuration only in a guest with more
	// than one CPU online (--poll is ignored on one).
	SMP bool
	// Extra marks a diagnostic row (an old floor, the runtime poller):
	// it runs only when dlog.benchconfigs names it, so that the default
	// run stays the rows the targets are computed from.
	Extra bool
	// Bytes, when set, replaces benchBytes, and only "write 4K" runs:
	// cmirrord takes tens of ms (udpu) to hundreds (knet) per 4 KiB write
	// here, so 16 MiB of them would take minutes per run.
	Bytes int
}

var benchConfigs = []benchConfig{
	{Name: "kernel core", Spec: logSpec{Type: "core"}},
	{Name: "kernel disk", Spec: logSpec{Type: "disk"}},
	{Name: "bare responder (clustered-core)", Spec: logSpec{Type: "clustered-core"}, Bare: true},
	{Name: "bare responder on Go's netpoller", Spec: logSpec{Type: "clustered-core"}, Bare: true, Netpoll: true},
	{Name: "bare responder GOMAXPROCS=1", Spec: logSpec{Type: "clustered-core"}, Bare: true, Env: []string{"GOMAXPROCS=1"}, Extra: true},
	{Name: "bare responder + integrated_flush", Spec: logSpec{Type: "clustered-core", Integrated: true}, Bare: true},
	{Name: "dlogd clustered-core", Spec: logSpec{Type: "clustered-core"}},
	{Name: "dlogd clustered-disk", Spec: logSpec{Type: "clustered-disk"}},
	{Name: "dlogd clustered-core GOMAXPROCS=1", Spec: logSpec{Type: "clustered-core"}, Env: []string{"GOMAXPROCS=1"}, Extra: true},
	{Name: "dlogd clustered-core + integrated_flush", Spec: logSpec{Type: "clustered-core", Integrated: true}},
	{Name: "dlogd clustered-disk + integrated_flush", Spec: logSpec{Type: "clustered-disk", Integrated: true}},
	{Name: "dlogd clustered-core --receivers 1", Spec: logSpec{Type: "clustered-core"}, DlogdArgs: []string{"--receivers", "1"}, Extra: true},
	{Name: "dlogd clustered-disk --receivers 1", Spec: logSpec{Type: "clustered-disk"}, DlogdArgs: []string{"--receivers", "1"}, Extra: true},
	{Name: "dlogd clustered-core --netpoll", Spec: logSpec{Type: "clustered-core"}, DlogdArgs: []string{"--netpoll"}, Extra: true},
	{Name: "dlogd clustered-core --poll 1ms", Spec: logSpec{Type: "clustered-core"}, DlogdArgs: []string{"--poll", "1ms"}, SMP: true},
	{Name: "dlogd clustered-disk --poll 1ms", Spec: logSpec{Type: "clustered-disk"}, DlogdArgs: []string{"--poll", "1ms"}, SMP: true},
	{Name: "cmirrord clustered-core, corosync udpu", Spec: logSpec{Type: "clustered-core"}, Cmirrord: "udpu", Bytes: mib},
	{Name: "cmirrord clustered-disk, corosync udpu", Spec: logSpec{Type: "clustered-disk"}, Cmirrord: "udpu", Bytes: mib},
	{Name: "cmirrord clustered-core, corosync knet", Spec: logSpec{Type: "clustered-core"}, Cmirrord: "knet", Bytes: mib / 4},
	{Name: "cmirrord clustered-disk, corosync knet", Spec: logSpec{Type: "clustered-disk"}, Cmirrord: "knet", Bytes: mib / 4},
}

// benchSelected filters the configurations by dlog.benchconfigs= on the
// kernel command line (comma-separated substrings of their names, or
// whole names after "="), for trying one of them without the whole run.
func benchSelected(c benchConfig) bool {
	if c.SMP && runtime.NumCPU() < 2 {
		return false
	}
	v, ok := cmdlineParam(procCmdline(), "dlog.benchconfigs")
	if !ok {
		return !c.Extra
	}
	for _, sub := range strings.Split(v, ",") {
		sub = strings.ReplaceAll(sub, "_", " ")
		name := strings.ReplaceAll(c.Name, "_", " ") // "_" stands for " " on the command line
		if whole, ok := strings.CutPrefix(sub, "="); ok && name == whole || !ok && strings.Contains(name, sub) {
			return true
		}
	}
	return false
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

// benchOpSelected filters the timed runs by dlog.benchops= on the kernel
// command line (comma-separated names, "_" for " "): a slow guest (two
// vCPUs under TCG) runs only the one that is measured.
func benchOpSelected(name string) bool {
	if v, ok := cmdlineParam(procCmdline(), "dlog.benchops"); ok {
		return slices.Contains(strings.Split(v, ","), strings.ReplaceAll(name, " ", "_"))
	}
	return true
}

// benchProfileSeconds is dlog.benchprofile=N on the kernel command line:
// dlogd profiles itself for N seconds (dlogd profile) during each "write
// 4K" run, into /out/profiles; 0 without it.
func benchProfileSeconds() int {
	return cmdlineInt(procCmdline(), "dlog.benchprofile", 60, 0)
}

// benchRounds is dlog.benchrounds=N (at most 20) on the kernel command
// line: how many interleaved rounds; 3 without it.
func benchRounds() int {
	return cmdlineInt(procCmdline(), "dlog.benchrounds", 20, 3)
}

// procCmdline is this kernel's command line ("" if unreadable).
func procCmdline() string {
	b, _ := os.ReadFile("/proc/cmdline")
	return string(b)
}

func scenBench(s *S) {
	cmOK, cmWhy := cmirrordAvailable()
	var configs []benchConfig
	var names []string
	cmSkipped := false
	for _, c := range benchConfigs {
		if !benchSelected(c) {
			continue
		}
		if c.Cmirrord != "" && !cmOK {
			cmSkipped = true
			continue
		}
		configs = append(configs, c)
		names = append(names, c.Name)
	}
	res, sum := startBench(s, names, benchBytes, 77)
	rounds := res.Rounds
	if cmSkipped {
		res.CmirrordMissing = cmWhy
		s.Note("cmirrord", cmWhy+": no cmirrord rows")
	}
	sums := map[int]string{benchBytes: sum}
	for _, c := range configs {
		if c.Bytes != 0 {
			sums[c.Bytes] = md5hex(pattern(77, benchBytes)[:c.Bytes])
		}
	}
	_, fioErr := os.Stat("/usr/bin/fio")
	res.Fio = fioErr == nil
	if !res.Fio {
		s.Note("fio", "not in the initramfs: dd only")
	}
	if _, err := os.Stat(BareResponderPath); err != nil {
		s.Skip("bare responder", BareResponderPath+" is missing: make vmbench builds bench/cmd/bareresponder")
	}
	for round := 1; round <= rounds; round++ {
		for _, c := range configs {
			s.Part(fmt.Sprintf("round %d: %s", round, c.Name), func(p *S) {
				res.Runs = append(res.Runs, benchOne(p, c, round, sums[cmp.Or(c.Bytes, benchBytes)])...)
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
	res := vmharness.BenchResults{Kernel: kernelRelease(), Rounds: benchRounds(), Bytes: bytes, Configs: configs, CPUs: runtime.NumCPU()}
	src := pattern(seed, bytes)
	s.Do(fmt.Sprintf("%d MiB source file in /tmp", bytes>>20), stepTimeout, func(ctx context.Context) error {
		return os.WriteFile("/tmp/bench-src", src, 0o644)
	})
	return res, md5hex(src)
}

func benchOne(s *S, c benchConfig, round int, sum string) []vmharness.BenchRun {
	var d *Dlogd
	if c.Cmirrord != "" {
		// No state dump to read request counters from: cmirrord is only
		// timed.
		startCmirrord(s, c.Cmirrord)
	} else if c.Spec.Userspace() {
		if c.Bare {
			d = &Dlogd{Bin: BareResponderPath, PidFile: "/run/bare.pid", LogPath: outDir + "/bareresponder.log", Args: []string{"--pidfile", "/run/bare.pid"}}
			if c.Netpoll {
				d.Args = append(d.Args, "--netpoll")
			}
			d.Env = c.Env
			s.Defer("stop the bare responder", 10*time.Second, func(ctx context.Context) error { return d.Stop(5 * time.Second) })
			s.Do("start the bare responder", stepTimeout, func(ctx context.Context) error { return d.Start(ctx, 10*time.Second) })
		} else {
			d = startDlogdEnv(s, c.Env, c.DlogdArgs...)
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
		if c.Cmirrord != "" {
			// cmirrord looks a "major:minor" log device up in /dev/mapper
			// only (find_disk_path); a loop device it takes as a path.
			m.logMM = l.Dev
		}
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
		prof := benchProfile(s, d, c, round, op)
		s.Do(op, 5*time.Minute, func(ctx context.Context) error {
			t := time.Now()
			err := fn(ctx)
			took = time.Since(t)
			return err
		})
		if prof != nil {
			s.Note(op+": profile", <-prof)
		}
		r := vmharness.BenchRun{Config: c.Name, Round: round, Op: op, Seconds: took.Seconds(), Bytes: c.Bytes}
		if d != nil && len(before) == 1 {
			after := s.dumpValue(d, m.uuid, op+": request counters after")
			if len(after) == 1 {
				r.Requests = RequestDelta(before[0].Requests, after[0].Requests)
				if c.Spec.Disk() {
					r.DiskFlushes = after[0].Flushes - before[0].Flushes
					r.P99Flush = after[0].Fields["p99_flush"]
				}
				if !c.Bare {
					if ph, err := PhaseDelta(before[0], after[0]); err == nil {
						r.Phases = ph
					}
				}
			}
		}
		s.Note(op+": time", fmt.Sprintf("%.3f s %s", took.Seconds(), FormatCounts(r.Requests)))
		runs = append(runs, r)
	}
	if c.Bytes != 0 {
		run("write 4K", func(ctx context.Context) error {
			_, err := run1(ctx, "dd", ddArgs("/tmp/bench-src", m.dev.Path, "4k", c.Bytes/4096, "oflag=direct")...)
			return err
		})
		s.Expect("write 4K: md5 of leg B", sum, time.Minute, md5Of(b.Dev, 0, c.Bytes))
		m.dev.remove(s, "remove")
		return runs
	}
	for _, op := range benchOps {
		if !benchOpSelected(op.Name) {
			continue
		}
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

// benchProfile starts dlogd profile during a dlogd "write 4K" run when
// dlog.benchprofile= asks for it, into /out/profiles/<config>-r<round>;
// the channel gives what it said. nil when there is nothing to profile.
func benchProfile(s *S, d *Dlogd, c benchConfig, round int, op string) <-chan string {
	secs := benchProfileSeconds()
	if secs == 0 || d == nil || c.Bare || op != "write 4K" {
		return nil
	}
	dir := filepath.Join(outDir, "profiles", fmt.Sprintf("%s-r%d", strings.NewReplacer(" ", "_", "+", "", "/", "_").Replace(c.Name), round))
	out := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+time.Minute)
		defer cancel()
		o, err := run1(ctx, d.Bin, "profile", "--pidfile", d.PidFile, "--seconds", strconv.Itoa(secs), "--out", dir)
		if err != nil {
			out <- "failed: " + err.Error()
			return
		}
		out <- strings.ReplaceAll(strings.TrimSpace(o), "\n", "; ")
	}()
	return out
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
