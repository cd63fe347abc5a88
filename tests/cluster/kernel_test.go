package cluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/clustercheck"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// client is one node's kernel end of the unix transport: requests one at a
// time, as dm-raid1's single worker makes them.
type client struct {
	c    *transport.UnixClient
	uuid string
	luid uint64
	seq  uint32
	buf  []byte
	rbuf []byte
}

var errDead = errors.New("node dead")

func dial(path, uuid string, luid uint64) (*client, error) {
	// The socket file appears at bind, a moment before listen.
	var c *transport.UnixClient
	var err error
	for try := 0; try < 100; try++ {
		if c, err = transport.DialUnix(path); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	return &client{c: c, uuid: uuid, luid: luid, rbuf: make([]byte, 4096)}, nil
}

// call sends a request and returns the reply's error and payload.
func (k *client) call(t ulog.RequestType, data []byte, timeout time.Duration) (int32, []byte, error) {
	k.seq++
	r := ulog.Request{LUID: k.luid, Version: 3, Seq: k.seq, RawType: uint32(t), Data: data}
	r.SetUUID(k.uuid)
	k.buf = ulog.AppendRequest(k.buf[:0], &r)
	k.c.SetDeadline(time.Now().Add(timeout))
	if err := k.c.Send(k.buf); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errDead, err)
	}
	for {
		n, err := k.c.Receive(k.rbuf)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: %s: %v", errDead, t, err)
		}
		rep, err := ulog.DecodeReply(k.rbuf[:n])
		if err != nil {
			return 0, nil, fmt.Errorf("%s: undecodable reply: %v", t, err)
		}
		if rep.MatchSeq() != k.seq {
			continue // a reply to an earlier, timed-out request
		}
		if rep.AckOnly {
			return -int32(rep.CnAck), nil, nil
		}
		return rep.Req.Error, slices.Clone(rep.Req.Data), nil
	}
}

func (k *client) ok(t ulog.RequestType, data []byte) ([]byte, error) {
	e, d, err := k.call(t, data, 90*time.Second)
	if err != nil {
		return nil, err
	}
	if e != 0 {
		return nil, fmt.Errorf("%s: error %d", t, e)
	}
	return d, nil
}

func (k *client) region(t ulog.RequestType, r uint64) (int64, uint64, error) {
	d, err := k.ok(t, ulog.AppendUint64(nil, r))
	if err != nil {
		return 0, 0, err
	}
	if len(d) == 16 {
		i, v, err := ulog.Pair(d)
		return i, v, err
	}
	v, err := ulog.Int64(d)
	return v, 0, err
}

const (
	rhClean = iota
	rhDirty
	rhNosync
	rhRecovering
)

type entry struct{ state, pending int }

type pauseReq struct{ drained, resume chan struct{} }

// kernel models one node's dm-raid1 over its log, through dlogd.
type kernel struct {
	node     int
	cl       *client
	n        uint64
	rng      *rand.Rand
	c        *clustercheck.Checker
	hint     uint64
	entries  map[uint64]*entry
	inflight []uint64
	toClear  []uint64
	recov    int64
	err      error

	pause   chan pauseReq // drain, say so, then wait for resume
	stopped chan struct{}
}

func newKernel(node int, cl *client, n uint64, seed uint64, c *clustercheck.Checker) *kernel {
	return &kernel{node: node, cl: cl, n: n, rng: rand.New(rand.NewPCG(seed, uint64(node))), c: c, entries: map[uint64]*entry{},
		recov: -1, pause: make(chan pauseReq), stopped: make(chan struct{})}
}

func (k *kernel) run(stop <-chan struct{}) {
	defer close(k.stopped)
	for {
		select {
		case <-stop:
			return
		case p := <-k.pause:
			k.err = k.drain()
			close(p.drained)
			<-p.resume
			if k.err != nil {
				return
			}
		default:
		}
		if k.err = k.step(); k.err != nil {
			return
		}
	}
}

// drain completes every write and recovery in flight and clears.
func (k *kernel) drain() error {
	for len(k.inflight) > 0 {
		k.completeOne(0)
	}
	if k.recov >= 0 {
		if err := k.finishRecovery(); err != nil {
			return err
		}
	}
	return k.clearPass()
}

func (k *kernel) completeOne(i int) {
	r := k.inflight[i]
	k.inflight = slices.Delete(k.inflight, i, i+1)
	k.c.Complete(k.node, r)
	e := k.entries[r]
	e.pending--
	if e.pending == 0 && e.state == rhDirty {
		e.state = rhClean
		k.toClear = append(k.toClear, r)
	}
}

func (k *kernel) clearPass() error {
	var rs []byte
	for _, r := range k.toClear {
		if e := k.entries[r]; e != nil && e.state == rhClean && e.pending == 0 {
			k.c.Cleared(k.node, r)
			rs = ulog.AppendUint64(rs, r)
			delete(k.entries, r)
			if len(rs) == 32*8 {
				if _, err := k.cl.ok(ulog.TypeClearRegion, rs); err != nil {
					return err
				}
				rs = rs[:0]
			}
		}
	}
	k.toClear = k.toClear[:0]
	if len(rs) > 0 {
		if _, err := k.cl.ok(ulog.TypeClearRegion, rs); err != nil {
			return err
		}
	}
	_, err := k.cl.ok(ulog.TypeFlush, nil)
	return err
}

func (k *kernel) finishRecovery() error {
	r := uint64(k.recov)
	if e := k.entries[r]; e != nil && e.pending > 0 {
		return nil
	}
	k.c.StartRecovery(k.node, r)
	time.Sleep(time.Duration(k.rng.IntN(2000)) * time.Microsecond) // the copy
	k.c.EndRecovery(k.node, r)
	if _, err := k.cl.ok(ulog.TypeSetRegionSync, ulog.AppendRegionSync(nil, r, 1)); err != nil {
		return err
	}
	if _, err := k.cl.ok(ulog.TypeClearRegion, ulog.AppendUint64(nil, r)); err != nil {
		return err
	}
	k.c.Cleared(k.node, r)
	delete(k.entries, r)
	k.recov = -1
	return nil
}

func (k *kernel) step() error {
	cl := k.cl
	switch p := k.rng.IntN(100); {
	case p < 40:
		r := k.rng.Uint64N(k.n)
		if r >= k.hint {
			rec, h, err := cl.region(ulog.TypeIsRemoteRecovering, r)
			if err != nil {
				return err
			}
			k.hint = h
			if rec != 0 {
				return nil
			}
		}
		e := k.entries[r]
		if e == nil {
			in, _, err := cl.region(ulog.TypeInSync, r)
			if err != nil {
				return err
			}
			e = &entry{state: rhNosync}
			if in == 1 {
				e.state = rhClean
			}
			k.entries[r] = e
		}
		if e.state == rhRecovering {
			return nil
		}
		marked := e.state == rhClean
		if marked {
			e.state = rhDirty
			// Integrated flush: the mark travels in the FLUSH.
			if _, err := cl.ok(ulog.TypeFlush, ulog.AppendUint64(nil, r)); err != nil {
				return err
			}
			k.c.Flushed()
		}
		e.pending++
		k.c.Issue(k.node, r, marked)
		k.inflight = append(k.inflight, r)
	case p < 65:
		if len(k.inflight) > 0 {
			k.completeOne(k.rng.IntN(len(k.inflight)))
		}
	case p < 75:
		if len(k.toClear) > 0 {
			return k.clearPass()
		}
	case p < 92:
		if k.recov >= 0 {
			return k.finishRecovery()
		}
		if k.hint >= k.n {
			return nil
		}
		d, err := cl.ok(ulog.TypeGetResyncWork, nil)
		if err != nil {
			return err
		}
		i, r, _ := ulog.Pair(d)
		if i == 1 {
			e := k.entries[r]
			if e == nil {
				e = &entry{}
				k.entries[r] = e
			}
			e.state = rhRecovering
			k.recov = int64(r)
		}
	case p < 97:
		d, err := cl.ok(ulog.TypeGetSyncCount, nil)
		if err != nil {
			return err
		}
		if v, _ := ulog.Region(d); v >= k.n {
			k.hint = k.n
		}
	default:
		time.Sleep(time.Duration(k.rng.IntN(500)) * time.Microsecond)
	}
	return nil
}
