//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Dump asks dlogd for its state dump (SIGUSR1) and parses it from its log.
func (d *Dlogd) Dump(ctx context.Context) (Dump, error) {
	pid := d.Pid()
	if pid == 0 {
		return Dump{}, fmt.Errorf("dlogd is not running")
	}
	var off int64
	if st, err := os.Stat(d.LogPath); err == nil {
		off = st.Size()
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return Dump{}, fmt.Errorf("SIGUSR1 to dlogd pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := readFrom(d.LogPath, off)
		if err != nil {
			return Dump{}, err
		}
		dump, complete, err := ParseDlogdDump(completeLines(b))
		if err != nil {
			return Dump{}, err
		}
		if complete {
			return dump, nil
		}
		if time.Now().After(deadline) {
			return Dump{}, fmt.Errorf("no complete state dump in %s 10 s after SIGUSR1 to pid %d; the log ends with:\n%s", d.LogPath, pid, tailFile(d.LogPath, 8))
		}
		select {
		case <-ctx.Done():
			return Dump{}, ctx.Err()
		case <-time.After(30 * time.Millisecond):
		}
	}
}

// DumpOf returns the logs of the dump with that uuid, requiring want of them.
func (d *Dlogd) DumpOf(ctx context.Context, uuid string, want int) ([]DumpLog, error) {
	dump, err := d.Dump(ctx)
	if err != nil {
		return nil, err
	}
	logs := dump.ByUUID(uuid)
	if want >= 0 && len(logs) != want {
		var all []string
		for _, l := range dump.Logs {
			all = append(all, l.UUID+"/"+l.LUID+"("+l.Phase+")")
		}
		return logs, fmt.Errorf("dlogd's dump has %d logs with uuid %s, want %d (all: %s)", len(logs), uuid, want, strings.Join(all, " "))
	}
	return logs, nil
}

func readFrom(path string, off int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() <= off {
		return nil, nil
	}
	b := make([]byte, st.Size()-off)
	n, err := f.ReadAt(b, off)
	if n > 0 {
		err = nil
	}
	return b[:n], err
}

// Signal sends sig to the daemon.
func (d *Dlogd) Signal(sig syscall.Signal) error {
	pid := d.Pid()
	if pid == 0 {
		return fmt.Errorf("dlogd is not running")
	}
	logCmd("# %v to dlogd pid %d", sig, pid)
	return syscall.Kill(pid, sig)
}

// ProcState is the daemon's state letter from /proc/PID/stat (R, S, T...).
func (d *Dlogd) ProcState() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.Pid()))
	if err != nil {
		return "?"
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}

// ShrinkRcvbuf sets the receive buffer of the daemon's connector socket
// from outside: it duplicates the socket with pidfd_getfd(2) and sets
// SO_RCVBUFFORCE on the copy (one socket, two descriptors). dlogd asks for
// a large buffer and, with CAP_NET_ADMIN (which joining group 7 needs
// anyway), gets it; the flood scenario needs a small one to make the
// kernel's requests overrun it. It returns the buffer size now in effect.
func (d *Dlogd) ShrinkRcvbuf(n int) (int, error) {
	pid := d.Pid()
	if pid == 0 {
		return 0, fmt.Errorf("dlogd is not running")
	}
	sock := socketOf(uint32(pid))
	if sock.Inode == 0 {
		return 0, fmt.Errorf("no connector socket with port id %d in /proc/net/netlink", pid)
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	target := -1
	want := fmt.Sprintf("socket:[%d]", sock.Inode)
	for _, e := range ents {
		if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && l == want {
			target, _ = strconv.Atoi(e.Name())
			break
		}
	}
	if target < 0 {
		return 0, fmt.Errorf("no descriptor of pid %d links to %s", pid, want)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, target, 0)
	if err != nil {
		return 0, fmt.Errorf("pidfd_getfd %d/%d: %w", pid, target, err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n); err != nil {
		return 0, fmt.Errorf("SO_RCVBUFFORCE %d: %w", n, err)
	}
	return unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
}

// kmsgSeq numbers the markers this driver writes into the kernel log.
var kmsgSeq atomic.Int64

// kmsgMark writes a unique marker line into the kernel log and returns it,
// so that a scenario can read only the kernel messages that follow.
func kmsgMark(what string) string {
	m := fmt.Sprintf("dlog-vmguest mark %d: %s", kmsgSeq.Add(1), what)
	if f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		_, _ = f.WriteString(m + "\n")
		f.Close()
	}
	return m
}

// dmesgAfter returns the kernel log lines after the marker (all of them
// when the marker is not there, e.g. rotated out).
func dmesgAfter(marker string) ([]string, error) {
	b, err := kernelLog()
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], marker) {
			return lines[i+1:], nil
		}
	}
	return lines, nil
}

// countLines counts the lines that contain sub.
func countLines(lines []string, sub string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// The kernel messages of dm-log-userspace about its daemon: no daemon
// answers its requests, one request went unanswered for 15 s, and it is
// back in touch with one.
const (
	msgNotFound    = "Userspace log server not found"
	msgTimedOut    = "Request timed out"
	msgReconnected = "Reconnected to userspace log server"
)

// reconnectCounts counts those messages in lines.
func reconnectCounts(lines []string) string {
	return fmt.Sprintf("%d x 'Userspace log server not found', %d x 'Request timed out', %d x 'Reconnected'",
		countLines(lines, msgNotFound), countLines(lines, msgTimedOut), countLines(lines, msgReconnected))
}

// reconnectsSince records, as a value step, the reconnectCounts of the
// kernel log since marker.
func reconnectsSince(s *S, step, marker string) {
	s.Value(step, stepTimeout, func(ctx context.Context) (string, error) {
		lines, err := dmesgAfter(marker)
		if err != nil {
			return "", err
		}
		return reconnectCounts(lines), nil
	})
}

// grepLines returns the lines that contain any of subs, at most max.
func grepLines(lines []string, max int, subs ...string) []string {
	var out []string
	for _, l := range lines {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
		if len(out) == max {
			break
		}
	}
	return out
}

// waitDmesg polls the kernel log after marker until a line contains sub.
func waitDmesg(ctx context.Context, marker, sub string) (string, error) {
	for {
		lines, err := dmesgAfter(marker)
		if err != nil {
			return "", err
		}
		if g := grepLines(lines, 1, sub); len(g) > 0 {
			return g[0], nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no kernel message containing %q: %w", sub, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
