package cluster

// Membership rounds, state transfer to joiners, and founding the state.

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/dlog-dev/dlog/engine"
)

func (l *Log) newRound(members []MemberID) {
	l.cur = slices.Clone(members)
	slices.Sort(l.cur)
	l.round = map[MemberID]uint8{}
	l.resolved = false
	l.roundNo++
	l.foundIntent, l.intentSeen = 0, false
	clear(l.merging)
	status := l.status
	if l.leavingAt != 0 {
		status = stRetired
	}
	var flags uint8
	if slices.ContainsFunc(l.cur, func(id MemberID) bool { return l.tookOver[id.NodeID()] && !l.st.isSynced(id) }) {
		flags = annTookOver
	}
	// An unsynced member's ANNOUNCE sent once its partition is seen
	// quorate is its founding intent too (see resolveRound): a founder
	// then needs no second message.
	intent := status == stUnsynced && !l.replaying && l.group != nil && l.group.Quorate()
	seq := l.send(func(seq uint64) []byte { return l.codec.announce(seq, status, flags, len(l.cur)) })
	if intent {
		l.foundIntent = seq
	}
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
		_ = l.tally(ev.from, m)
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

// tally records an ANNOUNCE of the current view. It reports whether this
// member gave up its state for the announcer's (a heal: see heal).
func (l *Log) tally(from MemberID, m message) bool {
	if int(m.Members) != len(l.cur) || !slices.Contains(l.cur, from) {
		return false // sent for another membership
	}
	status := m.Status
	if mm := l.st.members[from]; mm != nil && mm.status == stRetired {
		status = stRetired // announced before its LEAVING was delivered
	}
	yielded := false
	if status == stSynced && l.status == stSynced && !l.replaying && !l.st.isSynced(from) && from != l.me {
		status, yielded = l.heal(from, m.Flags&annTookOver != 0)
	}
	l.round[from] = status
	l.trace("announce delivered", "from", from.String(), "status", status)
	if from == l.me && l.foundIntent != 0 && m.Seq == l.foundIntent {
		l.intentSeen = true
	}
	l.resolveRound(from, m.Seq)
	return yielded
}

// heal settles a member that announces the log's state although this
// member's state does not hold it synced: the two were apart (a partition,
// two_node) and each kept a state. Neither side merged a slot of the
// other's or handed out its regions unless it confirmed the other's node
// fenced (the fencing rule), and a side that is no majority of its last
// view acknowledged no new mark unless it did (minorityHold). So one side
// gives up its state and rejoins the other as after a lost quorum: the
// side that was taken over (fenced) by the other, else the side without
// the lowest member. Both sides decide alike: each sees the other's
// ANNOUNCE, in the same order. Only when each side took the other over
// (a fence confirmation that lied, or --fence-timeout on both halves) is it
// a split brain: this member then fails, before any merge or image write
// of the healed view (serverDuties waits for it to be settled). It returns
// the status to record for from (unsynced when from rejoins this member's
// state) and whether this member gave up its own. mu is held.
func (l *Log) heal(from MemberID, theyTookOver bool) (uint8, bool) {
	weTookOver := l.tookOver[from.NodeID()]
	switch {
	case weTookOver && theyTookOver:
		if l.failed == nil {
			l.failed = fmt.Errorf("cluster: split brain: %s claims the log's state and each side took the other over (fenced)", from)
			l.log.Error("two members hold the log's state and each confirmed the other fenced: refusing hand-outs and flushes", "other", from.String())
		}
		return stSynced, false
	case weTookOver:
	case theyTookOver || from < l.st.synced()[0]:
		l.log.Warn("a partition healed: giving up this side's state for the other side's and rejoining it", "other", from.String())
		l.demote()
		l.stats.yields++
		return stSynced, true
	}
	l.log.Info("a partition healed: the other side rejoins this side's state", "other", from.String())
	return stUnsynced, false
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
	// Found only once our own intent, sent after the partition was seen
	// quorate, was delivered in this very view (its ANNOUNCE, or a later
	// one): the quorum flag and the group view are not updated
	// atomically, and a view from before a merge must not be founded in
	// (two founders). The state is founded at this point of the order,
	// the delivery that completed the round.
	if l.foundIntent == 0 || !l.intentSeen {
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
		l.foundIntent = l.send(func(seq uint64) []byte { return l.codec.announce(seq, l.status, 0, len(l.cur)) })
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
	l.trace("state sent", "bytes", total)
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
	l.carry = nil // the group kept its state
	l.setState(sn.st)
	l.assembly = map[MemberID]*stateAsm{}
	l.replaying = true
	for _, ev := range q {
		l.processFull(ev)
	}
	l.replaying = false
	if m := l.st.members[l.me]; m != nil && m.status == stSynced {
		l.status = stSynced
		l.resetCursor() // this member's share among the synced members
		l.trace("state adopted", "replayed", len(q))
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
	if l.core {
		l.applyCarry(st)
	} else {
		l.foundDisk(st) // applies the carry before it writes the union
		st.slots[0] = slotInfo{owner: l.me, state: slotUsed}
		st.members[l.me].slot = 0
	}
	l.log.Debug("FOUND", "me", l.me, "round", l.round)
	l.setState(st)
	l.status = stSynced
	l.founded = true
	l.queue = nil
	l.trace("founded", "in_sync", st.sync.Count())
	l.log.Info("founded the log's state", "members", len(l.cur), "in_sync", st.sync.Count())
}

// applyCarry clears in st the regions out of sync when this member last
// left the group (keepOutOfSync).
func (l *Log) applyCarry(st *state) {
	for _, r := range l.carry {
		st.sync.Clear(r)
	}
	l.carry = nil
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
	l.applyCarry(st)
	if err := l.raw.writeUnion(g, LiveMagic, st.sync, nil); err != nil {
		l.log.Error("cannot write the log image", "err", err)
	}
	for k := 0; k < g.nslots; k++ {
		l.raw.writeSlotHead(g, k, nil, false)
	}
	l.log.Info("log device read", "live", live, "fresh", r.Fresh, "slots_merged", slotsSeen, "regions_from_slots", merged, "in_sync", st.sync.Count())
}
