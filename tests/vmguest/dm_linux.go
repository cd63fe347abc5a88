//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmdLog receives every command the guest runs, with its output and
// timing; it is /out/commands.log. Verbose mode echoes it to the console.
var (
	cmdLogMu sync.Mutex
	cmdLog   io.Writer = io.Discard
)

func logCmd(format string, args ...any) {
	cmdLogMu.Lock()
	defer cmdLogMu.Unlock()
	fmt.Fprintf(cmdLog, "[%9.3f] "+format+"\n", append([]any{uptime()}, args...)...)
}

// run executes a command and returns its trimmed standard output. The
// error carries the exit status and standard error.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	line := name + " " + shellJoin(args)
	out := strings.TrimSpace(stdout.String())
	errOut := strings.TrimSpace(stderr.String())
	logCmd("$ %s  (%.3f s, %v)\n%s%s", line, time.Since(start).Seconds(), exitText(err), indent(out), indent(errOut))
	if err != nil {
		msg := errOut
		if msg == "" {
			msg = out
		}
		return out, fmt.Errorf("%s: %v: %s", line, err, msg)
	}
	return out, nil
}

func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\") {
			q[i] = fmt.Sprintf("%q", a)
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

// dmsetup runs dmsetup without waiting for udev, which the guest does not
// have (docs/vm.md §6 pitfall 1).
func dmsetup(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "dmsetup", append([]string{"--noudevsync"}, args...)...)
}

// dmCreate creates and activates name with a one-line table, then makes its
// /dev/mapper node (nothing else will, without udev).
func dmCreate(ctx context.Context, name, table string) error {
	if _, err := dmsetup(ctx, "create", name, "--table", table); err != nil {
		return err
	}
	if _, err := dmsetup(ctx, "mknodes", name); err != nil {
		return err
	}
	return waitPath("/dev/mapper/"+name, 3*time.Second)
}

// dmLoadResume replaces the table of a live device (suspend, swap, resume).
func dmLoadResume(ctx context.Context, name, table string) error {
	if _, err := dmsetup(ctx, "load", name, "--table", table); err != nil {
		return err
	}
	_, err := dmsetup(ctx, "resume", name)
	return err
}

// dmRemove removes a device, retrying briefly while it is busy, and falls
// back to --force (which swaps in the error target first) as a last resort.
func dmRemove(ctx context.Context, name string) error {
	var err error
	for i := 0; i < 5; i++ {
		if _, err = dmsetup(ctx, "remove", name); err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "busy") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, ferr := dmsetup(ctx, "remove", "--force", name); ferr == nil {
		return fmt.Errorf("plain remove failed (%v); --force worked", err)
	}
	return err
}

func dmStatus(ctx context.Context, name string) (string, error) { return dmsetup(ctx, "status", name) }
func dmTable(ctx context.Context, name string) (string, error)  { return dmsetup(ctx, "table", name) }

// dmState is the State: line of dmsetup info (ACTIVE, SUSPENDED, ...).
func dmState(ctx context.Context, name string) (string, error) {
	out, err := dmsetup(ctx, "info", name)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "State" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("dmsetup info %s: no State line in %q", name, out)
}

// dmExists reports whether dmsetup knows the device.
func dmExists(ctx context.Context, name string) (bool, error) {
	out, err := dmsetup(ctx, "ls")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return true, nil
		}
	}
	return false, nil
}

// mirrorStatus parses the device's status line.
func mirrorStatus(ctx context.Context, name string) (MirrorStatus, error) {
	line, err := dmStatus(ctx, name)
	if err != nil {
		return MirrorStatus{}, err
	}
	return ParseMirrorStatus(line)
}

// waitSync polls the mirror's status until all regions are in sync and
// returns the final <in_sync>/<regions>.
func waitSync(ctx context.Context, name string) (string, error) {
	start := time.Now()
	var last MirrorStatus
	for {
		line, err := dmStatusFast(name)
		if err != nil {
			return "", err
		}
		m, err := ParseMirrorStatus(line)
		if err != nil {
			return "", err
		}
		last = m
		if m.Regions > 0 && m.InSync == m.Regions {
			logCmd("# %s in sync after %.2f s: %s", name, time.Since(start).Seconds(), line)
			return m.Ratio(), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("still %s after %.1f s: %w", last.Ratio(), time.Since(start).Seconds(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// devMajMin is "maj:min" of a device node.
func devMajMin(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return "", fmt.Errorf("%s is not a block device", path)
	}
	return fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))), nil
}

// dmStatusFast is dmsetup status NAME for a one-target device, straight
// from the DM_TABLE_STATUS ioctl: no process to start, which matters under
// emulation, where a dmsetup run costs a tenth of a second of the guest's
// only CPU (status pollers and resync waits would otherwise starve the
// mirror they watch).
func dmStatusFast(name string) (string, error) {
	if len(name) >= 128 {
		return "", fmt.Errorf("dm name %q too long", name)
	}
	f, err := os.OpenFile("/dev/mapper/control", os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	const bufSize = 16 << 10
	buf := make([]byte, bufSize)
	hdr := (*unix.DmIoctl)(unsafe.Pointer(&buf[0]))
	hdr.Version = [3]uint32{unix.DM_VERSION_MAJOR, 0, 0}
	hdr.Data_size = bufSize
	hdr.Data_start = uint32(unsafe.Sizeof(unix.DmIoctl{}))
	copy(hdr.Name[:], name)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.DM_TABLE_STATUS, uintptr(unsafe.Pointer(&buf[0]))); e != 0 {
		return "", fmt.Errorf("DM_TABLE_STATUS %s: %w", name, e)
	}
	runtime.KeepAlive(buf)
	if hdr.Flags&unix.DM_BUFFER_FULL_FLAG != 0 {
		return "", fmt.Errorf("DM_TABLE_STATUS %s: buffer full", name)
	}
	if hdr.Target_count != 1 {
		return "", fmt.Errorf("DM_TABLE_STATUS %s: %d targets, want 1", name, hdr.Target_count)
	}
	off := int(hdr.Data_start)
	specSize := int(unsafe.Sizeof(unix.DmTargetSpec{}))
	if off+specSize > bufSize {
		return "", fmt.Errorf("DM_TABLE_STATUS %s: bad data_start %d", name, off)
	}
	spec := (*unix.DmTargetSpec)(unsafe.Pointer(&buf[off]))
	params := buf[off+specSize:]
	if i := bytes.IndexByte(params, 0); i >= 0 {
		params = params[:i]
	}
	typ := spec.Target_type[:]
	if i := bytes.IndexByte(typ, 0); i >= 0 {
		typ = typ[:i]
	}
	return fmt.Sprintf("%d %d %s %s", spec.Sector_start, spec.Length, typ, params), nil
}
