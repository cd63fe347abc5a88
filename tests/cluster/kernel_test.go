package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/clustercheck"
	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/ulog"
)

// client is one node's kernel end of the unix transport
// (fakekernel.Conn): requests one at a time, as dm-raid1's single worker
// makes them.
type client struct {
	c    *fakekernel.Conn
	uuid string
	luid uint64
}

var errDead = errors.New("node dead")

func dial(path, uuid string, luid uint64) (*client, error) {
	// The socket file appears at bind, a moment before listen.
	var c *fakekernel.Conn
	var err error
	for try := 0; try < 100; try++ {
		if c, err = fakekernel.Dial(path); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	return &client{c: c, uuid: uuid, luid: luid}, nil
}

// call sends a request and returns the reply's error and payload; no
// reply within timeout is a dead node.
func (k *client) call(t ulog.RequestType, data []byte, timeout time.Duration) (int32, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	k.c.Patience = timeout
	res, err := k.c.Call(ctx, t, k.uuid, k.luid, data, fakekernel.AnyCapacity)
	if errors.Is(err, fakekernel.ErrProtocol) {
		return 0, nil, err
	}
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s: %v", errDead, t, err)
	}
	return res.Err, res.Data, nil
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

type pauseReq struct{ drained, resume chan struct{} }

// kernel is one node's kernel model (clustercheck.Kernel), through dlogd.
type kernel struct {
	*clustercheck.Kernel
	cl  *client
	err error

	pause   chan pauseReq // drain, say so, then wait for resume
	stopped chan struct{}
}

func newKernel(node int, cl *client, n uint64, seed uint64, c *clustercheck.Checker) *kernel {
	k := &kernel{cl: cl, pause: make(chan pauseReq), stopped: make(chan struct{})}
	k.Kernel = clustercheck.NewKernel(node, &modelLog{cl: cl}, n, seed, c)
	k.CopyTime, k.Idle = 2*time.Millisecond, 500*time.Microsecond
	return k
}

func (k *kernel) run(stop <-chan struct{}) {
	defer close(k.stopped)
	for {
		select {
		case <-stop:
			return
		case p := <-k.pause:
			k.err = k.Drain()
			close(p.drained)
			<-p.resume
			if k.err != nil {
				return
			}
		default:
		}
		if k.err = k.Step(); k.err != nil {
			return
		}
	}
}

// modelLog carries the kernel model's requests to dlogd as
// dm-log-userspace does: a mark travels in the FLUSH (integrated flush),
// clears go 32 to a CLEAR_REGION and the rest before the FLUSH.
type modelLog struct {
	cl     *client
	marks  []byte
	clears []byte
}

func (m *modelLog) IsRemoteRecovering(r uint64) (bool, uint64, error) {
	rec, h, err := m.cl.region(ulog.TypeIsRemoteRecovering, r)
	return rec != 0, h, err
}

func (m *modelLog) InSync(r uint64) (bool, error) {
	in, _, err := m.cl.region(ulog.TypeInSync, r)
	return in == 1, err
}

func (m *modelLog) MarkRegion(r uint64) error {
	m.marks = ulog.AppendUint64(m.marks, r)
	return nil
}

func (m *modelLog) ClearRegion(r uint64) error {
	m.clears = ulog.AppendUint64(m.clears, r)
	if len(m.clears) < 32*8 {
		return nil
	}
	return m.sendClears()
}

func (m *modelLog) sendClears() error {
	if len(m.clears) == 0 {
		return nil
	}
	_, err := m.cl.ok(ulog.TypeClearRegion, m.clears)
	m.clears = m.clears[:0]
	return err
}

func (m *modelLog) Flush() error {
	if err := m.sendClears(); err != nil {
		return err
	}
	_, err := m.cl.ok(ulog.TypeFlush, m.marks)
	m.marks = m.marks[:0]
	return err
}

func (m *modelLog) GetResyncWork() (uint64, bool, error) {
	d, err := m.cl.ok(ulog.TypeGetResyncWork, nil)
	if err != nil {
		return 0, false, err
	}
	i, r, _ := ulog.Pair(d)
	return r, i == 1, nil
}

func (m *modelLog) Recovered(r uint64) error {
	if _, err := m.cl.ok(ulog.TypeSetRegionSync, ulog.AppendRegionSync(nil, r, 1)); err != nil {
		return err
	}
	_, err := m.cl.ok(ulog.TypeClearRegion, ulog.AppendUint64(nil, r))
	return err
}

func (m *modelLog) SyncCount() (uint64, error) {
	d, err := m.cl.ok(ulog.TypeGetSyncCount, nil)
	if err != nil {
		return 0, err
	}
	v, _ := ulog.Region(d)
	return v, nil
}
