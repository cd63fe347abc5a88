package engine

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dlog-dev/dlog/bitmap"
	"github.com/dlog-dev/dlog/header"
	"github.com/dlog-dev/dlog/iouring"
)

// Device is the log device as the disk log uses it: aligned reads at resume
// and batched writes with an optional cache flush. Options.WrapDevice can
// interpose on it.
type Device interface {
	// ReadAt reads len(p) bytes at off (O_DIRECT: p, off and len aligned).
	ReadAt(p []byte, off int64) (int, error)
	// Write writes the blocks and, when sync is set, flushes the device
	// cache after them (see iouring.Writer).
	Write(blocks []iouring.Block, sync bool) error
	// Sync flushes the device cache.
	Sync() error
	// Close releases the device.
	Close() error
}

// DeviceInfo describes an opened log device.
type DeviceInfo struct {
	// Name is how status strings show the device: "major:minor" for a
	// block device (as the kernel's dm_dev name), the path for a file.
	Name string
	// Path is the path that was opened.
	Path string
	// Size is the device size in bytes.
	Size int64
	// LogicalBlock is the logical block size the image is rounded to.
	LogicalBlock uint32
	// Direct reports O_DIRECT I/O (false only for files on filesystems
	// that refuse it, such as old tmpfs).
	Direct bool
	// Method is the write mechanism ("io_uring" or "pwritev").
	Method string
	// Block reports a block device (Name is then its "major:minor"); a
	// regular file is not one.
	Block bool
}

// Stats are the disk log's I/O counters.
type Stats struct {
	Flushes       uint64        // flushes that wrote or synced something
	Writes        uint64        // write I/Os (one per run of blocks), resume included
	BlocksWritten uint64        // image blocks written, resume included
	BytesWritten  uint64        // bytes written, resume included
	Syncs         uint64        // device cache flushes
	LastFlush     time.Duration // duration of the latest flush with I/O
	// The phases of the flushes, summed: WriteTime is the time in
	// Device.Write (submission to completion of the writes and of the
	// cache flush after them); LegFlushes and LegFlushTime count the calls
	// of Options.FlushCallback and the time they took.
	WriteTime    time.Duration
	LegFlushes   uint64
	LegFlushTime time.Duration
}

// maxBatchBlocks bounds one submission, and the staging memory, of a flush.
const maxBatchBlocks = 256

// DefaultMergeGap is Options.MergeGap's default: changed blocks up to 2
// blocks (8 KiB) apart are written as one I/O. BenchmarkMergeGap in package
// bench measured 32 scattered marks per flush on a file on virtio storage:
// at 2^22 and 2^24 regions a gap of 2 took about 25-30% less time than a
// gap of 8 (which wrote twice the bytes in fewer I/Os), and the same at
// 2^26; gaps of 1 to 4, or none, were within the noise of each other.
const DefaultMergeGap = 2

// diskState is what the disk types add to a log: the device, the image and
// the flush machinery.
type diskState struct {
	info    DeviceInfo
	name    string
	dev     Device
	bufSize int
	block   int // write unit: 4 KiB, or the logical block size if larger
	image   mapping
	// mergeGap is how many unchanged blocks may lie between two changed
	// ones that are written as one I/O (Options.MergeGap).
	mergeGap int

	ioFailed, flushFailed atomic.Bool
	// dirtied is set after a clean bit went from 1 to 0 (a mark) and taken
	// by the flush before it collects changed blocks, so a flush that
	// writes a mark always flushes the device cache after it.
	dirtied atomic.Bool
	// cleaned is set when a clean bit went from 0 to 1; only read when
	// Options.FlushCallback is set.
	cleaned atomic.Bool

	// Held clears (only with Options.FlushCallback, holds): from a
	// flush's cleaned.Swap to the end of its writeChanged, ClearRegion
	// records its region in held instead of setting the clean bit, since
	// that flush's leg flush (if any) may not cover the region's leg
	// writes while its writeChanged would write the clear. MarkRegion
	// removes its region from held (a mark after a clear wins). The flush
	// applies what is left when its writes are done, and the next flush
	// leg-flushes and writes them (see flushOnce). hmu guards held, the
	// writes of holding, and a ClearRegion's check of holding together
	// with its clean.Set and cleaned.Store.
	holds   bool
	hmu     sync.Mutex
	holding atomic.Bool
	held    map[uint64]struct{}

	// Group commit: a Flush waits for the first flush that starts after it
	// was called. fmu guards the fields below it.
	fmu       sync.Mutex
	fcond     sync.Cond
	started   uint64
	done      uint64
	okThrough uint64 // highest flush generation that succeeded
	// forcedThrough is the latest flush that wrote clears whatever
	// Options.ClearDelay says; clearTimer, when set, will run one.
	forcedThrough uint64
	clearTimer    *time.Timer
	running       bool
	closing       bool // set by close: no flush may start (the image is going away)
	lastErr       error
	blocks        []int
	iob           []iouring.Block
	failed        [maxBatchBlocks]bool // per write of a submission
	staging       mapping

	smu   sync.Mutex // guards stats
	stats Stats
}

func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

func (l *dirtyLog) openDisk() error {
	if !littleEndian() {
		return ErrBigEndian
	}
	dev, info, err := openDevice(l.cfg.Device, l.opts)
	if err != nil {
		return err
	}
	d := &diskState{info: info, name: info.Name, dev: dev, holds: l.opts.FlushCallback != nil}
	if d.holds {
		d.held = make(map[uint64]struct{})
	}
	d.fcond.L = &d.fmu
	l.disk = d
	if l.opts.WrapDevice != nil {
		d.dev = l.opts.WrapDevice(dev)
	}
	bs, err := header.BufSize(l.n, info.LogicalBlock)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrDevice, info.Path, err)
	}
	if int64(bs) > info.Size {
		return fmt.Errorf("%w: %s: need %d bytes, have %d", ErrDeviceTooSmall, info.Path, bs, info.Size)
	}
	d.bufSize = int(bs)
	d.block = max(4096, int(info.LogicalBlock))
	switch {
	case l.opts.MergeGap < 0:
		d.mergeGap = 0
	case l.opts.MergeGap == 0:
		d.mergeGap = DefaultMergeGap
	default:
		d.mergeGap = l.opts.MergeGap
	}
	if d.image, err = mapAnon(d.bufSize); err != nil {
		return err
	}
	bitset := int(header.BitsetSize(l.n))
	words, err := bitmap.Words(d.image.m[header.BitmapOffset : header.BitmapOffset+bitset])
	if err != nil {
		return fmt.Errorf("engine: image memory: %w", err)
	}
	// The kernel's constructor sets every clean bit; the device is only
	// read at resume.
	for i := range words {
		words[i] = ^uint64(0)
	}
	l.clean, err = bitmap.New(words, l.n, bitmap.Options{
		Track: true, BlockSize: d.block, BlockOffset: header.BitmapOffset, PureGo: l.opts.PureGo,
	})
	if err != nil {
		return fmt.Errorf("engine: clean bitmap: %w", err)
	}
	nblocks := (d.bufSize + d.block - 1) / d.block
	if d.staging, err = mapAnon(min(nblocks, maxBatchBlocks) * d.block); err != nil {
		return err
	}
	d.blocks = make([]int, 0, nblocks)
	d.iob = make([]iouring.Block, 0, min(nblocks, maxBatchBlocks))
	l.logger.Info("disk log opened", "device", info.Path, "name", info.Name, "size", info.Size,
		"logical_block", info.LogicalBlock, "buf_size", d.bufSize, "direct", info.Direct, "io", info.Method)
	return l.initSyncState()
}

func (d *diskState) close() {
	d.fmu.Lock()
	d.closing = true
	if d.clearTimer != nil {
		d.clearTimer.Stop()
		d.clearTimer = nil
	}
	// A clear timer that fired just before may be flushing: the device
	// and the image must outlive it.
	for d.running {
		d.fcond.Wait()
	}
	d.fmu.Unlock()
	if d.dev != nil {
		d.dev.Close()
		d.dev = nil
	}
	d.image.unmap()
	d.staging.unmap()
}

// resume is the kernel's disk_resume (docs/disk-format.md §4), step by step. It
// runs under l.mu with no flush in progress (the log is not running).
func (d *diskState) resume(l *dirtyLog) error {
	img := d.image.m[:d.bufSize]
	// 1. Read [0, buf_size). A failed or short read fails the device, and
	//    the log is treated as holding no regions.
	hdr := header.Fresh()
	n, err := d.dev.ReadAt(img, 0)
	if err == nil && n != len(img) {
		err = fmt.Errorf("short read: %d of %d bytes", n, len(img))
	}
	if err != nil {
		d.fail(l, fmt.Errorf("read log header: %w", err))
	} else {
		// 2, 3. Fresh log, version upgrade, unsupported version; the
		//    stored region count is clamped to this activation (docs/conformance.md §5 j).
		//    4, 5: regions the image does not cover, stale tail bits
		//    (LoadImage; the words changed behind the bitmap's back).
		r, ierr := LoadImage(img, l.n, l.cfg.Sync, 0, l.clean, nil)
		hdr = r.Header
		if ierr != nil {
			d.fail(l, ierr)
		}
		if r.Upgraded {
			l.logger.Info("disk log header version 1 upgraded to 2")
		}
	}
	if err != nil {
		// Nothing read: every region dirty (in sync for nosync).
		LoadImage(nil, l.n, l.cfg.Sync, 0, l.clean, nil)
	}
	// 6. sync bits := clean bits; nothing recovering.
	if err := l.sync.CopyFrom(l.clean); err != nil {
		return err
	}
	l.recovering.ClearRange(0, l.n)
	// 7. Header with this activation's region count, the whole image
	//    written, the device cache flushed.
	hdr.NrRegions = l.n
	if err := hdr.Encode(img); err != nil {
		return err
	}
	d.fmu.Lock()
	defer d.fmu.Unlock()
	l.clean.MarkAllChanged()
	d.dirtied.Store(false)
	d.cleaned.Store(false)
	if err := d.writeChanged(l, true); err != nil {
		return fmt.Errorf("%w: resume: write log: %v", ErrIO, err)
	}
	return nil
}

// flush is Flush for the disk log: group commit around flushOnce. With
// force, clears are written even when Options.ClearDelay would let them
// wait (postsuspend, close, the clear timer).
func (d *diskState) flush(l *dirtyLog, force bool) error {
	d.fmu.Lock()
	defer d.fmu.Unlock()
	target := d.started + 1 // the first flush to start after this call
	for d.done < target || (force && d.forcedThrough < target) {
		if d.closing {
			return ErrClosed
		}
		if d.running {
			d.fcond.Wait()
			continue
		}
		d.running = true
		d.started++
		me := d.started
		err := d.flushOnce(l, force)
		d.running = false
		d.done = me
		d.lastErr = err
		if force {
			d.forcedThrough = me
		}
		if err == nil {
			d.okThrough = me
		}
		d.fcond.Broadcast()
	}
	// A later flush that succeeded covers this call too: it started after
	// it, and failed blocks are flagged again for the next flush. A forced
	// call needs its own flush to have succeeded.
	if (!force && d.okThrough >= target) || (force && d.lastErr == nil && d.forcedThrough >= target) {
		return nil
	}
	return d.lastErr
}

// flushOnce writes the changed blocks. It is called with fmu held and
// releases it around the I/O so that waiters can queue. With a
// FlushCallback it calls the leg flush first if clears were made since the
// last one, and holds the clears made from then until its writes are done
// (diskState.held): no clear is written without a leg flush issued after
// it.
func (d *diskState) flushOnce(l *dirtyLog, force bool) error {
	marks := d.dirtied.Load()
	if !marks && !force && l.opts.ClearDelay > 0 {
		// Only clears (or nothing) to write: a lost clear costs only a
		// resync, so they wait for the next flush with marks, which
		// writes their blocks anyway, or for the clear timer.
		if l.clean.Changed() && d.clearTimer == nil {
			d.clearTimer = time.AfterFunc(l.opts.ClearDelay, func() {
				d.fmu.Lock()
				d.clearTimer = nil
				d.fmu.Unlock()
				if !l.closed.Load() {
					d.flush(l, true)
				}
			})
		}
		return nil
	}
	if force && d.clearTimer != nil {
		// This flush writes the clears the timer was waiting for; none
		// may fire later, during a resume or a close.
		d.clearTimer.Stop()
		d.clearTimer = nil
	}
	marks = d.dirtied.Swap(false)
	if d.holds {
		// The leg flush below (or its absence, when cleaned is false)
		// covers only the clears made before the Swap: a clear made
		// later, during cb or the staging, may be for a region whose leg
		// writes completed after cb started, into a leg's volatile cache.
		// writeChanged stages the live bitmap and would write such a
		// clear with no leg flush behind it, so clears are held until the
		// writes are done, then applied for the next flush (the kernel's
		// FLUSH after its CLEAR waits for a flush that starts after it).
		d.hmu.Lock()
		d.holding.Store(true)
		d.hmu.Unlock()
		defer d.applyHeld(l)
	}
	// Without a FlushCallback there is no leg flush to order, but the
	// flag is still consumed: FlushNoIO reads it.
	if cleaned, cb := d.cleaned.Swap(false), l.opts.FlushCallback; cb != nil && cleaned && !l.ignoreClears.Load() {
		t := time.Now()
		err := cb()
		took := time.Since(t)
		d.smu.Lock()
		d.stats.LegFlushes++
		d.stats.LegFlushTime += took
		d.smu.Unlock()
		if err != nil {
			// The legs may not hold what the clears claim: no region can
			// be trusted clean (the kernel's flush_failed).
			l.logger.Error("mirror flush failed; marking every region dirty and ignoring clears until reload", "err", err)
			l.ignoreClears.Store(true)
			l.clean.ClearRange(0, l.n)
			marks = true
		}
	}
	d.fmu.Unlock()
	defer d.fmu.Lock()
	if err := d.writeChanged(l, marks); err != nil {
		return fmt.Errorf("%w: flush: %v", ErrIO, err)
	}
	return nil
}

// applyHeld ends the hold flushOnce started: the clears held during the
// flush are applied (unless a failed leg flush made clears ignored since),
// for the next flush to leg-flush and write. It runs after writeChanged,
// whether it succeeded or not.
func (d *diskState) applyHeld(l *dirtyLog) {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	if !l.ignoreClears.Load() {
		for r := range d.held {
			if l.clean.Set(r) {
				d.cleaned.Store(true)
			}
		}
	}
	clear(d.held)
	d.holding.Store(false)
}

// clearRegion is ClearRegion for a disk log with a FlushCallback: the
// clear is held while a flush is between its cleaned.Swap and the end of
// its writes, applied otherwise.
func (d *diskState) clearRegion(l *dirtyLog, region uint64) {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	if l.ignoreClears.Load() {
		return
	}
	if d.holding.Load() {
		d.held[region] = struct{}{}
		return
	}
	if l.clean.Set(region) {
		d.cleaned.Store(true)
	}
}

// unhold drops a held clear of region: MarkRegion calls it when it sees a
// hold, before clearing the bit, so a mark made after a clear wins. A mark
// that sees no hold needs nothing: holding is stored false only after the
// held clears were applied, so any clear held before the mark's load has
// been applied already, and the mark's clean.Clear comes after it.
func (d *diskState) unhold(region uint64) {
	d.hmu.Lock()
	delete(d.held, region)
	d.hmu.Unlock()
}

// writeChanged writes every changed block of the image, then flushes the
// device cache if sync is set. Changed blocks separated by at most
// mergeGap unchanged ones are written together, gap included, as one
// sequential I/O: an unchanged block holds what the device already holds,
// so rewriting it is harmless, and one slightly larger write costs less
// than two small ones (DefaultMergeGap says how much). Writes go out in
// submissions of at most maxBatchBlocks blocks. Failed runs are flagged
// again, and a failed cache flush leaves a sync owed and flags again every
// block the flush wrote, so the next flush retries all of them; the device
// is marked failed (D, and F for the cache flush) as the kernel does.
func (d *diskState) writeChanged(l *dirtyLog, sync bool) error {
	d.blocks = l.clean.TakeChanged(d.blocks[:0])
	if len(d.blocks) == 0 && !sync {
		return nil
	}
	start := time.Now()
	var errs []error
	var written, bytes, ios uint64
	var inWrite time.Duration
	syncFailed := false
	// runs[i] is the first block of d.iob[i] and its block count.
	type run struct{ first, n int }
	var runs [maxBatchBlocks]run
	nruns, slots := 0, 0
	submit := func() {
		t := time.Now()
		// Every submission of a synced flush is synced, not just the
		// last: a synced Write may make only its own blocks durable
		// (pwritev2 with RWF_DSYNC is a FUA write on a regular file's
		// FUA-capable device), and the earlier ones may hold marks.
		// Flushes of more than one submission are rare (maxBatchBlocks).
		werr := d.dev.Write(d.iob, sync)
		inWrite += time.Since(t)
		failed := d.failed[:len(d.iob)]
		clear(failed)
		if werr != nil {
			// be is declared here, off the success path: errors.As makes
			// it escape, and the success path must not allocate.
			var be *iouring.BatchError
			if errors.As(werr, &be) {
				for _, w := range be.Writes {
					failed[w.Index] = true
					errs = append(errs, fmt.Errorf("write blocks %d..%d: %w", runs[w.Index].first, runs[w.Index].first+runs[w.Index].n-1, w.Err))
				}
				if be.Sync != nil {
					errs = append(errs, fmt.Errorf("flush device cache: %w", be.Sync))
					d.failSync(l, be.Sync)
					syncFailed = true
				}
			} else {
				for i := range failed {
					failed[i] = true
				}
				errs = append(errs, werr)
				if sync {
					d.failSync(l, werr)
					syncFailed = true
				}
			}
		}
		for i, r := range runs[:nruns] {
			if failed[i] {
				for b := r.first; b < r.first+r.n; b++ {
					l.clean.MarkBlockChanged(b)
				}
				if sync {
					// The blocks may hold marks: the retry must write them
					// as marks (synced, never deferred as clears).
					d.dirtied.Store(true)
				}
				continue
			}
			written += uint64(r.n)
			bytes += uint64(len(d.iob[i].Buf))
			ios++
		}
		d.iob, nruns, slots = d.iob[:0], 0, 0
	}
	d.iob = d.iob[:0]
	for i := 0; i < len(d.blocks); {
		// The run: this changed block and the following ones within the
		// merge gap, as long as the staging area holds them.
		first, end := d.blocks[i], d.blocks[i]+1
		i++
		for i < len(d.blocks) && d.blocks[i]-end <= d.mergeGap && d.blocks[i]+1-first <= maxBatchBlocks {
			end = d.blocks[i] + 1
			i++
		}
		if slots+(end-first) > maxBatchBlocks {
			submit()
		}
		for b := first; b < end; b++ {
			d.stage(l, slots+b-first, b)
		}
		off := first * d.block
		n := min(end*d.block, d.bufSize) - off
		d.iob = append(d.iob, iouring.Block{Off: int64(off), Buf: d.staging.m[slots*d.block : slots*d.block+n]})
		runs[nruns] = run{first, end - first}
		nruns++
		slots += end - first
	}
	submit()
	if syncFailed {
		// A failed cache flush leaves every block this flush wrote, in
		// every submission, in an unknown state on the device (the write
		// may sit in a cache that was lost): flag them all again so the
		// next flush writes and syncs them, as the kernel rewrites its
		// whole buffer before the next PREFLUSH.
		for _, b := range d.blocks {
			l.clean.MarkBlockChanged(b)
		}
	}
	d.smu.Lock()
	d.stats.Flushes++
	d.stats.Writes += ios
	d.stats.BlocksWritten += written
	d.stats.BytesWritten += bytes
	if sync {
		d.stats.Syncs++
	}
	d.stats.LastFlush = time.Since(start)
	d.stats.WriteTime += inWrite
	d.smu.Unlock()
	if len(errs) > 0 {
		err := errors.Join(errs...)
		d.fail(l, err)
		return err
	}
	return nil
}

// stage copies image block blk into staging slot k, cut at buf_size.
func (d *diskState) stage(l *dirtyLog, k, blk int) {
	off := blk * d.block
	end := min(off+d.block, d.bufSize)
	buf := d.staging.m[k*d.block : k*d.block+(end-off)]
	// Outside the bitmap words the image is immutable after resume (the
	// header, and the tail after the bitset): plain copies.
	wordsLo := header.BitmapOffset
	wordsHi := header.BitmapOffset + int(header.BitsetSize(l.n))
	if off < wordsLo {
		copy(buf, d.image.m[off:min(end, wordsLo)])
	}
	if end > wordsHi {
		from := max(off, wordsHi)
		copy(buf[from-off:], d.image.m[from:end])
	}
	l.clean.ReadBlock(blk, buf)
}

// fail marks the device failed (D) and logs why.
func (d *diskState) fail(l *dirtyLog, err error) {
	if !d.ioFailed.Swap(true) {
		l.logger.Error("log device failed; status shows D until the log is reloaded", "device", d.info.Path, "err", err)
	}
}

// failSync marks a failed device cache flush (F): marks written since the
// last good cache flush may not be durable, so a sync stays owed.
func (d *diskState) failSync(l *dirtyLog, err error) {
	d.dirtied.Store(true)
	if !d.flushFailed.Swap(true) {
		l.logger.Error("log device cache flush failed; status shows F until the log is reloaded", "device", d.info.Path, "err", err)
	}
	d.ioFailed.Store(true)
}

// reload reads the image back from the device for a log restored from its
// state file after a resume (the previous process served it and died,
// live or suspended): the
// device holds every acknowledged mark, so its clean bits are taken as
// they are. Nothing is written. If the device cannot be read, or no longer
// holds this log, every region is made dirty (over-reporting is safe) and
// the device is marked failed.
func (d *diskState) reload(l *dirtyLog) {
	img := d.image.m[:d.bufSize]
	n, err := d.dev.ReadAt(img, 0)
	if err == nil && n != len(img) {
		err = fmt.Errorf("short read: %d of %d bytes", n, len(img))
	}
	if err == nil {
		if h, _ := header.Decode(img); h.Magic != header.Magic || h.NrRegions != l.n {
			err = fmt.Errorf("the device does not hold this log any more (header %v)", h)
		}
	}
	l.clean.Recount()
	if err != nil {
		d.fail(l, fmt.Errorf("restore: %w", err))
		header.Header{Magic: header.Magic, Version: header.Version, NrRegions: l.n}.Encode(img)
		l.clean.ClearRange(0, l.n)
		l.clean.ClearTail()
		d.dirtied.Store(true)
	}
}
