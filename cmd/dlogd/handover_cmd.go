package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/dlog-dev/dlog/dm"
	"github.com/dlog-dev/dlog/internal/control"
)

const helpAdopt = `NAME
    dlogd adopt - hand a running mirror's disk log from the kernel to dlogd

SYNOPSIS
    dlogd adopt DM_NAME [--pidfile PATH | --control PATH]

DESCRIPTION
    Rewrites the table of the running mirror DM_NAME from the kernel's
    disk log, "disk <n> <logdev> <region_size> ...", to a log dlogd
    serves, "userspace <n+2> <uuid> clustered-disk <logdev> <region_size>
    ...", with the same log device, region size, legs and features: it
    loads the new table, suspends the mirror (the kernel's disk log has
    its bitmap on the device) and resumes it (dlogd reads that bitmap). The
    two formats are byte-identical, so no region is resynchronised. The
    uuid is the device's device-mapper uuid (LVM's "LVM-..."), or
    "dlogd-DM_NAME".

    It refuses, changing nothing, a mirror it cannot switch safely: a core
    log (its bitmap is in kernel memory only), a userspace log already, a
    table asking for a full resync ("sync"), a leg or log device that is
    not alive (status other than A), a suspended device or one with a
    table loaded by another tool, a table that is not one mirror target,
    and a dlogd that does not answer on its control socket. On a failure
    after the load, the new table is dropped and the mirror resumes with
    its old one.

    An LVM mirror (lvcreate --type mirror --mirrorlog disk) can be
    adopted; LVM does not know of the change, and an LVM refresh or
    reactivation (lvchange --refresh, vgchange -ay after a deactivation,
    lvconvert) loads LVM's own table again, which gives the log back to
    the kernel's disk log on the same device. Release before running LVM
    commands on it.

OPTIONS
    --pidfile PATH   the dlogd to check: its control socket is dlogd.ctl
                     beside this pidfile (default /run/dlogd.pid)
    --control PATH   the dlogd's control socket

EXIT STATUS
    0 switched, 1 refused or failed (the mirror as it was), 2 bad usage.
`

const helpRelease = `NAME
    dlogd release - hand a mirror's log back from dlogd to the kernel

SYNOPSIS
    dlogd release DM_NAME

DESCRIPTION
    The reverse of adopt: rewrites the running mirror DM_NAME from
    "userspace <n> <uuid> clustered-disk <logdev> <region_size> ..." to the
    kernel's "disk <n> <logdev> <region_size> ...": at the suspend dlogd
    writes the log's bitmap to the device, and the kernel's disk log reads
    it at the resume. No region is resynchronised.

    It refuses, changing nothing, a clustered-core log (dlogd keeps it in
    memory only), a log that is not a userspace one, a table asking for a
    full resync, a leg or log device that is not alive, a suspended
    device or one with a table loaded by another tool. On a failure after
    the load the mirror resumes with its old table.

EXIT STATUS
    0 switched, 1 refused or failed (the mirror as it was), 2 bad usage.
`

// adopt and release: dlogd adopt|release DM_NAME.
func adopt(args []string, stdout, stderr io.Writer) int {
	return handoverCmd("adopt", helpAdopt, args, stdout, stderr)
}

func release(args []string, stdout, stderr io.Writer) int {
	return handoverCmd("release", helpRelease, args, stdout, stderr)
}

func handoverCmd(cmd, help string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dlogd "+cmd, flag.ContinueOnError)
	var path, pidfile *string
	if cmd == "adopt" {
		path = fs.String("control", "", "")
		pidfile = fs.String("pidfile", "", "")
	}
	pos, code, ok := parseInterleaved(fs, args, help, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(pos) == 0:
		return usageError(stderr, fs.Name(), "missing the mirror's device-mapper name (DM_NAME)")
	case len(pos) > 1:
		return usageError(stderr, fs.Name(), "want one DM_NAME, got %d arguments", len(pos))
	}
	name := pos[0]
	rewrite := func(m dm.Mirror, _ dm.Info) (dm.Mirror, error) { return toDisk(m) }
	if cmd == "adopt" {
		switch {
		case *path != "" && *pidfile != "":
			return usageError(stderr, fs.Name(), "--pidfile and --control name the same socket: give one")
		case *pidfile != "":
			*path = besidePidfile(*pidfile, "dlogd.ctl")
		case *path == "":
			*path = besidePidfile(defaultPidfile, "dlogd.ctl")
		}
		// The kernel sends the new table's log requests to dlogd at the
		// load: it must be there.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := control.Query(ctx, *path, "status")
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "dlogd adopt: %s: refused: dlogd does not answer (%v); start it first (systemctl start dlogd)\n", name, err)
			return 1
		}
		rewrite = func(m dm.Mirror, info dm.Info) (dm.Mirror, error) { return toUserspace(m, logUUID(info)) }
	}
	c, err := dm.Open()
	if err != nil {
		fmt.Fprintf(stderr, "dlogd %s: %v\n", cmd, err)
		return 1
	}
	defer c.Close()
	before, after, err := handover(c, name, rewrite)
	if err != nil {
		if errors.Is(err, dm.ErrNotFound) {
			fmt.Fprintf(stderr, "dlogd %s: %s: no such device-mapper device\n", cmd, name)
		} else {
			fmt.Fprintf(stderr, "dlogd %s: %s: %v\n", cmd, name, err)
		}
		return 1
	}
	done := map[string]string{"adopt": "adopted by dlogd", "release": "released to the kernel's disk log"}[cmd]
	fmt.Fprintf(stdout, "%s: log %s, no resync\n  was: %s\n  now: %s\n", name, done, before, after)
	if st, err := c.Status(name); err == nil && len(st) == 1 {
		fmt.Fprintf(stdout, "  status: %s\n", st[0].Params)
	}
	return 0
}
