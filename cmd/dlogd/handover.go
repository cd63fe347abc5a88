package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dlog-dev/dlog/dm"
)

// errUnsafe marks a mirror adopt or release refuses to switch: nothing was
// changed.
var errUnsafe = errors.New("refused")

// mapper is what a handover needs of device-mapper (dm.Control).
type mapper interface {
	Info(name string) (dm.Info, error)
	Table(name string) ([]dm.Target, error)
	Status(name string) ([]dm.Target, error)
	Load(name string, ts []dm.Target) error
	Suspend(name string, o dm.SuspendOptions) error
	Resume(name string) error
	ClearInactive(name string) error
}

// toUserspace is the table of a mirror whose kernel "disk" log dlogd
// takes over: `disk <n> <dev> <region> [nosync] [block_on_error]` becomes
// `userspace <n+2> <uuid> clustered-disk <dev> <region> [...]`, same
// device, region size and legs, so that dlogd resumes the kernel's bitmap
// as it left it.
func toUserspace(m dm.Mirror, uuid string) (dm.Mirror, error) {
	switch m.Log.Type {
	case "disk":
	case "core":
		return m, fmt.Errorf("%w: the mirror has a core log: its bitmap lives in kernel memory only, so a switch would resync every region; give it a disk log first (lvconvert --mirrorlog disk)", errUnsafe)
	case "userspace":
		return m, fmt.Errorf("%w: the mirror's log is already a userspace log (%s)", errUnsafe, strings.Join(m.Log.Args, " "))
	default:
		return m, fmt.Errorf("%w: unknown log type %q", errUnsafe, m.Log.Type)
	}
	if err := checkDiskArgs(m.Log.Args); err != nil {
		return m, err
	}
	if uuid == "" || strings.ContainsAny(uuid, " \t\n") || len(uuid) > 128 {
		return m, fmt.Errorf("%w: log uuid %q: want 1 to 128 characters without blanks", errUnsafe, uuid)
	}
	out := m
	out.Log = dm.MirrorLog{Type: "userspace", Args: append([]string{uuid, "clustered-disk"}, m.Log.Args...)}
	return out, nil
}

// toDisk is the reverse: the kernel's disk log takes the log device back
// from dlogd.
func toDisk(m dm.Mirror) (dm.Mirror, error) {
	if m.Log.Type != "userspace" {
		return m, fmt.Errorf("%w: the mirror's log is %q, not a userspace log dlogd serves", errUnsafe, m.Log.Type)
	}
	args := m.Log.Args[1:] // after the uuid
	if len(args) > 0 && args[0] == "integrated_flush" {
		args = args[1:]
	}
	if len(args) == 0 {
		return m, fmt.Errorf("%w: userspace log %q has no log type", errUnsafe, strings.Join(m.Log.Args, " "))
	}
	switch args[0] {
	case "clustered-disk", "disk":
	case "clustered-core", "core":
		return m, fmt.Errorf("%w: the log is %s: dlogd keeps it in memory only, the kernel's disk log would find no bitmap on a device; there is nothing to hand back", errUnsafe, args[0])
	default:
		return m, fmt.Errorf("%w: unknown userspace log type %q", errUnsafe, args[0])
	}
	disk := args[1:]
	if args[0] == "disk" && len(disk) > 0 { // the kernel's words: disk <#args> <dev> ...
		disk = disk[1:]
	}
	if err := checkDiskArgs(disk); err != nil {
		return m, err
	}
	out := m
	out.Log = dm.MirrorLog{Type: "disk", Args: slices.Clone(disk)}
	return out, nil
}

// checkDiskArgs checks a disk log's arguments: a device, a region size,
// then at most nosync and block_on_error. "sync" (resynchronise
// everything at the next resume) is refused: the point of a handover is
// to keep the regions in sync.
func checkDiskArgs(a []string) error {
	if len(a) < 2 || len(a) > 4 {
		return fmt.Errorf("%w: disk log arguments %q: want <dev> <region_size> [nosync] [block_on_error]", errUnsafe, strings.Join(a, " "))
	}
	for _, w := range a[2:] {
		switch w {
		case "nosync", "block_on_error":
		case "sync":
			return fmt.Errorf("%w: the table asks for a full resync (\"sync\"): switch once it is in sync and reloaded without it", errUnsafe)
		default:
			return fmt.Errorf("%w: disk log argument %q", errUnsafe, w)
		}
	}
	return nil
}

// mirrorHealth reads a mirror's status line, `<#legs> <dev>... <in
// sync>/<regions> 1 <health chars> <log status>`, and refuses one with a
// failed leg or log device, or a leg it cannot read. It returns the "in
// sync/regions" figure.
func mirrorHealth(status string) (string, error) {
	w := strings.Fields(status)
	var legs int
	if len(w) == 0 {
		return "", fmt.Errorf("%w: empty mirror status", errUnsafe)
	}
	if _, err := fmt.Sscanf(w[0], "%d", &legs); err != nil || legs < 1 || len(w) < legs+4 {
		return "", fmt.Errorf("%w: mirror status %q does not parse", errUnsafe, status)
	}
	sync, health := w[legs+1], w[legs+3]
	if len(health) != legs {
		return "", fmt.Errorf("%w: mirror status %q: %d health characters for %d legs", errUnsafe, status, len(health), legs)
	}
	for i, h := range health {
		if h != 'A' {
			return "", fmt.Errorf("%w: leg %d (%s) is %q, not A (alive): repair the mirror first (a switch must not hide a divergence)", errUnsafe, i, w[1+i], h)
		}
	}
	if log := w[legs+4:]; len(log) > 0 {
		if last := log[len(log)-1]; len(last) == 1 && last != "A" {
			return "", fmt.Errorf("%w: the log device is %q, not A (alive)", errUnsafe, last)
		}
	}
	return sync, nil
}

// handover switches the mirror name's log with rewrite (toUserspace or
// toDisk): it checks the table and the health, loads the new table,
// suspends (the old log persists its bitmap), resumes (the new log reads
// it). On any failure the mirror is left with its old table, running; the
// error says what happened. It returns the old and new tables.
func handover(c mapper, name string, rewrite func(dm.Mirror, dm.Info) (dm.Mirror, error)) (before, after string, err error) {
	info, err := c.Info(name)
	if err != nil {
		return "", "", err
	}
	if info.Suspended {
		return "", "", fmt.Errorf("%w: %s is suspended: resume it (or finish what suspended it) first", errUnsafe, name)
	}
	if info.InactivePresent {
		return "", "", fmt.Errorf("%w: %s has a loaded table not yet resumed (another tool is reloading it)", errUnsafe, name)
	}
	ts, err := c.Table(name)
	if err != nil {
		return "", "", err
	}
	if len(ts) != 1 || ts[0].Type != "mirror" {
		return "", "", fmt.Errorf("%w: %s is not a single mirror target (%d targets, first %q)", errUnsafe, name, len(ts), firstType(ts))
	}
	m, err := dm.ParseMirror(ts[0].Params)
	if err != nil {
		return "", "", fmt.Errorf("%w: %s: %v", errUnsafe, name, err)
	}
	st, err := c.Status(name)
	if err != nil {
		return "", "", err
	}
	if len(st) != 1 {
		return "", "", fmt.Errorf("%w: %s: %d status lines", errUnsafe, name, len(st))
	}
	if _, err := mirrorHealth(st[0].Params); err != nil {
		return "", "", err
	}
	nm, err := rewrite(m, info)
	if err != nil {
		return "", "", err
	}
	newT := ts[0]
	newT.Params = nm.String()
	if err := c.Load(name, []dm.Target{newT}); err != nil {
		c.ClearInactive(name)
		return "", "", fmt.Errorf("loading the new table (nothing changed): %w", err)
	}
	if err := c.Suspend(name, dm.SuspendOptions{}); err != nil {
		c.ClearInactive(name)
		c.Resume(name)
		return "", "", fmt.Errorf("suspending %s (the new table was dropped, the old one resumed): %w", name, err)
	}
	if err := c.Resume(name); err != nil {
		// The kernel keeps the old table when the new one fails to
		// resume: drop the new one and resume the old.
		cerr := c.ClearInactive(name)
		rerr := c.Resume(name)
		if rerr != nil {
			return "", "", fmt.Errorf("resuming with the new table failed (%v), and resuming the old one too: %w (clear inactive: %v); %s stays SUSPENDED: dmsetup resume %s", err, rerr, cerr, name, name)
		}
		return "", "", fmt.Errorf("resuming with the new table failed, the old one is live again: %w", err)
	}
	return ts[0].Params, newT.Params, nil
}

func firstType(ts []dm.Target) string {
	if len(ts) == 0 {
		return ""
	}
	return ts[0].Type
}

// logUUID is the userspace log uuid adopt gives a mirror: the device's
// device-mapper uuid (LVM's "LVM-..."), else "dlogd-" and its name.
func logUUID(info dm.Info) string {
	if info.UUID != "" {
		return info.UUID
	}
	return "dlogd-" + info.Name
}
