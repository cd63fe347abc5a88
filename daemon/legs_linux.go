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
	"github.com/dlog-dev/dlog/iouring"
)

// LegFlusher flushes the volatile cache of every leg of the mirror whose
// device-mapper table names a userspace log uuid (Options.FlushLegs): an
// fsync of a block device issues a cache flush (an empty write with
// REQ_PREFLUSH) to it. The legs sit below the mirror, so this cannot wait
// on the mirror itself.
//
// A log instance belongs to one table for its whole life (a reload
// constructs a new instance), and its clears, the only writes that need
// the legs flushed, happen while that table is live or being removed. So
// each instance (ForLog) looks its legs up at its first leg flush, opens
// them, and keeps them open until it is closed, which the daemon does
// before it answers the DTR: the kernel's table holds the legs at least
// as long, so the descriptors never keep a leg busy that the kernel has
// let go of. Every later flush is one fsync per leg, in parallel: all in
// one io_uring_enter (an iouring.Fsyncer per instance with more than one
// leg), or, where io_uring is unavailable or IOFallback is set, one
// fsync(2) per leg from its own goroutine. Opening a block device costs
// more than flushing it (docs/performance.md).
//
// The lookup reads the table of the device last seen with the log, else
// every device's. While a mirror is being removed its name has already
// left device-mapper's list, yet the kernel still flushes its log (the
// postsuspend of the removal, which persists the clears of a clean
// shutdown): then the legs found at the last lookup are used, which are
// still the table's legs, since a table cannot change while it is being
// removed. One device-mapper control descriptor, opened at the first
// lookup, serves every log.
type LegFlusher struct {
	// IOFallback, set before the first flush, makes every leg flush one
	// fsync(2) per leg instead of one io_uring submission (dlogd
	// --io-fallback).
	IOFallback bool

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
func (f *LegFlusher) ForLog(uuid string) LegFlush {
	return &instanceLegs{f: f, uuid: uuid}
}

// instanceLegs are the legs of one log instance's mirror, opened at its
// first flush.
type instanceLegs struct {
	f      *LegFlusher
	uuid   string
	mu     sync.Mutex
	name   string
	legs   []*os.File
	fds    []int            // the legs' descriptors, for ring
	ring   *iouring.Fsyncer // nil: fsync(2) per leg
	closed bool
}

// Flush flushes the cache of every leg.
func (l *instanceLegs) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("flush mirror legs of log %s: %w", l.uuid, os.ErrClosed)
	}
	if l.legs == nil {
		if err := l.open(); err != nil {
			return fmt.Errorf("flush mirror legs of log %s: %w", l.uuid, err)
		}
	}
	if err := l.flush(); err != nil {
		return fmt.Errorf("flush mirror legs of log %s (mirror %s): %w", l.uuid, l.name, err)
	}
	return nil
}

// flush flushes the open legs: in one ring submission if there is a ring,
// else (or if the ring fails, which leaves unknown whether the legs were
// flushed) with one fsync(2) per leg.
func (l *instanceLegs) flush() error {
	if l.ring != nil {
		errs, err := l.ring.Fsync(l.fds)
		if err == nil {
			for i, e := range errs {
				if e != nil {
					errs[i] = fmt.Errorf("%s: %w", l.legs[i].Name(), e)
				}
			}
			return errors.Join(errs...)
		}
		l.ring.Close()
		l.ring = nil
	}
	return flushLegs(l.legs)
}

// open looks the mirror up and opens its legs.
func (l *instanceLegs) open() error {
	name, m, err := l.f.mirror(l.uuid)
	if err != nil {
		return err
	}
	if len(m.Legs) == 0 {
		return fmt.Errorf("mirror %s has no legs", name)
	}
	legs := make([]*os.File, 0, len(m.Legs))
	for _, leg := range m.Legs {
		f, err := openLeg(leg.Dev)
		if err != nil {
			for _, f := range legs {
				f.Close()
			}
			return fmt.Errorf("mirror %s leg %s: %w", name, leg.Dev, err)
		}
		legs = append(legs, f)
	}
	l.name, l.legs = name, legs
	if len(legs) > 1 && !l.f.IOFallback {
		// Without io_uring (nil ring, a reason) every flush is fsync(2).
		if r, _, err := iouring.NewFsyncer(len(legs)); err == nil && r != nil {
			l.ring = r
			l.fds = make([]int, len(legs))
			for i, f := range legs {
				l.fds[i] = int(f.Fd())
			}
		}
	}
	return nil
}

// Close closes the legs; later flushes fail.
func (l *instanceLegs) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	var errs []error
	if l.ring != nil {
		errs = append(errs, l.ring.Close())
		l.ring, l.fds = nil, nil
	}
	for _, f := range l.legs {
		errs = append(errs, f.Close())
	}
	l.legs = nil
	return errors.Join(errs...)
}

// flushLegs flushes every leg, in parallel.
func flushLegs(legs []*os.File) error {
	if len(legs) == 1 {
		return fsync(legs[0])
	}
	errs := make([]error, len(legs))
	var wg sync.WaitGroup
	for i, f := range legs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fsync(f)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
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

// openLeg opens the block device dev ("major:minor" or a path).
func openLeg(dev string) (*os.File, error) {
	p, err := engine.DevicePath(dev)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, os.NewSyscallError("fstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		f.Close()
		return nil, fmt.Errorf("%s is not a block device", p)
	}
	return f, nil
}

// fsync flushes the cache of the block device open as f.
func fsync(f *os.File) error {
	for {
		err := unix.Fsync(int(f.Fd()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("fsync "+f.Name(), err)
		}
		return nil
	}
}
