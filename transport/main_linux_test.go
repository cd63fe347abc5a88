//go:build linux

package transport_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// childEnv selects a child mode of the test binary: the tests re-run
// themselves as other users, with fewer capabilities, or in another
// network namespace. childArgEnv carries the mode's argument.
const (
	childEnv    = "DLOG_TRANSPORT_TEST_CHILD"
	childArgEnv = "DLOG_TRANSPORT_TEST_ARG"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode, os.Getenv(childArgEnv)))
	}
	os.Exit(m.Run())
}

// child runs one child mode and returns the exit code. It reports on
// stdout, one line.
func child(mode, arg string) int {
	switch mode {
	case "dial":
		// Connect to the unix transport at arg, send a request and
		// report what comes back.
		c, err := transport.DialUnix(arg)
		if err != nil {
			fmt.Println("dial error:", err)
			return 0
		}
		defer c.Close()
		req := ulog.Request{Version: ulog.Version, Seq: 1, RawType: uint32(ulog.TypeInSync), Data: ulog.AppendUint64(nil, 1)}
		_ = req.SetUUID("child")
		if err := c.Send(ulog.AppendRequest(nil, &req)); err != nil {
			// The transport may have closed the connection already.
			fmt.Println("closed (send:", err, ")")
			return 0
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, transport.MaxDatagram)
		n, err := c.Receive(buf)
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			fmt.Println("closed")
		case err != nil:
			fmt.Println("receive error:", err)
		default:
			fmt.Printf("reply %d bytes\n", n)
		}
		return 0
	case "listen-unix":
		// Listen at arg and wait to be killed: the socket file stays.
		tr, err := transport.Listen("unix:"+arg, transport.Options{})
		if err != nil {
			fmt.Println("listen error:", err)
			return 1
		}
		_ = tr
		fmt.Println("listening")
		time.Sleep(time.Minute)
		return 0
	case "listen-netlink":
		// Listen on netlink in production mode and report the outcome.
		tr, err := transport.Listen("netlink", transport.Options{})
		switch {
		case err == nil:
			_ = tr.Close()
			fmt.Println("ok")
		case errors.Is(err, transport.ErrNoCapability):
			fmt.Println("nocap:", err)
		case errors.Is(err, transport.ErrNetNamespace):
			fmt.Println("netns:", err)
		default:
			fmt.Println("error:", err)
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown child mode", mode)
	return 2
}

// runChild runs the test binary in a child mode, through wrapper (e.g.
// setpriv ...) if given, and returns its one-line report.
func runChild(t *testing.T, exe, mode, arg string, attr *syscall.SysProcAttr, wrapper ...string) string {
	t.Helper()
	var cmd *exec.Cmd
	if len(wrapper) > 0 {
		cmd = exec.Command(wrapper[0], append(wrapper[1:], exe)...)
	} else {
		cmd = exec.Command(exe)
	}
	cmd.Env = childEnviron(mode, arg)
	cmd.SysProcAttr = attr
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s %v: %v\n%s%s", mode, wrapper, err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// childEnviron is the environment of a child in mode with arg. The race
// detector's one-second sleep at exit is turned off: it would dominate
// the tests' run time.
func childEnviron(mode, arg string) []string {
	return append(os.Environ(), childEnv+"="+mode, childArgEnv+"="+arg, "GORACE=atexit_sleep_ms=0")
}

// testExe returns the path of the running test binary.
func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// publicDir returns a fresh directory everyone can enter, with a copy of
// the test binary in it that everyone can run (the go tool's build
// directory is private to root).
func publicDir(t *testing.T) (dir, exe string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "dlog-transport-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(testExe(t))
	if err != nil {
		t.Fatal(err)
	}
	exe = filepath.Join(dir, "transport.test")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, exe
}

func needRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("skipping: needs root (%s)", why)
	}
}
