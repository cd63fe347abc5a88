package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// Recorder collects the steps and golden images of one boot. It is safe for
// concurrent use: the watchdog snapshots it while a scenario may still run.
type Recorder struct {
	mu      sync.Mutex
	steps   []vmharness.Step
	goldens []vmharness.Golden
	out     io.Writer // console and guest.log

	current      string // "scenario X, step Y" while a step runs
	currentSince time.Time
}

// setCurrent notes the step that is running, for the watchdog's message.
func (r *Recorder) setCurrent(what string) {
	r.mu.Lock()
	r.current, r.currentSince = what, time.Now()
	r.mu.Unlock()
}

// Current describes the step running now, or "" between steps.
func (r *Recorder) Current() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current == "" {
		return ""
	}
	return fmt.Sprintf("%s (running for %.1f s)", r.current, time.Since(r.currentSince).Seconds())
}

// NewRecorder prints one line per step to out.
func NewRecorder(out io.Writer) *Recorder { return &Recorder{out: out} }

func (r *Recorder) add(st vmharness.Step) {
	r.mu.Lock()
	r.steps = append(r.steps, st)
	r.mu.Unlock()
	switch st.Status {
	case vmharness.StatusOK:
		got := ""
		if st.Got != "" && len(st.Got) <= 400 {
			got = ": " + st.Got
		}
		r.printf("[%s] ok    %s%s (%.2f s)", st.Scenario, st.Step, got, st.Seconds)
	case vmharness.StatusSkip:
		r.printf("[%s] SKIP  %s: %s", st.Scenario, st.Step, st.Detail)
	default:
		r.printf("[%s] FAIL  %s", st.Scenario, st.String())
	}
}

// AddGolden records a captured golden image's sidecar.
func (r *Recorder) AddGolden(g vmharness.Golden) {
	r.mu.Lock()
	r.goldens = append(r.goldens, g)
	r.mu.Unlock()
}

// Snapshot returns copies of what has been recorded so far.
func (r *Recorder) Snapshot() ([]vmharness.Step, []vmharness.Golden) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]vmharness.Step(nil), r.steps...), append([]vmharness.Golden(nil), r.goldens...)
}

func (r *Recorder) printf(format string, args ...any) {
	if r.out != nil {
		fmt.Fprintf(r.out, "vmguest: "+format+"\n", args...)
	}
}

// Scenario is a named sequence of steps run in one boot.
type Scenario struct {
	Name    string
	Desc    string
	Timeout time.Duration // for the whole scenario, cleanups excluded
	Run     func(s *S)
	// Alone marks a scenario that needs a boot of its own (the crash
	// test's two boots, the benchmark, the demo): "all" leaves it out and
	// only naming it runs it.
	Alone bool
}

// S is a running scenario (or a part of one): it runs steps with timeouts,
// records them, aborts on the first failed Must* step, and runs the
// registered cleanups, last first, in every case.
type S struct {
	rec      *Recorder
	scenario string
	prefix   string          // "part: " for parts
	ctx      context.Context // the scenario's deadline
	base     context.Context // outlives ctx: cleanups run under it
	cleanups []cleanup
	failed   bool
	// Logf writes a line to the guest log (and the console when verbose).
	Logf func(format string, args ...any)
}

type cleanup struct {
	step    string
	timeout time.Duration
	fn      func(ctx context.Context) error
	done    *bool
}

// abort is the panic value that unwinds a scenario after a failed Must step.
type abort struct{}

// errStillBlocked is wrapped into a step's error when its function did not
// return within its timeout and was left behind.
var errStillBlocked = errors.New("still blocked, probably in the kernel")

// RunScenario runs sc under base (the boot's context) and returns whether
// every step passed.
func RunScenario(base context.Context, rec *Recorder, sc Scenario, logf func(string, ...any)) bool {
	timeout := sc.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(base, timeout)
	defer cancel()
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := &S{rec: rec, scenario: sc.Name, ctx: ctx, base: base, Logf: logf}
	rec.printf("[%s] start: %s (timeout %v)", sc.Name, sc.Desc, timeout)
	start := time.Now()
	s.guard(sc.Run)
	s.runCleanups()
	verdict := "passed"
	if s.failed {
		verdict = "FAILED"
	}
	rec.printf("[%s] %s in %.1f s", sc.Name, verdict, time.Since(start).Seconds())
	return !s.failed
}

// guard runs fn, turning an abort into a normal return and any other panic
// into a failed step.
func (s *S) guard(fn func(*S)) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(abort); ok {
				return
			}
			s.record("panic", vmharness.StatusFail, "no panic", fmt.Sprint(p), string(debug.Stack()), 0)
		}
	}()
	fn(s)
}

// Part runs fn as an independent part of the scenario: its steps are named
// "name: step", its cleanups run when it ends, and a failure aborts only the
// part, not the scenario. It reports whether the part passed.
func (s *S) Part(name string, fn func(p *S)) bool {
	p := &S{rec: s.rec, scenario: s.scenario, prefix: s.prefix + name + ": ", ctx: s.ctx, base: s.base, Logf: s.Logf}
	p.guard(fn)
	p.runCleanups()
	if p.failed {
		s.failed = true
	}
	return !p.failed
}

// Failed reports whether a step of s has failed.
func (s *S) Failed() bool { return s.failed }

// Context is the scenario's context (it ends at the scenario's deadline).
func (s *S) Context() context.Context { return s.ctx }

func (s *S) record(step, status, expected, got, detail string, d time.Duration) {
	if status == vmharness.StatusFail {
		s.failed = true
	}
	s.rec.add(vmharness.Step{
		Scenario: s.scenario,
		Step:     s.prefix + step,
		Status:   status,
		Expected: expected,
		Got:      got,
		Detail:   detail,
		Seconds:  roundSeconds(d),
	})
}

func roundSeconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

// call runs fn with a timeout derived from ctx. A function that does not
// return in time is abandoned (a goroutine blocked in the kernel cannot be
// stopped) and reported as timed out.
func call(ctx context.Context, timeout time.Duration, fn func(ctx context.Context) (string, error)) (string, time.Duration, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		got string
		err error
	}
	ch := make(chan result, 1)
	start := time.Now()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- result{err: fmt.Errorf("panic: %v\n%s", p, debug.Stack())}
			}
		}()
		g, err := fn(cctx)
		ch <- result{g, err}
	}()
	select {
	case r := <-ch:
		return r.got, time.Since(start), r.err
	case <-cctx.Done():
	}
	// Give a function that watches its context (exec.CommandContext kills
	// its process) a moment to return on its own.
	select {
	case r := <-ch:
		if r.err == nil {
			return r.got, time.Since(start), nil
		}
		return r.got, time.Since(start), fmt.Errorf("timed out after %v: %w", timeout, r.err)
	case <-time.After(2 * time.Second):
		if ctx.Err() != nil {
			return "", time.Since(start), fmt.Errorf("scenario deadline passed: %w", errStillBlocked)
		}
		return "", time.Since(start), fmt.Errorf("timed out after %v: %w", timeout, errStillBlocked)
	}
}

// call runs fn as the named step, noting it as the current one.
func (s *S) call(ctx context.Context, step string, timeout time.Duration, fn func(ctx context.Context) (string, error)) (string, time.Duration, error) {
	s.rec.setCurrent(fmt.Sprintf("scenario %s, step %s%s", s.scenario, s.prefix, step))
	defer s.rec.setCurrent("")
	return call(ctx, timeout, fn)
}

// Do runs fn as a step that must succeed; on failure the scenario (or part)
// is aborted.
func (s *S) Do(step string, timeout time.Duration, fn func(ctx context.Context) error) {
	if !s.Try(step, timeout, fn) {
		panic(abort{})
	}
}

// Try is Do without the abort.
func (s *S) Try(step string, timeout time.Duration, fn func(ctx context.Context) error) bool {
	_, d, err := s.call(s.ctx, step, timeout, func(ctx context.Context) (string, error) { return "", fn(ctx) })
	if err != nil {
		s.record(step, vmharness.StatusFail, "success", "error", err.Error(), d)
		return false
	}
	s.record(step, vmharness.StatusOK, "", "", "", d)
	return true
}

// Value runs fn as a step that must succeed and returns its result, which
// is recorded as what the step got.
func (s *S) Value(step string, timeout time.Duration, fn func(ctx context.Context) (string, error)) string {
	got, d, err := s.call(s.ctx, step, timeout, fn)
	if err != nil {
		s.record(step, vmharness.StatusFail, "success", "error", err.Error(), d)
		panic(abort{})
	}
	s.record(step, vmharness.StatusOK, "", got, "", d)
	return got
}

// Expect runs fn and compares its result with want. A mismatch is recorded
// and the scenario goes on; an error from fn aborts it.
func (s *S) Expect(step, want string, timeout time.Duration, fn func(ctx context.Context) (string, error)) bool {
	got, d, err := s.call(s.ctx, step, timeout, fn)
	if err != nil {
		s.record(step, vmharness.StatusFail, want, "error", err.Error(), d)
		panic(abort{})
	}
	if got != want {
		s.record(step, vmharness.StatusFail, want, got, "", d)
		return false
	}
	s.record(step, vmharness.StatusOK, want, got, "", d)
	return true
}

// MustExpect is Expect that also aborts on a mismatch.
func (s *S) MustExpect(step, want string, timeout time.Duration, fn func(ctx context.Context) (string, error)) {
	if !s.Expect(step, want, timeout, fn) {
		panic(abort{})
	}
}

// Check records a comparison of values already in hand.
func (s *S) Check(step, want, got string) bool {
	if got != want {
		s.record(step, vmharness.StatusFail, want, got, "", 0)
		return false
	}
	s.record(step, vmharness.StatusOK, want, got, "", 0)
	return true
}

// Fail records a failed step with a reason and aborts.
func (s *S) Fail(step, expected, got, detail string) {
	s.record(step, vmharness.StatusFail, expected, got, detail, 0)
	panic(abort{})
}

// Skip records a skipped step and ends the scenario (or part) without
// failing it.
func (s *S) Skip(step, reason string) {
	s.record(step, vmharness.StatusSkip, "", "", reason, 0)
	panic(abort{})
}

// Defer registers a cleanup step, run when the scenario or part ends, last
// registered first. It returns a function that marks the cleanup done, for
// when the scenario undoes the thing itself.
func (s *S) Defer(step string, timeout time.Duration, fn func(ctx context.Context) error) (done func()) {
	d := new(bool)
	s.cleanups = append(s.cleanups, cleanup{step: step, timeout: timeout, fn: fn, done: d})
	return func() { *d = true }
}

func (s *S) runCleanups() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		c := s.cleanups[i]
		if *c.done {
			continue
		}
		_, d, err := s.call(s.base, "cleanup: "+c.step, c.timeout, func(ctx context.Context) (string, error) { return "", c.fn(ctx) })
		if err != nil {
			s.record("cleanup: "+c.step, vmharness.StatusFail, "success", "error", err.Error(), d)
			continue
		}
		s.record("cleanup: "+c.step, vmharness.StatusOK, "", "", "", d)
	}
	s.cleanups = nil
}

// Select returns the scenarios named in want, in that order, or all of
// them when want is empty; unknown names are returned separately.
func Select(all []Scenario, want []string) (run []Scenario, unknown []string) {
	if len(want) == 0 {
		for _, sc := range all {
			if !sc.Alone {
				run = append(run, sc)
			}
		}
		return run, nil
	}
	byName := make(map[string]Scenario, len(all))
	for _, sc := range all {
		byName[sc.Name] = sc
	}
	seen := make(map[string]bool)
	for _, w := range want {
		if seen[w] {
			continue
		}
		seen[w] = true
		sc, ok := byName[w]
		if !ok {
			unknown = append(unknown, w)
			continue
		}
		run = append(run, sc)
	}
	return run, unknown
}

// Names lists scenario names, for messages.
func Names(all []Scenario) string {
	n := make([]string, len(all))
	for i, sc := range all {
		n[i] = sc.Name
	}
	return strings.Join(n, ",")
}
