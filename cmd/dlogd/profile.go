package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dlog-dev/dlog/internal/control"
)

// maxProfileSeconds bounds one profile: a CPU profile and an execution
// trace cost the daemon a little on every request while they run, and the
// trace grows with the requests (a few MB a minute under load).
const maxProfileSeconds = 120

// errProfileBusy refuses a profile while another one runs (the runtime
// has one CPU profiler and one tracer per process).
var errProfileBusy = errors.New("a profile is already being taken")

// Profile is what the control socket's "profile" command returns.
type Profile struct {
	CPU   string        `json:"cpu"`         // the CPU profile (pprof format)
	Trace string        `json:"trace"`       // the execution trace (go tool trace)
	Took  time.Duration `json:"duration_ns"` // how long both ran
}

// profiler takes one profile at a time for the control socket.
type profiler struct {
	mu sync.Mutex
}

// parseProfileCommand reads "profile SECONDS DIR" (DIR absolute, may hold
// spaces).
func parseProfileCommand(cmd string) (time.Duration, string, error) {
	f := strings.SplitN(cmd, " ", 3)
	if len(f) != 3 || f[0] != "profile" {
		return 0, "", fmt.Errorf("want 'profile SECONDS DIR'")
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 1 || n > maxProfileSeconds {
		return 0, "", fmt.Errorf("profile: %q seconds: want 1 to %d", f[1], maxProfileSeconds)
	}
	if !filepath.IsAbs(f[2]) {
		return 0, "", fmt.Errorf("profile: %q: want an absolute directory", f[2])
	}
	return time.Duration(n) * time.Second, filepath.Clean(f[2]), nil
}

// take writes a CPU profile and an execution trace of the next d into dir
// (created mode 0700 if missing), as dlogd-PID-TIME.cpu.pprof and
// dlogd-PID-TIME.trace, new files of mode 0600. It returns early, with
// what was written so far, when ctx is done.
func (p *profiler) take(ctx context.Context, d time.Duration, dir string) (Profile, error) {
	if !p.mu.TryLock() {
		return Profile{}, fmt.Errorf("profile: %w", errProfileBusy)
	}
	defer p.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Profile{}, fmt.Errorf("profile: %w", err)
	}
	base := filepath.Join(dir, fmt.Sprintf("dlogd-%d-%s", os.Getpid(), time.Now().UTC().Format("20060102T150405.000")))
	res := Profile{CPU: base + ".cpu.pprof", Trace: base + ".trace"}
	create := func(path string) (*os.File, error) {
		return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	cpu, err := create(res.CPU)
	if err != nil {
		return Profile{}, fmt.Errorf("profile: %w", err)
	}
	defer cpu.Close()
	tr, err := create(res.Trace)
	if err != nil {
		os.Remove(res.CPU)
		return Profile{}, fmt.Errorf("profile: %w", err)
	}
	defer tr.Close()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		os.Remove(res.CPU)
		os.Remove(res.Trace)
		return Profile{}, fmt.Errorf("profile: cpu: %w", err)
	}
	if err := trace.Start(tr); err != nil {
		pprof.StopCPUProfile()
		os.Remove(res.CPU)
		os.Remove(res.Trace)
		return Profile{}, fmt.Errorf("profile: trace: %w", err)
	}
	start := time.Now()
	timer := time.NewTimer(d)
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
	}
	trace.Stop()
	pprof.StopCPUProfile()
	res.Took = time.Since(start)
	if err := errors.Join(cpu.Sync(), tr.Sync()); err != nil {
		return res, fmt.Errorf("profile: %w", err)
	}
	return res, nil
}

const helpProfile = `NAME
    dlogd profile - take a CPU profile and an execution trace of a running dlogd

SYNOPSIS
    dlogd profile [--pidfile PATH | --control PATH] [--seconds N] --out DIR

DESCRIPTION
    Asks the dlogd listening on the control socket to profile itself for N
    seconds (default 10, at most 120) and waits for it. The daemon writes
    two new files, mode 0600, into DIR (created mode 0700 when missing):
    dlogd-PID-TIME.cpu.pprof, a CPU profile for go tool pprof, and
    dlogd-PID-TIME.trace, an execution trace for go tool trace (goroutine
    hand-offs, system calls, wake-ups), and the command prints their paths.
    One profile runs at a time; a second is refused while it does. Both
    cost the daemon a little on every request while they run.

OPTIONS
    --pidfile PATH   ask the dlogd started with this --pidfile: its control
                     socket is dlogd.ctl in the same directory
    --control PATH   the daemon's control socket (dlogd serve --control)
    --seconds N      how long to profile, 1 to 120 (default 10)
    --out DIR        where the daemon writes the files (a relative path is
                     taken from this command's working directory)

EXIT STATUS
    0 when the files were written, 1 when the daemon could not be reached or
    refused, 2 on bad usage.
`

func profileCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dlogd profile", flag.ContinueOnError)
	path := fs.String("control", "", "")
	pidfile := fs.String("pidfile", "", "")
	seconds := fs.Int("seconds", 10, "")
	out := fs.String("out", "", "")
	if code, ok := parseFlags(fs, args, helpProfile, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "dlogd profile", "unexpected argument %q (profile takes options only)", fs.Arg(0))
	}
	if *seconds < 1 || *seconds > maxProfileSeconds {
		return usageError(stderr, "dlogd profile", "--seconds %d: want 1 to %d", *seconds, maxProfileSeconds)
	}
	if *out == "" {
		return usageError(stderr, "dlogd profile", "--out DIR is required: the directory the daemon writes the profile into")
	}
	dir, err := filepath.Abs(*out)
	if err != nil {
		return usageError(stderr, "dlogd profile", "--out %q: %v", *out, err)
	}
	switch {
	case *path != "" && *pidfile != "":
		return usageError(stderr, "dlogd profile", "--pidfile and --control name the same socket: give one")
	case *pidfile != "":
		*path = besidePidfile(*pidfile, "dlogd.ctl")
	case *path == "":
		*path = besidePidfile(defaultPidfile, "dlogd.ctl")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*seconds)*time.Second+30*time.Second)
	defer cancel()
	raw, err := control.Query(ctx, *path, "profile "+strconv.Itoa(*seconds)+" "+dir)
	if err != nil {
		fmt.Fprintf(stderr, "dlogd profile: %v\n", err)
		return 1
	}
	var p Profile
	if err := json.Unmarshal(raw, &p); err != nil {
		fmt.Fprintf(stderr, "dlogd profile: the daemon's answer does not parse: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "cpu profile: %s\nexecution trace: %s\n", p.CPU, p.Trace)
	return 0
}
