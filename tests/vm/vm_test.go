// Package vm_test runs dlog's real-kernel scenarios: it boots Debian's stock
// kernel under qemu (TCG) with internal/testutil/vmharness and checks what the
// in-guest driver, tests/vmguest, recorded.
//
// The tests are off unless DLOG_VM=1 (make vmtest, make vmtest-ci):
//
//	DLOG_VM=1 go test ./tests/vm/ -v
//
// Environment:
//
//	DLOG_VM=1                 run at all
//	DLOG_VM_SCENARIOS=a,b     scenarios to run (default: all the guest knows)
//	DLOG_VM_TIMEOUT=6m        the guest's watchdog; qemu is killed 2 minutes later
//	DLOG_VM_VERBOSE=1         echo every guest command to the console
//	DLOG_VM_QUIET=1           do not stream the guest's console with -v (console.log keeps it)
//	DLOG_VM_UPDATE_GOLDEN=1   copy the kernel-written images to engine/testdata/kernel/
//	DLOG_VM_CACHE=dir         kernel cache (default build/vm, filled by scripts/vm/deps.sh)
//
// The last boot's files stay in build/vm/last-run/: console.log,
// results.img and results/ (report.json, guest.log, commands.log,
// dmesg.txt, dlogd.log, golden/); the crash test's two boots in
// build/vm/last-run-crash/. "crash" in DLOG_VM_SCENARIOS (or no list)
// runs the crash test: boot 1 is killed at the guest's crash marker,
// boot 2 checks the logs on the same disk.
package vm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// defaultGuestTimeout plus the two-minute qemu margin stays under go test's
// default 10-minute timeout, so a hang is reported by the harness, precisely.
// (make vmtest sets DLOG_VM_TIMEOUT and a longer go test timeout.)
const defaultGuestTimeout = 7 * time.Minute

func TestVM(t *testing.T) {
	h := prepare(t, "DLOG_VM", "real-kernel VM tests are off: run them with 'DLOG_VM=1 go test ./tests/vm/ -v' or 'make vmtest' "+
		"(first use installs qemu-system-x86, busybox-static and cpio with apt-get and downloads Debian's kernel: root and the Debian mirror needed)")
	want := vmharness.SplitScenarios(os.Getenv("DLOG_VM_SCENARIOS"))
	// "crash" is two boots of its own (crash-write, then crash-check on
	// the same disk); everything else shares one boot.
	var shared []string
	crash := len(want) == 0
	for _, w := range want {
		if w == "crash" {
			crash = true
		} else {
			shared = append(shared, w)
		}
	}
	if len(want) == 0 || len(shared) > 0 {
		res := h.boot(t, "last-run", shared, nil)
		if res != nil {
			checkReport(t, res, shared)
			checkGoldens(t, h.root, res.Report, res.Files)
		}
	}
	if crash {
		t.Run("crash", func(t *testing.T) { runCrash(t, h) })
	}
}

// host is what every boot needs: the kernel and the binaries for the guest.
type host struct {
	root         string
	kernel       *vmharness.Kernel
	guest, dlogd string
	files        []vmharness.File
	guestTimeout time.Duration
}

// prepare skips the test with the message off unless the variable optIn
// is 1, then checks the cached kernel and builds the guest and dlogd.
func prepare(t *testing.T, optIn, off string) *host {
	if os.Getenv(optIn) != "1" {
		t.Skip(off)
	}
	h := &host{root: repoRoot(t)}
	ctx := context.Background()
	start := time.Now()
	var err error
	h.kernel, err = vmharness.EnsureKernel(ctx, h.root, os.Getenv("DLOG_VM_CACHE"), testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s (%s) from %s, set-up checked in %.1f s", h.kernel.Version, h.kernel.Package, h.kernel.Dir, time.Since(start).Seconds())
	bin := filepath.Join(h.root, "build", "vm", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if h.guest, err = goBuild(t, h.root, "./tests/vmguest", filepath.Join(bin, "dlog-vmguest")); err != nil {
		t.Fatal(err)
	}
	if hasGoFiles(filepath.Join(h.root, "cmd", "dlogd")) {
		// A dlogd that does not build fails the test, but the kernel
		// scenarios still run (the dlogd ones then skip as "absent").
		if h.dlogd, err = goBuild(t, h.root, "./cmd/dlogd", filepath.Join(bin, "dlogd")); err != nil {
			t.Errorf("%v\nbooting without dlogd: the dlogd scenarios will skip", err)
		}
	} else {
		t.Log("cmd/dlogd has no Go files yet: the initramfs has no dlogd, and the dlogd scenarios skip")
	}
	h.guestTimeout = defaultGuestTimeout
	if v := os.Getenv("DLOG_VM_TIMEOUT"); v != "" {
		if h.guestTimeout, err = time.ParseDuration(v); err != nil || h.guestTimeout <= 0 {
			t.Fatalf("DLOG_VM_TIMEOUT=%q: want a positive Go duration such as 8m", v)
		}
	}
	return h
}

// boot runs one boot in build/vm/<dir> with the scenarios (nil: all).
// tune adjusts the configuration (extra disks, kill marker). It returns
// nil after reporting a boot that produced nothing.
func (h *host) boot(t *testing.T, dir string, scenarios []string, tune func(*vmharness.Config)) *vmharness.Result {
	work := filepath.Join(h.root, "build", "vm", dir)
	if err := os.RemoveAll(work); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := vmharness.Config{
		Kernel:  h.kernel,
		Guest:   h.guest,
		Dlogd:   h.dlogd,
		Files:   h.files,
		Options: vmharness.Options{Scenarios: scenarios, Timeout: h.guestTimeout, Verbose: os.Getenv("DLOG_VM_VERBOSE") == "1"},
		Timeout: h.guestTimeout + 2*time.Minute,
		WorkDir: work,
	}
	if testing.Verbose() && os.Getenv("DLOG_VM_QUIET") != "1" {
		cfg.Console, cfg.ConsolePrefix = os.Stdout, "vm| "
	}
	if tune != nil {
		tune(&cfg)
	}
	names := "all"
	if len(scenarios) > 0 {
		names = strings.Join(scenarios, ",")
	}
	t.Logf("booting %s with scenarios %s (guest watchdog %v, qemu killed after %v); console log %s",
		h.kernel.Vmlinuz, names, h.guestTimeout, cfg.Timeout, filepath.Join(work, "console.log"))
	res, runErr := vmharness.Run(context.Background(), cfg)
	if res != nil {
		t.Logf("qemu ran %.1f s", res.Elapsed.Seconds())
		saveResults(t, filepath.Join(work, "results"), res.Files)
	}
	if runErr != nil {
		t.Error(runErr)
	}
	if res == nil || (res.Report == nil && !res.Killed) {
		t.Errorf("no results from the boot in %s", work)
		return nil
	}
	return res
}

// checkReport turns the guest's steps into one subtest per scenario.
func checkReport(t *testing.T, res *vmharness.Result, want []string) {
	rep := res.Report
	t.Logf("guest: kernel %s, uptime %.1f s at the driver's start, %.1f s at the end; %s",
		rep.Kernel, rep.UptimeStart, rep.UptimeEnd, rep.Summary())
	names, steps := rep.ByScenario()
	for _, name := range names {
		t.Run(name, func(t *testing.T) { checkSteps(t, steps[name]) })
	}
	for _, w := range want {
		if _, ok := steps[w]; !ok {
			t.Errorf("scenario %s: recorded no steps (cut short by the watchdog, or the setup failed)", w)
		}
	}
	if !rep.Complete {
		t.Errorf("the guest did not finish: %s", orDefault(rep.Watchdog, "it stopped without saying why; see the results' guest.log"))
	}
}

func checkSteps(t *testing.T, steps []vmharness.Step) {
	var total float64
	for _, st := range steps {
		total += st.Seconds
		switch st.Status {
		case vmharness.StatusFail:
			t.Error(st.String())
		case vmharness.StatusSkip:
			t.Log(st.String())
		}
	}
	t.Logf("%d steps, %.1f s of step time", len(steps), total)
}

// runCrash is the crash test's two boots on one persistent disk: boot 1
// writes and is killed at the guest's crash marker (a power cut), boot 2
// checks what the logs say about the writes that were in flight.
func runCrash(t *testing.T, h *host) {
	dir := filepath.Join(h.root, "build", "vm", "last-run-crash")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "crash-disk.img")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(crashDiskMB << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	res := h.boot(t, "last-run-crash/boot1", []string{"crash-write"}, func(c *vmharness.Config) {
		c.Disks = []string{disk}
		c.KillOn, c.KillDelay = crashMarker, 300*time.Millisecond
	})
	if res == nil {
		return
	}
	if !res.Killed {
		t.Errorf("boot 1 ended without reaching the crash marker %q", crashMarker)
		if res.Report != nil {
			checkReport(t, res, []string{"crash-write"})
		}
		return
	}
	t.Logf("boot 1 killed at the crash marker after %.1f s: %s", res.Elapsed.Seconds(), markerLine(res.ConsoleLog))
	res = h.boot(t, "last-run-crash/boot2", []string{"crash-check"}, func(c *vmharness.Config) { c.Disks = []string{disk} })
	if res != nil && res.Report != nil {
		checkReport(t, res, []string{"crash-check"})
	}
}

// crashDiskMB must hold what tests/vmguest's crash scenario lays out
// (1 MiB of journal, then three mirrors of a 1 MiB log and two 64 MiB legs).
const (
	crashDiskMB = 392
	crashMarker = "DLOG-CRASH-POINT"
)

func markerLine(consoleLog string) string {
	b, _ := os.ReadFile(consoleLog)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, crashMarker) {
			return strings.TrimSpace(vmharness.CleanConsoleLine(line))
		}
	}
	return "(marker line not found)"
}

// checkGoldens compares the images the kernel wrote with the committed ones
// in engine/testdata/kernel/, or replaces those with DLOG_VM_UPDATE_GOLDEN=1.
func checkGoldens(t *testing.T, root string, rep *vmharness.Report, files map[string][]byte) {
	if len(rep.Goldens) == 0 {
		return
	}
	dir := filepath.Join(root, "engine", "testdata", "kernel")
	update := os.Getenv("DLOG_VM_UPDATE_GOLDEN") == "1"
	if update {
		if _, steps := rep.ByScenario(); hasFailure(steps["kgolden"]) {
			t.Errorf("not updating %s: scenario kgolden had failures", dir)
			update = false
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range rep.Goldens {
		img, ok1 := files["golden/"+g.Name+".img"]
		side, ok2 := files["golden/"+g.Name+".json"]
		if !ok1 || !ok2 {
			t.Errorf("golden %s: the results disk lacks golden/%s.img or .json", g.Name, g.Name)
			continue
		}
		dst := filepath.Join(dir, g.Name)
		if update {
			if err := os.WriteFile(dst+".img", img, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst+".json", side, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("golden %s: wrote %s.img (%d bytes) and .json", g.Name, dst, len(img))
			continue
		}
		old, err := os.ReadFile(dst + ".img")
		if errors.Is(err, os.ErrNotExist) {
			t.Logf("golden %s: not committed yet; DLOG_VM_UPDATE_GOLDEN=1 writes it to %s.img", g.Name, dst)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(old, img) {
			t.Errorf("golden %s: the kernel wrote an image that differs from %s.img (%d vs %d bytes): the kernel's behaviour changed, or the capture is not deterministic; compare with build/vm/last-run/results/golden/ and rerun with DLOG_VM_UPDATE_GOLDEN=1 if the change is right",
				g.Name, dst, len(img), len(old))
		}
		var committed vmharness.Golden
		if b, err := os.ReadFile(dst + ".json"); err != nil {
			t.Errorf("golden %s: %v", g.Name, err)
		} else if err := json.Unmarshal(b, &committed); err != nil {
			t.Errorf("golden %s: %s.json: %v", g.Name, dst, err)
		} else if a, b := goldenShape(committed), goldenShape(g); a != b {
			t.Errorf("golden %s: sidecar differs from %s.json: expected %s, got %s", g.Name, dst, a, b)
		}
	}
}

// goldenShape is the part of a sidecar that must not change between boots
// (device numbers in the table and status may).
func goldenShape(g vmharness.Golden) string {
	return fmt.Sprintf("target_sectors=%d region_size=%d region_count=%d logical_block_size=%d buf_size=%d sync_count=%d sha256=%s",
		g.TargetSectors, g.RegionSize, g.RegionCount, g.LogicalBlockSize, g.BufSize, g.SyncCount, g.SHA256)
}

func hasFailure(steps []vmharness.Step) bool {
	for _, s := range steps {
		if s.Status == vmharness.StatusFail {
			return true
		}
	}
	return false
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// repoRoot is the module root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("cannot find the repository root from %s: %v", root, err)
	}
	return root
}

// goBuild builds a static binary for the guest.
func goBuild(t *testing.T, root, pkg, out string) (string, error) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s for the guest (CGO_ENABLED=0 go build %s) failed: %v\n%s", pkg, pkg, err, b)
	}
	t.Logf("built %s in %.1f s", pkg, time.Since(start).Seconds())
	return out, nil
}

func hasGoFiles(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range m {
		if !strings.HasSuffix(f, "_test.go") {
			return true
		}
	}
	return false
}

// saveResults unpacks the results disk next to it, for people to read.
func saveResults(t *testing.T, dir string, files map[string][]byte) {
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Logf("saving results: %v", err)
			return
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Logf("saving results: %v", err)
			return
		}
	}
	if len(files) > 0 {
		t.Logf("results unpacked in %s", dir)
	}
}

// testWriter sends a subprocess's output to the test log line by line.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(line)
	}
	return len(p), nil
}
