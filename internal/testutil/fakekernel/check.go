package fakekernel

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/dlog-dev/dlog/ulog"
)

// Errors of a round trip.
var (
	// ErrGone means the connection to the daemon broke: the process
	// died or closed it.
	ErrGone = errors.New("fakekernel: daemon connection lost")
	// ErrProtocol means a reply broke a rule the kernel (or dlog)
	// enforces.
	ErrProtocol = errors.New("fakekernel: protocol violation in a reply")
)

// AnyCapacity offers a reply unlimited room (for requests whose room the
// kernel sizes per call, STATUS_*, when a test does not care).
const AnyCapacity = -1

// Version is the protocol version the kernel sends (module 1.3.0).
const Version = 3

// Result.Err values tests look for: the errnos a reply carries, negative
// as the kernel reads them.
const (
	EIO    = -int32(ulog.EIO)
	ESRCH  = -int32(ulog.ESRCH)
	EINVAL = -int32(ulog.EINVAL)
	EAGAIN = -int32(ulog.EAGAIN)
	ENOSPC = -int32(ulog.ENOSPC)
)

// Result is what the kernel's waiting caller gets from a reply.
type Result struct {
	// Err is the result: 0, or a negative errno (of the reply, its ack,
	// or -ENOSPC for a reply larger than the room offered).
	Err int32
	// Data is the payload copied for the caller (a copy, the caller's
	// to keep).
	Data []byte
	// Reply is the decoded reply; its Data aliases a receive buffer.
	Reply ulog.Reply
}

// Seqs numbers requests; its zero value is ready. Several ends may share
// one, so that sequence numbers stay unique across connections.
type Seqs struct{ n atomic.Uint32 }

// Next returns the next sequence number.
func (s *Seqs) Next() uint32 { return s.n.Add(1) }

// NewRequest returns the request the kernel would send, numbered by seqs.
func NewRequest(seqs *Seqs, t ulog.RequestType, uuid string, luid uint64, data []byte) (*ulog.Request, error) {
	r := &ulog.Request{LUID: luid, Version: Version, Seq: seqs.Next(), RawType: uint32(t), Data: data}
	if err := r.SetUUID(uuid); err != nil {
		return nil, fmt.Errorf("fakekernel: %s: %w", t, err)
	}
	return r, nil
}

// Decode decodes a reply as the kernel does and applies the reply form
// rules (ulog.DecodeReply, Reply.Validate). Its errors wrap ErrProtocol.
func Decode(b []byte) (ulog.Reply, error) {
	rep, err := ulog.DecodeReply(b)
	if err != nil {
		return rep, fmt.Errorf("%w: the kernel would drop this reply: %v", ErrProtocol, err)
	}
	if err := rep.Validate(); err != nil {
		return rep, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return rep, nil
}

// Check applies the rules for a reply to r (matched by rep.MatchSeq) and
// returns what the kernel's caller gets when it offered capacity bytes of
// room (AnyCapacity: no limit). Its errors wrap ErrProtocol.
func Check(r *ulog.Request, rep *ulog.Reply, capacity int) (Result, error) {
	if capacity < 0 {
		capacity = math.MaxInt32
	}
	res, m := rep.Result(capacity)
	if rep.AckOnly {
		return Result{Err: res, Reply: *rep}, nil
	}
	t := r.Type()
	q := &rep.Req
	if q.LUID != r.LUID || q.UUID != r.UUID || q.RawType != r.RawType || q.Version != r.Version || q.Seq != r.Seq {
		return Result{}, fmt.Errorf("%w: %s reply does not echo the request header: %s uuid %q luid %#x version %d seq %d",
			ErrProtocol, t, q.Type(), q.UUIDBytes(), q.LUID, q.Version, q.Seq)
	}
	if rep.CnSeq != r.Seq {
		return Result{}, fmt.Errorf("%w: %s reply cn_msg.seq %d, want %d", ErrProtocol, t, rep.CnSeq, r.Seq)
	}
	if res == ENOSPC && q.Error == 0 {
		return Result{}, fmt.Errorf("%w: %s reply of %d bytes, the kernel offered %d", ErrProtocol, t, q.DataSize, capacity)
	}
	if q.Error == 0 {
		if n, fixed := ulog.ReplyCapacity(t); fixed && t != ulog.TypeCtr && int(q.DataSize) != n {
			return Result{}, fmt.Errorf("%w: %s success reply carries %d bytes, the kernel expects exactly %d", ErrProtocol, t, q.DataSize, n)
		}
		switch t {
		case ulog.TypeIsClean, ulog.TypeInSync:
			if v, _ := ulog.Int64(q.Data); v != 0 && v != 1 {
				return Result{}, fmt.Errorf("%w: %s answered %d, want exactly 0 or 1", ErrProtocol, t, v)
			}
		case ulog.TypeGetResyncWork, ulog.TypeIsRemoteRecovering:
			if v, _, _ := ulog.Pair(q.Data); v != 0 && v != 1 {
				return Result{}, fmt.Errorf("%w: %s answered %d, want exactly 0 or 1", ErrProtocol, t, v)
			}
		}
	} else if q.DataSize != 0 {
		// Only -ESRCH (unknown log) may carry data: zeros of the size of
		// the real answer, so that the kernel's retry after its reconnect
		// has room for it.
		n, _ := ulog.ReplyCapacity(t)
		if q.Error != ESRCH || int(q.DataSize) != n || !allZero(q.Data) {
			return Result{}, fmt.Errorf("%w: %s error %d reply carries %d bytes", ErrProtocol, t, q.Error, q.DataSize)
		}
	}
	return Result{Err: res, Data: bytes.Clone(q.Data[:m]), Reply: *rep}, nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
