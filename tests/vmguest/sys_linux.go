//go:build linux

package main

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"fmt"

	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// mountBasics mounts what the scenarios need. /tmp holds the loop legs, so
// it gets most of the guest's memory (docs/vm.md §6 pitfall 7: keep legs small).
func mountBasics() error {
	mounts := []struct {
		src, dst, fstype, data string
		flags                  uintptr
	}{
		{"proc", "/proc", "proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"sysfs", "/sys", "sysfs", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"devtmpfs", "/dev", "devtmpfs", "mode=0755", unix.MS_NOSUID},
		{"tmpfs", "/run", "tmpfs", "mode=0755", unix.MS_NOSUID | unix.MS_NODEV},
		{"tmpfs", "/tmp", "tmpfs", "size=800m,mode=1777", unix.MS_NOSUID | unix.MS_NODEV},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dst, m.fstype, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dst, err)
		}
	}
	return os.MkdirAll(outDir, 0o755)
}

// uptime is the guest's /proc/uptime in seconds (0 when unreadable).
func uptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// kernelLog returns the kernel ring buffer (what dmesg prints).
func kernelLog() ([]byte, error) {
	const (
		syslogActionReadAll    = 3
		syslogActionSizeBuffer = 10
	)
	n, err := unix.Klogctl(syslogActionSizeBuffer, nil)
	if err != nil {
		return nil, fmt.Errorf("syslog size: %w", err)
	}
	if n <= 0 {
		n = 1 << 20
	}
	buf := make([]byte, n)
	m, err := unix.Klogctl(syslogActionReadAll, buf)
	if err != nil {
		return nil, fmt.Errorf("syslog read: %w", err)
	}
	return buf[:m], nil
}

// writeTarTo writes every regular file under dir to the block device dev as
// a tar archive, then flushes the device.
func writeTarTo(dir, dev string) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("tar %s to %s: %w", dir, dev, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar %s to %s: %w", dir, dev, err)
	}
	return f.Sync()
}

// powerOff ends the VM: qemu -no-reboot exits 0 on it.
func powerOff() {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Fprintf(os.Stderr, "vmguest: reboot(POWER_OFF): %v; exiting so /init powers off\n", err)
		os.Exit(3)
	}
	select {} // the kernel stops us
}

// Modules live flat in /lib/modules as <name>.ko (scripts/vm/deps.sh
// decompresses them); modules.builtin lists those compiled in.
const moduleDir = "/lib/modules"

// moduleDeps reads a module's dependencies from its .modinfo section. A
// module without a .ko file is fine when it is built in.
func moduleDeps(builtin map[string]bool) func(string) ([]string, bool, error) {
	return func(name string) ([]string, bool, error) {
		p := moduleFile(name)
		if p == "" {
			if builtin[ModuleName(name)] {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("module %s: no %s/%s.ko and not built in (is it in scripts/vm/deps.sh's list?)", name, moduleDir, name)
		}
		ef, err := elf.Open(p)
		if err != nil {
			return nil, false, fmt.Errorf("module %s: %w", name, err)
		}
		defer ef.Close()
		sec := ef.Section(".modinfo")
		if sec == nil {
			return nil, true, nil
		}
		b, err := sec.Data()
		if err != nil {
			return nil, false, fmt.Errorf("module %s: .modinfo: %w", name, err)
		}
		var deps []string
		for _, v := range ParseModinfo(b)["depends"] {
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, d)
				}
			}
		}
		return deps, true, nil
	}
}

// moduleFile finds name's .ko, trying '-' and '_' spellings.
func moduleFile(name string) string {
	for _, n := range []string{name, strings.ReplaceAll(name, "_", "-"), strings.ReplaceAll(name, "-", "_")} {
		p := filepath.Join(moduleDir, n+".ko")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func readBuiltin() map[string]bool {
	m := make(map[string]bool)
	b, err := os.ReadFile(filepath.Join(moduleDir, "modules.builtin"))
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			m[ModuleName(filepath.Base(line))] = true
		}
	}
	return m
}

// insmod loads one module file with finit_module(2); "already loaded" is fine.
func insmod(name, params string) error {
	p := moduleFile(name)
	if p == "" {
		return fmt.Errorf("insmod %s: no .ko in %s", name, moduleDir)
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("insmod %s: %w", name, err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), params, 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("insmod %s: %w (see dmesg.txt)", p, err)
	}
	return nil
}

// loadModules loads modules that the set-up did not, with everything they
// depend on (from .modinfo), without parameters.
func loadModules(names ...string) error {
	order, err := LoadOrder(names, moduleDeps(readBuiltin()))
	if err != nil {
		return err
	}
	for _, m := range order {
		if err := insmod(m, ""); err != nil {
			return err
		}
	}
	return nil
}

// waitPath polls for a path (a device node devtmpfs creates asynchronously).
func waitPath(p string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %v", p, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
