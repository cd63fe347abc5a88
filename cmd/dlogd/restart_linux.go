//go:build linux

package main

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/dm"
	"github.com/dlog-dev/dlog/engine"
)

// openMirror opens device-mapper's control and finds the mirror whose
// userspace log has uuid.
func openMirror(ctx context.Context, uuid string) (*dm.Control, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	c, err := dm.Open()
	if err != nil {
		return nil, "", err
	}
	name, _, err := c.FindMirror(uuid)
	if err != nil {
		c.Close()
		return nil, "", fmt.Errorf("find the mirror of log %s: %w", uuid, err)
	}
	return c, name, nil
}

// restartMirror suspends and resumes the mirror whose userspace log has
// uuid (cluster.Options.Restart): its kernel resets its in_sync_hint and
// asks for resync work again. The suspend flushes queued I/O but freezes
// no filesystem.
func restartMirror(ctx context.Context, uuid string) error {
	c, name, err := openMirror(ctx, uuid)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Suspend(name, dm.SuspendOptions{NoLockfs: true}); err != nil {
		return fmt.Errorf("suspend %s: %w", name, err)
	}
	var rerr error
	for range 3 { // a suspended mirror must not stay suspended
		if rerr = c.Resume(name); rerr == nil {
			return nil
		}
	}
	return fmt.Errorf("resume %s (it stays suspended: dmsetup resume %s): %w", name, name, rerr)
}

// wakeMirror makes the kernel of the mirror whose userspace log has uuid
// ask GET_RESYNC_WORK again (cluster.Options.Wake): it reads 4 KiB at
// offset 0 of the mirror with O_DIRECT. With the userspace log dm-raid1
// queues every read to its worker (the log's in_sync cannot answer
// without blocking), and the worker runs its recovery step, which asks
// the log for resync work, before it serves the read. A suspended mirror,
// or one with no live table, is left alone: its resume starts recovery.
//
// The device is open only for the read. A read that reaches a mirror
// suspended meanwhile waits in device-mapper until the resume, and
// `dmsetup remove` of the mirror fails EBUSY while it is open (LVM
// retries; dmsetup remove --retry does too).
func wakeMirror(ctx context.Context, uuid string) error {
	c, name, err := openMirror(ctx, uuid)
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.Info(name)
	if err != nil {
		return fmt.Errorf("mirror %s: %w", name, err)
	}
	if info.Suspended || !info.ActivePresent {
		return nil
	}
	path, err := engine.DevicePath(fmt.Sprintf("%d:%d", info.Major, info.Minor))
	if err != nil {
		return fmt.Errorf("mirror %s: %w", name, err)
	}
	buf, free, err := engine.AlignedBuf(4096)
	if err != nil {
		return err
	}
	defer free()
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("mirror %s: %w", name, err)
	}
	_, rerr := f.ReadAt(buf[:4096], 0)
	if err := f.Close(); rerr == nil {
		rerr = err
	}
	if rerr != nil {
		return fmt.Errorf("read mirror %s to wake its worker: %w", name, rerr)
	}
	return nil
}
