package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

// runner compiles the test binaries once and runs their sub-benchmarks
// one at a time, round after round.
type runner struct {
	root      string // module root
	work      string // where the test binaries go
	count     int
	benchtime string
	timeout   time.Duration
	procs     int
	raw       io.Writer // every result line, with pkg/round/procs headers
	progress  io.Writer
	bins      map[string]string // package dir -> test binary
}

// subPattern is the -test.bench pattern that selects exactly sub of the
// top-level benchmark name: every level anchored and quoted.
func subPattern(name, sub string) string {
	var sb strings.Builder
	sb.WriteString("^" + regexp.QuoteMeta(name) + "$")
	for _, e := range strings.Split(sub, "/") {
		sb.WriteString("/^" + regexp.QuoteMeta(e) + "$")
	}
	return sb.String()
}

// compile builds one test binary per package directory of the suite.
func (r *runner) compile(ctx context.Context, benches []*benchmark) error {
	r.bins = make(map[string]string)
	for _, b := range benches {
		if _, ok := r.bins[b.Dir]; ok {
			continue
		}
		bin := filepath.Join(r.work, strings.ReplaceAll(b.Dir, "/", "_")+".test")
		fmt.Fprintf(r.progress, "benchreport: compiling ./%s\n", b.Dir)
		cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, "./"+b.Dir)
		cmd.Dir = r.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("compile ./%s: %w\n%s", b.Dir, err, out)
		}
		r.bins[b.Dir] = bin
	}
	return nil
}

// exec runs the test binary of b with the given -test.bench pattern and
// benchtime and returns its parsed results.
func (r *runner) exec(ctx context.Context, b *benchmark, pattern, benchtime string) ([]result, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bins[b.Dir],
		"-test.run", "^$", "-test.bench", pattern, "-test.benchtime", benchtime,
		"-test.count", "1", "-test.timeout", r.timeout.String())
	cmd.Dir = filepath.Join(r.root, b.Dir) // as go test runs it: testdata is relative
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	var res []result
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rr, ok := parseLine(sc.Text(), r.procs); ok {
			res = append(res, rr)
		}
	}
	if err != nil {
		return res, out.Bytes(), fmt.Errorf("%s -test.bench %s: %w", filepath.Base(r.bins[b.Dir]), pattern, err)
	}
	return res, out.Bytes(), nil
}

// discover runs every sub-benchmark of b once (-benchtime 1x, also a
// warm-up) and returns the names b keeps, in the order they ran.
func (r *runner) discover(ctx context.Context, b *benchmark) ([]string, error) {
	res, out, err := r.exec(ctx, b, "^"+regexp.QuoteMeta(b.Name)+"$", "1x")
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w\n%s", b.id(), err, tail(out, 20))
	}
	var subs []string
	for _, rr := range res {
		sub, ok := strings.CutPrefix(rr.Name, b.Name+"/")
		if !ok || (b.Keep != nil && !b.Keep.MatchString(sub)) {
			continue
		}
		subs = append(subs, sub)
	}
	if len(subs) == 0 {
		fmt.Fprintf(r.progress, "benchreport: %s: no sub-benchmark ran (skipped?):\n%s\n", b.id(), tail(out, 5))
	}
	return subs, nil
}

// run discovers the sub-benchmarks, then runs count rounds. In each round
// every sub-benchmark runs once, in its own process, next to the baseline
// it is compared with; the order is reversed every other round so that
// neither side always runs first.
func (r *runner) run(ctx context.Context, benches []*benchmark) error {
	if err := r.compile(ctx, benches); err != nil {
		return err
	}
	subs := make([][]string, len(benches))
	total := 0
	for i, b := range benches {
		s, err := r.discover(ctx, b)
		if err != nil {
			return err
		}
		subs[i] = s
		total += len(s)
		fmt.Fprintf(r.progress, "benchreport: %s: %d sub-benchmarks\n", b.id(), len(s))
	}
	start := time.Now()
	done := 0
	for round := 1; round <= r.count; round++ {
		for i, b := range benches {
			order := slices.Clone(subs[i])
			if round%2 == 0 {
				slices.Reverse(order)
			}
			if err := rawHeader(r.raw, b.Dir, round, r.procs); err != nil {
				return fmt.Errorf("raw log: %w", err)
			}
			for _, sub := range order {
				res, out, err := r.exec(ctx, b, subPattern(b.Name, sub), r.benchtime)
				if ctx.Err() != nil {
					return fmt.Errorf("round %d: %w", round, ctx.Err())
				}
				if err == nil && len(res) == 0 {
					err = fmt.Errorf("%s/%s: no result", b.Name, sub)
				}
				if err != nil {
					// One failing sub-benchmark does not stop the run: the
					// report lists it with the first line of its panic or
					// failure.
					reason := failure(out)
					fmt.Fprintf(r.progress, "benchreport: round %d: %v\n%s\n", round, err, tail(out, 10))
					if _, err := fmt.Fprintf(r.raw, "fail: %s/%s: %s\n", b.Name, sub, reason); err != nil {
						return fmt.Errorf("raw log: %w", err)
					}
					res = nil
				}
				done++
				for _, rr := range res {
					if _, err := fmt.Fprintf(r.raw, "%s\n", formatResult(rr)); err != nil {
						return fmt.Errorf("raw log: %w", err)
					}
				}
				if len(res) != 1 {
					fmt.Fprintf(r.progress, "benchreport: round %d: %s/%s gave %d results\n", round, b.Name, sub, len(res))
				}
				el := time.Since(start)
				left := time.Duration(float64(el) / float64(done) * float64(total*r.count-done))
				fmt.Fprintf(r.progress, "benchreport: round %d/%d  %3d%%  %s/%s  (%s left)\n",
					round, r.count, 100*done/(total*r.count), b.Name, sub, left.Round(time.Second))
			}
		}
	}
	return nil
}

// formatResult writes r back in `go test -bench` form (without the
// GOMAXPROCS suffix, which the raw log's procs line replaces).
func formatResult(r result) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s\t%d", r.Name, r.Iters)
	units := make([]string, 0, len(r.Metrics))
	for u := range r.Metrics {
		units = append(units, u)
	}
	slices.SortFunc(units, func(a, b string) int {
		if a == "ns/op" {
			return -1
		}
		if b == "ns/op" {
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, u := range units {
		fmt.Fprintf(&sb, "\t%g %s", r.Metrics[u], u)
	}
	return sb.String()
}

// failure picks the line that says why a benchmark run failed.
func failure(out []byte) string {
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "panic:") || strings.Contains(l, "--- FAIL") || strings.HasPrefix(l, "FAIL") || strings.Contains(l, "_test.go:") {
			return l
		}
	}
	if strings.Contains(string(out), "NaN ns/op") {
		return "measured nothing (0 iterations, NaN ns/op)"
	}
	return "no result: " + tail(out, 1)
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// environment describes the machine and the tree for the report.
func environment(root string) map[string]string {
	env := map[string]string{
		"go":     runtime.Version(),
		"goos":   runtime.GOOS + "/" + runtime.GOARCH,
		"cpus":   fmt.Sprint(runtime.NumCPU()),
		"procs":  fmt.Sprint(runtime.GOMAXPROCS(0)),
		"date":   time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		"load":   loadavg(),
		"cpu":    cpuModel(),
		"kernel": kernelRelease(),
	}
	if out, err := gitOutput(root, "rev-parse", "--short=12", "HEAD"); err == nil {
		env["commit"] = out
		if st, err := gitOutput(root, "status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
			env["commit"] += " (with uncommitted changes in the tree)"
		}
	}
	return env
}

func gitOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// moduleRoot finds the directory holding go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run benchreport inside the dlog module")
		}
		dir = parent
	}
}
