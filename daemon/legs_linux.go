//go:build linux

package daemon

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/dm"
	"github.com/dlog-dev/dlog/engine"
)

// LegFlusher flushes the volatile cache of every leg of the mirror whose
// device-mapper table names a userspace log uuid (Options.FlushLegs): each
// leg is opened and fsync'd, which on a block device issues a cache flush
// (an empty write with REQ_PREFLUSH) to it, and closed again (a descriptor
// held open would keep the leg busy for whoever removes it). The legs sit
// below the mirror, so this cannot wait on the mirror itself.
//
// A log instance belongs to one table for its whole life (a reload
// constructs a new instance), and its clears, the only writes that need
// the legs flushed, happen while that table is live or being removed: so
// the legs are looked up at the first leg flush of each instance
// (ForLog), and their device nodes resolved, and later flushes of that
// instance only open, fsync and close them. A node that no longer has the
// leg's numbers is resolved again. docs/performance.md has the figures:
// the lookup and the node resolution cost more than the flushes.
//
// The lookup reads the table of the device last seen with the log, else
// every device's. While a mirror is being removed its name has already
// left device-mapper's list, yet the kernel still flushes its log (the
// postsuspend of the removal, which persists the clears of a clean
// shutdown): then the legs found at the last lookup are flushed, which are
// still the table's legs, since a table cannot change while it is being
// removed. One device-mapper control descriptor, opened at the first
// lookup, serves every log.
type LegFlusher struct {
	mu   sync.Mutex
	ctl  *dm.Control
	seen map[string]seenMirror // log uuid -> its mirror at the last lookup
}

// seenMirror is a mirror as the last lookup found it.
type seenMirror struct {
	name string
	m    dm.Mirror
}

// NewLegFlusher returns a LegFlusher; its ForLog is an Options.FlushLegs.
func NewLegFlusher() *LegFlusher { return &LegFlusher{seen: map[string]seenMirror{}} }

// maxRemembered bounds the remembered mirror names (one per log uuid).
const maxRemembered = 4096

// ForLog returns the leg flush of one instance of log uuid.
func (f *LegFlusher) ForLog(uuid string) func() error {
	var (
		mu   sync.Mutex
		name string
		legs []leg
	)
	return func() error {
		mu.Lock()
		defer mu.Unlock()
		if legs == nil {
			n, m, err := f.mirror(uuid)
			if err != nil {
				return fmt.Errorf("flush mirror legs of log %s: %w", uuid, err)
			}
			if len(m.Legs) == 0 {
				return fmt.Errorf("flush mirror legs of log %s: mirror %s has no legs", uuid, n)
			}
			ls := make([]leg, len(m.Legs))
			for i, l := range m.Legs {
				ls[i].dev = l.Dev
			}
			name, legs = n, ls
		}
		if err := flushLegs(legs); err != nil {
			return fmt.Errorf("flush mirror legs of log %s (mirror %s): %w", uuid, name, err)
		}
		return nil
	}
}

// leg is one leg of a mirror: its table argument and, once resolved, its
// device node and numbers.
type leg struct {
	dev  string
	path string
	rdev uint64
}

// flushLegs flushes every leg, in parallel.
func flushLegs(legs []leg) error {
	if len(legs) == 1 {
		return legs[0].flush()
	}
	errs := make([]error, len(legs))
	var wg sync.WaitGroup
	for i := range legs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = legs[i].flush()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// flush issues a cache flush to the leg, resolving its node first if it
// has none yet or if the node no longer has the leg's numbers (those the
// node had when it was resolved: engine.DevicePath checks them for a
// "major:minor" leg).
func (l *leg) flush() error {
	if l.path != "" {
		_, err := flushDevice(l.path, l.rdev)
		if !errors.Is(err, errNodeChanged) && !errors.Is(err, os.ErrNotExist) {
			return wrapLeg(l.dev, err)
		}
	}
	p, err := engine.DevicePath(l.dev)
	if err != nil {
		return wrapLeg(l.dev, err)
	}
	rdev, err := flushDevice(p, 0)
	if err == nil {
		l.path, l.rdev = p, rdev
	}
	return wrapLeg(l.dev, err)
}

func wrapLeg(dev string, err error) error {
	if err != nil {
		return fmt.Errorf("leg %s: %w", dev, err)
	}
	return nil
}

// mirror finds the mirror of log uuid: the remembered device if its table
// still names the log, else by reading every device's table.
func (f *LegFlusher) mirror(uuid string) (string, dm.Mirror, error) {
	f.mu.Lock()
	if f.ctl == nil {
		c, err := dm.Open()
		if err != nil {
			f.mu.Unlock()
			return "", dm.Mirror{}, err
		}
		f.ctl = c
	}
	c := f.ctl
	last, ok := f.seen[uuid]
	f.mu.Unlock()
	if ok {
		if m, err := c.MirrorOf(last.name, uuid); err == nil {
			f.remember(uuid, last.name, m)
			return last.name, m, nil
		}
	}
	name, m, err := c.FindMirror(uuid)
	if errors.Is(err, dm.ErrNotFound) && ok {
		// Being removed: its name is gone, its table is the one last seen.
		return last.name, last.m, nil
	}
	if err != nil {
		return "", dm.Mirror{}, err
	}
	f.remember(uuid, name, m)
	return name, m, nil
}

func (f *LegFlusher) remember(uuid, name string, m dm.Mirror) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.seen[uuid]; !ok && len(f.seen) >= maxRemembered {
		clear(f.seen)
	}
	f.seen[uuid] = seenMirror{name, m}
}

// CheckMirror is an Options.CheckMirror: it warns of a mirror whose table
// has no handle_errors, because dm-raid1 then treats a write after a log
// failure (a failed FLUSH, a cluster log that lost its group) as
// successful instead of holding it, so nothing protects that write's
// region. A mirror it cannot find within a few seconds gets no warning.
func (f *LegFlusher) CheckMirror(uuid string) string {
	var (
		name string
		m    dm.Mirror
		err  error
	)
	for try := 0; try < 10; try++ {
		if name, m, err = f.mirror(uuid); err == nil {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err != nil {
		return ""
	}
	return handleErrorsWarning(name, m)
}

// handleErrorsWarning says what is unsafe about mirror name's table m, ""
// when nothing is.
func handleErrorsWarning(name string, m dm.Mirror) string {
	if slices.Contains(m.Features, "handle_errors") {
		return ""
	}
	return fmt.Sprintf("mirror %s has no handle_errors: after a log failure dm-raid1 completes its writes as if the log had recorded them; add \"1 handle_errors\" to its table", name)
}

// Close releases the device-mapper control descriptor.
func (f *LegFlusher) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctl == nil {
		return nil
	}
	err := f.ctl.Close()
	f.ctl = nil
	return err
}

// errNodeChanged says a device node no longer has the numbers it was
// resolved for.
var errNodeChanged = errors.New("device node changed")

// flushDevice issues a cache flush to the block device at path p, which
// must have the numbers rdev unless rdev is 0, and returns its numbers.
func flushDevice(p string, rdev uint64) (uint64, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, os.NewSyscallError("fstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, fmt.Errorf("%s is not a block device", p)
	}
	if rdev != 0 && st.Rdev != rdev {
		return 0, fmt.Errorf("%w: %s is %d:%d", errNodeChanged, p, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	for {
		err := unix.Fsync(int(f.Fd()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, os.NewSyscallError("fsync "+p, err)
		}
		return st.Rdev, nil
	}
}
