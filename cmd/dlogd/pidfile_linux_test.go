//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// holdFcntlLock is the child of TestPidfileCmirrordLock: it takes the fcntl
// write lock on path the way cmirrord does (libdevmapper's
// dm_create_lockfile), says so, and holds it until its stdin closes.
func holdFcntlLock(path string) int {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	fmt.Println("held")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// Item 2 against cmirrord: a pidfile that another process holds with an
// fcntl lock (cmirrord's kind, which flock does not see) stops dlogd with
// exit 2, and pidfileHeld names the holder; once it is gone dlogd starts.
func TestPidfileCmirrordLock(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "dlogd.pid")
	if _, held := pidfileHeld(pidfile); held {
		t.Fatal("pidfileHeld reports a lock on a pidfile that does not exist")
	}
	holder := exec.Command(os.Args[0])
	holder.Env = append(os.Environ(), "DLOG_TEST_FCNTL_HOLD="+pidfile)
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	defer stdin.Close()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "held\n" {
		t.Fatalf("lock holder: %q", line)
	}
	if pid, held := pidfileHeld(pidfile); !held || pid != holder.Process.Pid {
		t.Fatalf("pidfileHeld = %d, %v; want the holder, pid %d", pid, held, holder.Process.Pid)
	}
	b := dlogdCmd("serve", "--transport", "unix:"+filepath.Join(dir, "dlogd.sock"), "--pidfile", pidfile, "--no-mlock")
	// A dlogd that does not see the lock would serve on: stop it.
	timer := time.AfterFunc(10*time.Second, func() { b.Process.Kill() })
	out, err := b.CombinedOutput()
	timer.Stop()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("dlogd beside an fcntl lock holder: %v, want exit 2\n%s", err, out)
	}
	if !strings.Contains(string(out), "another log daemon (dlogd or cmirrord) is running") || !strings.Contains(string(out), fmt.Sprint(holder.Process.Pid)) {
		t.Fatalf("dlogd did not say who holds the pidfile: %s", out)
	}
	stdin.Close()
	holder.Wait()
	start(t, dir) // the lock died with its holder
}
