package cluster

// The replicated state machine: every synced member applies the same events in the same order.

import (
	"slices"
	"time"
)

func (l *Log) processFull(ev event) {
	st := l.st
	if ev.cc {
		if !l.replaying {
			l.selfLeft(ev.left)
		}
		for _, id := range ev.left {
			delete(l.assembly, id)
			// A synced member gone without LEAVING: its kernel may
			// still write (only its dlogd may have died).
			l.departure(id, st.isSynced(id))
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
		if l.tally(from, m) {
			// This member gave up its state at a heal: the state it
			// takes may be taken at this very ANNOUNCE.
			l.queue = append(l.queue, ev)
		}
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
		if m.Value == syncTaint {
			if x, held := st.lockedBy(m.Region); held && x != from {
				st.tainted[m.Region] = true
			}
			return
		}
		if m.Value == syncWant {
			if from != l.me && l.canTake(from) {
				l.giveBack(m.Region, from)
			}
			return
		}
		if m.Value == syncRelease {
			l.released(from, m.Region)
			return
		}
		l.applySync(from, m.Region, m.Value == 1)
	case mSyncs:
		if !st.isSynced(from) {
			return
		}
		for _, r := range m.Marks {
			l.applySync(from, r, true)
		}
	case mPropose:
		l.propose(from, m)
	case mVote:
		l.vote(from, m)
	case mLeaving:
		l.departure(from, false)
		if mm := st.members[from]; mm != nil {
			mm.status = stRetired
		}
		if from == l.me && !l.replaying {
			l.status = stRetired
			l.cleanPoint()
		}
	case mMerged:
		// Applied while the slot is still departed and its owner's: a
		// second merge of the same slot (a membership change or a new
		// server before the first MERGED arrived) repeats the first,
		// and its MERGED after the slot was freed is ignored (its
		// regions may have been resynced since).
		if int(m.Slot) >= st.nslots {
			return
		}
		s := &st.slots[m.Slot]
		if s.owner != m.Owner || s.state != slotDeparted {
			return
		}
		for _, r := range m.Marks {
			if st.sync.Clear(r) {
				l.resetCursor()
			}
		}
		if m.Last {
			*s = slotInfo{}
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
		l.log.Debug("STATE", "me", l.me, "from", from, "recipients", sn.recipients, "replay", l.replaying)
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
			l.resetCursor() // the shares of the log change with the synced members
			delete(l.tookOver, r.NodeID())
			if st.unfenced[r.NodeID()] {
				l.rejoin(r)
			}
		}
	case mFenced:
		if st.isSynced(from) && st.unfenced[m.Node] {
			l.log.Info("departed node confirmed fenced: its regions may be resynchronised", "node", m.Node)
			delete(st.unfenced, m.Node)
			delete(st.orphans, m.Node)
			delete(l.fencing, m.Node)
			l.tookOver[m.Node] = true
			l.resetCursor()
			l.restartWanted = true
		}
	}
}

// applySync applies one SET_REGION_SYNC outcome of from for r: its sync
// bit (a recovery reported in sync while a taint holds is discarded), and
// the end of from's hold on r.
func (l *Log) applySync(from MemberID, r uint64, inSync bool) {
	st := l.st
	if inSync && !st.tainted[r] {
		st.sync.Set(r)
	} else if st.sync.Clear(r) {
		l.resetCursor()
	}
	st.ungrant(from, r)
	if from == l.me {
		delete(l.override, r)
		l.nover.Store(int32(len(l.override)))
	}
}

// released applies a RELEASE of from: r, given back unrecovered, is out
// of sync and held by nobody. A member whose kernel waits to write r
// proposes it first, at once.
func (l *Log) released(from MemberID, r uint64) {
	held := l.st.ungrant(from, r)
	if from == l.me {
		delete(l.givenBack, r)
		return
	}
	if !held || l.replaying || !l.wants(r) || l.st.sync.Test(r) || l.halted.Load() {
		return // (halted: this kernel recovers nothing now; the region stays free for others)
	}
	l.stats.takenBack++
	delete(l.skipped, r)
	l.prio = slices.DeleteFunc(l.prio, func(x uint64) bool { return x == r })
	l.prio = slices.Insert(l.prio, 0, r)
	l.proposeBatch()
}

// rejoin: a member on a node whose previous member departed without
// LEAVING became synced. Its kernel is the one that kept running: the
// departed member's marks become the new member's (its kernel still holds
// them dirty and will clear them), and its kernel may hold any hint.
func (l *Log) rejoin(id MemberID) {
	st := l.st
	node := id.NodeID()
	if o, ok := st.orphans[node]; ok {
		orBits(bitsFor(st.marksOf, id, l.n), o)
		if id == l.me {
			orBits(l.mine, o)
		}
	}
	if id == l.me {
		if !l.core {
			for k := 0; k < st.nslots; k++ {
				s := st.slots[k]
				if s.state != slotDeparted || s.owner.NodeID() != node {
					continue
				}
				desc, marks, err := l.raw.readSlot(l.geo, k)
				if err != nil {
					l.log.Error("cannot read this node's previous slot: its regions are not protected from resync", "slot", k, "err", err)
					continue
				}
				if desc.owner == s.owner {
					for _, r := range marks {
						l.mine.Set(r)
					}
				}
			}
		}
		l.promise(l.n)
		l.keepHint = true
		l.log.Info("rejoined after this node's previous member departed: its marks are this member's", "marks", l.mine.Count())
	}
	delete(st.unfenced, node)
	delete(st.orphans, node)
	delete(l.fencing, node)
	// The departed member's regions become out of sync (its slot merged,
	// or its replicated marks), and a kernel that latched full sync never
	// asks for them: the rejoined member, whose kernel holds them, restarts
	// its mirror once they are known, so that it asks.
	if id == l.me {
		l.restartWanted = true
	}
}

// departure forgets what a leaving or dead member held: its hand-out and
// proposal go, its votes are no longer awaited, and every region it had
// marked becomes out of sync (clustered-core: from its replicated marks;
// clustered-disk: its slot is merged by the server).
func (l *Log) departure(id MemberID, unclean bool) {
	st := l.st
	mm := st.members[id]
	if mm == nil {
		return
	}
	if unclean {
		node := id.NodeID()
		if !st.unfenced[node] {
			l.log.Warn("a member departed without leaving: nothing is resynchronised until its dlogd rejoins or its node is confirmed fenced", "member", id.String())
		}
		st.unfenced[node] = true
		if mk, ok := st.marksOf[id]; ok {
			orBits(bitsFor(st.orphans, node, l.n), mk)
		}
		// Open proposals lose their vote from a kernel that may still
		// write: dropped, not granted.
		for x := range st.pending {
			st.dropProposal(x)
			if x == l.me {
				l.myProp = 0
			}
		}
	}
	st.dropGrants(id)
	if id == l.me {
		l.myProp = 0
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

// propose applies a PROPOSE of x: the proposed regions still out of sync
// and held by nobody (in the proposal's order, up to maxBatch held by x in
// all) are put to the vote of every other synced member. Every member
// trims alike: they apply the same events in the same order.
func (l *Log) propose(x MemberID, m message) {
	st := l.st
	var regions []uint64
	room := maxBatch - len(st.grants[x])
	for _, r := range m.Regions {
		if _, locked := st.lockedBy(r); !locked && !st.sync.Test(r) && len(regions) < room {
			regions = append(regions, r)
		}
	}
	if !st.isSynced(x) || len(regions) == 0 || st.pending[x] != nil || len(st.unfenced) > 0 {
		if x == l.me && l.myProp == m.Proposal {
			l.myProp = 0
			for _, r := range m.Regions {
				l.skipped[r] = true
			}
		}
		return
	}
	p := &proposal{id: m.Proposal, regions: regions, accept: allOf(len(regions))}
	for _, id := range st.synced() {
		if id != x {
			p.waiting = append(p.waiting, id)
		}
	}
	st.pending[x] = p
	l.trace("propose delivered", "from", x.String(), "regions", len(regions), "voters", len(p.waiting))
	if len(p.waiting) == 0 {
		l.grant(x, p)
		return
	}
	l.log.Debug("PROPOSE", "me", l.me, "from", x, "id", m.Proposal, "regions", regions, "waiting", p.waiting, "replay", l.replaying)
	if slices.Contains(p.waiting, l.me) && !l.replaying {
		var accept uint64
		for i, r := range regions {
			if l.accept(r) {
				accept |= 1 << i
			}
		}
		l.log.Debug("vote", "me", l.me, "accept", accept, "proposer", x, "id", m.Proposal)
		l.send(func(seq uint64) []byte { return l.codec.vote(seq, x, m.Proposal, accept) })
		// A region this node's kernel waits to write, voted to x: want
		// it back now, not at the kernel's next ask (up to 250 ms on):
		// x gives it back at its grant if its kernel was not handed it.
		now := time.Now()
		for i, r := range regions {
			if accept&(1<<i) != 0 && l.wants(r) {
				l.want(r, now)
			}
		}
	}
}

// accept is this member's vote on another member recovering r: no if this
// node has r marked (its writes may be in flight), has just told its kernel
// r is not recovering, may hold r as NOSYNC in its kernel, handed r to its
// kernel for recovery and has not had its report (the copy may be running
// though this member's hold of r ended: after a partition heal, say), or
// has no quorum. All of it is this node's own state: a vote is its own
// decision.
func (l *Log) accept(r uint64) bool {
	if l.started[r] {
		return false
	}
	l.pmu.Lock()
	l.releaseFor(r) // a held clear: this node's writes to r are done
	l.pmu.Unlock()
	if l.failed != nil || l.group == nil || !l.group.Quorate() || l.mine.Test(r) || l.ns[r] {
		return false
	}
	if t, ok := l.reserved[r]; ok && time.Now().Before(t) {
		return false
	}
	_, ov := l.override[r]
	return !ov
}

// vote applies a VOTE: the proposal keeps the regions every vote accepted;
// it is granted once the last vote arrives, dropped as soon as no region is
// left.
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
	p.waiting = slices.Delete(p.waiting, i, i+1)
	p.accept &= m.Accept
	if p.accept == 0 {
		st.dropProposal(m.Proposer)
		if m.Proposer == l.me {
			l.myProp = 0
			for _, r := range p.regions {
				l.skipped[r] = true
			}
			l.stats.vetoes++
		}
		return
	}
	if len(p.waiting) == 0 {
		l.grant(m.Proposer, p)
	}
}

// grant ends proposal p of x: its accepted regions join x's grant, the
// vetoed ones are free again.
func (l *Log) grant(x MemberID, p *proposal) {
	st := l.st
	got := p.accepted()
	l.log.Debug("GRANT", "me", l.me, "to", x, "regions", got, "id", p.id)
	l.trace("grant", "to", x.String(), "regions", len(got), "of", len(p.regions))
	delete(st.pending, x)
	st.grants[x] = append(st.grants[x], got...)
	for _, r := range p.regions {
		if !slices.Contains(got, r) {
			st.untaint(r)
			if x == l.me {
				l.skipped[r] = true
			}
		}
	}
	if x == l.me {
		l.myProp = 0
		l.stats.grants++
		if len(got) < len(p.regions) {
			l.stats.vetoes++
		}
		// Regions a peer's kernel asked for while they were proposed.
		// A region given back before is granted only once its RELEASE
		// was applied (a held region is never proposed): forget it, even
		// if that RELEASE was applied in a state this member adopted.
		for _, r := range got {
			delete(l.givenBack, r)
			if w, ok := l.wanted[r]; ok && w.prop == p.id && l.canTake(w.by) {
				l.giveBack(r, w.by)
			}
		}
		clear(l.wanted)
	}
}
