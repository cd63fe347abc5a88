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
// (an empty write with REQ_PREFLUSH) to it. The legs sit below the mirror,
// so this cannot wait on the mirror itself. The table is read at every
// call (a stale leg list would flush the wrong devices); the name of the
// mirror device is remembered so that only its table is read, not every
// device's. While a mirror is being removed its name has already left
// device-mapper's list, yet the kernel still flushes its log (the
// postsuspend of the removal, which persists the clears of a clean
// shutdown): then the legs found at the last lookup are flushed, which are
// still the table's legs, since a table cannot change while it is being
// removed. One device-mapper control descriptor, opened at the first flush,
// serves every log: concurrent flushes of many logs open no more than their
// legs.
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

// NewLegFlusher returns a LegFlusher; its Flush is an Options.FlushLegs.
func NewLegFlusher() *LegFlusher { return &LegFlusher{seen: map[string]seenMirror{}} }

// maxRemembered bounds the remembered mirror names (one per log uuid).
const maxRemembered = 4096

// Flush flushes the legs of the mirror of log uuid.
func (f *LegFlusher) Flush(uuid string) error {
	name, m, err := f.mirror(uuid)
	if err != nil {
		return fmt.Errorf("flush mirror legs of log %s: %w", uuid, err)
	}
	if len(m.Legs) == 0 {
		return fmt.Errorf("flush mirror legs of log %s: mirror %s has no legs", uuid, name)
	}
	errs := make([]error, len(m.Legs))
	var wg sync.WaitGroup
	for i, leg := range m.Legs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := flushDevice(leg.Dev); err != nil {
				errs[i] = fmt.Errorf("mirror %s leg %s: %w", name, leg.Dev, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flush mirror legs of log %s: %w", uuid, err)
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

// flushDevice issues a cache flush to the block device dev ("major:minor"
// or a path).
func flushDevice(dev string) error {
	p, err := engine.DevicePath(dev)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return os.NewSyscallError("fstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return fmt.Errorf("%s is not a block device", p)
	}
	for {
		err := unix.Fsync(int(f.Fd()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("fsync "+p, err)
		}
		return nil
	}
}
