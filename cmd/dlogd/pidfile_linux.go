//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

var errLocked = errors.New("pidfile locked by another process")

// cmirrordPidfile is where cmirrord keeps its pidfile (docs/conformance.md §1
// item 2).
const cmirrordPidfile = "/run/cmirrord.pid"

// pidLock is a held pidfile. It carries both kinds of lock Linux has, each
// dropped by the kernel when the process dies (a pidfile left by kill -9
// never blocks the next start): an flock, and the fcntl write lock that
// cmirrord takes (libdevmapper's dm_create_lockfile). The two kinds never
// see each other, so only both together make dlogd and cmirrord refuse to
// share a pidfile.
type pidLock struct {
	f    *os.File
	path string
}

func lockPidfile(path string) (*pidLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (pid %s)", errLocked, string(trimNL(holder)))
		}
		return nil, err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		pid, _ := fcntlHolder(f)
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("%w with an fcntl lock, as cmirrord takes it (pid %d)", errLocked, pid)
		}
		return nil, err
	}
	return &pidLock{f: f, path: path}, nil
}

// fcntlHolder reports the process holding an fcntl lock on f, if any.
func fcntlHolder(f *os.File) (int, bool) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil || lk.Type == unix.F_UNLCK {
		return 0, false
	}
	return int(lk.Pid), true
}

// pidfileHeld reports the process holding an fcntl lock on the pidfile at
// path (cmirrord's, say), if there is one.
func pidfileHeld(path string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	return fcntlHolder(f)
}

func (l *pidLock) writePID() error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err := l.f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

func (l *pidLock) release() {
	os.Remove(l.path)
	l.f.Close()
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// lockMemory locks every page of the daemon, now and later.
func lockMemory() error {
	return unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE)
}
