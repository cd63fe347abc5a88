//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as a stand-in dlogd that does what readiness
// means: it joins the connector's group 7 (CN_IDX_DM) and writes its pidfile.
func TestMain(m *testing.M) {
	if os.Getenv("FAKE_DLOGD") == "1" {
		os.Exit(fakeDlogd(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeDlogd(args []string) int {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM, netlinkConnector)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake dlogd: socket:", err)
		return 4
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		fmt.Fprintln(os.Stderr, "fake dlogd: bind:", err)
		return 4
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, cnIdxDM); err != nil {
		fmt.Fprintln(os.Stderr, "fake dlogd: join group 7:", err)
		return 4
	}
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--pidfile" {
			os.WriteFile(args[i+1], []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644)
		}
	}
	fmt.Println("fake dlogd: listening on the connector, group 7")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	fmt.Println("fake dlogd: SIGTERM, exiting")
	return 0
}

// The helper runs on the host as well as in the guest; here it is tried
// against stand-in daemons (no netlink listener can appear for them).
func testDlogd(t *testing.T, bin string, args ...string) *Dlogd {
	t.Helper()
	dir := t.TempDir()
	return &Dlogd{Bin: bin, Args: args, PidFile: filepath.Join(dir, "d.pid"), LogPath: filepath.Join(dir, "d.log")}
}

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found", name)
	}
	return p
}

func TestDlogdAbsent(t *testing.T) {
	d := testDlogd(t, "/nonexistent/dlogd")
	err := d.Start(context.Background(), time.Second)
	if !errors.Is(err, ErrDlogdAbsent) || !strings.Contains(err.Error(), "cmd/dlogd") {
		t.Fatalf("got %v, want ErrDlogdAbsent saying what to build", err)
	}
	if ready, why := d.Ready(); ready || why != "not running" {
		t.Errorf("Ready = %v, %q", ready, why)
	}
}

func TestDlogdExitsAtOnce(t *testing.T) {
	d := testDlogd(t, lookPath(t, "sh"), "-c", "echo cannot open netlink socket >&2; exit 3")
	err := d.Start(context.Background(), 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready: exit status 3") || !strings.Contains(err.Error(), "cannot open netlink socket") {
		t.Fatalf("got %v, want the exit status and the log's end", err)
	}
	if d.Pid() != 0 {
		t.Error("an exited daemon still has a pid")
	}
}

func TestDlogdNeverReady(t *testing.T) {
	// Writes its pidfile but never listens on the connector.
	d := testDlogd(t, lookPath(t, "sh"))
	d.Args = []string{"-c", "echo $$ > " + d.PidFile + "; exec sleep 600"}
	start := time.Now()
	err := d.Start(context.Background(), 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not ready after 500ms") || !strings.Contains(err.Error(), "no NETLINK_CONNECTOR socket is subscribed to group 7") {
		t.Fatalf("got %v", err)
	}
	if d.Pid() != 0 {
		t.Error("the daemon that never became ready was not killed")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}

// TestDlogdLifecycle runs the in-guest sequence (start, kill -9, restart,
// stop) against the stand-in daemon, which really joins group 7.
func TestDlogdLifecycle(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKE_DLOGD", "1")
	d := testDlogd(t, exe)
	d.Args = []string{"serve", "--transport", "netlink", "--pidfile", d.PidFile}
	ctx := context.Background()
	if err := d.Start(ctx, 10*time.Second); err != nil {
		if strings.Contains(err.Error(), "exit status 4") {
			t.Skipf("this kernel has no usable netlink connector: %v", err)
		}
		t.Fatal(err)
	}
	first := d.Pid()
	if ready, why := d.Ready(); !ready || !strings.Contains(why, fmt.Sprintf("port %d", first)) {
		t.Fatalf("Ready = %v, %q", ready, why)
	}
	if err := d.Start(ctx, time.Second); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("a second Start: %v", err)
	}
	if err := d.Kill9(); err != nil {
		t.Fatal(err)
	}
	if ready, _ := d.Ready(); ready || d.Pid() != 0 {
		t.Error("still ready after kill -9")
	}
	if err := d.Restart(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d.Pid() == 0 || d.Pid() == first {
		t.Errorf("restart: pid %d, first %d", d.Pid(), first)
	}
	if err := d.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(time.Second); err != nil {
		t.Errorf("Stop of a stopped daemon: %v", err)
	}
	log := tailFile(d.LogPath, 20)
	for _, want := range []string{"start #1", "start #2", "listening on the connector", "SIGTERM, exiting"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}
