// Command benchreport runs dlog's benchmarks and writes bench/results.md,
// its plots (bench/*.png) and bench/README-table.md.
//
// Every figure is measured beside its baseline in the same run, and the
// report gives ratios: the machine is shared and noisy, so absolute times
// move from run to run while ratios of interleaved measurements hold. Each
// sub-benchmark runs in its own process (one compiled test binary per
// package), once per round; a round runs every sub-benchmark next to its
// baseline, in reverse order every other round, and -count rounds are run.
// The report gives, for every figure, the median and the min–max spread
// over the rounds, the baseline's median from the same rounds, and the
// ratio of the two computed round by round.
//
// Usage (from the module root; `make bench-report` does this):
//
//	go run ./bench/cmd/benchreport [-count 6] [-benchtime 1s] [-only REGEXP] [-out bench]
//	go run ./bench/cmd/benchreport -from build/bench/raw.txt   # re-render a previous run
//	go run ./bench/cmd/benchreport -vm bench/vm-results.json   # redraw bench/vm-results.png
//
// The raw results go to build/bench/raw.txt (-raw) as they come, and are
// copied beside the report (bench/raw.txt), so that the report and its
// plots can be drawn again from what is committed:
//
//	go run ./bench/cmd/benchreport -from bench/raw.txt
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	count := fs.Int("count", 6, "rounds: how many times every sub-benchmark runs")
	benchtime := fs.String("benchtime", "1s", "-test.benchtime of every run")
	timeout := fs.Duration("timeout", 15*time.Minute, "limit for one sub-benchmark run")
	only := fs.String("only", "", "run only the benchmarks whose DIR.Name matches this regexp")
	out := fs.String("out", "bench", "directory for results.md, README-table.md and the plots")
	raw := fs.String("raw", filepath.Join("build", "bench", "raw.txt"), "where the raw results are written")
	from := fs.String("from", "", "render the report from this raw file instead of running")
	vm := fs.String("vm", "", "only redraw the VM benchmark chart FILE.png from FILE.json (make vmbench's results)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *vm != "" {
		png, err := vmChart(*vm)
		if err != nil {
			fmt.Fprintf(stderr, "benchreport: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "benchreport: wrote %s\n", png)
		return 0
	}
	if fs.NArg() > 0 || *count < 1 {
		fmt.Fprintln(stderr, "benchreport: unexpected arguments; see -help")
		return 2
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintf(stderr, "benchreport: %v\n", err)
		return 1
	}
	benches := suite
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintf(stderr, "benchreport: -only: %v\n", err)
			return 2
		}
		benches = nil
		for _, b := range suite {
			if re.MatchString(b.id()) {
				benches = append(benches, b)
			}
		}
	}
	rawPath := *raw
	if !filepath.IsAbs(rawPath) {
		rawPath = filepath.Join(root, rawPath)
	}
	if *from != "" {
		rawPath = *from // as given, from the working directory
	} else {
		cmdline := "go run ./bench/cmd/benchreport " + strings.Join(args, " ")
		if err := measure(root, rawPath, cmdline, benches, *count, *benchtime, *timeout, stderr); err != nil {
			fmt.Fprintf(stderr, "benchreport: %v\n", err)
			return 1
		}
	}
	rawData, err := os.ReadFile(rawPath)
	if err != nil {
		fmt.Fprintf(stderr, "benchreport: %v\n", err)
		return 1
	}
	data, err := parseRaw(bytes.NewReader(rawData))
	if err != nil {
		fmt.Fprintf(stderr, "benchreport: %s: %v\n", rawPath, err)
		return 1
	}
	outDir := *out
	if !filepath.IsAbs(outDir) {
		outDir = filepath.Join(root, outDir)
	}
	files, err := writeReport(outDir, benches, data)
	if err != nil {
		fmt.Fprintf(stderr, "benchreport: %v\n", err)
		return 1
	}
	// The raw results go beside the report, so that a clone can draw it
	// again (-from DIR/raw.txt) without running the benchmarks.
	if keep := filepath.Join(outDir, "raw.txt"); !sameFile(rawPath, keep) {
		if err := os.WriteFile(keep, rawData, 0o644); err != nil {
			fmt.Fprintf(stderr, "benchreport: %v\n", err)
			return 1
		}
		files = append(files, keep)
	}
	for _, f := range files {
		fmt.Fprintf(stderr, "benchreport: wrote %s\n", f)
	}
	return 0
}

// measure runs the benchmarks and writes the raw log to rawPath.
func measure(root, rawPath, cmdline string, benches []*benchmark, count int, benchtime string, timeout time.Duration, progress io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(filepath.Dir(rawPath), 0o755); err != nil {
		return fmt.Errorf("raw log: %w", err)
	}
	raw, err := os.Create(rawPath)
	if err != nil {
		return fmt.Errorf("raw log: %w", err)
	}
	defer raw.Close()
	work, err := os.MkdirTemp("", "benchreport-")
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	defer os.RemoveAll(work)

	env := environment(root)
	env["count"] = fmt.Sprint(count)
	env["benchtime"] = benchtime
	env["command"] = cmdline
	for _, k := range sortedKeys(env) {
		fmt.Fprintf(raw, "meta.%s: %s\n", k, env[k])
	}
	r := &runner{
		root: root, work: work, count: count, benchtime: benchtime, timeout: timeout,
		procs: runtime.GOMAXPROCS(0), raw: raw, progress: progress,
	}
	start := time.Now()
	if err := r.run(ctx, benches); err != nil {
		return err
	}
	fmt.Fprintf(raw, "meta.load-end: %s\nmeta.duration: %s\n", loadavg(), time.Since(start).Round(time.Second))
	if err := raw.Close(); err != nil {
		return fmt.Errorf("raw log: %w", err)
	}
	return nil
}

// vmChart draws the chart of the VM benchmark results in jsonPath (as
// make vmbench writes them) into the .png beside it, and returns its path.
func vmChart(jsonPath string) (string, error) {
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return "", err
	}
	var br vmharness.BenchResults
	if err := json.Unmarshal(b, &br); err != nil {
		return "", fmt.Errorf("%s: %w", jsonPath, err)
	}
	if len(br.Runs) == 0 || len(br.Configs) == 0 {
		return "", fmt.Errorf("%s: no runs", jsonPath)
	}
	img, err := br.ChartPNG()
	if err != nil {
		return "", fmt.Errorf("%s: %w", jsonPath, err)
	}
	out := strings.TrimSuffix(jsonPath, ".json") + ".png"
	if err := os.WriteFile(out, img, 0o644); err != nil {
		return "", err
	}
	return out, nil
}

// sameFile reports whether a and b name the same existing file.
func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
