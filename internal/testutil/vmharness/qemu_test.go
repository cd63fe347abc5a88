package vmharness

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as a fake qemu-system-x86_64: Run execs it with
// qemu's arguments and FAKE_QEMU set to a mode.
func TestMain(m *testing.M) {
	if mode := os.Getenv("FAKE_QEMU"); mode != "" {
		os.Exit(fakeQEMU(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeQEMU(mode string, args []string) int {
	var disk, cmdline string
	var extra []string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-drive":
			spec := strings.ReplaceAll(args[i+1], ",,", "\x00")
			file, _, _ := strings.Cut(strings.TrimPrefix(spec, "file="), ",")
			if disk == "" {
				disk = strings.ReplaceAll(file, "\x00", ",")
			} else {
				extra = append(extra, strings.ReplaceAll(file, "\x00", ","))
			}
		case "-append":
			cmdline = args[i+1]
		}
	}
	fmt.Printf("\x1b[2J\x1bcSeaBIOS (fake)\r\nBooting from ROM...\r\n")
	switch mode {
	case "ok":
		opts, _ := ParseCmdline(cmdline)
		rep := Report{Kernel: "fake", Cmdline: cmdline, Scenarios: opts.Scenarios, Complete: true,
			Steps: []Step{
				{Scenario: "setup", Step: "modules", Status: StatusOK},
				{Scenario: "kcore", Step: "status", Status: StatusFail, Expected: "128/128", Got: "0/128"},
			}}
		b, _ := json.Marshal(rep)
		f, err := os.OpenFile(disk, os.O_WRONLY, 0)
		if err != nil {
			fmt.Println("fake qemu:", err)
			return 1
		}
		tw := tar.NewWriter(f)
		tw.WriteHeader(&tar.Header{Name: "./" + ReportFile, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
		tw.WriteHeader(&tar.Header{Name: "./golden/", Mode: 0o755, Typeflag: tar.TypeDir})
		tw.WriteHeader(&tar.Header{Name: "./golden/x.img", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
		tw.Write([]byte("abc"))
		tw.Close()
		f.Close()
		fmt.Println("vmguest: done")
		return 0
	case "empty":
		fmt.Println("Kernel panic - not syncing: no init found")
		return 0
	case "noreport":
		f, _ := os.OpenFile(disk, os.O_WRONLY, 0)
		tw := tar.NewWriter(f)
		tw.WriteHeader(&tar.Header{Name: "dmesg.txt", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
		tw.Write([]byte("hi"))
		tw.Close()
		f.Close()
		return 0
	case "fail":
		fmt.Println("qemu: could not load kernel")
		return 1
	case "hang":
		fmt.Println("guest hung here")
		time.Sleep(time.Minute)
		return 0
	case "marker":
		// Write to the extra disk (it must persist), print the marker in
		// two pieces, then go on "writing" until killed.
		for _, d := range extra {
			os.WriteFile(d, []byte("boot1"), 0o644)
		}
		fmt.Print("vmguest: crash point DLOG-")
		os.Stdout.Sync()
		time.Sleep(50 * time.Millisecond)
		fmt.Println("KILL-ME now")
		for i := 0; ; i++ {
			fmt.Printf("write %d\n", i)
			time.Sleep(10 * time.Millisecond)
		}
	}
	return 2
}

// fakeKernel makes a cache entry with stand-in files.
func fakeKernel(t *testing.T) *Kernel {
	t.Helper()
	cache := t.TempDir()
	dir := filepath.Join(cache, "6.1.0-test-amd64")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"vmlinuz": "kernel", "initrd-base.cpio.gz": "base", ".complete": "linux-image-6.1.0-test-amd64 6.1.1-1\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(cache, "current"), []byte("6.1.0-test-amd64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := FindKernel(cache, "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func fakeConfig(t *testing.T, mode string) Config {
	t.Helper()
	t.Setenv("FAKE_QEMU", mode)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	guest := filepath.Join(t.TempDir(), "guest")
	if err := os.WriteFile(guest, []byte("guest"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Config{
		Kernel:        fakeKernel(t),
		Guest:         guest,
		Options:       Options{Scenarios: []string{"kcore"}, Timeout: time.Minute},
		WorkDir:       filepath.Join(t.TempDir(), "run,with,commas"),
		QEMU:          exe,
		ResultsDiskMB: 1,
	}
}

func TestRunOK(t *testing.T) {
	cfg := fakeConfig(t, "ok")
	var live bytes.Buffer
	cfg.Console, cfg.ConsolePrefix = &live, "vm| "
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.TimedOut || res.Report == nil {
		t.Fatalf("TimedOut=%v Report=%v", res.TimedOut, res.Report)
	}
	if got := res.Report.Scenarios; len(got) != 1 || got[0] != "kcore" {
		t.Errorf("the guest saw scenarios %v, want [kcore]", got)
	}
	if !strings.HasPrefix(res.Report.Cmdline, "console=ttyS0 quiet panic=-1 dlog.scenarios=kcore dlog.timeout=60") {
		t.Errorf("cmdline %q", res.Report.Cmdline)
	}
	if f := res.Report.Failures(); len(f) != 1 || f[0].String() != "scenario kcore, step status: expected 128/128, got 0/128" {
		t.Errorf("failures %v", f)
	}
	if string(res.Files["golden/x.img"]) != "abc" {
		t.Errorf("files %v", res.Files)
	}
	if want := "vm| SeaBIOS (fake)\nvm| Booting from ROM...\n"; !strings.HasPrefix(live.String(), want) {
		t.Errorf("live console %q, want it to start with %q", live.String(), want)
	}
	if b, _ := os.ReadFile(res.ConsoleLog); !bytes.Contains(b, []byte("\x1b[2J")) {
		t.Errorf("console.log should keep the raw bytes, got %q", b)
	}
	initrd, err := os.ReadFile(filepath.Join(cfg.WorkDir, "initrd.gz"))
	if err != nil || !bytes.HasPrefix(initrd, []byte("base\x1f\x8b")) {
		t.Errorf("initrd should be the base (4 bytes: no padding) then the gzip overlay: %q %v", initrd[:min(len(initrd), 12)], err)
	}
}

func TestRunFailures(t *testing.T) {
	for _, tc := range []struct {
		mode, want string
		timedOut   bool
	}{
		{"empty", "results disk is empty", false},
		{"noreport", "results disk has no report.json (files: dmesg.txt)", false},
		{"fail", "qemu failed: exit status 1", false},
		{"hang", "qemu timed out after 1.5s and was killed", true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cfg := fakeConfig(t, tc.mode)
			// Only the hung qemu needs a short timeout; the others finish on their own, and a
			// short timeout would turn a loaded machine's slow fake boot into a false hang.
			cfg.Timeout = time.Minute
			if tc.timedOut {
				cfg.Timeout = 1500 * time.Millisecond
			}
			start := time.Now()
			res, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if res.TimedOut != tc.timedOut {
				t.Errorf("TimedOut=%v, want %v", res.TimedOut, tc.timedOut)
			}
			if tc.timedOut && time.Since(start) > 15*time.Second {
				t.Errorf("a hung qemu took %v to be killed", time.Since(start))
			}
			if !strings.Contains(err.Error(), "console log") || !strings.Contains(err.Error(), "  | ") {
				t.Errorf("the error should quote the console's end: %v", err)
			}
		})
	}
}

func TestRunKillOnMarker(t *testing.T) {
	cfg := fakeConfig(t, "marker")
	disk := filepath.Join(t.TempDir(), "crash,disk.img")
	if err := os.WriteFile(disk, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Disks = []string{disk}
	cfg.KillOn, cfg.KillDelay = "DLOG-KILL-ME", 100*time.Millisecond
	cfg.Timeout = 30 * time.Second
	start := time.Now()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !res.Killed || res.TimedOut || res.Report != nil {
		t.Errorf("Killed=%v TimedOut=%v Report=%v", res.Killed, res.TimedOut, res.Report)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the kill took %v", d)
	}
	if b, _ := os.ReadFile(disk); string(b) != "boot1" {
		t.Errorf("extra disk holds %q: it was not passed to qemu", b)
	}
	b, _ := os.ReadFile(res.ConsoleLog)
	if !bytes.Contains(b, []byte("write 1\n")) {
		t.Errorf("the kill should come after the delay, console: %q", b)
	}

	cfg = fakeConfig(t, "ok")
	cfg.Disks = []string{filepath.Join(t.TempDir(), "missing.img")}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "extra disk") {
		t.Errorf("missing extra disk: %v", err)
	}
}

func TestRunMissingPieces(t *testing.T) {
	cfg := fakeConfig(t, "ok")
	cfg.QEMU = "no-such-qemu-binary"
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("missing qemu: %v", err)
	}
	cfg = fakeConfig(t, "ok")
	cfg.Kernel = nil
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrNoKernel) {
		t.Errorf("no kernel: %v", err)
	}
	cfg = fakeConfig(t, "ok")
	cfg.Options.Scenarios = []string{"Bad Name"}
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Error("a bad scenario name was accepted")
	}
}

func TestQEMUArgs(t *testing.T) {
	got := strings.Join(QEMUArgs("/k/vmlinuz", "/w/initrd.gz", "/w,x/results.img", "console=ttyS0 quiet", 1024, 0), " | ")
	want := "-accel | tcg | -cpu | max | -m | 1024M | -smp | 1 | -nographic | -no-reboot | -nic | none | " +
		"-kernel | /k/vmlinuz | -initrd | /w/initrd.gz | -append | console=ttyS0 quiet | " +
		"-drive | file=/w,,x/results.img,format=raw,if=virtio"
	if got != want {
		t.Errorf("QEMUArgs:\n got %s\nwant %s", got, want)
	}
	got = strings.Join(QEMUArgs("/k/vmlinuz", "/w/initrd.gz", "/w/results.img", "x", 512, 2, "/w/crash.img"), " | ")
	if !strings.HasSuffix(got, "-drive | file=/w/results.img,format=raw,if=virtio | -drive | file=/w/crash.img,format=raw,if=virtio") {
		t.Errorf("QEMUArgs with an extra disk: %s", got)
	}
	if !strings.Contains(got, "-smp | 2 |") {
		t.Errorf("QEMUArgs with 2 CPUs: %s", got)
	}
}

func TestFindKernel(t *testing.T) {
	k := fakeKernel(t)
	if k.Version != "6.1.0-test-amd64" || k.Package != "linux-image-6.1.0-test-amd64 6.1.1-1" || filepath.Base(k.Vmlinuz) != "vmlinuz" {
		t.Errorf("%+v", k)
	}
	cache := filepath.Dir(k.Dir)
	if _, err := FindKernel(t.TempDir(), ""); !errors.Is(err, ErrNoKernel) {
		t.Errorf("empty cache: %v", err)
	}
	if err := os.Remove(filepath.Join(k.Dir, ".complete")); err != nil {
		t.Fatal(err)
	}
	if _, err := FindKernel(cache, ""); !errors.Is(err, ErrNoKernel) || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("incomplete cache: %v", err)
	}
	if _, err := FindKernel(cache, "../etc"); err == nil {
		t.Error("a version with a slash was accepted")
	}
}

func TestCleanConsoleLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                         "plain",
		"\x1b[2J\x1b[1;1Hboot\r":        "boot",
		"\x1bcSeaBIOS":                  "SeaBIOS",
		"tab\there\x07bell":             "tab\therebell",
		"[    1.0] msg\x1b[0m done\x7f": "[    1.0] msg done",
		"trailing esc \x1b":             "trailing esc ",
	} {
		if got := CleanConsoleLine(in); got != want {
			t.Errorf("CleanConsoleLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConsoleTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "console.log")
	var b strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&b, "line %d\r\n", i)
	}
	os.WriteFile(p, []byte(b.String()), 0o644)
	got := ConsoleTail(p, 3)
	if want := "  | line 28\n  | line 29\n  | line 30"; got != want {
		t.Errorf("ConsoleTail = %q, want %q", got, want)
	}
	if got := ConsoleTail(filepath.Join(t.TempDir(), "none"), 3); !strings.Contains(got, "no console log") {
		t.Errorf("missing log: %q", got)
	}
}

func TestPrefixLines(t *testing.T) {
	var out bytes.Buffer
	w := prefixLines(&out, "> ")
	io.WriteString(w, "par")
	io.WriteString(w, "tial\r\nsecond\nthi")
	w.Flush()
	if want := "> partial\n> second\n> thi\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSharedDiskArgs(t *testing.T) {
	got := strings.Join(SharedDiskArgs([]string{"/d/mail,box.img", "/d/leg.img"}, false), " ")
	want := "-blockdev driver=raw,node-name=shared0,file.driver=file,file.filename=/d/mail,,box.img,file.locking=off,file.aio=threads,cache.direct=on,cache.no-flush=off " +
		"-device virtio-blk-pci,drive=shared0,share-rw=on,serial=dlog-shared0,addr=0x10 " +
		"-blockdev driver=raw,node-name=shared1,file.driver=file,file.filename=/d/leg.img,file.locking=off,file.aio=threads,cache.direct=on,cache.no-flush=off " +
		"-device virtio-blk-pci,drive=shared1,share-rw=on,serial=dlog-shared1,addr=0x11"
	if got != want {
		t.Errorf("SharedDiskArgs:\n got %s\nwant %s", got, want)
	}
	got = strings.Join(SharedDiskArgs([]string{"/d/leg.img"}, true), " ")
	want = "-blockdev driver=raw,node-name=shared0,discard=unmap,file.driver=file,file.filename=/d/leg.img,file.locking=off,file.aio=threads,cache.direct=on,cache.no-flush=off " +
		"-device virtio-blk-pci,drive=shared0,share-rw=on,serial=dlog-shared0,addr=0x10"
	if got != want {
		t.Errorf("SharedDiskArgs with unmap:\n got %s\nwant %s", got, want)
	}
}
