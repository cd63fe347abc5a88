//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// Ensure that dlogd run as systemd runs a Type=notify service with its
// stderr on the journal (JOURNAL_STREAM naming that stream, NOTIFY_SOCKET
// set) sends READY=1 only once the transport, the control socket and the
// pidfile are in place, and STOPPING=1 when it stops; and that each line
// it logs carries its syslog priority as journald reads the stream: the
// start at <6>, the refusal to exit with a log in use at <4>.
func TestSystemdNotifyAndJournal(t *testing.T) {
	dir := t.TempDir()
	notifyPath := filepath.Join(dir, "notify")
	ns, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	journal, err := os.Create(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(journal.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "dlogd.sock")
	cmd := dlogdCmd("serve", "--transport", "unix:"+sock, "--pidfile", filepath.Join(dir, "dlogd.pid"), "--no-mlock")
	cmd.Env = append(cmd.Env, fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino), "NOTIFY_SOCKET="+notifyPath)
	cmd.Stderr = journal
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			<-done
		}
	}()

	recv := func() string {
		t.Helper()
		ns.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 4096)
		n, err := ns.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	if got := recv(); !strings.HasPrefix(got, "READY=1\n") || !strings.Contains(got, "STATUS=serving on unix:"+sock) {
		t.Fatalf("first notification %q, want READY=1 and a STATUS", got)
	}
	// At READY everything is in place: no retry loop here.
	if pid, err := os.ReadFile(filepath.Join(dir, "dlogd.pid")); err != nil || strings.TrimSpace(string(pid)) != fmt.Sprint(cmd.Process.Pid) {
		t.Fatalf("pidfile at READY: %q, %v", pid, err)
	}
	if code := run([]string{"status", "--pidfile", filepath.Join(dir, "dlogd.pid")}, new(strings.Builder), new(strings.Builder)); code != 0 {
		t.Fatalf("status at READY: exit %d", code)
	}
	c, err := transport.DialUnix(sock)
	if err != nil {
		t.Fatalf("transport at READY: %v", err)
	}
	c.Close()

	cl := dial(t, sock)
	cl.must(ulog.TypeCtr, "jr", 1, []byte("131072 clustered-core 1024"))
	cmd.Process.Signal(unix.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(journal.Name())
		if strings.Contains(string(b), "refusing to exit") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cl.must(ulog.TypeDtr, "jr", 1, nil)
	if got := recv(); got != "STOPPING=1" {
		t.Fatalf("notification at exit %q, want STOPPING=1", got)
	}
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dlogd did not exit after its last log was removed")
	}

	// The stream as journald reads it (level_prefix): "<N>" then the text.
	f, err := os.Open(journal.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prio := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 3 || line[0] != '<' || line[2] != '>' || line[1] < '0' || line[1] > '7' {
			t.Errorf("line without a priority prefix: %q", line)
			continue
		}
		if strings.Contains(line, "time=") {
			t.Errorf("line carries its own time (the journal stamps it): %q", line)
		}
		for _, m := range []string{"dlogd serving", "refusing to exit", "dlogd stopped"} {
			if strings.Contains(line, m) {
				prio[m] = line[:3]
			}
		}
	}
	for m, want := range map[string]string{"dlogd serving": "<6>", "refusing to exit": "<4>", "dlogd stopped": "<6>"} {
		if prio[m] != want {
			t.Errorf("%q logged at %q, want %s", m, prio[m], want)
		}
	}
}

// Ensure that a JOURNAL_STREAM naming another stream (dlogd started by
// hand from a unit's shell, stderr redirected) leaves the log plain text.
func TestJournalStreamOtherFile(t *testing.T) {
	out, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	t.Setenv("JOURNAL_STREAM", "1:1")
	newLogger(out, 0).Info("plain")
	b, _ := os.ReadFile(out.Name())
	if !strings.HasPrefix(string(b), "time=") || !strings.Contains(string(b), "level=INFO msg=plain") {
		t.Errorf("not plain text: %q", b)
	}
}
