package engine

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlog-dev/dlog/bitmap"
	"github.com/dlog-dev/dlog/header"
	"github.com/dlog-dev/dlog/iouring"
)

// Options tune a log beyond its constructor.
type Options struct {
	// Logger receives the log's notable events (device failures, the I/O
	// mechanism chosen). Nil means slog.Default().
	Logger *slog.Logger
	// WrapDevice, when set, wraps the disk log's device; tests use it to
	// inject faults (torn writes, EIO) under the log.
	WrapDevice func(Device) Device
	// IOFallback forces pwritev + fdatasync instead of io_uring.
	IOFallback bool
	// ClearDelay, when positive, lets clears wait: a Flush with clears and
	// no marks writes nothing, and the clears go out with the next flush
	// that carries marks (their blocks are written anyway) or at most
	// ClearDelay later, and at Postsuspend and Close. A lost clear only
	// costs a resync after a crash; the kernel's disk log writes clears at
	// every flush (0, the default).
	ClearDelay time.Duration
	// MergeGap is how many unchanged image blocks may lie between two
	// changed ones that a flush writes as one sequential I/O, rewriting
	// the unchanged ones. 0 means DefaultMergeGap; negative writes only
	// changed blocks, each run of adjacent ones as one I/O.
	MergeGap int
	// Sync chooses where io_uring issues the cache flush of a flush
	// (iouring.SyncMode; the zero value is iouring.SyncAuto).
	Sync iouring.SyncMode
	// PureGo forces the bitmaps' pure-Go scan kernels.
	PureGo bool
	// StateFile, when set, keeps the log's in-memory state (sync and
	// recovering bits, a core log's clean bits, the resync cursor and the
	// suspend phase) in this file, mapped shared, so that a process
	// restarted after a crash reopens the log as it was (state.go). If the
	// file holds this log's state from this boot, Open restores it.
	StateFile string
	// StateLabel is stored in the state file for its owner (dlogd keeps
	// the uuid and luid there); see ReadStateHeader.
	StateLabel string
	// FlushCallback, when set, is called by Flush before it writes an image
	// that records clears, as the kernel calls the mirror's flush_callback_fn
	// to flush every leg. If it fails, every region is marked dirty and
	// clears are ignored until the log is reconstructed (the kernel's
	// flush_failed). A clear made while a flush runs is left to the next
	// flush, which calls it again before writing it. dm-log-userspace has
	// no such callback; dlogd finds the mirror's legs itself
	// (daemon.Options.FlushLegs).
	FlushCallback func() error
}

// Open constructs a log (the kernel's ctr). The disk log opens its device
// and checks its size; it reads nothing until Resume.
func Open(c Config, opts Options) (Log, error) {
	if _, err := ParseArgs(c.TargetLen, c.Type, argsOf(c)); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	l := &dirtyLog{cfg: c, n: c.RegionCount(), opts: opts}
	l.logger = opts.Logger.With("log", c.Type, "regions", l.n)
	var err error
	if opts.StateFile != "" {
		nmaps := 3 // clean, sync, recovering
		if c.Disk() {
			nmaps = 2 // the clean bits are the disk image
		}
		if l.state, l.restored, err = openStateFile(opts.StateFile, opts.StateLabel, c, nmaps); err != nil {
			return nil, err
		}
		if l.state.reserveErr != nil {
			l.logger.Error("state file restored, but its space cannot be reserved: the state is kept in memory only and the file removed; the log will not survive a restart of dlogd",
				"file", opts.StateFile, "err", l.state.reserveErr)
		}
	}
	if c.Disk() {
		err = l.openDisk()
	} else {
		err = l.openCore()
	}
	if err == nil && l.restored {
		err = l.restore()
	}
	if err != nil {
		l.release()
		if l.state != nil && !l.restored {
			// A log that could not be constructed leaves no state behind.
			os.Remove(opts.StateFile)
		}
		return nil, err
	}
	l.saveState()
	return l, nil
}

// mem returns memory for the i-th bitmap (0 clean for core logs, then
// sync, then recovering): the state file's region for it, or fresh
// anonymous memory.
func (l *dirtyLog) mem(i int) ([]byte, error) {
	if l.state != nil {
		if !l.cfg.Disk() {
			return l.state.maps[i], nil
		}
		return l.state.maps[i-1], nil
	}
	m, err := mapAnon(int(header.BitsetSize(l.n)))
	if err != nil {
		return nil, err
	}
	l.mems = append(l.mems, m)
	return m.m, nil
}

// restore brings back what the state file kept: the phase, the cursor,
// the halted flag, and for a disk log that was ever resumed (live or
// suspended since) the clean bits as the device holds them (every
// acknowledged mark is there). Nothing is written: the kernel, which
// reconnects without resuming, still holds the state the previous process
// served. A suspended log is no exception: until its RESUME re-reads the
// device it answers IS_CLEAN as the previous process did, never with the
// constructor's all-clean bits (only a log never resumed has those, as in
// the kernel).
func (l *dirtyLog) restore() error {
	l.st, l.cursor, l.halted = l.state.load()
	if l.st == phaseClosed {
		l.st = phaseSuspended
	}
	resumed := l.st != phaseConstructed // closed was mapped to suspended above
	if l.disk != nil && resumed {
		l.disk.reload(l)
	}
	l.logger.Info("log state restored", "phase", l.st.String(), "in_sync", l.sync.Count(), "dirty", l.n-l.clean.Count(), "cursor", l.cursor)
	return nil
}

// saveState records the phase, cursor and halted flag in the state file;
// callers hold l.mu (or own l exclusively).
func (l *dirtyLog) saveState() {
	if l.state != nil {
		l.state.save(l.st, l.cursor, l.halted)
	}
}

// argsOf re-derives the argument list of c so Open validates exactly what
// ParseArgs would have.
func argsOf(c Config) []string {
	return strings.Fields(c.String())[1:]
}

// dirtyLog implements Log for every type: the disk types add a device and an
// image (disk.go); the rest is common.
type dirtyLog struct {
	cfg    Config
	n      uint64 // region count
	opts   Options
	logger *slog.Logger

	clean, sync, recovering *bitmap.Bitmap
	mems                    []mapping
	state                   *stateFile // nil without Options.StateFile
	restored                bool       // the state file held this log's state

	// mu guards the resync cursor, the halted flag and the state.
	mu     sync.Mutex
	cursor uint64
	halted bool
	st     phase

	// closed is set first thing in Close; every method checks it. Close
	// must not race with other calls on the same log (the daemon drains a
	// log's requests before its DTR): it unmaps the bitmaps.
	closed atomic.Bool

	// ignoreClears is the kernel's flush_failed: set when FlushCallback
	// fails, it stays until the log is reconstructed.
	ignoreClears atomic.Bool

	disk *diskState // nil for core types
}

func (l *dirtyLog) openCore() error {
	mem, err := l.mem(0)
	if err != nil {
		return err
	}
	if l.clean, err = bitmapOver(mem, l.n, !l.restored, l.opts.PureGo); err != nil {
		return err
	}
	return l.initSyncState()
}

// initSyncState makes the sync and recovering bitmaps: for a freshly
// constructed log every region in sync for nosync, none otherwise, and
// nothing recovering; a restored log keeps what its state file holds.
func (l *dirtyLog) initSyncState() error {
	mem, err := l.mem(1)
	if err != nil {
		return err
	}
	if !l.restored && l.cfg.Sync != header.SyncNone {
		clear(mem) // a state file reused for another log
	}
	if l.sync, err = bitmapOver(mem, l.n, !l.restored && l.cfg.Sync == header.SyncNone, l.opts.PureGo); err != nil {
		return err
	}
	if mem, err = l.mem(2); err != nil {
		return err
	}
	if !l.restored {
		clear(mem)
	}
	l.recovering, err = bitmapOver(mem, l.n, false, l.opts.PureGo)
	return err
}

func (l *dirtyLog) release() {
	if l.disk != nil {
		l.disk.close()
	}
	l.state.close()
	for i := range l.mems {
		l.mems[i].unmap()
	}
	l.mems = nil
}

func (l *dirtyLog) Type() string        { return l.cfg.Type }
func (l *dirtyLog) Config() Config      { return l.cfg }
func (l *dirtyLog) RegionSize() uint64  { return uint64(l.cfg.RegionSize) }
func (l *dirtyLog) RegionCount() uint64 { return l.n }

func (l *dirtyLog) check(region uint64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if region >= l.n {
		return fmt.Errorf("%w: region %d, log has %d", ErrRegionRange, region, l.n)
	}
	return nil
}

func (l *dirtyLog) IsClean(region uint64) (bool, error) {
	if err := l.check(region); err != nil {
		return false, err
	}
	return l.clean.Test(region), nil
}

func (l *dirtyLog) InSync(region uint64) (bool, error) {
	if err := l.check(region); err != nil {
		return false, err
	}
	return l.sync.Test(region), nil
}

func (l *dirtyLog) MarkRegion(region uint64) error {
	if err := l.check(region); err != nil {
		return err
	}
	if d := l.disk; d != nil && d.holds && d.holding.Load() {
		d.unhold(region)
	}
	if l.clean.Clear(region) && l.disk != nil {
		// After the bit and its block flag: see Flush.
		l.disk.dirtied.Store(true)
	}
	return nil
}

func (l *dirtyLog) ClearRegion(region uint64) error {
	if err := l.check(region); err != nil {
		return err
	}
	if d := l.disk; d != nil && d.holds {
		d.clearRegion(l, region)
		return nil
	}
	if !l.ignoreClears.Load() && l.clean.Set(region) && l.disk != nil {
		l.disk.cleaned.Store(true)
	}
	return nil
}

func (l *dirtyLog) Flush() error {
	if l.closed.Load() {
		return ErrClosed
	}
	if l.disk == nil {
		return nil
	}
	return l.disk.flush(l, false)
}

// FlushNoIO reports whether a Flush now would write nothing and flush no
// cache, without doing any I/O and without waiting: a disk log with no
// flush running, no changed block (no mark or clear since the last flush
// wrote its blocks, including any held back by ClearDelay), no leg flush
// and no device cache flush owed. When it returns true, every mark and
// clear made before the call is already as durable as a Flush would make
// it, so the Flush may be answered at once. It never blocks: while another
// goroutine holds the flush lock it says false. A core log's Flush writes
// nothing: true. A closed log: false (its Flush fails).
func (l *dirtyLog) FlushNoIO() bool {
	if l.closed.Load() {
		return false
	}
	d := l.disk
	if d == nil {
		return true
	}
	if !d.fmu.TryLock() {
		return false // a resume or a flush holds it: never wait
	}
	defer d.fmu.Unlock()
	return !d.closing && !d.running && !d.dirtied.Load() && !d.cleaned.Load() && !l.clean.Changed()
}

func (l *dirtyLog) Presuspend() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st == phaseClosed {
		return ErrClosed
	}
	l.halted = true
	if l.st == phaseRunning {
		l.st = phasePresuspended
	}
	l.saveState()
	return nil
}

func (l *dirtyLog) Postsuspend() error {
	l.mu.Lock()
	if l.st == phaseClosed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.halted = true
	wasLive := l.st == phaseRunning || l.st == phasePresuspended
	if wasLive {
		l.st = phaseSuspended
	}
	l.saveState()
	l.mu.Unlock()
	if wasLive && l.disk != nil {
		return l.disk.flush(l, true)
	}
	return nil
}

func (l *dirtyLog) Resume() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.st {
	case phaseClosed:
		return ErrClosed
	case phaseRunning:
		return nil // a reconnecting kernel's RESUME: nothing to do
	}
	var err error
	// A presuspended log is one whose suspend was aborted after
	// PRESUSPEND (dm-raid1 has no undo hook: the mirror kept running and
	// resumes), or which the reconnect sequence met in that window.
	// Writes went on all along: memory holds marks not yet flushed, so
	// re-reading the device could lose them. Only recovery starts again,
	// from region 0, as the kernel's own in_sync_hint does (docs/conformance.md
	// item 29).
	if l.disk != nil && l.st != phasePresuspended {
		err = l.disk.resume(l)
	}
	l.cursor = 0
	l.halted = false
	l.st = phaseRunning
	l.saveState()
	return err
}

func (l *dirtyLog) GetResyncWork() (uint64, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st == phaseClosed {
		return 0, false, ErrClosed
	}
	if l.halted {
		return 0, false, nil
	}
	// dm-raid1 recovers one region at a time and only asks for work when
	// it has none in flight, so a region still marked recovering here was
	// handed out in a reply the kernel never saw (a resend after a
	// timeout): hand the same one out again instead of stranding it.
	if r, ok := l.recovering.NextSet(0); ok {
		return r, true, nil
	}
	if l.cursor >= l.n {
		return 0, false, nil
	}
	r, ok := l.sync.NextClear(l.cursor)
	if !ok {
		l.cursor = l.n
		l.saveState()
		return 0, false, nil
	}
	l.cursor = r + 1
	l.recovering.Set(r)
	l.saveState()
	return r, true, nil
}

func (l *dirtyLog) SetRegionSync(region uint64, inSync bool) error {
	if err := l.check(region); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recovering.Clear(region)
	// Unlike the kernel's core log, which counts every in_sync=1 call, the
	// count follows the bit, so a repeated call cannot double-count.
	if inSync {
		l.sync.Set(region)
	} else {
		l.sync.Clear(region)
	}
	return nil
}

func (l *dirtyLog) SyncCount() uint64 {
	if l.closed.Load() {
		return 0
	}
	return l.sync.Count()
}

func (l *dirtyLog) IsRemoteRecovering(region uint64) (bool, uint64, error) {
	if err := l.check(region); err != nil {
		return false, 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.halted {
		return false, l.n, nil
	}
	hint := l.cursor
	if r, ok := l.recovering.NextSet(0); ok {
		hint = min(hint, r)
	}
	return false, hint, nil
}

func (l *dirtyLog) Stats() Stats {
	if l.disk == nil {
		return Stats{}
	}
	l.disk.smu.Lock()
	defer l.disk.smu.Unlock()
	return l.disk.stats
}

func (l *dirtyLog) State() State {
	l.mu.Lock()
	s := State{
		Type:       l.cfg.Type,
		Phase:      l.st.String(),
		Regions:    l.n,
		RegionSize: uint64(l.cfg.RegionSize),
		Cursor:     l.cursor,
		Halted:     l.halted,
	}
	l.mu.Unlock()
	if l.closed.Load() {
		return s
	}
	s.InSync = l.sync.Count()
	s.Dirty = l.n - l.clean.Count()
	s.Recovering = l.recovering.Count()
	s.IOFailed, s.FlushFailed = l.Failed()
	s.Stats = l.Stats()
	if l.disk != nil {
		s.Device = l.disk.name
		if l.disk.info.Block {
			s.BlockDevice = l.disk.info.Name
		}
	}
	if l.state != nil {
		s.StateFile = l.state.path
		if l.state.reserveErr != nil {
			s.StateFileError = "no state file: restored from it, then dropped, its space cannot be reserved: " + l.state.reserveErr.Error()
		}
	}
	return s
}

func (l *dirtyLog) Failed() (bool, bool) {
	if l.disk == nil {
		return false, false
	}
	return l.disk.ioFailed.Load(), l.disk.flushFailed.Load()
}

// DeviceFlag is the log device's health in a disk log's INFO status
// (docs/protocol.md §5.1): A alive, D failed I/O, F a failed device cache flush,
// which takes precedence. The kernel's disk log shows F; cmirrord's
// clustered-disk only knows A and D (it never flushes a cache), and LVM
// expects no more of it, so a clustered-disk log shows a failed flush as D.
func DeviceFlag(typ string, ioFailed, flushFailed bool) byte {
	switch {
	case flushFailed && typ == TypeDisk:
		return 'F'
	case flushFailed || ioFailed:
		return 'D'
	}
	return 'A'
}

func (l *dirtyLog) Status(t StatusType) string {
	if l.closed.Load() {
		return ""
	}
	c := l.cfg
	dev := ""
	if l.disk != nil {
		dev = l.disk.name
	}
	if t == StatusInfo {
		if !c.Disk() {
			return "1 " + c.Type
		}
		io, fl := l.Failed()
		return fmt.Sprintf("3 %s %s %c", c.Type, dev, DeviceFlag(c.Type, io, fl))
	}
	var s string
	switch c.Type {
	case TypeCore:
		s = fmt.Sprintf("core %d %d ", 1+min(int(c.Sync), 1), c.RegionSize)
	case TypeDisk:
		s = fmt.Sprintf("disk %d %s %d ", 2+min(int(c.Sync), 1), dev, c.RegionSize)
	case TypeClusteredCore:
		s = fmt.Sprintf("clustered-core %d ", c.RegionSize)
	case TypeClusteredDisk:
		s = fmt.Sprintf("clustered-disk %s %d ", dev, c.RegionSize)
	}
	if c.Sync != header.SyncDefault {
		s += c.Sync.String() + " "
	}
	if c.BlockOnError {
		s += "block_on_error "
	}
	return s
}

func (l *dirtyLog) Close() error {
	l.mu.Lock()
	if l.st == phaseClosed {
		l.mu.Unlock()
		return ErrClosed
	}
	live := l.st == phaseRunning || l.st == phasePresuspended
	l.mu.Unlock()
	var err error
	if live && l.disk != nil {
		// A dtr without postsuspend (the daemon lost its kernel, or a
		// caller skipped the suspend): persist what we have.
		err = l.disk.flush(l, true)
	}
	l.mu.Lock()
	l.st = phaseClosed
	l.closed.Store(true)
	l.mu.Unlock()
	l.release()
	return err
}
