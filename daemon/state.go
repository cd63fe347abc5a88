package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dlog-dev/dlog/engine"
)

// State directory: with Options.StateDir set, every log keeps its
// in-memory state in a file there (engine.Options.StateFile), created at
// CTR and removed at DTR, and Restore reopens them when the daemon starts.
// A daemon killed with -9 and started again therefore serves the kernel's
// logs exactly as before: the kernel, which reconnects without resuming
// (docs/protocol.md §1.6), never sees a log come back with different sync bits
// (writes to regions suddenly "out of sync" would go to one leg only), and
// never gets -ESRCH for a log it has, whose retry it would mishandle.

// statePath is the state file of (uuid, luid): a hash of the uuid (any
// bytes, up to 128 of them) and the luid.
func (d *Daemon) statePath(uuid string, luid uint64) string {
	h := sha256.Sum256([]byte(uuid))
	return filepath.Join(d.opts.StateDir, hex.EncodeToString(h[:8])+"-"+strconv.FormatUint(luid, 16)+".state")
}

// stateLabel is what a state file records about its log for Restore: the
// luid, the uuid and the kernel's constructor string, NUL-separated (none
// of them holds a NUL).
func stateLabel(uuid string, luid uint64, ctr string) string {
	return strconv.FormatUint(luid, 16) + "\x00" + uuid + "\x00" + ctr
}

func parseStateLabel(s string) (uuid string, luid uint64, ctr string, err error) {
	f := strings.Split(s, "\x00")
	if len(f) != 3 {
		return "", 0, "", fmt.Errorf("label has %d fields, want 3", len(f))
	}
	if luid, err = strconv.ParseUint(f[0], 16, 64); err != nil {
		return "", 0, "", fmt.Errorf("luid %q: %w", f[0], err)
	}
	return f[1], luid, f[2], nil
}

// Restore reopens every log whose state file is in the state directory
// (a previous daemon's, killed or stopped while the kernel still had the
// log) and returns how many it serves again. Files it cannot use (another
// boot's, a device gone) are logged, and removed when they can never be
// used again. Call it before serving.
func (d *Daemon) Restore() (int, error) {
	if d.opts.StateDir == "" {
		return 0, nil
	}
	if err := os.MkdirAll(d.opts.StateDir, 0o700); err != nil {
		return 0, fmt.Errorf("daemon: state directory %s: %w", d.opts.StateDir, err)
	}
	paths, err := filepath.Glob(filepath.Join(d.opts.StateDir, "*.state"))
	if err != nil {
		return 0, err
	}
	var live map[string]bool
	if d.opts.LiveUUIDs != nil && len(paths) > 0 {
		if u, ok := d.opts.LiveUUIDs(); ok {
			live = u
		}
	}
	n := 0
	for _, p := range paths {
		h, err := engine.ReadStateHeader(p)
		if err != nil {
			d.log.Warn("state file not restored; removing it", "file", p, "err", err)
			os.Remove(p)
			continue
		}
		uuid, luid, ctr, err := parseStateLabel(h.Label)
		if err == nil && d.statePath(uuid, luid) != p {
			err = errors.New("file name does not match its log")
		}
		var cfg engine.Config
		if err == nil {
			cfg, err = engine.ParseCtr(ctr)
		}
		if err != nil {
			d.log.Warn("state file not restored; removing it", "file", p, "err", err)
			os.Remove(p)
			continue
		}
		lg := d.log.With("uuid", uuid, "luid", fmt.Sprintf("%#x", luid))
		if live != nil && !live[uuid] {
			// The kernel destroyed the log while no daemon ran (its DTR
			// failed with -ESRCH): nothing will ever ask for it again.
			lg.Info("state file of a log no device-mapper table names any more; removing it", "file", p)
			os.Remove(p)
			continue
		}
		l, noState, err := d.open(uuid, luid, ctr, cfg, lg)
		if err != nil {
			// The kernel's reconnect CTR will try again (and recreate the
			// file); keep the state meanwhile.
			lg.Error("log not restored; the kernel's reconnect will construct it again", "file", p, "err", err)
			continue
		}
		in := newInstance(uuid, luid, ctr, l)
		in.noState = noState
		d.add(in)
		lg.Info("log restored from its state file", "phase", h.Phase, "ctr", ctr)
		n++
	}
	return n, nil
}
