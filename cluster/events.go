package cluster

// Group events: the handler queues them, one loop applies them in order, one sender multicasts.

import (
	"fmt"
	"slices"
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
