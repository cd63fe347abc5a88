//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/ulog"
)

// reconnectPoll is the pause between reconnect CTRs (the kernel's is 2 s).
const reconnectPoll = 100 * time.Millisecond

// kclient is one kernel context: one connection to the current dlogd, and
// the kernel's request helpers on top of it.
type kclient struct {
	s    *soak
	name string
	rng  *rand.Rand
	conn *kconn
	// gen is the generation of the connection that gave the last reply.
	gen uint64
	// resent: the last request was sent more than once (a timeout or a
	// lost connection): a DTR may then find its log already gone.
	resent bool
	// inStep: the client holds s.gate for reading (a workload step); it
	// lets go of it while it waits for a restarted daemon.
	inStep bool
	// noWait: the fault injector's client; a lost daemon is an error for
	// it, never something to wait for (it is the one that restarts it).
	noWait bool
	doing  atomic.Value // string: what the client is doing, for the watchdog
}

func newClient(s *soak, name string, rng *rand.Rand, noWait bool) *kclient {
	c := &kclient{s: s, name: name, rng: rng, noWait: noWait}
	c.doing.Store("idle")
	return c
}

func (c *kclient) close() {
	if c.conn != nil {
		c.conn.close()
		c.conn = nil
	}
}

// connect dials the current generation, once it is ready.
func (c *kclient) connect(ctx context.Context) error {
	for {
		g := c.s.current()
		if !c.noWait {
			if err := c.waitReady(ctx, g); err != nil {
				return err
			}
		}
		k, err := dialGen(g)
		if err == nil {
			c.conn = k
			return nil
		}
		if c.noWait {
			return err
		}
		if err := c.awaitNewer(ctx, g); err != nil {
			return err
		}
	}
}

// waitReady waits until g is ready, letting go of the gate meanwhile: the
// restart's check, which holds it, is what makes g ready.
func (c *kclient) waitReady(ctx context.Context, g *generation) error {
	select {
	case <-g.ready:
		return nil
	default:
	}
	if c.inStep {
		c.s.gate.RUnlock()
		defer c.s.gate.RLock()
	}
	select {
	case <-g.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitNewer waits for a generation after g to be ready, letting go of the
// gate meanwhile so that the restart's check can run.
func (c *kclient) awaitNewer(ctx context.Context, g *generation) error {
	if c.inStep {
		c.s.gate.RUnlock()
		defer c.s.gate.RLock()
	}
	prev := c.doing.Load()
	c.doing.Store(fmt.Sprintf("waiting for a dlogd after generation %d (was: %v)", g.n, prev))
	defer c.doing.Store(prev)
	alive := time.Now()
	for {
		cur, changed := c.s.currentAndChanged()
		if cur.n > g.n {
			select {
			case <-cur.ready:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if g.proc.exited() {
			alive = time.Now()
		} else if time.Since(alive) > 10*time.Second {
			c.s.fail("%s: dlogd (generation %d, pid %d) closed the connection but did not exit", c.name, g.n, g.proc.pid)
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// req sends one request as the kernel's transfer layer does, following
// dlogd across restarts (a lost connection waits for the next daemon and
// resends there, as the kernel's timeout would). capacity is the reply
// room offered.
func (c *kclient) req(ctx context.Context, l *soakLog, luid uint64, typ ulog.RequestType, data []byte, capacity int) (int32, []byte, error) {
	c.resent = false
	for first := true; ; first = false {
		if !first {
			c.resent = true
		}
		if c.conn == nil {
			if err := c.connect(ctx); err != nil {
				return 0, nil, err
			}
		}
		res, d, err := c.conn.roundTrip(ctx, &c.s.st.req, &c.s.seqs, c.s.cfg.Patience, typ, l.uuid, luid, data, capacity)
		if err == nil {
			c.gen = c.conn.gen.n
			c.resent = c.resent || c.conn.sends > 1
			if res == fakekernel.EIO {
				c.s.onEIO(c.conn.gen, l, typ)
			}
			return res, d, nil
		}
		if errors.Is(err, fakekernel.ErrProtocol) {
			c.s.fail("%s: log %s: %v", c.name, l.name, err)
			return 0, nil, err
		}
		if !errors.Is(err, fakekernel.ErrGone) {
			return 0, nil, err
		}
		g := c.conn.gen
		c.close()
		if c.noWait {
			if c.s.current().n > g.n {
				continue // a connection to an older daemon: redial
			}
			return 0, nil, err
		}
		if err := c.awaitNewer(ctx, g); err != nil {
			return 0, nil, err
		}
	}
}

// direct sends one of the five requests the kernel sends without the
// reconnect logic (CTR, DTR, PRESUSPEND, POSTSUSPEND, RESUME): -ESRCH is
// just a failure.
func (c *kclient) direct(ctx context.Context, l *soakLog, in *instance, typ ulog.RequestType) (int32, error) {
	res, _, err := c.req(ctx, l, in.luid, typ, nil, 0)
	return res, err
}

// do is the kernel's userspace_do_request: on -ESRCH it replays the
// reconnect (CTR with the trailing NUL and no reply room, RESUME) and
// retries; if that RESUME fails the call fails with -ESRCH.
func (c *kclient) do(ctx context.Context, l *soakLog, in *instance, typ ulog.RequestType, data []byte) (int32, []byte, error) {
	capacity, ok := ulog.ReplyCapacity(typ)
	if !ok {
		capacity = statusCapacity
	}
	for attempt := 0; ; attempt++ {
		res, d, err := c.req(ctx, l, in.luid, typ, data, capacity)
		if err != nil || res != fakekernel.ESRCH || attempt >= 3 {
			return res, d, err
		}
		ok, err := c.reconnect(ctx, l, in)
		if err != nil || !ok {
			return fakekernel.ESRCH, nil, err
		}
	}
}

// reconnect replays the kernel's reconnect sequence for in (docs/protocol.md
// §1.6). It reports whether the RESUME succeeded.
func (c *kclient) reconnect(ctx context.Context, l *soakLog, in *instance) (bool, error) {
	c.s.st.reconnects.Add(1)
	l.bumpEpoch()
	c.s.log.Debug("reconnect", "client", c.name, "log", l.name, "luid", fmt.Sprintf("%#x", in.luid), "doing", c.doing.Load(), "generation", c.gen)
	ctr := append([]byte(in.ctr), 0)
	for try := 0; ; try++ {
		res, _, err := c.req(ctx, l, in.luid, ulog.TypeCtr, ctr, 0)
		if err != nil {
			return false, err
		}
		if res == 0 {
			break
		}
		if try >= 30 {
			return false, fmt.Errorf("reconnect of %s luid %#x: CTR keeps failing with %d (dlogd says: %s)", l.name, in.luid, res, c.s.tap.lastMatching(l.uuid, "CTR"))
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(reconnectPoll):
		}
	}
	res, _, err := c.req(ctx, l, in.luid, ulog.TypeResume, nil, 0)
	if err != nil {
		return false, err
	}
	return res == 0, nil
}

// u64 and the small payload helpers.
func u64(v uint64) []byte { return ulog.AppendUint64(nil, v) }

func regionList(rs []uint64) []byte {
	b := make([]byte, 0, 8*len(rs))
	for _, r := range rs {
		b = ulog.AppendUint64(b, r)
	}
	return b
}
