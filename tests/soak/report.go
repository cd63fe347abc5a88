//go:build linux

package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
)

// stats are the soak's counters.
type stats struct {
	req          fakekernel.Stats
	restarts     atomic.Uint64 // daemons restarted and checked
	reconnects   atomic.Uint64 // kernel reconnect sequences (CTR with NUL + RESUME)
	marksAcked   atomic.Uint64 // marks acknowledged by a FLUSH reply
	marksDropped atomic.Uint64 // marks lost with a restarted daemon before their FLUSH (not counted)
	marksChecked atomic.Uint64 // acknowledged marks read back with IS_CLEAN
	marksLost    atomic.Uint64 // ... that read clean
	coreChecks   atomic.Uint64 // clustered-core state checks
	reloads      atomic.Uint64
	activations  atomic.Uint64
	audits       atomic.Uint64 // SIGUSR1 log counts compared with the kernel's
	eioRun       atomic.Uint64 // -EIO replies in runs with EIO injection
	tearEIO      atomic.Uint64 // -EIO replies in runs with torn writes
	episodeEIO   atomic.Uint64 // -EIO replies from a device failed by an episode

	mu     sync.Mutex
	faults map[string]int    // injected, by kind
	notes  map[string]string // what each kind did last, for the table
}

func (s *stats) fault(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults == nil {
		s.faults = map[string]int{}
	}
	s.faults[kind]++
}

func (s *stats) note(kind, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.notes == nil {
		s.notes = map[string]string{}
	}
	s.notes[kind] = fmt.Sprintf(format, args...)
}

func (s *stats) faultCounts() (map[string]int, map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := map[string]int{}
	for k, v := range s.faults {
		f[k] = v
	}
	n := map[string]string{}
	for k, v := range s.notes {
		n[k] = v
	}
	return f, n
}

// Flatness margins: dlogd's peak in the second half of the run may exceed
// the first half's by at most this much. Threads are only bounded: the Go
// runtime keeps one per syscall that ever blocked at once, so a process's
// count depends on its age and its I/O mode, not on a leak.
const (
	rssMarginPct = 25
	rssMarginKiB = 8 << 10
	gorMarginPct = 25
	gorMargin    = 8
	fdMargin     = 8
	maxThreads   = 256
	// minFlatSamples is how many /proc samples each half needs before its
	// peaks are compared: a short run restarts dlogd every few seconds, so
	// a handful of samples of different processes shows noise, not growth.
	minFlatSamples = 10
)

// resources keeps dlogd's peaks per half of the run.
type resources struct {
	mu      sync.Mutex
	peak    [2]procSample
	samples [2]int
	gor     [2]int // peak goroutines in SIGQUIT dumps
	dumps   [2]int
}

func (r *resources) addGoroutines(half, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gor[half] = max(r.gor[half], n)
	r.dumps[half]++
}

func (r *resources) goroutines() ([2]int, [2]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gor, r.dumps
}

func (r *resources) add(half int, s procSample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &r.peak[half]
	p.rssKiB = max(p.rssKiB, s.rssKiB)
	p.threads = max(p.threads, s.threads)
	p.fds = max(p.fds, s.fds)
	r.samples[half]++
}

func (r *resources) snapshot() ([2]procSample, [2]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peak, r.samples
}

// flat judges the peaks; it returns the reasons they are not flat.
// gorBound is the most goroutines the workload can explain.
func flat(p [2]procSample, n [2]int, g, dumps [2]int, gorBound int) []string {
	var bad []string
	if n[0] >= minFlatSamples && n[1] >= minFlatSamples {
		if lim := p[0].rssKiB*(100+rssMarginPct)/100 + rssMarginKiB; p[1].rssKiB > lim {
			bad = append(bad, fmt.Sprintf("RSS peak grew from %d KiB to %d KiB (limit %d KiB)", p[0].rssKiB, p[1].rssKiB, lim))
		}
		if lim := p[0].fds + fdMargin; p[1].fds > lim {
			bad = append(bad, fmt.Sprintf("open-file peak grew from %d to %d (limit %d)", p[0].fds, p[1].fds, lim))
		}
	}
	if t := max(p[0].threads, p[1].threads); t > maxThreads {
		bad = append(bad, fmt.Sprintf("%d threads (limit %d)", t, maxThreads))
	}
	if dumps[0] > 0 && dumps[1] > 0 {
		if lim := g[0]*(100+gorMarginPct)/100 + gorMargin; g[1] > lim {
			bad = append(bad, fmt.Sprintf("goroutine peak grew from %d to %d (limit %d)", g[0], g[1], lim))
		}
	}
	if m := max(g[0], g[1]); m > gorBound {
		bad = append(bad, fmt.Sprintf("%d goroutines, more than the %d the logs and connections explain", m, gorBound))
	}
	return bad
}

// Result is the outcome of a soak.
type Result struct {
	Seed       uint64
	Elapsed    time.Duration
	Requests   uint64
	Restarts   uint64
	Faults     map[string]int
	Notes      map[string]string
	MarksAcked uint64
	Checked    uint64
	Lost       uint64
	CoreChecks uint64
	Peaks      [2]procSample
	Samples    [2]int
	Goroutines [2]int // peak goroutines in SIGQUIT dumps, per half
	Dumps      [2]int
	Failures   []string // the first ones
	NFailures  int
	Line       string // the one-line report
	Skipped    map[string]string
	Extra      map[string]uint64
}

// Pass reports whether the soak passed.
func (r *Result) Pass() bool { return r.NFailures == 0 && r.Lost == 0 }

func mib(kib int64) string { return fmt.Sprintf("%.1fMiB", float64(kib)/1024) }

// line formats the one-line report.
func (r *Result) line() string {
	verdict := "PASS"
	if !r.Pass() {
		verdict = "FAIL"
	}
	var fk []string
	for _, k := range allFaults {
		fk = append(fk, fmt.Sprintf("%s=%d", k, r.Faults[k]))
	}
	gor := func(i int) string {
		if r.Dumps[i] == 0 {
			return "-"
		}
		return fmt.Sprint(r.Goroutines[i])
	}
	return fmt.Sprintf("dlog-soak %s: %s, seed %d: requests=%d restarts=%d faults{%s} marks_acked=%d marks_checked=%d marks_lost=%d core_checks=%d "+
		"peak_rss=%s/%s goroutines=%s/%s threads=%d/%d fds=%d/%d (1st/2nd half; flat: rss +%d%%+%dMiB, goroutines +%d%%+%d, fds +%d) failures=%d",
		verdict, r.Elapsed.Round(time.Second), r.Seed, r.Requests, r.Restarts, strings.Join(fk, " "), r.MarksAcked, r.Checked, r.Lost, r.CoreChecks,
		mib(r.Peaks[0].rssKiB), mib(r.Peaks[1].rssKiB), gor(0), gor(1), r.Peaks[0].threads, r.Peaks[1].threads, r.Peaks[0].fds, r.Peaks[1].fds,
		rssMarginPct, rssMarginKiB>>10, gorMarginPct, gorMargin, fdMargin, r.NFailures)
}

// write prints the report: the line, a short table, the failures.
func (r *Result) write(w io.Writer) {
	fmt.Fprintln(w, r.Line)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tinjected\tlast outcome")
	for _, k := range allFaults {
		note := r.Notes[k]
		if why, ok := r.Skipped[k]; ok {
			note = "skipped: " + why
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", k, r.Faults[k], note)
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue")
	keys := make([]string, 0, len(r.Extra))
	for k := range r.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%d\n", k, r.Extra[k])
	}
	fmt.Fprintf(tw, "dlogd /proc samples\t%d + %d\n", r.Samples[0], r.Samples[1])
	fmt.Fprintf(tw, "SIGQUIT goroutine dumps\t%d + %d\n", r.Dumps[0], r.Dumps[1])
	tw.Flush()
	for i, f := range r.Failures {
		fmt.Fprintf(w, "failure %d: %s\n", i+1, f)
	}
	if r.NFailures > len(r.Failures) {
		fmt.Fprintf(w, "... and %d more failures (see the log)\n", r.NFailures-len(r.Failures))
	}
}
