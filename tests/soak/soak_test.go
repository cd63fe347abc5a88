//go:build linux

package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/ulog"
)

// testWriter sends lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestSoakSlice runs a short soak (DLOG_SOAK_DURATION, 20 s by default, 8 s
// with -short) with every fault kind injected at least once: no
// acknowledged mark may be lost, no reply may break the protocol, and
// dlogd must end cleanly. `make soak` runs the long one.
func TestSoakSlice(t *testing.T) {
	d := 20 * time.Second
	if testing.Short() {
		d = 8 * time.Second
	}
	if s := os.Getenv("DLOG_SOAK_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("DLOG_SOAK_DURATION: %v", err)
		}
	}
	cfg := DefaultConfig()
	cfg.Duration = d
	cfg.Clients = 3
	cfg.Logs = 8
	cfg.Dlogd = testDlogd
	cfg.Dir = keptDir(t)
	cfg.Patience = 500 * time.Millisecond
	cfg.FaultEvery = 700 * time.Millisecond
	cfg.LifeEvery = 500 * time.Millisecond
	cfg.Progress = 5 * time.Second
	cfg.Mlock = false
	cfg.Schedule = []string{faultKill9, faultStop, faultEIO, faultTear, faultTerm, faultFull, faultVanis, faultVanis}
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var out bytes.Buffer
	cfg.Out = &out
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", out.String())
	if !res.Pass() {
		t.Fatalf("soak failed (seed %d): %d failures, %d marks lost; dlogd's log: %s/dlogd.log", res.Seed, res.NFailures, res.Lost, cfg.Dir)
	}
	if res.Checked == 0 || res.Restarts == 0 {
		t.Fatalf("the soak checked %d marks over %d restarts: it did not exercise anything", res.Checked, res.Restarts)
	}
	for _, k := range []string{faultKill9, faultStop, faultTerm, faultEIO, faultTear} {
		if res.Faults[k] == 0 && d >= 15*time.Second {
			t.Errorf("fault %s never injected", k)
		}
	}
}

// keptDir is a work directory for one soak that is removed when the test
// passes and kept, with dlogd's log in it, when it fails.
func keptDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dlog-soak-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept the soak's work directory: %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// TestSoakDetectsLoss checks the checker: a mark lost behind the model's
// back (a CLEAR the model never saw, sent while the workload is stopped
// after a restart) must be reported, and the soak must fail.
func TestSoakDetectsLoss(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Duration = 5 * time.Second
	cfg.Clients = 2
	cfg.Logs = 4
	cfg.Dlogd = testDlogd
	cfg.Dir = t.TempDir()
	cfg.FaultEvery = time.Second
	cfg.Faults = faultKill9
	cfg.Mlock = false
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var out bytes.Buffer
	cfg.Out = &out
	sabotaged := 0
	cfg.sabotage = func(ctx context.Context, s *soak) {
		if sabotaged > 0 {
			return
		}
		for _, l := range s.logs {
			in := l.liveInst()
			rs := l.mustDirtyList()
			if !l.disk || in == nil || len(rs) == 0 {
				continue
			}
			res, _, err := s.inj.do(ctx, l, in, ulog.TypeClearRegion, u64(rs[0]))
			if err == nil && res == 0 {
				_, _, err = s.inj.do(ctx, l, in, ulog.TypeFlush, nil)
			}
			if err != nil || res != 0 {
				t.Errorf("sabotage CLEAR: %d %v", res, err)
			}
			t.Logf("sabotage: cleared %s region %d behind the model's back", l.name, rs[0])
			sabotaged++
			return
		}
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sabotaged == 0 {
		t.Skip("no restart found an acknowledged mark to lose")
	}
	if res.Lost != 1 || res.Pass() || !strings.Contains(out.String(), "MARK LOST") {
		t.Fatalf("one mark lost on purpose: the soak reports %d lost, pass=%v:\n%s", res.Lost, res.Pass(), out.String())
	}
	if !strings.Contains(res.Line, "FAIL") || !strings.Contains(res.Line, "marks_lost=1") {
		t.Errorf("report line does not say so: %s", res.Line)
	}
}
