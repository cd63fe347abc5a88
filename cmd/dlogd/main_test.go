package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/internal/testutil/syncbuf"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// The test binary doubles as dlogd: with DLOG_TEST_AS_DLOGD set it runs
// main's code with its arguments, so the tests exercise the real binary's
// flags, pidfile, signals and exit codes without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("DLOG_TEST_AS_DLOGD") != "" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	if p := os.Getenv("DLOG_TEST_FCNTL_HOLD"); p != "" {
		os.Exit(holdFcntlLock(p))
	}
	os.Exit(m.Run())
}

// proc is a running dlogd.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	done   chan error
	sock   string
}

func dlogdCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DLOG_TEST_AS_DLOGD=1")
	return cmd
}

// start runs `dlogd serve --transport unix:SOCK --pidfile PID extra...`
// and waits until the socket accepts connections.
func start(t *testing.T, dir string, extra ...string) *proc {
	t.Helper()
	sock := filepath.Join(dir, "dlogd.sock")
	args := append([]string{"serve", "--transport", "unix:" + sock, "--pidfile", filepath.Join(dir, "dlogd.pid"), "--no-mlock"}, extra...)
	p := &proc{cmd: dlogdCmd(args...), stderr: &syncbuf.Buffer{}, done: make(chan error, 1), sock: sock}
	p.cmd.Stderr = io.MultiWriter(p.stderr, testLog{t})
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Ready: the socket answers and the pidfile names the daemon
		// (the transport listens before the state is restored and the
		// pid written).
		if c, err := transport.DialUnix(sock); err == nil {
			c.Close()
			if pid, _ := os.ReadFile(args[4]); len(pid) > 0 {
				return p
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("dlogd exited before listening: %v\n%s", err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dlogd did not listen within 20 s\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait returns the exit code, or fails after d.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(d):
		t.Fatalf("dlogd still running after %v\n%s", d, p.stderr)
		return -1
	}
}

func (p *proc) running() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

// testLog forwards the daemon's log to the test log in verbose mode.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Logf("dlogd: %s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// client is a kernel over the unix transport (fakekernel.Conn).
type client struct {
	t *testing.T
	c *fakekernel.Conn
}

func dial(t *testing.T, sock string) *client {
	t.Helper()
	c, err := fakekernel.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c}
}

// call sends one request and returns its reply's error and payload, or
// ok=false if the connection broke (the daemon died) or no reply came
// within 20 s.
func (c *client) call(typ ulog.RequestType, uuid string, luid uint64, data []byte) (int32, []byte, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.c.Call(ctx, typ, uuid, luid, data, fakekernel.AnyCapacity)
	if errors.Is(err, fakekernel.ErrProtocol) {
		c.t.Fatalf("bad reply: %v", err)
	}
	if err != nil {
		return 0, nil, false
	}
	return res.Err, res.Data, true
}

func (c *client) must(typ ulog.RequestType, uuid string, luid uint64, data []byte) []byte {
	c.t.Helper()
	e, d, ok := c.call(typ, uuid, luid, data)
	if !ok || e != 0 {
		c.t.Fatalf("%s %s: error %d ok %v", typ, uuid, e, ok)
	}
	return d
}

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "SYNOPSIS"},
		{[]string{"serve", "--help"}, 0, "--transport netlink|unix:PATH"},
		{[]string{}, 2, "missing command"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"serve", "--nope"}, 2, "unknown option --nope"},
		{[]string{"serve", "extra"}, 2, "unexpected argument"},
		{[]string{"serve", "--log-level", "loud"}, 2, "--log-level"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("dlogd %v: exit %d, output %q; want exit %d and %q", tc.args, code, out.String()+errb.String(), tc.code, tc.want)
		}
	}
}

// Item 2: one instance per pidfile; exit 2 while another runs; a pidfile
// left by kill -9 does not stop the next start.
func TestPidfile(t *testing.T) {
	dir := t.TempDir()
	a := start(t, dir)
	b := dlogdCmd("serve", "--transport", "unix:"+filepath.Join(dir, "other.sock"), "--pidfile", filepath.Join(dir, "dlogd.pid"), "--no-mlock")
	out, err := b.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("second instance: %v, want exit 2\n%s", err, out)
	}
	if !strings.Contains(string(out), "another log daemon (dlogd or cmirrord) is running") {
		t.Fatalf("second instance did not say why: %s", out)
	}
	pid, _ := os.ReadFile(filepath.Join(dir, "dlogd.pid"))
	if strings.TrimSpace(string(pid)) != fmt.Sprint(a.cmd.Process.Pid) {
		t.Fatalf("pidfile holds %q, want %d", pid, a.cmd.Process.Pid)
	}
	a.cmd.Process.Kill()
	a.wait(t, 10*time.Second)
	if _, err := os.Stat(filepath.Join(dir, "dlogd.pid")); err != nil {
		t.Fatalf("kill -9 should leave the pidfile behind: %v", err)
	}
	start(t, dir) // the stale pidfile and socket do not stop it
}

// SIGTERM with no log exits 0; with logs it refuses, persists, and exits
// once the last log is gone; a second signal exits at once; --force exits
// at the first; SIGUSR1 dumps the state.
func TestSignals(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		p := start(t, t.TempDir())
		p.cmd.Process.Signal(os.Interrupt)
		p.exitsZero(t)
	})
	t.Run("refuse then exit when idle", func(t *testing.T) {
		p := start(t, t.TempDir())
		c := withLog(t, p)
		p.cmd.Process.Signal(os.Signal(sigterm))
		time.Sleep(300 * time.Millisecond)
		if !p.running() {
			t.Fatalf("dlogd exited with a log in use\n%s", p.stderr)
		}
		if !strings.Contains(p.stderr.String(), "refusing to exit") {
			t.Fatalf("no refusal in the log:\n%s", p.stderr)
		}
		p.cmd.Process.Signal(sigusr1)
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(p.stderr.String(), "state dump") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(p.stderr.String(), `uuid=sig`) {
			t.Fatalf("SIGUSR1 dump does not show the log:\n%s", p.stderr)
		}
		c.must(ulog.TypeDtr, "sig", 1, nil)
		p.exitsZero(t)
	})
	t.Run("second signal", func(t *testing.T) {
		p := start(t, t.TempDir())
		withLog(t, p)
		p.cmd.Process.Signal(sigterm)
		time.Sleep(200 * time.Millisecond)
		p.cmd.Process.Signal(sigterm)
		p.exitsZero(t)
	})
	t.Run("force", func(t *testing.T) {
		p := start(t, t.TempDir(), "--force")
		withLog(t, p)
		p.cmd.Process.Signal(sigterm)
		p.exitsZero(t)
	})
}

// exitsZero waits up to 10s for p and fails the test unless it exits 0.
func (p *proc) exitsZero(t *testing.T) {
	t.Helper()
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// withLog dials p and creates the clustered-core log "sig" through it.
func withLog(t *testing.T, p *proc) *client {
	t.Helper()
	c := dial(t, p.sock)
	c.must(ulog.TypeCtr, "sig", 1, []byte("131072 clustered-core 1024"))
	return c
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }
