package cluster

// Group events: the handler queues them, one loop applies them in order, one sender multicasts.

import (
	"fmt"
	"slices"
	"time"
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
	l.sendReports()
	return l.sendNow(build)
}

// sendNow is send without the pending reports; mu is held.
func (l *Log) sendNow(build func(seq uint64) []byte) uint64 {
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
		t := time.Now()
		err := g.Multicast(m)
		l.mu.Lock()
		if took := time.Since(t); took > 5*time.Millisecond {
			// corosync refused it for a while (CS_ERR_TRY_AGAIN: its
			// queue full, or a membership change being synced).
			l.trace("multicast slow", "bytes", len(m), "took_ms", took.Milliseconds())
		}
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
		} else {
			l.trace("confchg", "members", len(ev.members), "joined", len(ev.joined), "left", len(ev.left))
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
		if l.status == stSynced && l.running.Load() && l.rejoining {
			l.reestablish()
		}
		l.maybeRestart()
		l.maybeWake()
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

// Recovered regions are reported to the group in batches: a SYNCS message
// carries every in-sync report made since the last message this member
// sent, at most reportDelay after the first of them. Every message of this
// member goes after the reports made before it (send sends them first), so
// the group sees this member's events in the order they happened; until a
// report is delivered its region stays held by this member and out of sync
// for the others (their writes to it wait: IS_REMOTE_RECOVERING answers 1),
// which only delays them. Each message keeps corosync's token rotating at
// full speed for a while, taking CPU from the mirror's copies: under qemu
// one message per recovered region made the cluster's idle resync many
// times slower than a single node's, and with a 200 ms delay a slow copy
// (a loaded host) still sent one SYNCS per region or two
// (docs/design/cluster.md, "Idle resync timeline").
const (
	reportDelay = 500 * time.Millisecond
	reportBatch = 64
)

// report queues an in-sync report of r; mu is held.
func (l *Log) report(r uint64) {
	l.reports = append(l.reports, r)
	if len(l.reports) >= reportBatch || len(l.unreported()) == 0 {
		// The grant is used up (the next PROPOSE goes after the
		// reports anyway), or the batch is full.
		l.sendReports()
		return
	}
	if l.reportTimer == nil {
		g := l.group
		l.reportTimer = time.AfterFunc(reportDelay, func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.reportTimer = nil
			if l.group == g {
				l.sendReports()
			}
		})
	}
}

// sendReports multicasts the queued in-sync reports; mu is held.
func (l *Log) sendReports() {
	if len(l.reports) == 0 || l.replaying || l.group == nil || l.sendStop {
		return
	}
	rs := l.reports
	l.reports = nil
	l.trace("syncs sent", "regions", len(rs))
	if l.reportTimer != nil {
		l.reportTimer.Stop()
		l.reportTimer = nil
	}
	l.sendNow(func(seq uint64) []byte { return l.codec.syncs(seq, rs) })
}
