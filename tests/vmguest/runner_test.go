package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// steps runs sc and returns "step=status" strings and the recorded steps.
func runScenario(t *testing.T, sc Scenario) (bool, []vmharness.Step, string) {
	t.Helper()
	var out bytes.Buffer
	rec := NewRecorder(&out)
	ok := RunScenario(context.Background(), rec, sc, nil)
	steps, _ := rec.Snapshot()
	return ok, steps, out.String()
}

func summary(steps []vmharness.Step) string {
	var s []string
	for _, st := range steps {
		s = append(s, st.Step+"="+st.Status)
	}
	return strings.Join(s, ", ")
}

func TestScenarioAbortRunsCleanupsInReverse(t *testing.T) {
	var order []string
	ok, steps, out := runScenario(t, Scenario{Name: "x", Timeout: time.Minute, Run: func(s *S) {
		s.Defer("first", time.Second, func(context.Context) error { order = append(order, "first"); return nil })
		s.Do("works", time.Second, func(context.Context) error { return nil })
		undone := s.Defer("undone", time.Second, func(context.Context) error { order = append(order, "undone"); return nil })
		undone()
		s.Defer("second", time.Second, func(context.Context) error { order = append(order, "second"); return errors.New("busy") })
		s.Expect("mismatch goes on", "a", time.Second, func(context.Context) (string, error) { return "b", nil })
		s.Do("breaks", time.Second, func(context.Context) error { return errors.New("boom") })
		s.Do("never runs", time.Second, func(context.Context) error { t.Error("ran after an abort"); return nil })
	}})
	if ok {
		t.Error("a failed scenario reported success")
	}
	if got, want := strings.Join(order, " "), "second first"; got != want {
		t.Errorf("cleanup order %q, want %q", got, want)
	}
	want := "works=ok, mismatch goes on=fail, breaks=fail, cleanup: second=fail, cleanup: first=ok"
	if got := summary(steps); got != want {
		t.Errorf("steps\n got %s\nwant %s", got, want)
	}
	if steps[1].Expected != "a" || steps[1].Got != "b" || steps[2].Detail != "boom" || steps[3].Detail != "busy" {
		t.Errorf("details: %+v", steps)
	}
	if !strings.Contains(out, "[x] FAIL  scenario x, step breaks: expected success, got error (boom)") || !strings.Contains(out, "[x] FAILED in") {
		t.Errorf("console output:\n%s", out)
	}
}

func TestStepTimeoutAbandonsABlockedFunction(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	start := time.Now()
	ok, steps, _ := runScenario(t, Scenario{Name: "hang", Timeout: time.Minute, Run: func(s *S) {
		s.Do("blocked in the kernel", 100*time.Millisecond, func(context.Context) error {
			<-release // ignores its context, like a process in D state
			return nil
		})
	}})
	if ok || len(steps) != 1 || !strings.Contains(steps[0].Detail, "timed out after 100ms") || !strings.Contains(steps[0].Detail, "still blocked") {
		t.Fatalf("ok=%v steps=%+v", ok, steps)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the step took %v to give up", d)
	}
}

func TestStepTimeoutWithContext(t *testing.T) {
	ok, steps, _ := runScenario(t, Scenario{Name: "ctx", Timeout: time.Minute, Run: func(s *S) {
		s.Expect("waits", "x", 50*time.Millisecond, func(ctx context.Context) (string, error) {
			<-ctx.Done()
			return "", ctx.Err()
		})
	}})
	if ok || !strings.Contains(steps[0].Detail, "timed out after 50ms: context deadline exceeded") {
		t.Fatalf("%+v", steps)
	}
}

func TestScenarioDeadline(t *testing.T) {
	ok, steps, _ := runScenario(t, Scenario{Name: "slow", Timeout: 100 * time.Millisecond, Run: func(s *S) {
		s.Do("long step", time.Hour, func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
	}})
	if ok || steps[0].Seconds > 5 {
		t.Fatalf("ok=%v %+v", ok, steps)
	}
}

func TestPartsAreIndependent(t *testing.T) {
	var cleaned []string
	ok, steps, _ := runScenario(t, Scenario{Name: "p", Timeout: time.Minute, Run: func(s *S) {
		s.Part("one", func(p *S) {
			p.Defer("c1", time.Second, func(context.Context) error { cleaned = append(cleaned, "c1"); return nil })
			p.Fail("fails", "x", "y", "")
		})
		if !s.Failed() {
			t.Error("a failed part did not mark the scenario failed")
		}
		s.Part("two", func(p *S) {
			p.Check("runs anyway", "1", "1")
			p.Skip("not here", "no daemon")
		})
		s.Value("after the parts", time.Second, func(context.Context) (string, error) { return "v", nil })
	}})
	want := "one: fails=fail, one: cleanup: c1=ok, two: runs anyway=ok, two: not here=skip, after the parts=ok"
	if ok || summary(steps) != want || len(cleaned) != 1 {
		t.Errorf("ok=%v cleaned=%v\n got %s\nwant %s", ok, cleaned, summary(steps), want)
	}
}

func TestSkipDoesNotFail(t *testing.T) {
	ok, steps, _ := runScenario(t, Scenario{Name: "s", Run: func(s *S) {
		s.Skip("start dlogd", "dlogd is absent")
	}})
	if !ok || len(steps) != 1 || steps[0].Status != vmharness.StatusSkip || steps[0].Detail != "dlogd is absent" {
		t.Errorf("ok=%v %+v", ok, steps)
	}
}

func TestPanicIsAFailedStep(t *testing.T) {
	ok, steps, _ := runScenario(t, Scenario{Name: "p", Run: func(s *S) {
		panic(errors.New("scenario bug"))
	}})
	if ok || len(steps) != 1 || steps[0].Step != "panic" || steps[0].Got != "scenario bug" || !strings.Contains(steps[0].Detail, "goroutine") {
		t.Errorf("ok=%v %+v", ok, steps)
	}
	ok, steps, _ = runScenario(t, Scenario{Name: "q", Run: func(s *S) {
		s.Do("panics inside", time.Second, func(context.Context) error { panic("inner") })
	}})
	if ok || !strings.Contains(steps[0].Detail, "panic: inner") {
		t.Errorf("ok=%v %+v", ok, steps)
	}
}

func TestMustExpectAborts(t *testing.T) {
	ok, steps, _ := runScenario(t, Scenario{Name: "m", Run: func(s *S) {
		s.MustExpect("sync", "128/128", time.Second, func(context.Context) (string, error) { return "64/128", nil })
		s.Check("unreached", "", "")
	}})
	if ok || summary(steps) != "sync=fail" || steps[0].String() != "scenario m, step sync: expected 128/128, got 64/128" {
		t.Errorf("%s / %s", summary(steps), steps[0].String())
	}
}

func TestSelect(t *testing.T) {
	all := []Scenario{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	run, unknown := Select(all, nil)
	if len(run) != 3 || unknown != nil {
		t.Errorf("all: %v %v", run, unknown)
	}
	run, unknown = Select(all, []string{"c", "x", "a", "c"})
	if Names(run) != "c,a" || strings.Join(unknown, ",") != "x" {
		t.Errorf("got %s, unknown %v", Names(run), unknown)
	}
	// A scenario that needs a boot of its own runs only when named.
	all = append(all, Scenario{Name: "crash-write", Alone: true})
	if run, _ = Select(all, nil); Names(run) != "a,b,c" {
		t.Errorf("all with an Alone scenario: %s", Names(run))
	}
	if run, _ = Select(all, []string{"crash-write"}); Names(run) != "crash-write" {
		t.Errorf("named Alone scenario: %s", Names(run))
	}
}

func TestNote(t *testing.T) {
	rec := NewRecorder(nil)
	RunScenario(context.Background(), rec, Scenario{Name: "n", Run: func(s *S) { s.Note("timings", "1.00 s") }}, nil)
	steps, _ := rec.Snapshot()
	if len(steps) != 1 || steps[0].Status != "ok" || steps[0].Got != "1.00 s" {
		t.Errorf("%+v", steps)
	}
}

func TestRecorderCurrent(t *testing.T) {
	rec := NewRecorder(nil)
	var during string
	RunScenario(context.Background(), rec, Scenario{Name: "w", Run: func(s *S) {
		s.Part("part", func(p *S) {
			p.Do("resync", time.Second, func(context.Context) error { during = rec.Current(); return nil })
		})
	}}, nil)
	if !strings.HasPrefix(during, "scenario w, step part: resync (running for ") {
		t.Errorf("during the step: %q", during)
	}
	if got := rec.Current(); got != "" {
		t.Errorf("after the scenario: %q", got)
	}
}
