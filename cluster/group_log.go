package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dlog-dev/dlog/engine"
)

// handler feeds group events to the log's event loop.
type handler struct{ l *Log }

func (h handler) Deliver(from MemberID, msg []byte) {
	h.l.mu.Lock()
	h.l.events = append(h.l.events, event{from: from, msg: slices.Clone(msg)})
	h.l.evcond.Broadcast()
	h.l.mu.Unlock()
}

func (h handler) ConfigChange(members, left, joined []MemberID) {
	h.l.mu.Lock()
	h.l.events = append(h.l.events, event{cc: true, members: slices.Clone(members), left: slices.Clone(left), joined: slices.Clone(joined)})
	h.l.evcond.Broadcast()
	h.l.mu.Unlock()
}

// send numbers and queues a message; the caller holds mu. Nothing is sent
// while replaying or outside a group. It returns the sequence number, or 0.
func (l *Log) send(build func(seq uint64) []byte) uint64 {
	if l.replaying || l.group == nil || l.sendStop {
		return 0
	}
	l.seq++
	l.sendq = append(l.sendq, build(l.seq))
	l.sendcond.Broadcast()
	return l.seq
}

func (l *Log) sender(g Group, done chan struct{}) {
	defer close(done)
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for len(l.sendq) == 0 && !l.sendStop {
			l.sendcond.Wait()
		}
		if len(l.sendq) == 0 {
			return
		}
		m := l.sendq[0]
		l.sendq = l.sendq[1:]
		l.mu.Unlock()
		err := g.Multicast(m)
		l.mu.Lock()
		if err != nil {
			if l.failed == nil {
				l.failed = fmt.Errorf("cluster: multicast failed: %w", err)
				l.log.Error("lost the group: refusing hand-outs and flushes until the log is resumed again", "err", err)
			}
			l.sendq = nil
			l.cond.Broadcast()
			continue
		}
		l.stats.sent++
	}
}

func (l *Log) loop(done chan struct{}) {
	defer close(done)
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for len(l.events) == 0 && !l.evstop {
			l.evcond.Wait()
		}
		if l.evstop {
			return
		}
		ev := l.events[0]
		l.events[0] = event{}
		l.events = l.events[1:]
		if !ev.cc {
			l.stats.recv++
		}
		if l.status != stSynced {
			l.queue = append(l.queue, ev)
			l.processUnsynced(ev)
		} else {
			l.processFull(ev)
		}
		if l.status == stSynced && !l.running.Load() && l.resumeWanted && !l.resumeWaiting {
			l.finishResume(false)
		}
		l.serverDuties()
		l.cond.Broadcast()
	}
}

func (l *Log) decode(ev event) (message, bool) {
	m, err := l.codec.decode(ev.msg)
	if err != nil {
		l.stats.malformed++
		l.log.Warn("dropping a malformed cluster message", "from", ev.from.String(), "err", err)
		return m, false
	}
	if ev.from == l.me && m.Seq > l.delivered {
		l.delivered = m.Seq
	}
	return m, true
}

// ---- membership, rounds and state transfer ----

func (l *Log) newRound(members []MemberID) {
	l.cur = slices.Clone(members)
	slices.Sort(l.cur)
	l.round = map[MemberID]uint8{}
	l.resolved = false
	l.roundNo++
	l.foundIntent = 0
	clear(l.merging)
	status := l.status
	if l.leavingAt != 0 {
		status = stRetired
	}
	l.send(func(seq uint64) []byte { return l.codec.announce(seq, status, len(l.cur)) })
}

func (l *Log) selfLeft(left []MemberID) {
	if slices.Contains(left, l.me) && l.failed == nil && l.leavingAt == 0 {
		l.failed = ErrLeft
		l.log.Error("expelled from the group: refusing hand-outs and flushes")
	}
}

func (l *Log) processUnsynced(ev event) {
	if ev.cc {
		l.selfLeft(ev.left)
		for _, id := range ev.left {
			delete(l.assembly, id)
		}
		l.newRound(ev.members)
		return
	}
	m, ok := l.decode(ev)
	if !ok {
		return
	}
	switch m.Type {
	case mAnnounce:
		l.tally(ev.from, m)
	case mState:
		if blob := l.assemble(ev.from, m); blob != nil {
			sn, err := decodeState(blob, l.n, l.cfg.RegionSize, l.core, l.geo.nslots)
			if err != nil {
				l.stats.malformed++
				l.log.Warn("dropping a state transfer", "from", ev.from.String(), "err", err)
				return
			}
			if slices.Contains(sn.recipients, l.me) {
				l.adopt(sn)
			}
		}
	}
}

func (l *Log) tally(from MemberID, m message) {
	if int(m.Members) != len(l.cur) || !slices.Contains(l.cur, from) {
		return // sent for another membership
	}
	status := m.Status
	if mm := l.st.members[from]; mm != nil && mm.status == stRetired {
		status = stRetired // announced before its LEAVING was delivered
	}
	if status == stSynced && l.status == stSynced && !l.replaying && !l.st.isSynced(from) && from != l.me {
		if debugf != nil {
			ms := map[MemberID]uint8{}
			for id, mm := range l.st.members {
				ms[id] = mm.status
			}
			debugf("%s: SPLIT from %s: members %v founded %v", l.me, from, ms, l.founded)
		}
		if l.failed == nil {
			l.failed = fmt.Errorf("cluster: split brain: %s claims the log's state but this member never gave it", from)
			l.log.Error("two members hold the log's state (a partition healed without fencing): refusing hand-outs and flushes", "other", from.String())
		}
	}
	l.round[from] = status
	l.resolveRound(from, m.Seq)
}

// resolveRound runs at every ANNOUNCE once every member has announced since
// the last membership change: the lowest synced member sends the state to
// the unsynced ones; with no synced member the lowest unsynced one founds
// the state (from the log device, or fresh for clustered-core) when its
// partition is quorate.
func (l *Log) resolveRound(pointFrom MemberID, pointSeq uint64) {
	if l.resolved {
		return
	}
	for _, id := range l.cur {
		if _, ok := l.round[id]; !ok {
			return
		}
	}
	var synced, unsynced []MemberID
	for _, id := range l.cur {
		switch l.round[id] {
		case stSynced:
			synced = append(synced, id)
		case stUnsynced:
			unsynced = append(unsynced, id)
		}
	}
	if len(synced) > 0 {
		l.resolved = true
		if len(unsynced) > 0 && synced[0] == l.me && l.status == stSynced {
			l.sendState(unsynced, pointFrom, pointSeq)
		}
		return
	}
	if len(unsynced) == 0 {
		l.resolved = true
		return
	}
	if unsynced[0] != l.me || l.replaying || l.group == nil {
		return
	}
	// Found only at the delivery of our own intent, sent after the
	// partition was seen quorate and delivered in this very view: the
	// quorum flag and the group view are not updated atomically, and a
	// view from before a merge must not be founded in (two founders).
	if l.foundIntent == 0 || pointFrom != l.me || pointSeq != l.foundIntent {
		if l.foundIntent == 0 {
			l.intendToFound()
		}
		return
	}
	l.found()
	l.resolved = true
	if len(unsynced) > 1 {
		l.sendState(unsynced[1:], pointFrom, pointSeq)
	}
}

// intendToFound multicasts the founding intent (an ANNOUNCE) once this
// node's partition is quorate, retrying every half second while the round
// lasts; mu is held.
func (l *Log) intendToFound() {
	if l.group.Quorate() {
		l.foundIntent = l.send(func(seq uint64) []byte { return l.codec.announce(seq, l.status, len(l.cur)) })
		return
	}
	l.log.Warn("no quorum: not founding the log's state; waiting")
	g, round := l.group, l.roundNo
	time.AfterFunc(500*time.Millisecond, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.group == g && l.roundNo == round && !l.resolved && l.status != stSynced && l.foundIntent == 0 {
			l.intendToFound()
		}
	})
}

func (l *Log) sendState(to []MemberID, pointFrom MemberID, pointSeq uint64) {
	blob := l.st.encode(l.cfg.RegionSize, pointFrom, pointSeq, to)
	l.propID++
	id := l.propID
	total := uint64(len(blob))
	for off := uint64(0); off < total; off += maxChunk {
		end := min(total, off+maxChunk)
		chunk := blob[off:end]
		o := off
		l.send(func(seq uint64) []byte { return l.codec.state(seq, id, o, total, chunk) })
	}
	l.log.Info("state sent to joining members", "to", fmt.Sprint(to), "bytes", total)
}

func (l *Log) assemble(from MemberID, m message) []byte {
	a := l.assembly[from]
	if m.Offset == 0 {
		a = &stateAsm{id: m.StateID, buf: make([]byte, 0, m.Total)}
		l.assembly[from] = a
	}
	if a == nil || a.id != m.StateID || a.next != m.Offset || uint64(cap(a.buf)) != m.Total {
		delete(l.assembly, from)
		return nil
	}
	a.buf = append(a.buf, m.Data...)
	a.next += uint64(len(m.Data))
	if a.next < m.Total {
		return nil
	}
	delete(l.assembly, from)
	return a.buf
}

// adopt takes a state snapshot and replays the events queued since the
// snapshot's point, ending with this STATE, after which this member is
// synced like the others.
func (l *Log) adopt(sn *snapshot) {
	at := -1
	for i, ev := range l.queue {
		if ev.cc || ev.from != sn.pointFrom || len(ev.msg) < hdrLen {
			continue
		}
		if binary.LittleEndian.Uint64(ev.msg[8:]) == sn.pointSeq {
			at = i
			break
		}
	}
	if at < 0 {
		l.log.Warn("state transfer taken at a point this member never saw; waiting for another", "point", sn.pointFrom.String())
		return
	}
	q := l.queue[at+1:]
	l.queue = nil
	l.setState(sn.st)
	l.assembly = map[MemberID]*stateAsm{}
	l.replaying = true
	for _, ev := range q {
		l.processFull(ev)
	}
	l.replaying = false
	if m := l.st.members[l.me]; m != nil && m.status == stSynced {
		l.status = stSynced
		l.log.Info("joined the log's group with its state", "members", len(l.cur), "in_sync", l.st.sync.Count(), "slot", m.slot)
	} else {
		l.log.Warn("state transfer did not make this member synced (no free slot on the log device?)")
	}
}

// found makes the state from the log device (clustered-disk) or fresh
// (clustered-core): no member has it.
func (l *Log) found() {
	st := newState(l.n, l.core, l.geo.nslots)
	for _, id := range l.cur {
		st.members[id] = &member{status: l.round[id], slot: -1}
	}
	st.members[l.me].status = stSynced
	if l.cfg.Sync == engine.SyncNone {
		st.sync.SetRange(0, l.n)
	}
	if !l.core {
		l.foundDisk(st)
		st.slots[0] = slotInfo{owner: l.me, state: slotUsed}
		st.members[l.me].slot = 0
	}
	if debugf != nil {
		debugf("%s: FOUND with round %v", l.me, l.round)
	}
	l.setState(st)
	l.status = stSynced
	l.founded = true
	l.queue = nil
	l.log.Info("founded the log's state", "members", len(l.cur), "in_sync", st.sync.Count())
}

// foundDisk reads the union image and, if it is live (a previous
// activation ended without a clean point), every slot: the dirty set is the
// image's plus every slot's marks. It writes the union back, live, before
// forgetting the slots.
func (l *Log) foundDisk(st *state) {
	g := l.geo
	img, free, err := l.raw.read(0, g.bufSize)
	if err != nil {
		l.log.Error("cannot read the log device: every region will be resynchronised", "err", err)
		st.sync.ClearRange(0, l.n)
		return
	}
	live := engine.ImageMagic(img) == LiveMagic
	r, ierr := engine.LoadImage(img, l.n, l.cfg.Sync, LiveMagic, st.sync.Bitmap, st.sync.words)
	free()
	if ierr != nil {
		l.log.Error("log device holds an unsupported log version: every region will be resynchronised", "err", ierr)
	}
	merged, slotsSeen := 0, 0
	if live && !r.Fresh && ierr == nil {
		sg := g
		if r.Header.NrRegions != l.n {
			if og, err := geometryOf(r.Header.NrRegions, l.raw.info, l.opts.MaxSlots); err == nil {
				sg = og
			}
		}
		for k := 0; k < sg.nslots; k++ {
			desc, marks, err := l.raw.readSlot(sg, k)
			if err != nil {
				l.log.Error("cannot read a slot of a log that was not shut down cleanly: every region will be resynchronised", "slot", k, "err", err)
				st.sync.ClearRange(0, l.n)
				break
			}
			if desc.n == 0 {
				continue
			}
			slotsSeen++
			for _, r := range marks {
				if r < l.n && st.sync.Clear(r) {
					merged++
				}
			}
		}
	}
	if err := l.raw.writeUnion(g, LiveMagic, st.sync, nil); err != nil {
		l.log.Error("cannot write the log image", "err", err)
	}
	for k := 0; k < g.nslots; k++ {
		l.raw.writeSlotHead(g, k, nil, false)
	}
	l.log.Info("log device read", "live", live, "fresh", r.Fresh, "slots_merged", slotsSeen, "regions_from_slots", merged, "in_sync", st.sync.Count())
}

// ---- the replicated state machine ----

func (l *Log) processFull(ev event) {
	st := l.st
	if ev.cc {
		if !l.replaying {
			l.selfLeft(ev.left)
		}
		for _, id := range ev.left {
			delete(l.assembly, id)
			l.departure(id)
			delete(st.members, id)
		}
		for _, id := range ev.joined {
			if st.members[id] == nil {
				st.members[id] = &member{status: stUnsynced, slot: -1}
			}
		}
		l.newRound(ev.members)
		return
	}
	m, ok := l.decode(ev)
	if !ok {
		return
	}
	from := ev.from
	switch m.Type {
	case mAnnounce:
		l.tally(from, m)
	case mMarks:
		if st.isSynced(from) && l.core {
			mk, ok := st.marksOf[from]
			if !ok {
				mk = newBits(l.n, false)
				st.marksOf[from] = mk
			}
			for _, r := range m.Marks {
				mk.Set(r)
			}
			for _, r := range m.Clears {
				mk.Clear(r)
			}
		}
	case mSync:
		if !st.isSynced(from) {
			return
		}
		if m.Value == 1 {
			st.sync.Set(m.Region)
		} else if st.sync.Clear(m.Region) {
			l.resetCursor()
		}
		if g, ok := st.grants[from]; ok && g == m.Region {
			delete(st.grants, from)
		}
		if from == l.me {
			delete(l.override, m.Region)
			l.nover.Store(int32(len(l.override)))
		}
	case mPropose:
		l.propose(from, m)
	case mVote:
		l.vote(from, m)
	case mLeaving:
		l.departure(from)
		if mm := st.members[from]; mm != nil {
			mm.status = stRetired
		}
		if from == l.me && !l.replaying {
			l.status = stRetired
			l.cleanPoint()
		}
	case mMerged:
		for _, r := range m.Marks {
			if st.sync.Clear(r) {
				l.resetCursor()
			}
		}
		if m.Last && int(m.Slot) < st.nslots {
			s := &st.slots[m.Slot]
			if s.owner == m.Owner && s.state == slotDeparted {
				*s = slotInfo{}
			}
			delete(l.merging, int(m.Slot))
		}
	case mState:
		blob := l.assemble(from, m)
		if blob == nil {
			return
		}
		sn, err := decodeState(blob, l.n, l.cfg.RegionSize, l.core, l.geo.nslots)
		if err != nil {
			l.stats.malformed++
			l.log.Warn("dropping a state transfer", "from", from.String(), "err", err)
			return
		}
		if debugf != nil {
			debugf("%s: STATE from %s for %v (replay %v)", l.me, from, sn.recipients, l.replaying)
		}
		for _, r := range sn.recipients {
			mm := st.members[r]
			if mm == nil || mm.status != stUnsynced {
				continue
			}
			if !l.core {
				k := slices.IndexFunc(st.slots[:st.nslots], func(s slotInfo) bool { return s.state == slotFree })
				if k < 0 {
					l.log.Error("no free slot on the log device for a joining member", "member", r.String(), "slots", st.nslots)
					continue
				}
				st.slots[k] = slotInfo{owner: r, state: slotUsed}
				mm.slot = k
			}
			mm.status = stSynced
		}
	}
}

// departure forgets what a leaving or dead member held: its hand-out and
// proposal go, its votes are no longer awaited, and every region it had
// marked becomes out of sync (clustered-core: from its replicated marks;
// clustered-disk: its slot is merged by the server).
func (l *Log) departure(id MemberID) {
	st := l.st
	mm := st.members[id]
	if mm == nil {
		return
	}
	delete(st.grants, id)
	if p := st.pending[id]; p != nil {
		delete(st.pending, id)
		if id == l.me {
			l.myProp = 0
		}
	}
	for x, p := range st.pending {
		if i := slices.Index(p.waiting, id); i >= 0 {
			p.waiting = slices.Delete(p.waiting, i, i+1)
			if len(p.waiting) == 0 {
				l.grant(x, p)
			}
		}
	}
	if mk, ok := st.marksOf[id]; ok {
		for r, ok := mk.NextSet(0); ok; r, ok = mk.NextSet(r + 1) {
			st.sync.Clear(r)
		}
		delete(st.marksOf, id)
	}
	if mm.slot >= 0 && mm.slot < st.nslots && st.slots[mm.slot].owner == id {
		st.slots[mm.slot].state = slotDeparted
	}
	mm.slot = -1
	l.resetCursor()
}

func (l *Log) propose(x MemberID, m message) {
	st := l.st
	r := m.Region
	_, locked := st.lockedBy(r)
	_, hasGrant := st.grants[x]
	if !st.isSynced(x) || st.sync.Test(r) || locked || st.pending[x] != nil || hasGrant {
		if x == l.me && l.myProp == m.Proposal {
			l.myProp = 0
			l.skipped[r] = true
		}
		return
	}
	p := &proposal{id: m.Proposal, region: r}
	for _, id := range st.synced() {
		if id != x {
			p.waiting = append(p.waiting, id)
		}
	}
	st.pending[x] = p
	if len(p.waiting) == 0 {
		l.grant(x, p)
		return
	}
	if debugf != nil {
		debugf("%s: PROPOSE from %s id %d region %d waiting %v replay %v", l.me, x, m.Proposal, r, p.waiting, l.replaying)
	}
	if slices.Contains(p.waiting, l.me) && !l.replaying {
		accept := l.accept(r)
		if debugf != nil {
			debugf("%s: vote %v on %s/%d region %d (mine %v)", l.me, accept, x, m.Proposal, r, l.mine.Test(r))
		}
		l.send(func(seq uint64) []byte { return l.codec.vote(seq, x, m.Proposal, accept) })
	}
}

// accept is this member's vote on another member recovering r: no if this
// node has r marked (its writes may be in flight), has just told its kernel
// r is not recovering, may hold r as NOSYNC in its kernel, or has no
// quorum.
func (l *Log) accept(r uint64) bool {
	if l.failed != nil || l.group == nil || !l.group.Quorate() || l.mine.Test(r) || l.ns[r] {
		return false
	}
	if t, ok := l.reserved[r]; ok && time.Now().Before(t) {
		return false
	}
	_, ov := l.override[r]
	return !ov
}

func (l *Log) vote(from MemberID, m message) {
	st := l.st
	p := st.pending[m.Proposer]
	if p == nil || p.id != m.Proposal {
		return
	}
	i := slices.Index(p.waiting, from)
	if i < 0 {
		return
	}
	if !m.Accept {
		delete(st.pending, m.Proposer)
		if m.Proposer == l.me {
			l.myProp = 0
			l.skipped[p.region] = true
			l.stats.vetoes++
		}
		return
	}
	p.waiting = slices.Delete(p.waiting, i, i+1)
	if len(p.waiting) == 0 {
		l.grant(m.Proposer, p)
	}
}

// debugf, when set by a test, traces hand-outs.
var debugf func(format string, a ...any)

func (l *Log) grant(x MemberID, p *proposal) {
	if debugf != nil {
		debugf("%s: GRANT %s region %d (id %d)", l.me, x, p.region, p.id)
	}
	delete(l.st.pending, x)
	l.st.grants[x] = p.region
	if x == l.me {
		l.myProp = 0
		l.stats.grants++
	}
}

// ---- the server's duties (clustered-disk) ----

func (l *Log) isServer() bool {
	s := l.st.synced()
	return len(s) > 0 && s[0] == l.me && l.status == stSynced
}

// serverDuties merges the slots of departed members: read the slot, write
// the union with its marks dirty (synced), free the slot, then tell the
// group which regions it held.
func (l *Log) serverDuties() {
	if l.core || l.replaying || l.group == nil || !l.isServer() || !l.group.Quorate() || l.failed != nil {
		return
	}
	st := l.st
	for k := 0; k < st.nslots; k++ {
		s := st.slots[k]
		if s.state != slotDeparted || l.merging[k] {
			continue
		}
		desc, marks, err := l.raw.readSlot(l.geo, k)
		if err != nil {
			l.log.Error("cannot read a departed member's slot; will retry", "slot", k, "owner", s.owner.String(), "err", err)
			continue
		}
		if desc.owner != s.owner {
			marks = nil
		}
		if err := l.raw.writeUnion(l.geo, LiveMagic, st.sync, marks); err != nil {
			l.log.Error("cannot write the union image; will retry", "err", err)
			continue
		}
		l.raw.writeSlotHead(l.geo, k, nil, false)
		l.merging[k] = true
		l.stats.merges++
		l.log.Info("merged a departed member's slot", "slot", k, "owner", s.owner.String(), "regions", len(marks))
		for {
			part := marks[:min(len(marks), maxList)]
			marks = marks[len(part):]
			last := len(marks) == 0
			l.send(func(seq uint64) []byte { return l.codec.merged(seq, uint32(k), s.owner, part, last) })
			if last {
				break
			}
		}
	}
}

// cleanPoint runs when this member's LEAVING is delivered: if it is the
// group's last member, the union image becomes exact (its own and any
// unmerged slot's marks dirty) and gets the kernel's magic back.
func (l *Log) cleanPoint() {
	if l.core || len(l.cur) != 1 || l.cur[0] != l.me {
		return
	}
	var dirty []uint64
	for k := 0; k < l.st.nslots; k++ {
		s := l.st.slots[k]
		if s.state == slotFree {
			continue
		}
		desc, marks, err := l.raw.readSlot(l.geo, k)
		if err != nil {
			l.log.Error("cannot read a slot at the clean point; the image stays live (a cluster dlogd merges it)", "err", err)
			return
		}
		if desc.owner == s.owner {
			dirty = append(dirty, marks...)
		}
	}
	if err := l.raw.writeUnion(l.geo, engine.DiskMagic, l.st.sync, dirty); err != nil {
		l.log.Error("cannot write the clean image", "err", err)
		return
	}
	l.log.Info("last member left: log image written in the kernel's format", "dirty", len(dirty))
}

// ---- lifecycle ----

// Resume joins the group and waits for its state (from a member, or read
// from the device when this member is the first), then answers.
func (l *Log) Resume() error {
	if l.closed.Load() {
		return engine.ErrClosed
	}
	if l.running.Load() {
		// A suspend aborted after PRESUSPEND, or the reconnect sequence:
		// the kernel reset its hint to 0 and restarts recovery.
		l.promised.Store(0)
		l.halted.Store(false)
		return nil
	}
	l.mu.Lock()
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
	clear(l.override)
	l.nover.Store(0)
	clear(l.merging)
	l.events, l.evstop, l.sendq, l.sendStop = nil, false, nil, false
	l.founded = false
	l.mu.Unlock()
	g, err := l.opts.Transport.Join(l.name, handler{l})
	l.mu.Lock()
	if err != nil {
		return fmt.Errorf("%w: join group %s: %v", ErrUnreachable, l.name, err)
	}
	l.group = g
	l.me = g.Self()
	l.loopDone, l.sendDone = make(chan struct{}), make(chan struct{})
	go l.sender(g, l.sendDone)
	go l.loop(l.loopDone)
	return nil
}

// finishResume brings this member's marks into the group (its slot, or a
// MARKS message) and starts answering; mu is held.
func (l *Log) finishResume(wait bool) error {
	l.resumeWanted = false
	var err error
	if !l.core {
		err = l.openSlot()
	} else if l.mine.Count() > 0 {
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
		for wait && l.delivered < last && l.failed == nil && l.group != nil {
			l.cond.Wait()
		}
	}
	l.promised.Store(0)
	l.halted.Store(false)
	l.resetCursor()
	l.running.Store(true)
	return err
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
	eo.WrapDevice = func(d engine.Device) engine.Device { return &offsetDevice{Device: d, off: off} }
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
	l.pmu.Lock()
	l.slot = s
	l.newMarks, l.newClear = nil, nil
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

// Close leaves the group if still in it and releases the device.
func (l *Log) Close() error {
	if l.closed.Load() {
		return engine.ErrClosed
	}
	var err error
	if l.running.Load() {
		err = l.Flush()
	}
	l.leave()
	l.closed.Store(true)
	if l.raw != nil {
		l.raw.dev.Close()
	}
	return err
}
