//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cmirrord in the bench boot (make vmbench, issue #15 item 3): LVM2's own
// daemon, built from Debian's lvm2 source by scripts/vm/cmirrord.sh, run
// over a one-node corosync on loopback (udpu or knet), so that every ratio
// against it comes from the same boot as the kernel's logs and dlogd.

// CmirrordPath is where the host puts cmirrord.
const CmirrordPath = "/usr/sbin/cmirrord"

// corosyncConf1 is a one-node corosync on 127.0.0.1 over transport.
func corosyncConf1(transport string) string {
	return "totem {\n\tversion: 2\n\tcluster_name: dlogbench\n\ttransport: " + transport +
		"\n\tcrypto_cipher: none\n\tcrypto_hash: none\n\ttoken: 5000\n}\n" +
		"nodelist {\n\tnode {\n\t\tring0_addr: 127.0.0.1\n\t\tnodeid: 1\n\t\tname: n1\n\t}\n}\n" +
		"quorum {\n\tprovider: corosync_votequorum\n}\n" +
		"logging {\n\tto_stderr: yes\n\tto_syslog: no\n\tto_logfile: no\n\ttimestamp: on\n}\n"
}

// corosyncDirsOnce prepares what corosync needs in the initramfs, once.
var corosyncDirsDone bool

func corosyncDirs() error {
	if corosyncDirsDone {
		return nil
	}
	if _, err := run(context.Background(), "ip", "link", "set", "lo", "up"); err != nil {
		return err
	}
	if err := makeCorosyncDirs(); err != nil {
		return err
	}
	corosyncDirsDone = true
	return nil
}

// makeCorosyncDirs makes the directories corosync needs in the initramfs,
// a tmpfs /dev/shm for its IPC and /var/run.
func makeCorosyncDirs() error {
	for _, d := range []string{"/dev/shm", "/var/lib/corosync", "/etc/corosync", "/var/log/cluster"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	if _, err := os.Lstat("/var/run"); err != nil {
		return os.Symlink("/run", "/var/run")
	}
	return nil
}

// startCmirrord starts a one-node corosync over transport and cmirrord on
// it, stopping both when s ends. It returns the cmirrord handle.
func startCmirrord(s *S, transport string) *Dlogd {
	s.Do("corosync.conf: one node on 127.0.0.1, transport "+transport, 10*time.Second, func(ctx context.Context) error {
		if err := corosyncDirs(); err != nil {
			return err
		}
		return os.WriteFile("/etc/corosync/corosync.conf", []byte(corosyncConf1(transport)), 0o644)
	})
	var coro *exec.Cmd
	s.Do("start corosync -f ("+transport+")", 10*time.Second, func(ctx context.Context) (err error) {
		coro, err = startCorosync()
		return err
	})
	s.Defer("stop corosync", 20*time.Second, func(ctx context.Context) error {
		if coro == nil || coro.Process == nil {
			return nil
		}
		_ = coro.Process.Signal(syscall.SIGTERM)
		for i := 0; i < 100; i++ {
			if err := coro.Process.Signal(syscall.Signal(0)); err != nil {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(-coro.Process.Pid, syscall.SIGKILL)
		return nil
	})
	s.Do("corosync: quorate with its one node", 2*time.Minute, func(ctx context.Context) error {
		return waitMembers(ctx, 1, true)
	})
	d := &Dlogd{Bin: CmirrordPath, PidFile: "/run/cmirrord.pid", LogPath: outDir + "/cmirrord.log", Args: []string{"-f"}}
	s.Defer("stop cmirrord", 10*time.Second, func(ctx context.Context) error { return d.Stop(5 * time.Second) })
	s.Do("start cmirrord -f", 30*time.Second, func(ctx context.Context) error { return d.Start(ctx, 20*time.Second) })
	return d
}

// cmirrordAvailable says whether the host put cmirrord and corosync in the
// initramfs, and if not, why (the host writes the reason next to it).
func cmirrordAvailable() (bool, string) {
	if _, err := os.Stat(CmirrordPath); err != nil {
		why, _ := os.ReadFile("/etc/dlog-cmirrord-unavailable")
		return false, strings.TrimSpace("cmirrord is not in the initramfs: " + string(why))
	}
	if _, err := os.Stat("/usr/sbin/corosync"); err != nil {
		return false, "corosync is not in the initramfs (make vmcluster-deps)"
	}
	return true, ""
}
