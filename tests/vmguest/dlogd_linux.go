//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// ErrDlogdAbsent means the initramfs has no dlogd: the host found no
// cmd/dlogd to build.
var ErrDlogdAbsent = errors.New("dlogd is absent from the initramfs")

// Dlogd runs dlogd in the guest for the userspace-log scenarios: start it in
// the background, wait until the kernel can reach it, kill -9 and restart it,
// and collect its output in /out/dlogd.log.
type Dlogd struct {
	Bin     string   // default /sbin/dlogd
	PidFile string   // default /run/dlogd.pid
	LogPath string   // default /out/dlogd.log
	Args    []string // default: serve --transport netlink --pidfile <PidFile>
	Env     []string // added to the guest driver's environment (GOMAXPROCS=1)

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the process's exit, once exited is closed
	starts int
}

// NewDlogd returns the helper with the default paths.
func NewDlogd() *Dlogd {
	return &Dlogd{Bin: vmharness.GuestDlogdPath, PidFile: "/run/dlogd.pid", LogPath: outDir + "/dlogd.log"}
}

func (d *Dlogd) args() []string {
	if d.Args != nil {
		return d.Args
	}
	return []string{"serve", "--transport", "netlink", "--pidfile", d.PidFile}
}

// Present reports whether the binary is there, with a message that says
// what to do when it is not.
func (d *Dlogd) Present() error {
	st, err := os.Stat(d.Bin)
	if err != nil {
		return fmt.Errorf("%w: %s does not exist; the host test builds cmd/dlogd (CGO_ENABLED=0) and puts it there once the package has a main", ErrDlogdAbsent, d.Bin)
	}
	if st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable (mode %v)", d.Bin, st.Mode())
	}
	return nil
}

// Pid is the running daemon's pid, or 0.
func (d *Dlogd) Pid() int {
	if d.cmd == nil || d.cmd.Process == nil || d.isExited() {
		return 0
	}
	return d.cmd.Process.Pid
}

func (d *Dlogd) isExited() bool {
	if d.exited == nil {
		return true
	}
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// Start launches dlogd and waits up to timeout until it is ready: its
// pidfile names it, or better, it holds a NETLINK_CONNECTOR socket
// subscribed to CN_IDX_DM (group 7), which is what dm-log-userspace needs.
// A daemon that exits during the wait is reported with its exit status and
// the end of its log.
func (d *Dlogd) Start(ctx context.Context, timeout time.Duration) error {
	if err := d.Present(); err != nil {
		return err
	}
	if d.Pid() != 0 {
		return fmt.Errorf("dlogd already running as pid %d", d.Pid())
	}
	_ = os.Remove(d.PidFile)
	logf, err := os.OpenFile(d.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	d.starts++
	fmt.Fprintf(logf, "=== dlog-vmguest: start #%d at uptime %.3f: %s %s %s\n", d.starts, uptime(), strings.Join(d.Env, " "), d.Bin, strings.Join(d.args(), " "))
	cmd := exec.Command(d.Bin, d.args()...)
	if len(d.Env) > 0 {
		cmd.Env = append(os.Environ(), d.Env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", d.Bin, err)
	}
	logf.Close() // the child has its own copy
	d.cmd = cmd
	d.exited = make(chan struct{})
	go func(exited chan struct{}) {
		d.err = cmd.Wait()
		close(exited)
	}(d.exited)
	logCmd("# dlogd start #%d: pid %d: %s %s", d.starts, cmd.Process.Pid, d.Bin, strings.Join(d.args(), " "))

	deadline := time.Now().Add(timeout)
	for {
		ready, why := d.Ready()
		if ready {
			logCmd("# dlogd pid %d ready: %s", cmd.Process.Pid, why)
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("dlogd (pid %d) exited before it was ready: %v; the end of %s:\n%s", cmd.Process.Pid, d.err, d.LogPath, tailFile(d.LogPath, 15))
		case <-ctx.Done():
			_ = d.Kill9()
			return fmt.Errorf("waiting for dlogd: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			pid := cmd.Process.Pid
			_ = d.Kill9()
			return fmt.Errorf("dlogd (pid %d) not ready after %v: %s; killed it; the end of %s:\n%s", pid, timeout, why, d.LogPath, tailFile(d.LogPath, 15))
		}
	}
}

// Ready reports whether the running daemon can be reached by the kernel,
// and why (not).
func (d *Dlogd) Ready() (bool, string) {
	pid := d.Pid()
	if pid == 0 {
		return false, "not running"
	}
	b, err := os.ReadFile("/proc/net/netlink")
	if err != nil {
		return false, "reading /proc/net/netlink: " + err.Error()
	}
	socks, err := ParseProcNetNetlink(b)
	if err != nil {
		return false, err.Error()
	}
	listeners := ConnectorListeners(socks, cnIdxDM)
	for _, id := range listeners {
		if int(id) == pid {
			return true, fmt.Sprintf("connector socket (port %d) in group %d", id, cnIdxDM)
		}
	}
	pidInFile := 0
	if pb, err := os.ReadFile(d.PidFile); err == nil {
		pidInFile, _ = strconv.Atoi(strings.TrimSpace(string(pb)))
	}
	switch {
	case pidInFile == pid && len(listeners) > 0:
		return true, fmt.Sprintf("pidfile names pid %d and a connector socket is in group %d (ports %v)", pid, cnIdxDM, listeners)
	case pidInFile == pid:
		return false, fmt.Sprintf("pidfile %s names pid %d but no NETLINK_CONNECTOR socket is subscribed to group %d (CN_IDX_DM)", d.PidFile, pid, cnIdxDM)
	default:
		return false, fmt.Sprintf("no pidfile %s and no NETLINK_CONNECTOR socket in group %d yet", d.PidFile, cnIdxDM)
	}
}

// Kill9 kills the daemon with SIGKILL (its whole process group) and waits
// for it to be gone.
func (d *Dlogd) Kill9() error {
	if d.Pid() == 0 {
		return nil
	}
	pid := d.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-d.exited:
		logCmd("# dlogd pid %d killed with SIGKILL", pid)
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("dlogd pid %d still there 5 s after SIGKILL (blocked in the kernel?)", pid)
	}
}

// Restart is kill -9 followed by Start.
func (d *Dlogd) Restart(ctx context.Context, timeout time.Duration) error {
	if err := d.Kill9(); err != nil {
		return err
	}
	return d.Start(ctx, timeout)
}

// Stop asks the daemon to exit with SIGTERM and kills it after grace.
func (d *Dlogd) Stop(grace time.Duration) error {
	if d.Pid() == 0 {
		return nil
	}
	pid := d.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-d.exited:
		logCmd("# dlogd pid %d stopped: %v", pid, d.err)
		return nil
	case <-time.After(grace):
		_ = d.Kill9()
		return fmt.Errorf("dlogd pid %d ignored SIGTERM for %v; killed it", pid, grace)
	}
}

// tailFile returns the last n lines of a file, indented.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "    (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// startDlogd is how a scenario gets a daemon: it starts dlogd as a step,
// waits until the kernel can reach it, and stops it (SIGTERM, then SIGKILL)
// when the scenario or part ends. Without a dlogd in the initramfs it skips
// the scenario (or part) with the reason.
func startDlogd(s *S, extra ...string) *Dlogd {
	return startDlogdEnv(s, nil, extra...)
}

// startDlogdEnv is startDlogd with env added to dlogd's environment.
func startDlogdEnv(s *S, env []string, extra ...string) *Dlogd {
	d := NewDlogd()
	if len(extra) > 0 {
		d.Args = append(d.args(), extra...)
	}
	d.Env = env
	if err := d.Present(); err != nil {
		s.Skip("start dlogd", err.Error())
	}
	s.Defer("stop dlogd", 10*time.Second, func(ctx context.Context) error { return d.Stop(5 * time.Second) })
	s.Do("start dlogd and wait until it listens on the connector", stepTimeout, func(ctx context.Context) error {
		return d.Start(ctx, 10*time.Second)
	})
	return d
}

// scenDlogdSmoke checks the helper itself against stand-in daemons (so it is
// proven before dlogd exists), then runs the real dlogd when it is there.
func scenDlogdSmoke(s *S) {
	s.Part("helper", func(p *S) {
		p.Expect("a missing binary is reported as absent", "true", stepTimeout, func(ctx context.Context) (string, error) {
			d := &Dlogd{Bin: "/sbin/no-such-dlogd", PidFile: "/run/none.pid", LogPath: outDir + "/dlogd-helper.log"}
			err := d.Start(ctx, time.Second)
			return fmt.Sprint(errors.Is(err, ErrDlogdAbsent)), nil
		})
		p.Expect("a daemon that exits at once is reported with its status", "exited before it was ready: exit status 1", stepTimeout, func(ctx context.Context) (string, error) {
			d := &Dlogd{Bin: "/bin/false", Args: []string{}, PidFile: "/run/none.pid", LogPath: outDir + "/dlogd-helper.log"}
			err := d.Start(ctx, 10*time.Second)
			if err == nil {
				return "started", nil
			}
			if i := strings.Index(err.Error(), "exited before"); i >= 0 {
				return strings.SplitN(err.Error()[i:], ";", 2)[0], nil
			}
			return err.Error(), nil
		})
		p.Expect("a daemon that never listens times out and is killed", "not ready, killed", stepTimeout, func(ctx context.Context) (string, error) {
			d := &Dlogd{Bin: "/bin/sleep", Args: []string{"600"}, PidFile: "/run/none.pid", LogPath: outDir + "/dlogd-helper.log"}
			err := d.Start(ctx, time.Second)
			switch {
			case err == nil:
				return "ready", nil
			case strings.Contains(err.Error(), "not ready") && d.Pid() == 0:
				return "not ready, killed", nil
			default:
				return err.Error(), nil
			}
		})
	})
	s.Part("dlogd", func(p *S) {
		d := startDlogd(p)
		first := d.Pid()
		p.Do("kill -9 and restart dlogd", stepTimeout, func(ctx context.Context) error { return d.Restart(ctx, 10*time.Second) })
		p.Check("restarted dlogd has a new pid", "true", fmt.Sprint(d.Pid() != 0 && d.Pid() != first))
		p.Do("stop dlogd (SIGTERM)", stepTimeout, func(ctx context.Context) error { return d.Stop(5 * time.Second) })
	})
}

// StateDir is dlogd's default state directory: "dlogd" beside its pidfile
// (cmd/dlogd's --state-dir default).
func (d *Dlogd) StateDir() string { return filepath.Join(filepath.Dir(d.PidFile), "dlogd") }

// LogSince returns the lines of the daemon's log from its start number
// start on (the header Start writes before each start).
func (d *Dlogd) LogSince(start int) ([]string, error) {
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		return nil, err
	}
	_, after, ok := strings.Cut(string(b), fmt.Sprintf("=== dlog-vmguest: start #%d ", start))
	if !ok {
		return nil, fmt.Errorf("%s: no start #%d", d.LogPath, start)
	}
	return strings.Split(after, "\n"), nil
}

// WaitLog polls the daemon's log from its start number start on until a
// line contains sub, and returns that line.
func (d *Dlogd) WaitLog(ctx context.Context, start int, sub string) (string, error) {
	for {
		lines, err := d.LogSince(start)
		if g := grepLines(lines, 1, sub); err == nil && len(g) > 0 {
			return g[0], nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no line containing %q in %s since start #%d (%v): %w", sub, d.LogPath, start, err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
