//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// errGone means the connection to dlogd broke: the process died (or closed
// the connection). The kernel would time out and resend; a client waits
// for the next daemon and resends there.
var errGone = errors.New("dlogd connection lost")

// errProtocol means a reply broke the wire rules a real kernel enforces.
var errProtocol = errors.New("protocol violation in a reply")

// Kernel-side errnos the soak looks at (negative, as in replies).
const (
	eIO     = -int32(ulog.EIO)
	eSRCH   = -int32(ulog.ESRCH)
	eINVAL  = -int32(ulog.EINVAL)
	eAGAIN  = -int32(ulog.EAGAIN)
	version = 3
)

// statusCapacity is the room the kernel offers a STATUS_INFO reply: what is
// left of the status buffer after the mirror's own fields.
const statusCapacity = 512

// kconn is one connection of the fake kernel to one dlogd process.
type kconn struct {
	c    *transport.UnixClient
	gen  *generation
	buf  []byte
	sbuf []byte
	// sends is how many times the last request was sent (resends after
	// a timeout or -EAGAIN included).
	sends int
}

func dialGen(g *generation) (*kconn, error) {
	c, err := transport.DialUnix(g.sock)
	if err != nil {
		return nil, fmt.Errorf("%w: dial generation %d: %v", errGone, g.n, err)
	}
	return &kconn{c: c, gen: g, buf: make([]byte, 1<<16)}, nil
}

func (k *kconn) close() { k.c.Close() }

// reqStats are the counters a round trip feeds.
type reqStats struct {
	requests atomic.Uint64
	byType   [ulog.MaxRequestType + 1]atomic.Uint64
	timeouts atomic.Uint64 // read deadlines missed (each followed by a resend)
	stale    atomic.Uint64 // replies to an older seq, ignored
	eagain   atomic.Uint64 // -EAGAIN replies, resent at once
}

// roundTrip sends one request and waits for its reply as the kernel does
// (dm-log-userspace-transfer.c): a reply is matched by seq; after patience
// without one the request is resent with a new seq, forever; -EAGAIN
// resends at once. capacity is the reply room the kernel offers. It
// returns the kernel's result and payload, errGone when the connection
// broke, or errProtocol for a reply a kernel would reject or misread.
func (k *kconn) roundTrip(ctx context.Context, st *reqStats, seqs *atomic.Uint32, patience time.Duration,
	typ ulog.RequestType, uuid string, luid uint64, data []byte, capacity int) (int32, []byte, error) {
	r := &ulog.Request{LUID: luid, Version: version, RawType: uint32(typ), Data: data}
	if err := r.SetUUID(uuid); err != nil {
		return 0, nil, err
	}
	k.sends = 0
	for {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		k.sends++
		r.Seq = seqs.Add(1)
		k.sbuf = ulog.AppendRequest(k.sbuf[:0], r)
		k.c.SetWriteDeadline(time.Now().Add(patience))
		if err := k.c.Send(k.sbuf); err != nil {
			if isTimeout(err) {
				st.timeouts.Add(1)
				continue
			}
			return 0, nil, fmt.Errorf("%w: send %s: %v", errGone, typ, err)
		}
		k.c.SetReadDeadline(time.Now().Add(patience))
	receive:
		for {
			n, err := k.c.Receive(k.buf)
			switch {
			case err != nil && isTimeout(err):
				st.timeouts.Add(1)
				break receive // resend with a new seq
			case err != nil:
				return 0, nil, fmt.Errorf("%w: receive %s: %v", errGone, typ, err)
			}
			rep, err := ulog.DecodeReply(k.buf[:n])
			if err != nil {
				return 0, nil, fmt.Errorf("%w: %s: %v", errProtocol, typ, err)
			}
			if err := rep.Validate(); err != nil {
				return 0, nil, fmt.Errorf("%w: %s: %v", errProtocol, typ, err)
			}
			if rep.MatchSeq() != r.Seq {
				st.stale.Add(1)
				continue
			}
			st.requests.Add(1)
			st.byType[typ].Add(1)
			res, m := rep.Result(capacity)
			if res == eAGAIN {
				st.eagain.Add(1)
				break receive
			}
			if rep.AckOnly {
				return res, nil, nil
			}
			if rep.Req.Type() != typ || rep.Req.LUID != r.LUID || !bytes.Equal(rep.Req.UUIDBytes(), r.UUIDBytes()) {
				return 0, nil, fmt.Errorf("%w: %s reply echoes %s uuid %q luid %#x", errProtocol, typ, rep.Req.Type(), rep.Req.UUIDBytes(), rep.Req.LUID)
			}
			if res == -int32(ulog.ENOSPC) && rep.Req.Error == 0 {
				return 0, nil, fmt.Errorf("%w: %s reply of %d bytes, the kernel offered %d", errProtocol, typ, rep.Req.DataSize, capacity)
			}
			if res == 0 {
				if want, fixed := fixedReply(typ); fixed && m != want {
					return 0, nil, fmt.Errorf("%w: %s success reply of %d bytes, want %d", errProtocol, typ, m, want)
				}
			}
			return res, bytes.Clone(rep.Req.Data[:m]), nil
		}
	}
}

// fixedReply is the exact size of a successful reply of t, where fixed.
func fixedReply(t ulog.RequestType) (int, bool) {
	switch t {
	case ulog.TypeGetRegionSize, ulog.TypeIsClean, ulog.TypeInSync, ulog.TypeGetSyncCount:
		return ulog.Int64Len, true
	case ulog.TypeGetResyncWork, ulog.TypeIsRemoteRecovering:
		return ulog.PairLen, true
	case ulog.TypeDtr, ulog.TypePresuspend, ulog.TypePostsuspend, ulog.TypeResume, ulog.TypeFlush,
		ulog.TypeMarkRegion, ulog.TypeClearRegion, ulog.TypeSetRegionSync:
		return 0, true
	}
	return 0, false
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
