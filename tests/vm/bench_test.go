package vm_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// TestVMBench is make vmbench: one boot running the guest's bench scenario
// (the same O_DIRECT workload through mirrors with the kernel's core and
// disk logs, the bare responder, and dlogd's clustered-core and
// clustered-disk logs), then the report: bench/vm-results.md, .png and
// .json.
//
//	DLOG_VM_BENCH=1               run at all
//	DLOG_VM_BENCH_ROUNDS=3        interleaved rounds
//	DLOG_VM_BENCH_OUT=dir         where the report goes (default <repo>/bench)
//	DLOG_VM_BENCH_FIO=0           leave fio out even when scripts/vm/fio.sh cached it
//	DLOG_VM_BENCH_CONFIGS=a,b     only the configurations whose names contain a or b
//	DLOG_VM_BENCH_OPS=a,b         only these timed runs ("write 4K", ...; fio runs whenever it is there)
//	DLOG_VM_BENCH_CPUS=2          the guest's vCPUs (default 1; the --poll rows run only with 2 or more)
//	DLOG_VM_BENCH_PROFILE=N       dlogd profiles itself for N s during each of its "write 4K" runs
//	                              (dlogd profile); the files land in <out>/profiles/
//
// The cmirrord rows need scripts/vm/cmirrord.sh's build and scripts/vm/cluster-deps.sh's
// corosync archive (make vmbench runs both; without them the report says why they are missing).
func TestVMBench(t *testing.T) {
	h := prepare(t, "DLOG_VM_BENCH", "the real-kernel benchmark is off: run it with make vmbench (DLOG_VM_BENCH=1)")
	bin := filepath.Join(h.root, "build", "vm", "bin")
	bare, err := goBuild(t, h.root, "./bench/cmd/bareresponder", filepath.Join(bin, "bareresponder"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bare)
	if err != nil {
		t.Fatal(err)
	}
	h.files = append(h.files, vmharness.File{Path: "/sbin/bareresponder", Mode: 0o755, Data: b})
	if os.Getenv("DLOG_VM_BENCH_FIO") != "0" {
		fio := filepath.Join(h.kernel.Dir, "fio", "root")
		if files, err := filesUnder(fio); err == nil && len(files) > 0 {
			t.Logf("fio: %d files from %s", len(files), fio)
			h.files = append(h.files, files...)
		} else {
			why, _ := os.ReadFile(filepath.Join(h.kernel.Dir, "fio", "unavailable"))
			t.Logf("fio: not available (%s): dd only", strings.TrimSpace(orDefault(string(why), "run scripts/vm/fio.sh")))
		}
	}
	// cmirrord (scripts/vm/cmirrord.sh) over corosync (scripts/vm/cluster-deps.sh's archive):
	// both or neither; the guest says why they are missing.
	var initrds []string
	cmRoot := filepath.Join(h.root, "build", "vm", "cmirrord", "root")
	coro := filepath.Join(h.kernel.Dir, "cluster.cpio.gz")
	cmWhy := ""
	if _, err := os.Stat(coro); err != nil {
		cmWhy = "no corosync archive for the guest (make vmcluster-deps)"
	} else if files, err := filesUnder(cmRoot); err != nil || len(files) == 0 {
		why, _ := os.ReadFile(filepath.Join(h.root, "build", "vm", "cmirrord", "unavailable"))
		cmWhy = orDefault(strings.TrimSpace(string(why)), "not built (scripts/vm/cmirrord.sh)")
	} else {
		initrds = append(initrds, coro)
		// fio's tree holds some of the same host libraries (libc, libm): one copy each.
		have := map[string]bool{}
		for _, f := range h.files {
			have[f.Path] = true
		}
		for _, f := range files {
			if !have[f.Path] {
				h.files = append(h.files, f)
			}
		}
		t.Logf("cmirrord: %d files from %s, corosync from %s", len(files), cmRoot, coro)
	}
	if cmWhy != "" {
		t.Logf("cmirrord: %s: no cmirrord rows", cmWhy)
		h.files = append(h.files, vmharness.File{Path: "/etc/dlog-cmirrord-unavailable", Mode: 0o644, Data: []byte(cmWhy + "\n")})
	}
	rounds := envRounds(t, "DLOG_VM_BENCH_ROUNDS", 3)
	// Six to ten minutes a round on a shared 2-core host (cmirrord's rows and the corosync
	// start-ups included), plus the boot.
	h.guestTimeout = max(h.guestTimeout, time.Duration(rounds)*12*time.Minute+5*time.Minute)
	res := h.boot(t, "last-run-bench", []string{"bench"}, func(c *vmharness.Config) {
		c.ExtraArgs = append(c.ExtraArgs, fmt.Sprintf("dlog.benchrounds=%d", rounds))
		if v := os.Getenv("DLOG_VM_BENCH_CONFIGS"); v != "" {
			c.ExtraArgs = append(c.ExtraArgs, "dlog.benchconfigs="+strings.ReplaceAll(v, " ", "_"))
		}
		if v := os.Getenv("DLOG_VM_BENCH_OPS"); v != "" {
			c.ExtraArgs = append(c.ExtraArgs, "dlog.benchops="+strings.ReplaceAll(v, " ", "_"))
		}
		if v := os.Getenv("DLOG_VM_BENCH_PROFILE"); v != "" {
			c.ExtraArgs = append(c.ExtraArgs, "dlog.benchprofile="+v)
		}
		if v := os.Getenv("DLOG_VM_BENCH_CPUS"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 4 {
				t.Fatalf("DLOG_VM_BENCH_CPUS=%q: want 1..4", v)
			}
			c.CPUs = n
		}
		c.Initrds = append(c.Initrds, initrds...)
		c.MemoryMB = 1536 // fio's libraries live in the initramfs
	})
	if res == nil || res.Report == nil {
		t.FailNow()
	}
	checkReport(t, res, []string{"bench"})
	br := benchResults(t, res, vmharness.BenchFile, "the results disk")
	out := reportDir(t, "DLOG_VM_BENCH_OUT", h.root)
	for name, data := range res.Files {
		if !strings.HasPrefix(name, "profiles/") {
			continue
		}
		dst := filepath.Join(out, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("dlogd profile: %s", dst)
	}
	md := br.Markdown(time.Now().UTC().Format("2006-01-02"), hostDescription())
	chart, err := br.ChartPNG()
	if err != nil {
		t.Fatal(err)
	}
	writeReport(t, out, "vm-results", br, md, chart)
}

// envRounds is the number of interleaved rounds the environment variable
// name asks for (1..20), def when it is unset.
func envRounds(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 20 {
		t.Fatalf("%s=%q: want 1..20", name, v)
	}
	return n
}

// benchResults decodes the benchmark results the guest left in file on
// res's results disk (disk names that disk in the failure).
func benchResults(t *testing.T, res *vmharness.Result, file, disk string) vmharness.BenchResults {
	raw, ok := res.Files[file]
	if !ok {
		t.Fatalf("%s has no %s", disk, file)
	}
	var br vmharness.BenchResults
	if err := json.Unmarshal(raw, &br); err != nil {
		t.Fatal(err)
	}
	return br
}

// reportDir is where a benchmark report goes, created: the environment
// variable env, or <repo>/bench.
func reportDir(t *testing.T, env, root string) string {
	out := os.Getenv(env)
	if out == "" {
		out = filepath.Join(root, "bench")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// writeReport writes the report md as out/<name>.md, the results as
// out/<name>.json and the chart, when there is one, as out/<name>.png, and
// logs the report up to its list of every run.
func writeReport(t *testing.T, out, name string, br vmharness.BenchResults, md string, chart []byte) {
	pretty, _ := json.MarshalIndent(br, "", "  ")
	files := map[string][]byte{name + ".md": []byte(md), name + ".json": append(pretty, '\n')}
	exts := "md,json"
	if chart != nil {
		files[name+".png"] = chart
		exts = "md,png,json"
	}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(out, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %s/%s.{%s}\n%s", out, name, exts, md[:strings.Index(md, "## Every run")])
}

// filesUnder loads a directory tree as overlay files at the same paths.
func filesUnder(dir string) ([]vmharness.File, error) {
	var out []vmharness.File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		out = append(out, vmharness.File{Path: "/" + filepath.ToSlash(rel), Mode: st.Mode().Perm(), Data: b})
		return nil
	})
	return out, err
}

// hostDescription is "<cpu model>, N cores, <kernel>" for the report.
func hostDescription() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("%s, %d cores, host kernel %s, load average at the end %s", model, runtime.NumCPU(),
		strings.TrimSpace(string(kernel)), strings.Join(strings.Fields(string(load))[:3], " "))
}

// Ensure that both benchmark tests' report plumbing does what they did
// inline: rounds from the environment, the report directory created, and
// the report, results and (for vmbench only) chart written beside each other.
func TestBenchReportFiles(t *testing.T) {
	t.Setenv("DLOG_TEST_ROUNDS", "")
	if n := envRounds(t, "DLOG_TEST_ROUNDS", 3); n != 3 {
		t.Errorf("rounds unset: %d, want the default 3", n)
	}
	t.Setenv("DLOG_TEST_ROUNDS", "20")
	if n := envRounds(t, "DLOG_TEST_ROUNDS", 3); n != 20 {
		t.Errorf("rounds 20: %d", n)
	}
	root := t.TempDir()
	t.Setenv("DLOG_TEST_OUT", "")
	if out := reportDir(t, "DLOG_TEST_OUT", root); out != filepath.Join(root, "bench") {
		t.Errorf("default report dir %s, want <root>/bench", out)
	}
	out := filepath.Join(root, "elsewhere", "report")
	t.Setenv("DLOG_TEST_OUT", out)
	if got := reportDir(t, "DLOG_TEST_OUT", root); got != out {
		t.Errorf("report dir %s, want %s", got, out)
	}
	br := vmharness.BenchResults{Kernel: "6.1.0-test", Rounds: 2}
	raw, err := json.Marshal(br)
	if err != nil {
		t.Fatal(err)
	}
	res := &vmharness.Result{Files: map[string][]byte{vmharness.BenchFile: raw}}
	if got := benchResults(t, res, vmharness.BenchFile, "the results disk"); got.Kernel != br.Kernel || got.Rounds != 2 {
		t.Errorf("results read back as %+v", got)
	}
	md := "# report\n\n## Every run\n"
	writeReport(t, out, "vm-results", br, md, []byte("png"))
	writeReport(t, out, "vmcluster-results", br, md, nil)
	for name, want := range map[string]string{"vm-results.md": md, "vm-results.png": "png", "vmcluster-results.md": md} {
		if b, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	for _, name := range []string{"vm-results.json", "vmcluster-results.json"} {
		var back vmharness.BenchResults
		if b, err := os.ReadFile(filepath.Join(out, name)); err != nil {
			t.Error(err)
		} else if err := json.Unmarshal(b, &back); err != nil || back.Kernel != br.Kernel || b[len(b)-1] != '\n' {
			t.Errorf("%s: %v, %+v", name, err, back)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "vmcluster-results.png")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a chart written for the cluster report: %v", err)
	}
}
