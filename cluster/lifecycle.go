package cluster

// Lifecycle: resume (join), suspend (leave), close.

import (
	"errors"
	"fmt"
	"time"

	"github.com/dlog-dev/dlog/engine"
)

// Resume joins the group and waits for its state (from a member, or read
// from the device when this member is the first), then answers.
func (l *Log) Resume() error {
	if l.closed.Load() {
		return engine.ErrClosed
	}
	if l.running.Load() {
		// A suspend aborted after PRESUSPEND (the kernel reset its hint
		// to 0), or the kernel's reconnect (CTR + RESUME after -ESRCH),
		// which keeps the in_sync_hint it latched: the two cannot be
		// told apart, so the hint this node promised stays (IN_SYNC
		// answers 1 below it: writes are marked, never sent to one leg).
		l.halted.Store(false)
		return nil
	}
	l.mu.Lock()
	l.trace("resume")
	if l.group == nil {
		if err := l.join(); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	l.resumeWanted, l.resumeWaiting = true, true
	deadline := time.Now().Add(l.opts.JoinTimeout)
	stop := time.AfterFunc(l.opts.JoinTimeout, func() { l.mu.Lock(); l.cond.Broadcast(); l.mu.Unlock() })
	defer stop.Stop()
	for l.status != stSynced && l.failed == nil && time.Now().Before(deadline) {
		l.cond.Wait()
	}
	l.resumeWaiting = false
	defer l.mu.Unlock()
	l.trace("resume answered", "synced", l.status == stSynced)
	if l.running.Load() {
		return nil
	}
	if l.status != stSynced {
		if l.failed != nil {
			return fmt.Errorf("%w: %v", ErrNoState, l.failed)
		}
		return fmt.Errorf("%w within %v (is every node's corosync up, and the partition quorate?)", ErrNoState, l.opts.JoinTimeout)
	}
	return l.finishResume(true)
}

// join joins the group; mu is held.
func (l *Log) join() error {
	l.setState(newState(l.n, l.core, l.geo.nslots))
	l.status = stUnsynced
	l.cur, l.round, l.resolved, l.queue = nil, nil, false, nil
	l.assembly = map[MemberID]*stateAsm{}
	l.delivered, l.myProp, l.failed, l.leavingAt = 0, 0, nil, 0
	l.rejoining, l.rejoinSeq = false, 0
	clear(l.override)
	l.nover.Store(0)
	clear(l.started)
	clear(l.hurry)
	clear(l.givenBack)
	clear(l.wanted)
	clear(l.wantSent)
	clear(l.merging)
	clear(l.fencing)
	clear(l.tookOver)
	l.events, l.evstop, l.sendq, l.sendStop = nil, false, nil, false
	l.reports = nil
	l.founded = false
	l.trace("cpg join")
	l.mu.Unlock()
	g, err := l.opts.Messenger.Join(l.name, handler{l})
	l.mu.Lock()
	l.trace("cpg joined")
	if err != nil {
		return fmt.Errorf("%w: join group %s: %v", ErrUnreachable, l.name, err)
	}
	l.group = g
	l.me = g.Self()
	l.loopDone, l.sendDone = make(chan struct{}), make(chan struct{})
	go l.sender(g, l.sendDone)
	go l.loop(l.loopDone)
	go l.watchQuorum(g, l.loopDone)
	return nil
}

// finishResume brings this member's marks into the group (its slot, or a
// MARKS message) and starts answering; mu is held.
func (l *Log) finishResume(wait bool) error {
	l.resumeWanted = false
	var err error
	l.flushFailed.Store(false)
	if !l.core {
		err = l.openSlotOrFail()
	} else if l.mine.Count() > 0 {
		last := l.sendAllMarks()
		for wait && l.delivered < last && l.failed == nil && l.group != nil {
			l.cond.Wait()
		}
	}
	if !l.keepHint {
		l.promised.Store(0)
	}
	l.keepHint = false
	l.halted.Store(false)
	l.resetCursor()
	l.running.Store(true)
	l.maybeRestart() // a rejoin before the resume may want one, and no event may follow
	return err
}

// openSlotOrFail opens this member's slot and records the outcome: a slot
// that did not open fails every FLUSH until the next RESUME; mu is held.
func (l *Log) openSlotOrFail() error {
	err := l.openSlot()
	l.pmu.Lock()
	l.slotErr = err
	l.pmu.Unlock()
	if err != nil {
		l.log.Error("this node's slot did not open: FLUSH fails until the log is resumed again", "err", err)
	}
	return err
}

// sendAllMarks multicasts every mark of this node (clustered-core) and
// returns the sequence number of the last message; mu is held.
func (l *Log) sendAllMarks() uint64 {
	var all []uint64
	for r, ok := l.mine.NextSet(0); ok; r, ok = l.mine.NextSet(r + 1) {
		all = append(all, r)
	}
	var last uint64
	for len(all) > 0 {
		part := all[:min(len(all), maxList)]
		all = all[len(part):]
		last = l.send(func(seq uint64) []byte { return l.codec.marks(seq, part, nil) })
	}
	return last
}

// openSlot initialises this member's slot: descriptor, then a fresh image
// (engine disk log, nosync) with this node's outstanding marks, synced.
func (l *Log) openSlot() error {
	k := l.st.members[l.me].slot
	if k < 0 {
		return fmt.Errorf("%w: no slot on the log device for this node", engine.ErrDevice)
	}
	desc := slotDesc{slot: uint32(k), owner: l.me, n: l.n}
	if err := l.raw.writeSlotHead(l.geo, k, &desc, false); err != nil {
		return err
	}
	c := l.cfg
	c.Type, c.Sync, c.BlockOnError = engine.TypeDisk, engine.SyncNone, false
	eo := l.eopts
	// The slot is a fresh image at every resume; the daemon's state file
	// (--state-dir) is for the kernel-facing log, not for the slot.
	eo.StateFile, eo.StateLabel = "", ""
	off := l.geo.slotOff(k)
	inner := l.eopts.WrapDevice
	eo.WrapDevice = func(d engine.Device) engine.Device {
		if inner != nil {
			d = inner(d)
		}
		return &offsetDevice{Device: d, off: off}
	}
	eo.Logger = l.log.With("slot", k)
	s, err := engine.Open(c, eo)
	if err != nil {
		return err
	}
	if err := s.Resume(); err != nil {
		s.Close()
		return err
	}
	for r, ok := l.mine.NextSet(0); ok; r, ok = l.mine.NextSet(r + 1) {
		s.MarkRegion(r)
	}
	if err := s.Flush(); err != nil {
		s.Close()
		return err
	}
	// A MARK or CLEAR that came after mine was copied (a rejoin runs
	// this while the kernel writes: MarkRegion takes only pmu) found no
	// slot: apply it now, under pmu, so none is missing from the slot.
	// The new marks stay queued for the next Flush, which writes them and
	// holds the write for a region another member recovers (holdFor).
	l.pmu.Lock()
	for _, r := range l.newMarks {
		if l.mine.Test(r) {
			s.MarkRegion(r)
		}
	}
	for _, r := range l.newClear {
		if !l.mine.Test(r) {
			s.ClearRegion(r)
		}
	}
	l.slot = s
	l.pmu.Unlock()
	return nil
}

// Postsuspend persists this node's marks, tells the group it leaves (its
// marks become the group's dirty regions) and leaves.
func (l *Log) Postsuspend() error {
	if l.closed.Load() {
		return engine.ErrClosed
	}
	l.halted.Store(true)
	if !l.running.Load() {
		return nil
	}
	err := l.Flush()
	l.leave()
	return err
}

func (l *Log) leave() {
	l.mu.Lock()
	l.keepOutOfSync()
	if l.group != nil && l.status == stSynced && l.failed == nil {
		seq := l.send(func(seq uint64) []byte { return l.codec.leaving(seq) })
		l.leavingAt = seq
		deadline := time.Now().Add(10 * time.Second)
		stop := time.AfterFunc(10*time.Second, func() { l.mu.Lock(); l.cond.Broadcast(); l.mu.Unlock() })
		for l.delivered < seq && l.failed == nil && time.Now().Before(deadline) {
			l.cond.Wait()
		}
		stop.Stop()
	}
	g := l.group
	l.running.Store(false)
	l.sendStop = true
	l.sendcond.Broadcast()
	l.mu.Unlock()
	if g != nil {
		if err := g.Leave(); err != nil {
			l.log.Warn("leaving the group", "err", err)
		}
	}
	l.mu.Lock()
	l.group = nil
	l.evstop, l.sendStop = true, true
	l.evcond.Broadcast()
	l.sendcond.Broadcast()
	l.cond.Broadcast()
	ld, sd := l.loopDone, l.sendDone
	l.mu.Unlock()
	if ld != nil {
		<-ld
		<-sd
	}
	l.pmu.Lock()
	s := l.slot
	l.slot = nil
	l.pmu.Unlock()
	if s != nil {
		if err := s.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			l.log.Warn("closing the slot", "err", err)
		}
	}
}

// keepOutOfSync remembers the regions out of sync in the group's state as
// this member leaves it. If this member is the last, the state goes with
// it, and a later RESUME of this log founds a new one by the kernel's
// rules: clustered-core fresh, clustered-disk from the device, and with
// nosync both have every region in sync. found clears the remembered
// regions again, so that a departed node's regions, known out of sync,
// stay so across the restart (Options.Restart) meant to resync them, and
// so that clustered-core keeps its bits across a suspend as the kernel's
// core log does. It only over-reports. mu is held.
func (l *Log) keepOutOfSync() {
	if l.status != stSynced || l.failed != nil {
		return
	}
	l.carry = l.carry[:0]
	for r, ok := l.st.sync.NextClear(0); ok; r, ok = l.st.sync.NextClear(r + 1) {
		l.carry = append(l.carry, r)
	}
}

// Close leaves the group if still in it and releases the device.
func (l *Log) Close() error {
	if l.closed.Load() {
		return engine.ErrClosed
	}
	var err error
	if l.running.Load() {
		l.halted.Store(true) // a FLUSH held for quorum does not hold DTR
		err = l.Flush()
	}
	l.leave()
	l.closed.Store(true)
	if l.raw != nil {
		l.raw.dev.Close()
	}
	return err
}
