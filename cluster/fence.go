package cluster

// Fencing: a departed node's regions wait for its dlogd to rejoin or for its node to be confirmed fenced.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// errNoFencing: neither Options.FenceConfirm nor Options.FenceTimeout.
var errNoFencing = errors.New("no fence confirmation configured (--fence-confirm, --fence-timeout): waiting for the node's dlogd to rejoin")

// fenceRetry is how often an unconfirmed node is asked about again.
const fenceRetry = 2 * time.Second

// fenceDuties: the server confirms every unfenced node that has no member
// in the group (one that has is rejoining) and multicasts FENCED; mu is
// held.
func (l *Log) fenceDuties() {
	if len(l.st.unfenced) == 0 || l.replaying || l.group == nil || !l.isServer() || l.failed != nil || !l.group.Quorate() {
		return
	}
	for node := range l.st.unfenced {
		if l.fencing[node] || l.hasMemberOn(node) {
			continue
		}
		l.fencing[node] = true
		go l.confirmFenced(l.group, node)
	}
}

func (l *Log) hasMemberOn(node uint32) bool {
	for _, id := range l.cur {
		if id.NodeID() == node {
			return true
		}
	}
	return false
}

func (l *Log) confirmFenced(g Group, node uint32) {
	err := l.fenceCheck(g, node)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.group != g || !l.st.unfenced[node] {
		return
	}
	if err == nil && l.isServer() {
		l.log.Info("departed node confirmed fenced", "node", node)
		l.send(func(seq uint64) []byte { return l.codec.fenced(seq, node) })
		return // fencing[node] stays set until FENCED is delivered
	}
	if err != nil {
		l.log.Warn("a departed node is not confirmed fenced: its regions are not resynchronised yet", "node", node, "err", err)
	}
	time.AfterFunc(fenceRetry, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.group == g {
			delete(l.fencing, node)
			l.fenceDuties()
		}
	})
}

// fenceCheck asks Options.FenceConfirm, or waits Options.FenceTimeout with
// the node out of the membership; mu is not held.
func (l *Log) fenceCheck(g Group, node uint32) error {
	if f := l.opts.FenceConfirm; f != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return f(ctx, node)
	}
	if l.opts.FenceTimeout <= 0 {
		return errNoFencing
	}
	nv, ok := g.(NodeView)
	if !ok {
		return fmt.Errorf("%s does not report node membership, which --fence-timeout needs: configure --fence-confirm", l.opts.Messenger.Name())
	}
	deadline := time.Now().Add(l.opts.FenceTimeout)
	for {
		if nv.NodeMember(node) {
			return fmt.Errorf("node %d is still a cluster member (only its dlogd left): waiting for its dlogd to rejoin", node)
		}
		if !time.Now().Before(deadline) {
			return nil
		}
		time.Sleep(min(time.Until(deadline), 100*time.Millisecond))
	}
}

// maybeRestart restarts the mirror (Options.Restart) once the regions of a
// fenced node, or of a member whose dlogd died and rejoined, are known out
// of sync (clustered-disk: its slot merged), or once this member is back
// after a lost quorum, when this node's kernel will not ask for resync
// work again by itself even when woken: it latched full sync (its
// in_sync_hint reached the region count, so get_resync_work returns
// without asking until a resume resets it). A kernel that was answered
// "no work" without latching is woken instead (maybeWake), or restarted
// when there is no Options.Wake. mu is held.
func (l *Log) maybeRestart() {
	st := l.st
	if !l.restartWanted || l.opts.Restart == nil || l.replaying || l.status != stSynced || !l.running.Load() || l.halted.Load() {
		return
	}
	if len(st.unfenced) > 0 || slices.ContainsFunc(st.slots[:st.nslots], func(s slotInfo) bool { return s.state == slotDeparted }) {
		return // not yet: the regions are not all known
	}
	l.restartWanted = false
	if st.sync.Count() >= l.n {
		return // nothing to resync
	}
	if l.promised.Load() < l.n && (!l.stalled || l.opts.Wake != nil) {
		return // the kernel still asks for work, or a wake makes it ask
	}
	l.stalled = false
	l.restartMirror("regions of a departed member to resync, and this node's kernel latched full sync: restarting the mirror so that it resyncs them")
}

// Restart retries: the kernel sends its POSTSUSPEND and RESUME once
// (dm-log-userspace-base.c sends them with dm_consult_userspace, not
// through the reconnecting userspace_do_request), so a netlink receive
// queue overrun while the mirror is restarted can drop them: the mirror
// then runs ("log postsuspend failed", "log resume failed") while this
// log stays halted, hands out no work and never resyncs.
const (
	restartTries = 5
	restartRetry = 2 * time.Second
)

// restartMirror runs Options.Restart on its own goroutine, one at a time,
// and again while the log is left halted after it (its POSTSUSPEND or
// RESUME lost, see restartTries); mu is held.
func (l *Log) restartMirror(why string) {
	if l.opts.Restart == nil || l.restarting {
		return
	}
	l.restarting = true
	restart, uuid := l.opts.Restart, l.uuid
	l.log.Info(why)
	go func() {
		defer func() {
			l.mu.Lock()
			l.restarting = false
			l.mu.Unlock()
		}()
		for try := 1; ; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			err := restart(ctx, uuid)
			cancel()
			if err != nil {
				l.log.Error("cannot restart the mirror; suspend and resume it to resync a departed member's regions", "err", err)
				return
			}
			if l.closed.Load() || !l.halted.Load() {
				return
			}
			if try == restartTries {
				l.log.Error("the mirror was restarted but this log never saw its POSTSUSPEND or RESUME; suspend and resume the mirror", "tries", try)
				return
			}
			l.log.Warn("the mirror was restarted but this log saw no POSTSUSPEND or RESUME (a netlink receive queue overrun drops them, and the kernel does not resend them): restarting it again", "try", try)
			time.Sleep(restartRetry)
		}
	}()
}
