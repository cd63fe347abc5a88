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
			l.demote()
		}
		l.mu.Unlock()
	}
}

// demote makes this synced member unsynced, keeping the state it has for
// its kernel's answers; mu is held.
func (l *Log) demote() {
	l.log.Warn("partition lost quorum: holding new marks and resync until this member has the quorate group's state again")
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
		l.pmu.Lock()
		l.newMarks, l.newClear = nil, nil
		l.pmu.Unlock()
		l.rejoinSeq = l.sendAllMarks()
	}
	l.restartWanted = true // its kernel may have been told "no work" meanwhile
	l.log.Info("back in the quorate group with its state", "marks", l.mine.Count())
}

// acknowledging reports whether a FLUSH with new marks may answer: this
// member is synced, in a quorate partition, and its marks are back in the
// group; mu is held.
func (l *Log) acknowledging() bool {
	return l.status == stSynced && !l.rejoining && l.delivered >= l.rejoinSeq && l.group != nil && l.group.Quorate()
}
