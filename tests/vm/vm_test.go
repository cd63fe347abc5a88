// Package vm_test runs dlog's real-kernel scenarios: it boots Debian's stock
// kernel under qemu (TCG) with internal/vmharness and checks what the
// in-guest driver, cmd/dlog-vmguest, recorded.
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
//	DLOG_VM_UPDATE_GOLDEN=1   copy the kernel-written images to engine/testdata/kernel/
//	DLOG_VM_CACHE=dir         kernel cache (default build/vm, filled by scripts/vm/deps.sh)
//
// The last boot's files stay in build/vm/last-run/: console.log,
// results.img and results/ (report.json, guest.log, commands.log,
// dmesg.txt, golden/).
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

	"github.com/dlog-dev/dlog/internal/vmharness"
)

// defaultGuestTimeout plus the two-minute qemu margin stays under go test's
// default 10-minute timeout, so a hang is reported by the harness, precisely.
const defaultGuestTimeout = 6 * time.Minute

func TestVM(t *testing.T) {
	if os.Getenv("DLOG_VM") != "1" {
		t.Skip("real-kernel VM tests are off: run them with 'DLOG_VM=1 go test ./tests/vm/ -v' or 'make vmtest' " +
			"(first use installs qemu-system-x86, busybox-static and cpio with apt-get and downloads Debian's kernel: root and the Debian mirror needed)")
	}
	root := repoRoot(t)
	ctx := context.Background()

	start := time.Now()
	kernel, err := vmharness.EnsureKernel(ctx, root, os.Getenv("DLOG_VM_CACHE"), testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s (%s) from %s, set-up checked in %.1f s", kernel.Version, kernel.Package, kernel.Dir, time.Since(start).Seconds())

	work := filepath.Join(root, "build", "vm", "last-run")
	if err := os.RemoveAll(work); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	guest, err := goBuild(t, root, "./cmd/dlog-vmguest", filepath.Join(work, "dlog-vmguest"))
	if err != nil {
		t.Fatal(err)
	}
	dlogd := ""
	if hasGoFiles(filepath.Join(root, "cmd", "dlogd")) {
		// A dlogd that does not build fails the test, but the kernel
		// scenarios still run (the dlogd ones then skip as "absent").
		if dlogd, err = goBuild(t, root, "./cmd/dlogd", filepath.Join(work, "dlogd")); err != nil {
			t.Errorf("%v\nbooting without dlogd: the dlogd scenarios will skip", err)
		}
	} else {
		t.Log("cmd/dlogd has no Go files yet: the initramfs has no dlogd, and the dlogd scenarios skip")
	}

	guestTimeout := defaultGuestTimeout
	if v := os.Getenv("DLOG_VM_TIMEOUT"); v != "" {
		if guestTimeout, err = time.ParseDuration(v); err != nil || guestTimeout <= 0 {
			t.Fatalf("DLOG_VM_TIMEOUT=%q: want a positive Go duration such as 8m", v)
		}
	}
	want := vmharness.SplitScenarios(os.Getenv("DLOG_VM_SCENARIOS"))
	cfg := vmharness.Config{
		Kernel:  kernel,
		Guest:   guest,
		Dlogd:   dlogd,
		Options: vmharness.Options{Scenarios: want, Timeout: guestTimeout, Verbose: os.Getenv("DLOG_VM_VERBOSE") == "1"},
		Timeout: guestTimeout + 2*time.Minute,
		WorkDir: work,
	}
	if testing.Verbose() {
		cfg.Console, cfg.ConsolePrefix = os.Stdout, "vm| "
	}
	scenarios := "all"
	if len(want) > 0 {
		scenarios = strings.Join(want, ",")
	}
	t.Logf("booting %s with scenarios %s (guest watchdog %v, qemu killed after %v); console log %s",
		kernel.Vmlinuz, scenarios, guestTimeout, cfg.Timeout, filepath.Join(work, "console.log"))

	res, runErr := vmharness.Run(ctx, cfg)
	if res != nil {
		t.Logf("qemu ran %.1f s", res.Elapsed.Seconds())
		saveResults(t, filepath.Join(work, "results"), res.Files)
	}
	if res == nil || res.Report == nil {
		t.Fatalf("no results: %v", runErr)
	}
	rep := res.Report
	t.Logf("guest: kernel %s, uptime %.1f s at the driver's start, %.1f s at the end; %s",
		rep.Kernel, rep.UptimeStart, rep.UptimeEnd, rep.Summary())

	names, steps := rep.ByScenario()
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var total float64
			for _, st := range steps[name] {
				total += st.Seconds
				switch st.Status {
				case vmharness.StatusFail:
					t.Error(st.String())
				case vmharness.StatusSkip:
					t.Log(st.String())
				}
			}
			t.Logf("%d steps, %.1f s of step time", len(steps[name]), total)
		})
	}
	for _, w := range want {
		if _, ok := steps[w]; !ok {
			t.Errorf("scenario %s: recorded no steps (cut short by the watchdog, or the setup failed)", w)
		}
	}
	if runErr != nil {
		t.Error(runErr)
	}
	if !rep.Complete {
		t.Errorf("the guest did not finish: %s", orDefault(rep.Watchdog, "it stopped without saying why; see "+filepath.Join(work, "results", "guest.log")))
	}
	checkGoldens(t, root, rep, res.Files)
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
