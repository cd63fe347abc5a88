package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/internal/control"
)

func serve(t *testing.T, path string) *control.Server {
	t.Helper()
	s, err := control.Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Serve(ctx, func(_ context.Context, cmd string) (any, error) {
			if cmd == "status" {
				return map[string]int{"logs": 3}, nil
			}
			return nil, fmt.Errorf("unknown command %q", cmd)
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestQuery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl")
	serve(t, path)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v; want 0600", st.Mode(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := control.Query(ctx, path, "status")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]int
	if err := json.Unmarshal(res, &v); err != nil || v["logs"] != 3 {
		t.Fatalf("status = %s, %v", res, err)
	}
	if _, err := control.Query(ctx, path, "bogus"); err == nil {
		t.Fatal("unknown command answered without error")
	}
}

func TestListenInUseAndStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl")
	serve(t, path)
	if _, err := control.Listen(path, nil); !errors.Is(err, control.ErrInUse) {
		t.Fatalf("second Listen: %v, want ErrInUse", err)
	}
	// A socket file nobody listens on (a killed daemon) is replaced.
	stale := filepath.Join(t.TempDir(), "stale")
	cmd := exec.Command("python3", "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])", stale)
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot make a stale socket file: %v", err)
	}
	s, err := control.Listen(stale, nil)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	s.Close()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("Close left the socket file: %v", err)
	}
}

// A peer that is neither root nor the daemon's user gets nothing.
func TestPeerRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "ctl")
	serve(t, path)
	os.Chmod(path, 0o666) // let the other user connect at all
	out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"python3", "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'status\\n'); print(repr(s.recv(100)))", path).CombinedOutput()
	if err != nil {
		t.Skipf("could not run a client as uid 65534: %v: %s", err, out)
	}
	if string(out) != "b''\n" {
		t.Fatalf("a foreign uid was answered: %s", out)
	}
}

// A command that takes longer than the read deadline (dlogd's profile)
// still gets its answer: the deadline covers reading the command and
// writing the answer, not the handler.
func TestSlowCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl")
	s, err := control.Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	control.SetIOTimeout(s, 100*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx, func(_ context.Context, cmd string) (any, error) {
		time.Sleep(500 * time.Millisecond)
		return cmd, nil
	})
	qctx, qcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer qcancel()
	raw, err := control.Query(qctx, path, "slow")
	if err != nil {
		t.Fatalf("a command slower than the read deadline: %v", err)
	}
	if string(raw) != `"slow"` {
		t.Fatalf("answer %s, want \"slow\"", raw)
	}
}
