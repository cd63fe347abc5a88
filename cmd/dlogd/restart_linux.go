//go:build linux

package main

import (
	"context"
	"fmt"

	"github.com/dlog-dev/dlog/dm"
)

// restartMirror suspends and resumes the mirror whose userspace log has
// uuid (cluster.Options.Restart): its kernel resets its in_sync_hint and
// asks for resync work again. The suspend flushes queued I/O but freezes
// no filesystem.
func restartMirror(ctx context.Context, uuid string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := dm.Open()
	if err != nil {
		return err
	}
	defer c.Close()
	name, _, err := c.FindMirror(uuid)
	if err != nil {
		return fmt.Errorf("find the mirror of log %s: %w", uuid, err)
	}
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
