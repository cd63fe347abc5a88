//go:build linux

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/ulog"
)

// Owner steps and their weights: what dm-raid1 and dm do with a mirror.
var ownerSteps = []struct {
	name      string
	weight    int
	lifecycle bool // changes the instances: takes the log's life lock
}{
	{"write", 40, false},
	{"clear", 22, false},
	{"resync", 12, false},
	{"query", 14, false},
	{"suspend", 4, true},
	{"reload", 3, true},
	{"reactivate", 2, true},
}

// loop is a client's life: steps on the logs it owns (writes, clears,
// resync, suspend/resume, reloads), and status queries on any log, until
// stop is closed.
func (c *kclient) loop(ctx context.Context, stop <-chan struct{}, owned, all []*soakLog) {
	total := 0
	for _, s := range ownerSteps {
		total += s.weight
	}
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		if len(owned) > 0 && c.rng.IntN(10) < 8 {
			l := owned[c.rng.IntN(len(owned))]
			x := c.rng.IntN(total)
			for _, s := range ownerSteps {
				if x -= s.weight; x < 0 {
					if s.lifecycle && !l.lifecycleDue(c.rng, c.s.cfg.LifeEvery) {
						c.step(ctx, l, "write", false)
						break
					}
					c.step(ctx, l, s.name, s.lifecycle)
					break
				}
			}
		} else {
			l := all[c.rng.IntN(len(all))]
			if l.life.TryRLock() {
				c.s.gate.RLock()
				c.inStep = true
				c.doing.Store("reader query on " + l.name)
				if in := l.liveInst(); in != nil {
					c.query(ctx, l, in)
				}
				c.inStep = false
				c.s.gate.RUnlock()
				l.life.RUnlock()
			}
		}
		c.doing.Store("idle")
		// Think time: a kernel is not a busy loop, and the machine is shared.
		if t := c.s.cfg.Think; t > 0 {
			time.Sleep(time.Duration(c.rng.Int64N(2 * int64(t))))
		}
	}
}

// step runs one named step on l holding the locks it needs.
func (c *kclient) step(ctx context.Context, l *soakLog, name string, lifecycle bool) error {
	if lifecycle {
		l.life.Lock()
		defer l.life.Unlock()
	} else {
		l.life.RLock()
		defer l.life.RUnlock()
	}
	c.s.gate.RLock()
	c.inStep = true
	defer func() {
		c.inStep = false
		c.s.gate.RUnlock()
	}()
	c.doing.Store(name + " on " + l.name)
	l.mu.Lock()
	deactivated := l.live == nil
	l.mu.Unlock()
	if deactivated {
		if !lifecycle {
			return nil
		}
		_, err := c.activate(ctx, l)
		return err
	}
	var err error
	switch name {
	case "write":
		err = c.write(ctx, l, nil)
	case "clear":
		err = c.clear(ctx, l, nil)
	case "resync":
		err = c.resync(ctx, l)
	case "query":
		if in := l.liveInst(); in != nil {
			err = c.query(ctx, l, in)
		}
	case "suspend":
		err = c.suspendResume(ctx, l)
	case "reload":
		_, err = c.reload(ctx, l)
	case "reactivate":
		err = c.reactivate(ctx, l)
	}
	if err != nil && ctx.Err() == nil {
		c.s.fail("%s: %s on %s (%s): %v", c.name, name, l.name, l.kind(), err)
	}
	return err
}

// expect judges a reply's result: 0 is fine; -EIO was judged when it
// arrived (onEIO); -ESRCH is what a failed reconnect gives, expected only
// while device faults are injected; anything else is a failure.
func (c *kclient) expect(l *soakLog, in *instance, typ ulog.RequestType, res int32) bool {
	switch res {
	case 0:
		return true
	case fakekernel.EIO:
		return false
	case fakekernel.ESRCH:
		if g := c.s.current(); g.mode.name == "normal" && g.n == c.gen {
			if expect, _ := l.expectingEIO(); !expect {
				c.s.fail("%s: %s on %s luid %#x: -ESRCH even after the reconnect, in a run without faults", c.name, typ, l.name, in.luid)
			}
		}
		return false
	}
	c.s.fail("%s: %s on %s (%s) luid %#x: unexpected error %d", c.name, typ, l.name, l.kind(), in.luid, res)
	return false
}

// write is one write batch of dm-raid1: IS_REMOTE_RECOVERING and IN_SYNC
// for the regions, then the marks made durable before the data is
// written: MARK_REGION + FLUSH, or FLUSH carrying the marks (integrated
// flush). in is the instance (nil: the live one).
func (c *kclient) write(ctx context.Context, l *soakLog, in *instance) error {
	if in == nil {
		if in = l.liveInst(); in == nil {
			return nil
		}
	}
	n := 1 + c.rng.IntN(6)
	if c.rng.IntN(8) == 0 {
		n = 32
	}
	rs := l.unmarkedHot(c.rng, n)
	if len(rs) == 0 {
		return nil
	}
	res, d, err := c.do(ctx, l, in, ulog.TypeIsRemoteRecovering, u64(rs[0]))
	if err != nil {
		return err
	}
	if res == 0 {
		c.checkRecovering(l, rs[0], d)
	}
	for _, r := range rs[:min(len(rs), 3)] {
		res, d, err := c.do(ctx, l, in, ulog.TypeInSync, u64(r))
		if err != nil {
			return err
		}
		if res == 0 {
			c.checkBool(l, ulog.TypeInSync, d)
		}
	}
	l.setMarked(rs)
	if l.integrated {
		res, _, err := c.do(ctx, l, in, ulog.TypeFlush, regionList(rs))
		if err != nil {
			return err
		}
		if c.expect(l, in, ulog.TypeFlush, res) {
			l.acked(rs)
			c.s.st.marksAcked.Add(uint64(len(rs)))
		}
		return nil
	}
	res, _, err = c.do(ctx, l, in, ulog.TypeMarkRegion, regionList(rs))
	if err != nil || !c.expect(l, in, ulog.TypeMarkRegion, res) {
		return err
	}
	t := l.tagNow(c.gen)
	res, _, err = c.do(ctx, l, in, ulog.TypeFlush, nil)
	if err != nil {
		return err
	}
	if c.expect(l, in, ulog.TypeFlush, res) {
		if l.tagNow(c.gen) == t {
			l.acked(rs)
			c.s.st.marksAcked.Add(uint64(len(rs)))
		} else {
			// The daemon lost the marks (restart or reconnect) before
			// this FLUSH: the kernel would believe them durable. See the
			// report: a protocol limitation, not counted.
			c.s.st.marksDropped.Add(uint64(len(rs)))
		}
	}
	return nil
}

// clear is dm-raid1's state update pass: the regions whose writes completed
// are cleared, then flushed (at once, or lazily with integrated flush).
func (c *kclient) clear(ctx context.Context, l *soakLog, in *instance) error {
	if in == nil {
		if in = l.liveInst(); in == nil {
			return nil
		}
	}
	rs := l.someMarked(c.rng, 1+c.rng.IntN(16))
	if len(rs) == 0 {
		return nil
	}
	l.clearing(rs) // from here the regions may be clean
	res, _, err := c.do(ctx, l, in, ulog.TypeClearRegion, regionList(rs))
	if err != nil {
		return err
	}
	c.expect(l, in, ulog.TypeClearRegion, res)
	if l.integrated && c.rng.IntN(2) == 0 {
		return nil // the lazy flush: a later FLUSH covers the clears
	}
	res, _, err = c.do(ctx, l, in, ulog.TypeFlush, nil)
	if err != nil {
		return err
	}
	c.expect(l, in, ulog.TypeFlush, res)
	return nil
}

// resync is dm-raid1's recovery: GET_SYNC_COUNT, then for a few regions
// GET_RESYNC_WORK, SET_REGION_SYNC, and the CLEAR + FLUSH of the recovered
// region (unless writes to it are in flight).
func (c *kclient) resync(ctx context.Context, l *soakLog) error {
	in := l.liveInst()
	if in == nil {
		return nil
	}
	res, d, err := c.do(ctx, l, in, ulog.TypeGetSyncCount, nil)
	if err != nil || !c.expect(l, in, ulog.TypeGetSyncCount, res) {
		return err
	}
	n, _ := ulog.Int64(d)
	if uint64(n) > l.regions {
		c.s.fail("%s: GET_SYNC_COUNT of %s is %d, more than its %d regions", c.name, l.name, n, l.regions)
	}
	if uint64(n) >= l.regions {
		return nil
	}
	for range 1 + c.rng.IntN(4) {
		res, d, err := c.do(ctx, l, in, ulog.TypeGetResyncWork, nil)
		if err != nil || !c.expect(l, in, ulog.TypeGetResyncWork, res) {
			return err
		}
		i, r, _ := ulog.Pair(d)
		if i != 0 && i != 1 {
			c.s.fail("%s: GET_RESYNC_WORK of %s answered i=%d (want 0 or 1)", c.name, l.name, i)
			return nil
		}
		if i == 0 {
			return nil
		}
		if r >= l.regions {
			c.s.fail("%s: GET_RESYNC_WORK of %s handed out region %d of %d", c.name, l.name, r, l.regions)
			return nil
		}
		res, _, err = c.do(ctx, l, in, ulog.TypeSetRegionSync, ulog.AppendRegionSync(nil, r, 1))
		if err != nil {
			return err
		}
		c.expect(l, in, ulog.TypeSetRegionSync, res)
		if l.isMarked(r) {
			continue // writes in flight: the kernel clears it when they end
		}
		l.clearing([]uint64{r})
		res, _, err = c.do(ctx, l, in, ulog.TypeClearRegion, u64(r))
		if err != nil {
			return err
		}
		c.expect(l, in, ulog.TypeClearRegion, res)
		if !l.integrated || c.rng.IntN(2) == 0 {
			res, _, err = c.do(ctx, l, in, ulog.TypeFlush, nil)
			if err != nil {
				return err
			}
			c.expect(l, in, ulog.TypeFlush, res)
		}
	}
	return nil
}

// query is what status tools and the read path ask: IN_SYNC, IS_CLEAN,
// IS_REMOTE_RECOVERING, GET_SYNC_COUNT, STATUS_INFO.
func (c *kclient) query(ctx context.Context, l *soakLog, in *instance) error {
	r := c.rng.Uint64N(l.regions)
	switch c.rng.IntN(5) {
	case 0:
		res, d, err := c.do(ctx, l, in, ulog.TypeInSync, u64(r))
		if err == nil && c.expect(l, in, ulog.TypeInSync, res) {
			c.checkBool(l, ulog.TypeInSync, d)
		}
		return err
	case 1:
		res, d, err := c.do(ctx, l, in, ulog.TypeIsClean, u64(r))
		if err == nil && c.expect(l, in, ulog.TypeIsClean, res) {
			c.checkBool(l, ulog.TypeIsClean, d)
		}
		return err
	case 2:
		res, d, err := c.do(ctx, l, in, ulog.TypeIsRemoteRecovering, u64(r))
		if err == nil && c.expect(l, in, ulog.TypeIsRemoteRecovering, res) {
			c.checkRecovering(l, r, d)
		}
		return err
	case 3:
		res, d, err := c.do(ctx, l, in, ulog.TypeGetSyncCount, nil)
		if err == nil && c.expect(l, in, ulog.TypeGetSyncCount, res) {
			if n, _ := ulog.Int64(d); uint64(n) > l.regions {
				c.s.fail("%s: GET_SYNC_COUNT of %s is %d, more than its %d regions", c.name, l.name, n, l.regions)
			}
		}
		return err
	default:
		_, err := c.status(ctx, l, in)
		return err
	}
}

// status asks STATUS_INFO and checks the string (docs/protocol.md §5.1); it
// returns the device flag (A, D, F) of a disk log.
func (c *kclient) status(ctx context.Context, l *soakLog, in *instance) (byte, error) {
	res, d, err := c.do(ctx, l, in, ulog.TypeStatusInfo, nil)
	if err != nil || !c.expect(l, in, ulog.TypeStatusInfo, res) {
		return 0, err
	}
	s, ok := strings.CutSuffix(string(d), "\x00")
	if !ok {
		c.s.fail("%s: STATUS_INFO of %s %q has no terminating NUL", c.name, l.name, d)
		return 0, nil
	}
	if !l.disk {
		if s != "1 clustered-core" {
			c.s.fail("%s: STATUS_INFO of %s is %q, want \"1 clustered-core\"", c.name, l.name, s)
		}
		return 'A', nil
	}
	f := strings.Fields(s)
	if len(f) != 4 || f[0] != "3" || f[1] != "clustered-disk" || len(f[3]) != 1 || !strings.Contains("ADF", f[3]) {
		c.s.fail("%s: STATUS_INFO of %s is %q, want \"3 clustered-disk <dev> A|D|F\"", c.name, l.name, s)
		return 0, nil
	}
	flag := f[3][0]
	if flag != 'A' && c.s.current().mode.name == "normal" && c.gen == c.s.current().n {
		if _, degraded := l.expectingEIO(); !degraded {
			c.s.fail("%s: STATUS_INFO of %s is %q in a run without faults (dlogd says: %s)", c.name, l.name, s, c.s.tap.lastMatching(l.uuid))
		}
	}
	return flag, nil
}

func (c *kclient) checkBool(l *soakLog, typ ulog.RequestType, d []byte) {
	if v, _ := ulog.Int64(d); v != 0 && v != 1 {
		c.s.fail("%s: %s of %s answered %d (want 0 or 1)", c.name, typ, l.name, v)
	}
}

func (c *kclient) checkRecovering(l *soakLog, r uint64, d []byte) {
	rec, hint, _ := ulog.Pair(d)
	if rec != 0 && rec != 1 {
		c.s.fail("%s: IS_REMOTE_RECOVERING(%d) of %s answered %d (want 0 or 1)", c.name, r, l.name, rec)
	}
	if hint > l.regions {
		c.s.fail("%s: IS_REMOTE_RECOVERING(%d) of %s: in_sync_hint %d beyond %d regions", c.name, r, l.name, hint, l.regions)
	}
}

// syncCount is GET_SYNC_COUNT, or -1 when it failed.
func (c *kclient) syncCount(ctx context.Context, l *soakLog, in *instance) (int64, error) {
	res, d, err := c.do(ctx, l, in, ulog.TypeGetSyncCount, nil)
	if err != nil || res != 0 {
		return -1, err
	}
	n, _ := ulog.Int64(d)
	return n, nil
}

// suspendResume is dm's suspend and resume of the mirror: PRESUSPEND, the
// worker drains (more clears and flushes may come), POSTSUSPEND, RESUME;
// then every acknowledged mark must read dirty (disk) or the sync state
// must have survived (core).
func (c *kclient) suspendResume(ctx context.Context, l *soakLog) error {
	in := l.liveInst()
	if in == nil {
		return nil
	}
	gen0 := c.gen
	var before int64 = -1
	if !l.disk {
		var err error
		if before, err = c.syncCount(ctx, l, in); err != nil {
			return err
		}
		gen0 = c.gen
	}
	if err := c.directStep(ctx, l, in, ulog.TypePresuspend); err != nil {
		return err
	}
	l.setState(in, stPresuspended)
	if c.rng.IntN(2) == 0 {
		if err := c.clear(ctx, l, in); err != nil {
			return err
		}
	}
	if err := c.directStep(ctx, l, in, ulog.TypePostsuspend); err != nil {
		return err
	}
	l.setState(in, stSuspended)
	l.mu.Lock()
	clear(l.marked) // suspended: no write is in flight
	l.mu.Unlock()
	if err := c.directStep(ctx, l, in, ulog.TypeResume); err != nil {
		return err
	}
	l.setState(in, stRunning)
	if l.disk {
		return c.checkDirty(ctx, l, in, "suspend/resume")
	}
	after, err := c.syncCount(ctx, l, in)
	if err != nil {
		return err
	}
	if c.gen == gen0 && after != before && after >= 0 && before >= 0 {
		c.s.fail("%s: clustered-core %s: %d regions in sync before suspend, %d after resume (the state must survive)", c.name, l.name, before, after)
	}
	c.s.st.coreChecks.Add(1)
	return nil
}

// expectDirect judges the result of a direct request: -ESRCH is what the
// kernel gets after a restart (it logs it and goes on), -EIO what a faulty
// device gives.
func (c *kclient) expectDirect(l *soakLog, in *instance, typ ulog.RequestType, res int32) {
	switch res {
	case 0, fakekernel.EIO, fakekernel.ESRCH:
	default:
		c.s.fail("%s: %s on %s luid %#x: unexpected error %d", c.name, typ, l.name, in.luid, res)
	}
}

// directStep sends typ for in without the reconnect logic
// (direct) and checks its answer (expectDirect).
func (c *kclient) directStep(ctx context.Context, l *soakLog, in *instance, typ ulog.RequestType) error {
	res, err := c.direct(ctx, l, in, typ)
	if err != nil {
		return err
	}
	c.expectDirect(l, in, typ, res)
	return nil
}

// reloadResult says how a reload went, for the fault episodes.
type reloadResult struct {
	ctrErr int32 // the CTR's error: the reload was refused
}

// reload is a live table reload: CTR(new luid) and GET_REGION_SIZE while
// the old instance serves, PRESUSPEND(old) (the worker may still flush),
// POSTSUSPEND(old), RESUME(new), DTR(old) (docs/protocol.md §6.4, docs/conformance.md item
// 45). After RESUME(new) every acknowledged mark must read dirty.
func (c *kclient) reload(ctx context.Context, l *soakLog) (reloadResult, error) {
	old := l.liveInst()
	if old == nil {
		return reloadResult{}, nil
	}
	nw := &instance{luid: c.s.newLUID(), ctr: l.ctr}
	// The mirror keeps doing I/O through the old table while the new one
	// is loaded: IN_SYNC for the old instance from another kernel context.
	stopIO := c.backgroundIO(ctx, l, old)
	res, err := c.ctr(ctx, l, nw)
	if err != nil || res != 0 {
		stopIO()
	}
	if err != nil {
		return reloadResult{}, err
	}
	if res != 0 {
		// The table load fails; the old table stays live.
		if expect, _ := l.expectingEIO(); !expect {
			c.s.fail("%s: reload of %s: CTR failed with %d (dlogd says: %s)", c.name, l.name, res, c.s.tap.lastMatching(l.uuid, "CTR"))
		}
		return reloadResult{ctrErr: res}, nil
	}
	l.mu.Lock()
	l.next = nw
	l.mu.Unlock()
	genBefore := c.gen
	err = c.regionSize(ctx, l, nw)
	stopIO() // dm suspends the old table: its I/O drains
	if err != nil {
		return reloadResult{}, err
	}
	if err := c.directStep(ctx, l, old, ulog.TypePresuspend); err != nil {
		return reloadResult{}, err
	}
	l.setState(old, stPresuspended)
	if c.rng.IntN(2) == 0 {
		if err := c.write(ctx, l, old); err != nil {
			return reloadResult{}, err
		}
	}
	if err := c.directStep(ctx, l, old, ulog.TypePostsuspend); err != nil {
		return reloadResult{}, err
	}
	l.mu.Lock()
	old.st = stSuspended
	clear(l.marked)
	l.mu.Unlock()
	if err := c.directStep(ctx, l, nw, ulog.TypeResume); err != nil {
		return reloadResult{}, err
	}
	l.mu.Lock()
	nw.st = stRunning
	l.live, l.next = nw, nil
	l.mu.Unlock()
	if err := c.checkAfterActivation(ctx, l, nw, "reload"); err != nil {
		return reloadResult{}, err
	}
	res, err = c.direct(ctx, l, old, ulog.TypeDtr)
	if err != nil {
		return reloadResult{}, err
	}
	// -EINVAL (unknown log) is right for a resent DTR, or when the old
	// instance died with a daemon and nothing reconnected it.
	if res != 0 && !(res == fakekernel.EINVAL && (c.gen != genBefore || c.resent)) {
		c.s.fail("%s: DTR of %s's old instance %#x after a reload: error %d", c.name, l.name, old.luid, res)
	}
	c.s.st.reloads.Add(1)
	return reloadResult{}, nil
}

// backgroundIO sends IN_SYNC requests for in from a connection of its own
// until the returned function is called (which waits for it to stop).
func (c *kclient) backgroundIO(ctx context.Context, l *soakLog, in *instance) func() {
	g := c.s.current()
	k, err := dialGen(g)
	if err != nil {
		return func() {}
	}
	var stop atomic.Bool
	done := make(chan struct{})
	rng := rand.New(rand.NewPCG(c.rng.Uint64(), 7))
	started := make(chan struct{})
	go func() {
		defer close(done)
		defer k.close()
		for n := 0; !stop.Load() || n == 0; n++ {
			if n == 1 {
				close(started)
			}
			r := l.hot[rng.IntN(len(l.hot))]
			res, d, err := k.roundTrip(ctx, &c.s.st.req, &c.s.seqs, c.s.cfg.Patience, ulog.TypeInSync, l.uuid, in.luid, u64(r), ulog.Int64Len)
			if err != nil {
				return // the daemon died: the step notices on its own
			}
			if res == 0 {
				c.checkBool(l, ulog.TypeInSync, d)
			} else if res != fakekernel.ESRCH {
				c.s.fail("%s: IN_SYNC on %s's old instance during a reload: error %d", c.name, l.name, res)
			}
		}
	}()
	select { // the I/O is under way before the caller goes on
	case <-started:
	case <-done:
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			stop.Store(true)
			<-done
		})
	}
}

// reactivate deactivates the mirror (PRESUSPEND, POSTSUSPEND, DTR) and
// activates it again with a new instance.
func (c *kclient) reactivate(ctx context.Context, l *soakLog) error {
	in := l.liveInst()
	if in == nil {
		return nil
	}
	for _, typ := range []ulog.RequestType{ulog.TypePresuspend, ulog.TypePostsuspend} {
		if err := c.directStep(ctx, l, in, typ); err != nil {
			return err
		}
	}
	l.setState(in, stSuspended)
	gen := c.gen
	res, err := c.direct(ctx, l, in, ulog.TypeDtr)
	if err != nil {
		return err
	}
	if res != 0 && !(res == fakekernel.EINVAL && (c.gen != gen || c.resent)) {
		c.s.fail("%s: DTR of %s luid %#x: error %d", c.name, l.name, in.luid, res)
	}
	l.mu.Lock()
	l.live = nil
	clear(l.marked)
	l.mu.Unlock()
	_, err = c.activate(ctx, l)
	return err
}

// activate is a mirror's activation: CTR, GET_REGION_SIZE, STATUS_INFO,
// RESUME; then every acknowledged mark of a disk log must read dirty, and a
// core log must start out of sync (in sync for nosync). It returns the
// CTR's error: the activation was refused.
func (c *kclient) activate(ctx context.Context, l *soakLog) (int32, error) {
	nw := &instance{luid: c.s.newLUID(), ctr: l.ctr}
	res, err := c.ctr(ctx, l, nw)
	if err != nil {
		return 0, err
	}
	if res != 0 {
		if expect, _ := l.expectingEIO(); !expect {
			c.s.fail("%s: activation of %s: CTR failed with %d (dlogd says: %s)", c.name, l.name, res, c.s.tap.lastMatching(l.uuid, "CTR"))
		}
		return res, nil
	}
	l.mu.Lock()
	l.next = nw
	l.mu.Unlock()
	if err := c.regionSize(ctx, l, nw); err != nil {
		return 0, err
	}
	if _, err := c.status(ctx, l, nw); err != nil {
		return 0, err
	}
	if err := c.directStep(ctx, l, nw, ulog.TypeResume); err != nil {
		return 0, err
	}
	l.mu.Lock()
	nw.st = stRunning
	l.live, l.next = nw, nil
	l.mu.Unlock()
	c.s.st.activations.Add(1)
	return 0, c.checkAfterActivation(ctx, l, nw, "activation")
}

// reloadOrActivate reloads l, or activates it if it is deactivated (a
// failed activation leaves it so); it returns the CTR's error.
func (c *kclient) reloadOrActivate(ctx context.Context, l *soakLog) (int32, error) {
	if l.liveInst() == nil {
		l.mu.Lock()
		gone := l.live == nil
		l.mu.Unlock()
		if gone {
			return c.activate(ctx, l)
		}
		return 0, fmt.Errorf("%s has an instance that is not live: %s", l.name, l.describe())
	}
	rr, err := c.reload(ctx, l)
	return rr.ctrErr, err
}

// ctr is a table load's CTR: the string without its NUL, 128 bytes of
// reply room; a disk log's reply names the device (version 2+).
func (c *kclient) ctr(ctx context.Context, l *soakLog, in *instance) (int32, error) {
	res, d, err := c.req(ctx, l, in.luid, ulog.TypeCtr, []byte(in.ctr), ulog.MaxCtrReply)
	if err != nil || res != 0 {
		return res, err
	}
	want := ""
	if l.disk {
		want = l.dev + "\x00"
	}
	// A resent CTR finds the log constructed and answers like a reconnect.
	if string(d) != want && len(d) != 0 {
		c.s.fail("%s: CTR of %s answered %q, want %q", c.name, l.name, d, want)
	}
	return 0, nil
}

func (c *kclient) regionSize(ctx context.Context, l *soakLog, in *instance) error {
	res, d, err := c.do(ctx, l, in, ulog.TypeGetRegionSize, nil)
	if err != nil || !c.expect(l, in, ulog.TypeGetRegionSize, res) {
		return err
	}
	if v, _ := ulog.Int64(d); uint64(v) != l.regionSize {
		c.s.fail("%s: GET_REGION_SIZE of %s is %d, want %d", c.name, l.name, v, l.regionSize)
	}
	return nil
}

// checkAfterActivation checks a freshly resumed instance: a disk log
// keeps every acknowledged mark; a core log starts with nothing in sync
// (everything, for nosync).
func (c *kclient) checkAfterActivation(ctx context.Context, l *soakLog, in *instance, why string) error {
	if l.disk {
		return c.checkDirty(ctx, l, in, why)
	}
	return c.checkFreshCore(ctx, l, in, why)
}

// checkFreshCore checks that a core log's state is the fresh one: no
// region in sync (all for nosync), by GET_SYNC_COUNT and a few IN_SYNC.
func (c *kclient) checkFreshCore(ctx context.Context, l *soakLog, in *instance, why string) error {
	want := int64(0)
	if l.nosync {
		want = int64(l.regions)
	}
	n, err := c.syncCount(ctx, l, in)
	if err != nil {
		return err
	}
	if n >= 0 && n != want {
		c.s.fail("%s: clustered-core %s after %s: %d regions in sync, want %d", c.name, l.name, why, n, want)
	}
	for range 4 {
		r := l.hot[c.rng.IntN(len(l.hot))]
		res, d, err := c.do(ctx, l, in, ulog.TypeInSync, u64(r))
		if err != nil {
			return err
		}
		wantBit := int64(0)
		if l.nosync {
			wantBit = 1
		}
		if v, _ := ulog.Int64(d); res == 0 && v != wantBit {
			c.s.fail("%s: clustered-core %s after %s: IN_SYNC(%d) = %d", c.name, l.name, why, r, v)
		}
	}
	c.s.st.coreChecks.Add(1)
	return nil
}

// checkDirty is the invariant: every mark acknowledged by a FLUSH reply,
// and not cleared since the CLEAR was sent, reads dirty (IS_CLEAN 0).
func (c *kclient) checkDirty(ctx context.Context, l *soakLog, in *instance, why string) error {
	first := true
	for _, r := range l.mustDirtyList() {
		var res int32
		var d []byte
		var err error
		for try := 0; try < 3; try++ {
			if res, d, err = c.do(ctx, l, in, ulog.TypeIsClean, u64(r)); err != nil {
				return err
			}
			if res == 0 {
				break
			}
		}
		if res != 0 {
			c.s.fail("%s: cannot verify %s region %d after %s: IS_CLEAN failed with %d", c.name, l.name, r, why, res)
			continue
		}
		c.s.st.marksChecked.Add(1)
		if v, _ := ulog.Int64(d); v != 0 && l.stillMustDirty(r) {
			c.s.st.marksLost.Add(1)
			c.s.fail("MARK LOST: %s (%s) region %d: marked, acknowledged by a FLUSH reply, never cleared, reads clean after %s (generation %d, luid %#x)%s",
				l.name, l.kind(), r, why, c.gen, in.luid, c.lossContext(l, in, first))
			first = false
			l.lost(r)
		}
	}
	return nil
}

// lossContext is what the first lost mark of a check adds to its report:
// the kernel's view of the log (instances and their states, marks still
// owed) and what dlogd said when it last restored the instance from its
// state file, so that one report explains the loss (a log restored with
// the wrong phase or image shows here).
func (c *kclient) lossContext(l *soakLog, in *instance, first bool) string {
	if !first {
		return ""
	}
	restored := c.s.tap.lastRestored(in.luid)
	if restored == "" {
		restored = "none (not restored from a state file in any generation)"
	} else {
		restored = logFields(restored, "time", "phase", "dirty", "in_sync", "cursor")
	}
	return fmt.Sprintf("; kernel's view: %s, %d marks owed; dlogd's last restore of this luid: %s",
		l.describe(), len(l.mustDirtyList()), restored)
}

// describe is a one-line view of a log for failure messages.
func (l *soakLog) describe() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := fmt.Sprintf("%s %s uuid %s", l.name, l.kind(), l.uuid)
	if l.live != nil {
		s += fmt.Sprintf(" live %#x %s", l.live.luid, l.live.st)
	}
	if l.next != nil {
		s += fmt.Sprintf(" next %#x %s", l.next.luid, l.next.st)
	}
	return s
}
