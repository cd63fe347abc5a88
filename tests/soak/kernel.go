//go:build linux

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/ulog"
)

// statusCapacity is the room the kernel offers a STATUS_INFO reply: what is
// left of the status buffer after the mirror's own fields.
const statusCapacity = 512

// kconn is one connection of the fake kernel to one dlogd process.
type kconn struct {
	c   *fakekernel.Conn
	gen *generation
	// sends is how many times the last request was sent (resends after
	// a timeout or -EAGAIN included).
	sends int
}

func dialGen(g *generation) (*kconn, error) {
	c, err := fakekernel.Dial(g.sock)
	if err != nil {
		return nil, fmt.Errorf("dial generation %d: %w", g.n, err)
	}
	return &kconn{c: c, gen: g}, nil
}

func (k *kconn) close() { k.c.Close() }

// roundTrip sends one request and waits for its reply as the kernel does
// (fakekernel.Conn.Call: matched by seq, resent after patience and on
// -EAGAIN). capacity is the reply room the kernel offers. It returns the
// kernel's result and payload, an error wrapping fakekernel.ErrGone when
// the connection broke, or fakekernel.ErrProtocol for a reply a kernel
// would reject or misread.
func (k *kconn) roundTrip(ctx context.Context, st *fakekernel.Stats, seqs *fakekernel.Seqs, patience time.Duration,
	typ ulog.RequestType, uuid string, luid uint64, data []byte, capacity int) (int32, []byte, error) {
	k.c.Stats, k.c.Seqs, k.c.Patience = st, seqs, patience
	res, err := k.c.Call(ctx, typ, uuid, luid, data, capacity)
	k.sends = k.c.Sends
	return res.Err, res.Data, err
}
