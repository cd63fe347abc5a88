//go:build linux

// Command dlog-vmguest is the in-guest driver of dlog's real-kernel tests.
// It runs inside the qemu guest that internal/testutil/vmharness boots (as a child of
// the overlay's /init), never on a host: it mounts filesystems, loads
// kernel modules and powers the machine off.
//
// It reads its options from /proc/cmdline (dlog.scenarios=, dlog.timeout=,
// dlog.verbose=), runs the named scenarios, each a sequence of named steps
// with timeouts, and writes /out/report.json (every step: scenario, step,
// ok/fail/skip, expected, got, duration), /out/guest.log,
// /out/commands.log (every command with its output), /out/dmesg.txt and the
// golden images under /out/golden/. It then tars /out onto the raw virtio
// disk /dev/vda and powers off. A watchdog does the same when the scenarios
// overrun, so the host always gets what there is.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

const (
	outDir         = "/out"
	resultsDevice  = "/dev/vda"
	defaultTimeout = 10 * time.Minute
)

// modules to load, with parameters; their dependencies are found in each
// module's .modinfo and loaded first. The virtio ones come first so that a
// dm failure still leaves a results disk.
var modules = []struct{ name, params string }{
	{"virtio_pci", ""},
	{"virtio_blk", ""},
	{"dm-mod", ""},
	{"dm-log", ""},
	{"dm-region-hash", ""},
	{"dm-mirror", ""},
	{"dm-log-userspace", ""},
	{"dm-zero", ""},
	{"dm-delay", ""},
	{"dm-flakey", ""},
	{"loop", "max_loop=16"},
}

// scenarios is every scenario, in the order "all" runs them. Each cleans up
// its devices so the next can run in the same boot.
//
// A userspace-log scenario follows kernelMirror's pattern: d := startDlogd(s)
// (it skips when there is no dlogd), then e := newEnv(s, tag) for loop legs
// and dm devices, a "mirror userspace <n> <uuid> clustered-core ..." table,
// waitSync, the O_DIRECT and md5 helpers, and d.Restart for kill -9 tests;
// dlogd's output is collected in /out/dlogd.log.
func scenarios() []Scenario {
	return []Scenario{
		{Name: "kcore", Desc: "dm-mirror with the kernel core log: resync, O_DIRECT I/O, status/table, suspend/resume", Timeout: 4 * time.Minute, Run: scenKcore},
		{Name: "kdisk", Desc: "dm-mirror with the kernel disk log: as kcore, plus re-activation honouring the on-disk log", Timeout: 4 * time.Minute, Run: scenKdisk},
		{Name: "kgolden", Desc: "golden disk-log images written by the kernel, for the engine's unit tests", Timeout: 5 * time.Minute, Run: scenKgolden},
		{Name: "dlogd-smoke", Desc: "the dlogd start/ready/kill -9/restart helper", Timeout: 2 * time.Minute, Run: scenDlogdSmoke},
		{Name: "ucore", Desc: "dlogd clustered-core: lifecycle, strings, suspend/resume, live reload, remove; kernel core log as the reference", Timeout: 4 * time.Minute, Run: scenUcore},
		{Name: "udisk", Desc: "dlogd clustered-disk: as ucore, plus the on-disk log and re-activation; kernel disk log as the reference", Timeout: 4 * time.Minute, Run: scenUdisk},
		{Name: "ucore-if", Desc: "ucore with integrated_flush", Timeout: 4 * time.Minute, Run: scenUcoreIf},
		{Name: "udisk-if", Desc: "udisk with integrated_flush", Timeout: 4 * time.Minute, Run: scenUdiskIf},
		{Name: "kill9", Desc: "item 46: kill -9 dlogd under I/O and restart it (clustered-core, clustered-disk): no hang, reconnect, data intact", Timeout: 4 * time.Minute, Run: scenKill9},
		{Name: "stop15", Desc: "item 47: SIGSTOP dlogd for more than 15 s with requests outstanding: kernel timeouts, then recovery", Timeout: 3 * time.Minute, Run: scenStop15},
		{Name: "flood", Desc: "item 48: 10 mirrors, 10 writers, 10 status pollers at once, with dlogd's buffer and with a forced receive-queue overrun", Timeout: 8 * time.Minute, Run: scenFlood},
		{Name: "interop", Desc: "item 43: kernel disk log image resumed by dlogd and the reverse: same dirty set, same sync count, byte-identical first buf_size bytes", Timeout: 3 * time.Minute, Run: scenInterop},
		{Name: "crash-write", Desc: "crash test, boot 1: writes in flight on a kernel disk log and dlogd clustered-disk logs (with and without integrated_flush), then the host kills qemu", Timeout: 3 * time.Minute, Run: scenCrashWrite, Alone: true},
		{Name: "crash-check", Desc: "crash test, boot 2: every region whose legs differ is dirty; resume, sync count, resync", Timeout: 4 * time.Minute, Run: scenCrashCheck, Alone: true},
		{Name: "bench", Desc: "make vmbench: timed O_DIRECT dd (and fio) through mirrors with kernel core/disk, the bare responder, dlogd clustered-core/disk (+ integrated_flush)", Timeout: 60 * time.Minute, Run: scenBench, Alone: true},
		{Name: "demo", Desc: "make demo: a dlogd-served mirror, narrated for a new user", Timeout: 4 * time.Minute, Run: scenDemo, Alone: true},
		{Name: "handover", Desc: "issue #14 item 5: dlogd adopt/release switch a running mirror between the kernel's disk log and dlogd under writes: no resync, legs equal; refusals leave the mirror as it was", Timeout: 5 * time.Minute, Run: scenHandover},
		{Name: "cl-basic", Desc: "cluster (tests/vm TestVMCluster): every node creates the mirror, idle initial resync, cross-node writes and reads, remove, legs identical", Timeout: 9 * time.Minute, Run: scenClBasic, Alone: true},
		{Name: "cl-kill-node", Desc: "cluster: one guest's qemu killed mid-write; survivors serve, resync its regions with no operator action; legs identical, acknowledged writes read back", Timeout: 9 * time.Minute, Run: scenClKillNode, Alone: true},
		{Name: "cl-kill-dlogd", Desc: "cluster: node 2's dlogd killed (SIGKILL) mid-write and restarted while its kernel keeps writing; full sync, legs identical, acknowledged writes read back", Timeout: 9 * time.Minute, Run: scenClKillDlogd, Alone: true},
		{Name: "cl-reconnect", Desc: "cluster: during the resync node 2's dlogd killed, its state directory removed, restarted: the kernel reconnects (CTR + RESUME after -ESRCH) keeping its hint; full sync, legs identical, acknowledged writes read back", Timeout: 9 * time.Minute, Run: scenClReconnect, Alone: true},
		{Name: "cl-bench", Desc: "make vmclusterbench: 4 KiB O_DIRECT writes on node 1 and idle initial resyncs, dlogd --cluster's clustered-core and clustered-disk on two nodes against the same logs served by dlogd without --cluster on node 1", Timeout: 60 * time.Minute, Run: scenClBench, Alone: true},
		{Name: "cl-suspend-write", Desc: "cluster: node 1 suspends and resumes its mirror 3 times during the initial resync while both nodes write; full sync, legs identical", Timeout: 9 * time.Minute, Run: scenClSuspendWrite, Alone: true},
		{Name: "cl-three-node", Desc: "cluster: 3 nodes, the third killed mid-resync while the other two write each other's regions; survivors reach full sync with no operator action", Timeout: 9 * time.Minute, Run: scenClThreeNode, Alone: true},
		{Name: "cl-partition", Desc: "cluster (#17): one node's link cut by the host while every node writes, then healed: the minority acknowledges nothing, no FLUSH fails, full sync with no operator step, legs identical", Timeout: 12 * time.Minute, Run: scenClPartition, Alone: true},
		{Name: "cl-no-stall", Desc: "cluster (#12, no stall): node 2 holds the last region for recovery (dm-delay on its leg B); node 1's 4 KiB O_DIRECT reads and writes of in-sync regions and dmsetup status each complete in under 2 s (dm-raid1's worker asks GET_RESYNC_WORK before every I/O); then node 2 is killed: node 1's idle kernel, woken by dlogd, resyncs the region with no I/O and no suspend; legs identical", Timeout: 12 * time.Minute, Run: scenClNoStall, Alone: true},
		{Name: "cl-discard-hazard", Desc: "cluster (#12), a hazard demonstration, not a pass of dlogd: node 1 discards a region while node 2's recovery of it is held between its read and its write (dm-delay); the kernel never asks the log, the legs end different over that region; PREFLUSH: a FUA write is marked, an empty flush needs no mark", Timeout: 9 * time.Minute, Run: scenClDiscardHazard, Alone: true},
		{Name: "discard-hazard-local", Desc: "#12, a hazard demonstration, not a pass of dlogd: with the kernel's core log, a discard still in flight on one leg when the resync reaches its region; the legs end different over it", Timeout: 3 * time.Minute, Run: scenDiscardHazardLocal},
		{Name: "ufile", Desc: "#13 item 2: a clustered-disk log on a regular file: the table loads, the mirror serves, nothing left in dlogd after the remove", Timeout: 3 * time.Minute, Run: scenUfile},
		{Name: "legflush", Desc: "#13 item 4: every clear reaches the log device after a flush of each leg (/sys/block stat), kernel disk log vs dlogd", Timeout: 3 * time.Minute, Run: scenLegflush},
		{Name: "logerr", Desc: "item 49: the error target under the disk log device: status D, handle_errors holds writes, recovery by log replacement; kernel disk log as the reference", Timeout: 3 * time.Minute, Run: scenLogerr},
	}
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "demo" {
		os.Exit(hostDemoMain(os.Args[2:]))
	}
	if len(os.Args) == 3 && os.Args[1] == "fenced" {
		os.Exit(fencedMain(os.Args[2]))
	}
	if len(os.Args) != 2 || os.Args[1] != "--in-vm" {
		fmt.Fprintln(os.Stderr, "dlog-vmguest is the in-guest driver of the VM tests: it mounts filesystems, loads modules and powers the machine off.\n"+
			"It only runs as the VM's /init child (with --in-vm). Run the VM tests with: DLOG_VM=1 go test ./tests/vm/ -v  (or make vmtest)")
		os.Exit(2)
	}
	os.Exit(guestMain())
}

func guestMain() int {
	if err := mountBasics(); err != nil {
		fmt.Fprintf(os.Stderr, "vmguest: %v\n", err)
		return 1
	}
	glog, err := os.Create(filepath.Join(outDir, "guest.log"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmguest: %v\n", err)
		return 1
	}
	clog, err := os.Create(filepath.Join(outDir, "commands.log"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmguest: %v\n", err)
		return 1
	}
	console := io.MultiWriter(os.Stdout, glog)

	rawCmdline, _ := os.ReadFile("/proc/cmdline")
	cmdline := strings.TrimSpace(string(rawCmdline))
	opts, optErr := vmharness.ParseCmdline(cmdline)
	if opts.Timeout == 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.Verbose {
		cmdLog = io.MultiWriter(clog, console)
	} else {
		cmdLog = clog
	}
	logf := func(format string, args ...any) { fmt.Fprintf(console, "vmguest: "+format+"\n", args...) }

	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	rec := NewRecorder(console)
	report := vmharness.Report{
		Kernel:      strings.TrimSpace(string(kernel)),
		Cmdline:     cmdline,
		Scenarios:   opts.Scenarios,
		UptimeStart: uptime(),
	}
	fmt.Fprintln(os.Stdout) // SeaBIOS's escape codes can eat the first line
	logf("kernel %s, uptime %.2f s, scenarios %q, watchdog %v", report.Kernel, report.UptimeStart, strings.Join(opts.Scenarios, ","), opts.Timeout)

	var once sync.Once
	finish := func(complete bool, watchdog string) {
		once.Do(func() {
			steps, goldens := rec.Snapshot()
			report.Steps, report.Goldens = steps, goldens
			report.Complete, report.Watchdog = complete, watchdog
			report.UptimeEnd = uptime()
			if watchdog != "" {
				logf("WATCHDOG: %s", watchdog)
			}
			saveResults(&report, logf, glog, clog)
			powerOff()
		})
		select {} // the other caller is powering off
	}
	watchdog := time.AfterFunc(opts.Timeout, func() {
		where := rec.Current()
		if where == "" {
			where = "between steps"
		} else {
			where = "in " + where
		}
		finish(false, fmt.Sprintf("guest watchdog fired after %v (dlog.timeout) %s: the scenarios did not finish; results are partial", opts.Timeout, where))
	})
	defer watchdog.Stop()

	ctx := context.Background()
	all := scenarios()
	run, unknown := Select(all, opts.Scenarios)
	setupOK := RunScenario(ctx, rec, Scenario{Name: "setup", Desc: "modules, devices, options", Timeout: time.Minute, Run: func(s *S) {
		if optErr != nil {
			s.Fail("kernel command line", "valid dlog.* options", cmdline, optErr.Error())
		}
		if len(unknown) > 0 {
			s.Fail("scenario names", "some of "+Names(all), strings.Join(unknown, ","), "unknown scenario names on the kernel command line")
		}
		setup(s)
	}}, logf)
	if setupOK {
		for _, sc := range run {
			RunScenario(ctx, rec, sc, logf)
		}
	}
	finish(true, "")
	return 0
}

// setup loads the modules and checks the tools the scenarios use.
func setup(s *S) {
	var names []string
	params := make(map[string]string)
	for _, m := range modules {
		names = append(names, m.name)
		params[ModuleName(m.name)] = m.params
	}
	order := s.Value("module load order (from .modinfo depends=)", 10*time.Second, func(ctx context.Context) (string, error) {
		o, err := LoadOrder(names, moduleDeps(readBuiltin()))
		return strings.Join(o, " "), err
	})
	s.Do("insmod "+order, time.Minute, func(ctx context.Context) error {
		for _, m := range strings.Fields(order) {
			if err := insmod(m, params[ModuleName(m)]); err != nil {
				return err
			}
		}
		return nil
	})
	s.Do("results disk "+resultsDevice+" present", 10*time.Second, func(ctx context.Context) error {
		return waitPath(resultsDevice, 8*time.Second)
	})
	s.Value("dm-log-userspace's connector callback 7:1 in /proc/net/connector", 10*time.Second, func(ctx context.Context) (string, error) {
		b, err := os.ReadFile("/proc/net/connector")
		if err != nil {
			return "", err
		}
		name, ok := ParseProcNetConnector(b)["7:1"]
		if !ok {
			return "", fmt.Errorf("no 7:1 row in /proc/net/connector: %q", b)
		}
		return name + " 7:1", nil
	})
	s.Value("dmsetup version", 10*time.Second, func(ctx context.Context) (string, error) {
		out, err := dmsetup(ctx, "version")
		return strings.Join(strings.Fields(out), " "), err
	})
	s.Value("dm targets", 10*time.Second, func(ctx context.Context) (string, error) {
		out, err := dmsetup(ctx, "targets")
		var t []string
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				t = append(t, f[0])
			}
		}
		return strings.Join(t, " "), err
	})
}

// saveResults writes report.json and dmesg.txt, then tars /out onto the
// results disk.
func saveResults(r *vmharness.Report, logf func(string, ...any), files ...*os.File) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(outDir, vmharness.ReportFile), b, 0o644)
	}
	if err != nil {
		logf("writing %s: %v", vmharness.ReportFile, err)
	}
	if klog, err := kernelLog(); err == nil {
		_ = os.WriteFile(filepath.Join(outDir, "dmesg.txt"), klog, 0o644)
	} else {
		logf("reading the kernel log: %v", err)
	}
	fail := len(r.Failures())
	logf("done: %s; complete=%v; writing results to %s", r.Summary(), r.Complete, resultsDevice)
	if fail > 0 {
		for _, st := range r.Failures() {
			logf("FAILED %s", st.String())
		}
	}
	for _, f := range files {
		_ = f.Sync()
	}
	cmdLogMu.Lock() // no command output mid-archive
	defer cmdLogMu.Unlock()
	if err := writeTarTo(outDir, resultsDevice); err != nil {
		logf("writing results to %s failed: %v (the host will report an empty results disk)", resultsDevice, err)
		return
	}
	logf("results written to %s; powering off", resultsDevice)
}
