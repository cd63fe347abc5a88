package ulog

import (
	"errors"
	"strconv"
	"syscall"
)

// Framing errors of DecodeRequest, in the order the checks run (see the
// package documentation). DecodeRequest returns them wrapped in a
// *FrameError; test with errors.Is.
var (
	// ErrShort is returned when a datagram, or the message its nlmsg_len
	// describes, is too short to hold nlmsghdr + cn_msg (36 bytes).
	ErrShort = errors.New("message too short")
	// ErrTruncated is returned when nlmsg_len is larger than the bytes
	// received.
	ErrTruncated = errors.New("nlmsg_len exceeds bytes received")
	// ErrNotDone is returned when nlmsg_type is not NLMSG_DONE.
	ErrNotDone = errors.New("nlmsg_type is not NLMSG_DONE")
	// ErrConnectorID is returned when cn_msg.id is not {CN_IDX_DM,
	// CN_VAL_DM_USERSPACE_LOG} = {7, 1}.
	ErrConnectorID = errors.New("cn_msg.id is not 7/1")
	// ErrCnLen is returned when cn_msg.len does not fit inside nlmsg_len.
	ErrCnLen = errors.New("cn_msg.len exceeds nlmsg_len")
	// ErrIncomplete is returned when cn_msg.len is shorter than a
	// dm_ulog_request header (160 bytes).
	ErrIncomplete = errors.New("cn_msg.len shorter than a dm_ulog_request")
	// ErrDataSize is returned when data_size exceeds cn_msg.len - 160, or
	// the 332 bytes a kernel request can carry.
	ErrDataSize = errors.New("data_size out of range")
	// ErrRequestType is returned when request_type & 0xFF is not 1..17.
	ErrRequestType = errors.New("unknown request type")
	// ErrUUID is returned when the 129-byte uuid field holds no NUL, and by
	// Request.SetUUID for a uuid longer than 128 bytes or with a NUL.
	ErrUUID = errors.New("uuid not NUL-terminated within 129 bytes")
	// ErrVersion is returned for a request with version 0, which no kernel
	// has ever sent.
	ErrVersion = errors.New("request version 0")
)

// Errors of DecodeReply and Reply.Validate.
var (
	// ErrTooLong is returned by DecodeReply when nlmsg_len - 16 exceeds
	// CONNECTOR_MAX_MSG_SIZE (16384); the kernel drops such a reply.
	ErrTooLong = errors.New("message exceeds CONNECTOR_MAX_MSG_SIZE")
	// ErrReplyForm is returned by Reply.Validate for a reply the kernel
	// would accept but that breaks dlog's rules for replies (exact
	// lengths, NLMSG_DONE, docs/conformance.md item 10).
	ErrReplyForm = errors.New("reply not in canonical form")
	// ErrErrno is returned by Reply.Validate for a positive error in a full
	// reply, or an ack outside 0..4095 in an ack-only one (docs/protocol.md §2.4, docs/conformance.md item 13).
	ErrErrno = errors.New("errno out of range")
)

// Errors of the payload helpers (Region, Regions, SetRegionSync, Int64,
// Pair, CtrString).
var (
	// ErrPayloadSize is returned for a payload whose length is wrong for
	// its request type (docs/conformance.md §5 row g).
	ErrPayloadSize = errors.New("wrong payload size")
	// ErrCtrString is returned by CtrString for an empty constructor
	// string or one with an embedded NUL.
	ErrCtrString = errors.New("invalid constructor string")
)

// Action says what a daemon must do with a datagram DecodeRequest rejected
// (docs/conformance.md items 5-8). The reactions differ because a reply is
// only possible, and only allowed, once enough of the message is known to
// be sound.
type Action int

const (
	// ActionDrop means: log and drop, send nothing. The datagram is not a
	// well-formed device-mapper connector message, so there is no request
	// to answer (and answering a forged message could misdirect a reply).
	ActionDrop Action = iota
	// ActionAckAgain means: send the ack-only form with cn_msg.seq =
	// FrameError.Seq and cn_msg.ack = EAGAIN (AppendAck). The connector
	// message is sound but too short to hold a request header, so the
	// header is never parsed; the kernel resends the request.
	ActionAckAgain
	// ActionReplyError means: send a full reply with dm_ulog_request.seq =
	// FrameError.Seq, error = -FrameError.Errno and no payload
	// (AppendReply with the partly decoded Frame.Req).
	ActionReplyError
)

// String returns "drop", "ack-again" or "reply-error".
func (a Action) String() string {
	switch a {
	case ActionDrop:
		return "drop"
	case ActionAckAgain:
		return "ack-again"
	case ActionReplyError:
		return "reply-error"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// FrameError is the error DecodeRequest returns for a datagram it rejects.
// It tells the daemon how to react (Action) and with what (Errno, Seq), and
// wraps one of the sentinel errors above (Err).
type FrameError struct {
	// Action is the reaction docs/conformance.md §1 prescribes.
	Action Action
	// Errno is the positive errno of the reply: EAGAIN for ActionAckAgain
	// (sent as is in cn_msg.ack), EINVAL or EPROTO for ActionReplyError
	// (sent negated in dm_ulog_request.error), 0 for ActionDrop.
	Errno syscall.Errno
	// Seq is the sequence number the reply must carry: cn_msg.seq for
	// ActionAckAgain, dm_ulog_request.seq for ActionReplyError, 0 for
	// ActionDrop.
	Seq uint32
	// Err describes the fault and wraps a sentinel such as ErrDataSize.
	Err error
}

// Error returns Err's text followed by the action, e.g.
// "ulog: ...: data_size out of range (reply-error -EINVAL seq 7)".
func (e *FrameError) Error() string {
	msg := "ulog: invalid frame"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	switch e.Action {
	case ActionAckAgain:
		return msg + " (ack-again " + errnoName(e.Errno) + " seq " + strconv.FormatUint(uint64(e.Seq), 10) + ")"
	case ActionReplyError:
		return msg + " (reply-error -" + errnoName(e.Errno) + " seq " + strconv.FormatUint(uint64(e.Seq), 10) + ")"
	}
	return msg + " (" + e.Action.String() + ")"
}

// Unwrap returns Err.
func (e *FrameError) Unwrap() error { return e.Err }

// AppendReply appends the datagram Action calls for to dst: an ack-only
// message for ActionAckAgain, a full error reply echoing f.Req for
// ActionReplyError, nothing for ActionDrop. f is the Frame DecodeRequest
// filled; pid is the daemon's netlink port id for nlmsg_pid.
func (e *FrameError) AppendReply(dst []byte, f *Frame, pid uint32) []byte {
	switch e.Action {
	case ActionAckAgain:
		return AppendAck(dst, e.Seq, pid, uint32(e.Errno))
	case ActionReplyError:
		var req Request
		if f != nil {
			req = f.Req
		}
		req.Seq = e.Seq
		return AppendReply(dst, &req, pid, -int32(e.Errno), nil)
	}
	return dst
}

func errnoName(e syscall.Errno) string {
	switch e {
	case EAGAIN:
		return "EAGAIN"
	case EINVAL:
		return "EINVAL"
	case EPROTO:
		return "EPROTO"
	}
	return "errno " + strconv.Itoa(int(e))
}
