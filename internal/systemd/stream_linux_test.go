//go:build linux

package systemd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func devIno(t *testing.T, f *os.File) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// Ensure that only the stream JOURNAL_STREAM names counts as the journal:
// another file, an empty or malformed variable do not.
func TestOnJournal(t *testing.T) {
	dir := t.TempDir()
	a, err := os.Create(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.Create(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !OnJournal(a, devIno(t, a)) {
		t.Errorf("a is not seen as the stream %s", devIno(t, a))
	}
	for _, v := range []string{"", devIno(t, b), "x:y", devIno(t, a) + "0"} {
		if OnJournal(a, v) {
			t.Errorf("a seen as the journal with JOURNAL_STREAM=%q", v)
		}
	}
}

// Ensure that Notify delivers its state to a path socket and to an
// abstract one, does nothing without a socket, and refuses a relative name.
func TestNotify(t *testing.T) {
	for _, name := range []string{filepath.Join(t.TempDir(), "notify"), fmt.Sprintf("@dlog-test-notify-%d", os.Getpid())} {
		l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		if err := Notify(name, "READY=1\nSTATUS=serving"); err != nil {
			t.Fatal(err)
		}
		l.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 256)
		n, err := l.Read(buf)
		l.Close()
		if err != nil || string(buf[:n]) != "READY=1\nSTATUS=serving" {
			t.Errorf("%s: read %q, %v", name, buf[:n], err)
		}
	}
	if err := Notify("", "READY=1"); err != nil {
		t.Errorf("no socket: %v", err)
	}
	if err := Notify("relative", "READY=1"); err == nil {
		t.Error("a relative socket name was accepted")
	}
}
