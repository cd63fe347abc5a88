package cluster

// Quorum loss: a synced member whose partition loses quorum drops to unsynced and rejoins like a joiner.

import (
	"time"
)

// quorumPoll is how often a member checks its partition's quorum.
const quorumPoll = 250 * time.Millisecond

// watchQuorum demotes this member when its partition loses quorum while it
// is synced: it acknowledges no new mark (FLUSH holds them) and hands out
// nothing until it has taken the group's state again, from the quorate
// side after a heal, as a joiner does (the quorate side took it for
// departed). It runs while g is this log's group.
func (l *Log) watchQuorum(g Group, done <-chan struct{}) {
	t := time.NewTicker(quorumPoll)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		q := g.Quorate()
		l.mu.Lock()
		if l.group != g {
			l.mu.Unlock()
			return
		}
		if !q && l.status == stSynced && l.leavingAt == 0 {
			l.log.Warn("partition lost quorum: holding new marks and resync until this member has the quorate group's state again")
			l.demote()
		}
		l.maybeWake() // vetoes and reservations lapse with time
		l.mu.Unlock()
	}
}

// demote makes this synced member unsynced, keeping the state it has for
// its kernel's answers; mu is held.
func (l *Log) demote() {
	l.status = stUnsynced
	l.rejoining = true
	l.queue = nil
	l.myProp = 0
	l.resolved = false
	l.cond.Broadcast()
}

// reestablish runs when a demoted member is synced again while its kernel
// runs: its marks go to the group as at RESUME (a new slot, or a MARKS
// message), its hint stays; mu is held.
func (l *Log) reestablish() {
	l.rejoining = false
	if !l.core {
		l.pmu.Lock()
		old := l.slot
		l.slot = nil
		l.pmu.Unlock()
		if old != nil {
			old.Close()
		}
		l.openSlotOrFail()
	} else if l.mine.Count() > 0 {
		// The new marks stay queued: a FLUSH that waited for quorum
		// takes them (sent again, a harmless duplicate) and holds the
		// write while another member holds a region for recovery
		// (holdFor), as it would have without the partition.
		l.rejoinSeq = l.sendAllMarks()
	}
	l.restartWanted = true // its kernel may have been told "no work" meanwhile
	l.log.Info("back in the quorate group with its state", "marks", l.mine.Count())
}

// acknowledging reports whether a FLUSH with new marks may answer: this
// member is synced, in a quorate partition that is no minority hold, and
// its marks are back in the group; mu is held.
func (l *Log) acknowledging() bool {
	return l.status == stSynced && !l.rejoining && l.delivered >= l.rejoinSeq && l.group != nil && l.group.Quorate() && !l.minorityHold()
}

// minorityHold reports whether this member's side is no strict majority of
// the nodes of its last view (its synced members' nodes and the nodes of
// members departed without LEAVING and not confirmed fenced) while one of
// those is unconfirmed: corosync's quorum alone does not say the other
// side stopped (two_node keeps both halves of a pair quorate, and so may
// a tie-breaker), so a new mark would be one that side cannot see. It
// holds FLUSHes of new marks and merges (hand-outs wait for the unfenced
// nodes already) until the nodes rejoin or are confirmed fenced. mu is
// held.
func (l *Log) minorityHold() bool {
	st := l.st
	if len(st.unfenced) == 0 {
		l.holdWarned = false
		return false
	}
	live := map[uint32]bool{}
	for _, id := range st.synced() {
		live[id.NodeID()] = true
	}
	gone := 0
	for n := range st.unfenced {
		if !live[n] {
			gone++
		}
	}
	hold := 2*len(live) <= len(live)+gone
	if hold && !l.holdWarned {
		l.log.Warn("this side is no majority of the last view and a departed node is not confirmed fenced: holding new marks until it rejoins or is confirmed fenced", "nodes", len(live), "unconfirmed", gone)
	}
	l.holdWarned = hold
	return hold
}
