//go:build linux

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dlog-dev/dlog/transport"
)

// runMode is how one dlogd process runs: with or without injected device
// faults, with io_uring or the pwritev fallback.
type runMode struct {
	name     string // "normal", "eio", "tear"
	faultio  string // DLOG_FAULTIO, empty for none
	fallback bool   // --io-fallback
}

func (m runMode) String() string {
	s := m.name
	if m.faultio != "" {
		s += " DLOG_FAULTIO=" + m.faultio
	}
	if m.fallback {
		s += " --io-fallback"
	}
	return s
}

// generation is one dlogd process and the clients' view of it: ready is
// closed once the post-restart check is done and clients may use it.
type generation struct {
	n     uint64
	sock  string
	proc  *daemonProc
	mode  runMode
	ready chan struct{}
	// tear receives (without blocking) when a client got -EIO from this
	// generation: in a tear run the first one means a write was torn.
	tear chan struct{}
}

// daemonProc is one running dlogd.
type daemonProc struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed when the process has exited
	err  error         // its exit, once done is closed
	// expected is set before the soak kills or stops it on purpose; an
	// exit without it is a failure.
	expected atomic.Bool
	started  time.Time
}

func (p *daemonProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *daemonProc) exitCode() int {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if p.err != nil {
		return -1000
	}
	return 0
}

func (p *daemonProc) signal(sig syscall.Signal) error {
	if err := syscall.Kill(p.pid, sig); err != nil {
		return fmt.Errorf("kill -%d %d: %w", sig, p.pid, err)
	}
	return nil
}

// spawner starts every dlogd from one goroutine locked to its OS thread,
// so that Pdeathsig (which fires when the creating thread exits) only
// fires when the soak itself dies: no dlogd outlives its driver.
type spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	cmd   *exec.Cmd
	reply chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread exits with the goroutine, after the
		// soak has stopped every daemon (close).
		for r := range s.reqs {
			r.reply <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	r := spawnReq{cmd: cmd, reply: make(chan error)}
	s.reqs <- r
	return <-r.reply
}

func (s *spawner) close() { close(s.reqs) }

// daemonEnv is the environment of a dlogd: ours without any DLOG_FAULTIO,
// plus the mode's.
func daemonEnv(mode runMode, extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DLOG_FAULTIO=") && !strings.HasPrefix(kv, "GOTRACEBACK=") {
			env = append(env, kv)
		}
	}
	env = append(env, "GOTRACEBACK=all")
	env = append(env, extra...)
	if mode.faultio != "" {
		env = append(env, "DLOG_FAULTIO="+mode.faultio)
	}
	return env
}

// startDaemon runs dlogd serve on sock with pidfile and waits until the
// socket accepts connections.
func startDaemon(ctx context.Context, sp *spawner, bin, sock, pidfile string, mlock bool, mode runMode, extraEnv []string, out io.Writer) (*daemonProc, error) {
	args := []string{"serve", "--transport", "unix:" + sock, "--pidfile", pidfile, "--log-level", "info"}
	if !mlock {
		args = append(args, "--no-mlock")
	}
	if mode.fallback {
		args = append(args, "--io-fallback")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = daemonEnv(mode, extraEnv)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := sp.start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &daemonProc{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{}), started: time.Now()}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := transport.DialUnix(sock); err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("dlogd (%s) exited before listening: %v", mode, p.err)
		case <-ctx.Done():
			p.signal(syscall.SIGKILL)
			<-p.done
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.signal(syscall.SIGKILL)
			<-p.done
			return nil, fmt.Errorf("dlogd (%s) did not listen on %s within 20 s", mode, sock)
		}
	}
}

// procSample is one reading of a process's resources.
type procSample struct {
	rssKiB  int64
	threads int64
	fds     int64
}

// sampleProc reads /proc/PID/status (VmRSS, Threads) and counts /proc/PID/fd.
func sampleProc(pid int) (procSample, error) {
	var s procSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("sample dlogd: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			s.rssKiB = n
		case "Threads":
			s.threads = n
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, fmt.Errorf("sample dlogd fds: %w", err)
	}
	s.fds = int64(len(ents))
	return s, nil
}

// logTap receives dlogd's output: it appends it to a file and watches the
// lines for what the soak needs (state dumps, alarms, CTR failures).
type logTap struct {
	mu      sync.Mutex
	f       *os.File
	partial []byte
	// dumpLogs is the logs= figure of the latest "state dump" line.
	dumpLogs atomic.Int64
	dumpSeq  atomic.Uint64
	alarms   []string // panics, races, fatal errors
	recent   []string // the last lines mentioning a failure, for reports
	// restored holds the last "log state restored" line of each luid (as
	// dlogd prints it, luid=0x...): what a restarted dlogd brought back,
	// for the report of a mark found lost after a restart.
	restored map[string]string
	lines    uint64
	// A SIGQUIT makes the Go runtime dump every goroutine and exit: the
	// only outside view of dlogd's goroutine count.
	inQuit bool
	quitG  int
	// race collects a race detector report (a race-enabled dlogd).
	race []string
}

var goroutineRe = regexp.MustCompile(`^goroutine [1-9][0-9]* `)

var dumpRe = regexp.MustCompile(`msg="state dump" logs=([0-9]+)`)

var luidRe = regexp.MustCompile(` luid=(0x[0-9a-f]+)`)

func newLogTap(path string) (*logTap, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dlogd log: %w", err)
	}
	t := &logTap{f: f}
	t.dumpLogs.Store(-1)
	return t, nil
}

func (t *logTap) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.f.Write(p)
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.line(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	if len(t.partial) == 0 {
		t.partial = nil
	}
	return len(p), nil
}

// line looks at one line; called with mu held.
func (t *logTap) line(s string) {
	t.lines++
	if m := dumpRe.FindStringSubmatch(s); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		t.dumpLogs.Store(n)
		t.dumpSeq.Add(1)
	}
	if strings.HasPrefix(s, "SIGQUIT: quit") {
		t.inQuit, t.quitG = true, 0
	}
	if t.inQuit {
		if goroutineRe.MatchString(s) {
			t.quitG++
		}
		return
	}
	if t.race != nil {
		t.race = append(t.race, s)
		if strings.HasPrefix(s, "==================") || len(t.race) > 300 {
			if len(t.alarms) < 20 {
				t.alarms = append(t.alarms, strings.Join(t.race, "\n"))
			}
			t.race = nil
		}
		return
	}
	if strings.Contains(s, "WARNING: DATA RACE") {
		t.race = []string{s}
		return
	}
	for _, a := range []string{"panic:", "fatal error:", "SIGSEGV"} {
		if strings.Contains(s, a) && len(t.alarms) < 20 {
			t.alarms = append(t.alarms, s)
		}
	}
	if strings.Contains(s, `msg="log state restored"`) {
		if m := luidRe.FindStringSubmatch(s); m != nil {
			if t.restored == nil {
				t.restored = map[string]string{}
			}
			t.restored[m[1]] = s
		}
	}
	if strings.Contains(s, "CTR failed") || strings.Contains(s, "CTR rejected") || strings.Contains(s, "log device failed") ||
		strings.Contains(s, "request failed") || strings.Contains(s, "cache flush failed") {
		t.recent = append(t.recent, s)
		if len(t.recent) > 200 {
			t.recent = t.recent[len(t.recent)-100:]
		}
	}
}

// lastRestored returns the last "log state restored" line dlogd printed
// for luid (its phase, dirty count and cursor), or "".
func (t *logTap) lastRestored(luid uint64) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.restored[fmt.Sprintf("%#x", luid)]
}

// logFields picks the unquoted key=value fields named in keys from a
// dlogd log line, in the order of keys.
func logFields(line string, keys ...string) string {
	var out []string
	for _, k := range keys {
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, k+"="); ok {
				out = append(out, k+"="+v)
				break
			}
		}
	}
	return strings.Join(out, " ")
}

// mark writes a separator line into the log file.
func (t *logTap) mark(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inQuit = false
	fmt.Fprintf(t.f, "==== dlog-soak %s: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// lastMatching returns the latest recent line containing every sub.
func (t *logTap) lastMatching(subs ...string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
outer:
	for i := len(t.recent) - 1; i >= 0; i-- {
		for _, s := range subs {
			if !strings.Contains(t.recent[i], s) {
				continue outer
			}
		}
		return t.recent[i]
	}
	return ""
}

// quitGoroutines returns the goroutines counted in the last SIGQUIT dump.
func (t *logTap) quitGoroutines() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.quitG
}

// lastAlarm is the first line of the latest alarm, or "".
func (t *logTap) lastAlarm() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.alarms) == 0 {
		return ""
	}
	a := t.alarms[len(t.alarms)-1]
	if i := strings.IndexByte(a, '\n'); i >= 0 {
		a = a[:i]
	}
	return "dlogd said: " + a
}

func (t *logTap) alarmLines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.alarms...)
}

func (t *logTap) close() error { return t.f.Close() }

// logDir makes sure dir exists.
func logDir(dir string) error {
	if err := os.MkdirAll(filepath.Clean(dir), 0o755); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	return nil
}
