package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/ulog"
)

// dlogd profile against a running daemon: the CPU profile (gzip, as pprof
// writes it) and the execution trace (its header) land in --out, created
// for it, while requests are served; a second profile at the same time is
// refused; bad arguments are refused before anything is asked.
func TestProfile(t *testing.T) {
	dir := t.TempDir()
	ctl := filepath.Join(dir, "dlogd.ctl")
	p := start(t, dir, "--control", ctl)
	c := dial(t, p.sock)
	c.must(ulog.TypeCtr, "pr-core", 1, []byte("131072 clustered-core 1024 nosync"))
	c.must(ulog.TypeResume, "pr-core", 1, nil)

	out := filepath.Join(dir, "profiles", "sub")
	var wg sync.WaitGroup
	var code1, code2 int
	var out1, err1, out2, err2 bytes.Buffer
	wg.Add(1)
	go func() {
		defer wg.Done()
		code1 = run([]string{"profile", "--control", ctl, "--seconds", "2", "--out", out}, &out1, &err1)
	}()
	// Requests while it runs, then a second profile, refused.
	for i := range 200 {
		c.must(ulog.TypeMarkRegion, "pr-core", 1, ulog.AppendUint64(nil, uint64(i%128)))
		c.must(ulog.TypeFlush, "pr-core", 1, nil)
		c.must(ulog.TypeClearRegion, "pr-core", 1, ulog.AppendUint64(nil, uint64(i%128)))
		if i == 100 {
			code2 = run([]string{"profile", "--control", ctl, "--seconds", "1", "--out", dir}, &out2, &err2)
		}
	}
	wg.Wait()
	if code1 != 0 {
		t.Fatalf("dlogd profile: exit %d: %s", code1, err1.String())
	}
	if code2 != 1 || !strings.Contains(err2.String(), errProfileBusy.Error()) {
		t.Errorf("a second profile at the same time: exit %d, %q; want 1 and %q", code2, err2.String(), errProfileBusy)
	}
	var cpu, trace string
	for _, line := range strings.Split(strings.TrimSpace(out1.String()), "\n") {
		if v, ok := strings.CutPrefix(line, "cpu profile: "); ok {
			cpu = v
		}
		if v, ok := strings.CutPrefix(line, "execution trace: "); ok {
			trace = v
		}
	}
	if filepath.Dir(cpu) != out || filepath.Dir(trace) != out {
		t.Fatalf("profile output %q: want both files in %s", out1.String(), out)
	}
	for _, f := range []string{cpu, trace} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	f, err := os.Open(cpu)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("the CPU profile is not pprof's gzip: %v", err)
	}
	if b, err := io.ReadAll(zr); err != nil || len(b) == 0 {
		t.Fatalf("the CPU profile: %d bytes, %v", len(b), err)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("go 1.")) || len(b) < 1000 {
		t.Fatalf("the execution trace: %d bytes starting %q, want Go's trace header", len(b), b[:min(len(b), 16)])
	}

	for _, bad := range [][]string{
		{"profile", "--control", ctl, "--seconds", "0", "--out", dir},
		{"profile", "--control", ctl, "--seconds", "121", "--out", dir},
		{"profile", "--control", ctl},
		{"profile", "--control", ctl, "--pidfile", filepath.Join(dir, "dlogd.pid"), "--out", dir},
	} {
		var o, e bytes.Buffer
		if code := run(bad, &o, &e); code != exitUsage {
			t.Errorf("%q: exit %d (%s), want %d", bad, code, e.String(), exitUsage)
		}
	}
}

// The daemon takes only an absolute directory and a bounded duration.
func TestParseProfileCommand(t *testing.T) {
	if d, dir, err := parseProfileCommand("profile 5 /tmp/a b"); err != nil || d.Seconds() != 5 || dir != "/tmp/a b" {
		t.Errorf("profile 5 /tmp/a b: %v %q %v", d, dir, err)
	}
	for _, bad := range []string{"profile", "profile 5", "profile x /tmp", "profile 0 /tmp", "profile 121 /tmp", "profile 5 rel/dir"} {
		if _, _, err := parseProfileCommand(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// --poll is refused out of bounds, and ignored with a warning on one CPU.
func TestPollSetting(t *testing.T) {
	var logb bytes.Buffer
	log := newLogger(&logb, slog.LevelInfo)
	if got := pollSetting(50*time.Microsecond, 2, log); got != 50*time.Microsecond || logb.Len() != 0 {
		t.Errorf("two CPUs: %v, log %q", got, logb.String())
	}
	if got := pollSetting(50*time.Microsecond, 1, log); got != 0 || !strings.Contains(logb.String(), "--poll ignored") {
		t.Errorf("one CPU: %v, log %q", got, logb.String())
	}
	for _, bad := range []string{"-1ms", "11ms"} {
		var o, e bytes.Buffer
		if code := run([]string{"serve", "--poll", bad}, &o, &e); code != exitUsage || !strings.Contains(e.String(), "--poll") {
			t.Errorf("--poll %s: exit %d, %q", bad, code, e.String())
		}
	}
}

// dlogd runs with at least two Ps unless GOMAXPROCS says otherwise.
func TestProcsFloor(t *testing.T) {
	for _, c := range []struct {
		env         string
		procs, want int
	}{{"", 1, 2}, {"", 2, 0}, {"", 8, 0}, {"1", 1, 0}, {"4", 4, 0}} {
		if got := procsFloor(c.env, c.procs); got != c.want {
			t.Errorf("procsFloor(%q, %d) = %d, want %d", c.env, c.procs, got, c.want)
		}
	}
}
