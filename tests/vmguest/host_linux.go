//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// hostDemoMain is "dlog-vmguest demo", run on the host by make demo: it
// boots the cached kernel with the demo scenario and shows the guest's
// narration, then a PROVED or FAILED summary. The exit status is 0 only
// when every step of the demo passed.
func hostDemoMain(args []string) int {
	fs := flag.NewFlagSet("dlog-vmguest demo", flag.ContinueOnError)
	dlogd := fs.String("dlogd", "bin/dlogd", "the dlogd binary to put in the guest (static: CGO_ENABLED=0)")
	cache := fs.String("cache", "build/vm", "the kernel cache scripts/vm/deps.sh filled")
	work := fs.String("work", "build/vm/demo", "where the boot's files go (console.log, results/)")
	timeout := fs.Duration("timeout", 4*time.Minute, "the guest's watchdog")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	out := os.Stdout
	fail := func(format string, a ...any) int {
		fmt.Fprintf(out, "\nFAILED: "+format+"\n", a...)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		return fail("%v", err)
	}
	k, err := vmharness.FindKernel(*cache, "")
	if err != nil {
		return fail("%v", err)
	}
	if _, err := os.Stat(*dlogd); err != nil {
		return fail("no dlogd at %s: build it with CGO_ENABLED=0 go build -o bin/dlogd ./cmd/dlogd", *dlogd)
	}
	_ = os.RemoveAll(*work)

	fmt.Fprintf(out, "dlog demo: dlogd serving the dirty log of a real Linux mirror.\n\n")
	fmt.Fprintf(out, "This machine has no device-mapper of its own, so the demo boots Debian's kernel %s\n", k.Version)
	fmt.Fprintf(out, "(%s) in qemu, with software emulation, and runs everything inside it:\n", k.Package)
	fmt.Fprintf(out, "dm-mirror with its dirty log handed to user space (dm-log-userspace), and dlogd answering.\n")
	fmt.Fprintf(out, "Everything the guest prints is kept in %s.\n\n", filepath.Join(*work, "console.log"))

	nar := &narrator{w: out, start: time.Now()}
	nar.Line = nar.line
	stopTicker := nar.tickUntilFirstLine()
	res, runErr := vmharness.Run(context.Background(), vmharness.Config{
		Kernel:  k,
		Guest:   self,
		Dlogd:   *dlogd,
		Options: vmharness.Options{Scenarios: []string{"demo"}, Timeout: *timeout},
		WorkDir: *work,
		Console: nar,
	})
	stopTicker()
	nar.Flush()
	if res != nil {
		saveFiles(filepath.Join(*work, "results"), res.Files)
	}
	elapsed := time.Since(nar.start)
	if res == nil || res.Report == nil {
		return fail("the guest produced no report (%v); see %s", runErr, filepath.Join(*work, "console.log"))
	}
	failures := res.Report.Failures()
	var skipped []vmharness.Step
	for _, st := range res.Report.Steps {
		if st.Status == vmharness.StatusSkip {
			skipped = append(skipped, st)
		}
	}
	fmt.Fprintln(out)
	if len(failures) > 0 || len(skipped) > 0 || runErr != nil || !res.Report.Complete || len(nar.proved) == 0 {
		fmt.Fprintf(out, "FAILED after %.0f s. What went wrong:\n", elapsed.Seconds())
		for _, st := range failures {
			fmt.Fprintf(out, "  - %s\n", st.String())
		}
		for _, st := range skipped {
			fmt.Fprintf(out, "  - %s\n", st.String())
		}
		if runErr != nil {
			fmt.Fprintf(out, "  - %v\n", runErr)
		}
		if !res.Report.Complete {
			fmt.Fprintf(out, "  - the guest did not finish: %s\n", res.Report.Watchdog)
		}
		fmt.Fprintf(out, "Details: %s and %s.\n", filepath.Join(*work, "console.log"), filepath.Join(*work, "results", "commands.log"))
		return 1
	}
	fmt.Fprintf(out, "PROVED, in %.0f s (boot included), against the real kernel %s:\n", elapsed.Seconds(), res.Report.Kernel)
	for _, p := range nar.proved {
		fmt.Fprintf(out, "  - %s\n", p)
	}
	fmt.Fprintf(out, "All %d checks passed (%s). The full scenario set: make vmtest.\n", len(res.Report.Steps), res.Report.Summary())
	return 0
}

// narrator shows only the guest's narration lines, without their prefix,
// and collects the proved claims. Its ConsoleLines (the console's writer)
// calls line.
type narrator struct {
	vmharness.ConsoleLines
	mu     sync.Mutex // w, seen: line and the boot ticker
	w      io.Writer
	start  time.Time
	seen   bool
	proved []string
}

func (n *narrator) line(l string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	i := strings.Index(l, DemoPrefix)
	if i < 0 {
		if strings.Contains(l, "] FAIL ") || strings.Contains(l, "WATCHDOG") || strings.Contains(l, "Kernel panic") {
			fmt.Fprintf(n.w, "[%5.1fs] !! %s\n", time.Since(n.start).Seconds(), strings.TrimPrefix(l, "vmguest: "))
		}
		return
	}
	text := l[i+len(DemoPrefix):]
	if !n.seen {
		n.seen = true
		fmt.Fprintln(n.w)
	}
	if c, ok := strings.CutPrefix(text, ProvedPrefix); ok {
		n.proved = append(n.proved, c)
		fmt.Fprintf(n.w, "[%5.1fs] => proved: %s\n", time.Since(n.start).Seconds(), c)
		return
	}
	fmt.Fprintf(n.w, "[%5.1fs] %s\n", time.Since(n.start).Seconds(), text)
}

// tickUntilFirstLine prints a dot a second while the kernel boots.
func (n *narrator) tickUntilFirstLine() (stop func()) {
	done := make(chan struct{})
	fmt.Fprintf(n.w, "Booting the kernel under qemu ")
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Second):
			}
			n.mu.Lock()
			if !n.seen {
				fmt.Fprint(n.w, ".")
			}
			n.mu.Unlock()
		}
	}()
	return func() { close(done) }
}

func saveFiles(dir string, files map[string][]byte) {
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
			_ = os.WriteFile(p, b, 0o644)
		}
	}
}
