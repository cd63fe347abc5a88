package ulog

import (
	"fmt"
)

// MaxCtrReply is the reply capacity the kernel offers to a CTR sent at
// table load (DM_NAME_LEN). The CTR of the reconnect sequence offers 0.
const MaxCtrReply = 128

// AppendReply appends to dst the full reply to req (daemon to kernel,
// docs/protocol.md §1.4, docs/conformance.md item 10):
//
//	nlmsghdr{len = 196 + n, type = NLMSG_DONE, flags = 0, seq = req.Seq, pid = pid}
//	cn_msg{idx = 7, val = 1, seq = req.Seq, ack = 0, len = 160 + n, flags = 0}
//	dm_ulog_request{luid, uuid, version, seq and request_type = req.RawType
//	                echoed, error = errno, data_size = n}
//	payload
//
// where n = len(payload). No alignment padding is added (the kernel does
// not need it; cmirrord sends none). req.Error, req.DataSize and req.Data
// are not used. It does not allocate when dst has room for 196+n bytes.
//
// errno is 0 or a negative errno. A positive value is negated, because the
// kernel mis-handles positive errors (a CTR would "succeed", docs/protocol.md §2.4). A
// payload longer than MaxReplyPayload cannot be framed; it is dropped and
// the reply carries -EMSGSIZE (or errno, if that is already non-zero), so
// the kernel's waiter gets an error instead of waiting forever. The reply
// capacity the kernel offers each request type (ReplyCapacity) is the
// caller's to respect.
func AppendReply(dst []byte, req *Request, pid uint32, errno int32, payload []byte) []byte {
	if req == nil {
		req = &Request{}
	}
	if errno > 0 {
		errno = -errno
	}
	if len(payload) > MaxReplyPayload {
		payload = nil
		if errno == 0 {
			errno = -int32(EMSGSIZE)
		}
	}
	n := len(payload)
	dst = appendHeaders(dst, uint32(HeaderLen+n), pid, req.Seq, 0, uint16(RequestHeaderLen+n))
	dst = appendRequestHeader(dst, req, errno, uint32(n))
	return append(dst, payload...)
}

// AppendAck appends to dst the ack-only reply (docs/protocol.md §1.4 item 5):
// nlmsghdr{len = 36, type = NLMSG_DONE, flags = 0, seq = seq, pid = pid}
// and cn_msg{idx = 7, val = 1, seq = seq, ack = errno, len = 0, flags = 0}.
// The kernel matches it by cn_msg.seq and sets the request's result to
// -errno: errno is POSITIVE here (EAGAIN asks for a resend, 0 acks
// success with no data).
func AppendAck(dst []byte, seq uint32, pid uint32, errno uint32) []byte {
	return appendHeaders(dst, NlmsgHdrLen+CnMsgLen, pid, seq, errno, 0)
}

// Reply is one decoded daemon-to-kernel datagram, in either form.
type Reply struct {
	// Frame holds the headers as received. Frame.Req is set only in the
	// full form; its Data aliases the decoded buffer.
	Frame
	// AckOnly is set for the ack-only form (cn_msg.len == 0), which
	// carries no dm_ulog_request: the result is -CnAck, matched by CnSeq.
	AckOnly bool
}

// MatchSeq returns the sequence number the kernel matches the reply by:
// cn_msg.seq in the ack-only form, dm_ulog_request.seq in the full form
// (the full form's cn_msg.seq is not looked at).
func (r *Reply) MatchSeq() uint32 {
	if r.AckOnly {
		return r.CnSeq
	}
	return r.Req.Seq
}

// Result returns what the kernel's waiting caller gets from this reply when
// it offered capacity bytes for the answer (dm-log-userspace-transfer.c
// fill_pkg): the result code and the number of payload bytes copied. An
// ack-only reply yields -ack and 0 bytes (the length is left alone for
// -EAGAIN, which only triggers a resend); a full reply whose data_size
// exceeds capacity yields -ENOSPC and 0 bytes; otherwise the reply's error
// and data_size.
func (r *Reply) Result(capacity int) (result int32, n int) {
	if r.AckOnly {
		result = int32(-r.CnAck)
		if result == -int32(EAGAIN) {
			return result, max(capacity, 0)
		}
		return result, 0
	}
	if uint64(r.Req.DataSize) > uint64(max(capacity, 0)) {
		return -int32(ENOSPC), 0
	}
	return r.Req.Error, int(r.Req.DataSize)
}

// DecodeReply parses one daemon-to-kernel datagram and applies the
// kernel's own acceptance checks, in the kernel's order (connector.c
// cn_rx_skb and cn_call_callback, dm-log-userspace-transfer.c
// cn_ulog_callback; docs/protocol.md §1.4):
//
//  1. at least 16 bytes; 36 <= nlmsg_len; nlmsg_len - 16 <= 16384
//     (ErrTooLong); nlmsg_len <= bytes (ErrTruncated);
//  2. 36 + cn_msg.len <= nlmsg_len (ErrCnLen);
//  3. cn_msg.id == 7/1 (ErrConnectorID);
//  4. cn_msg.len == 0: the ack-only form, accepted;
//  5. cn_msg.len < 160: "Incomplete message received" (ErrIncomplete);
//  6. full form: data_size <= cn_msg.len - 160 (ErrDataSize).
//
// The last check is not made by the kernel, which copies data_size bytes
// whatever the message holds; a reply failing it reads past the message.
// An error from DecodeReply therefore means a real kernel would drop the
// reply (or misread it). Reply.Validate adds dlog's stricter rules.
// nlmsg_type, nlmsg_flags, nlmsg_pid, version, uuid, luid and request_type
// are not checked (the kernel does not look at them).
func DecodeReply(b []byte) (Reply, error) {
	var r Reply
	if len(b) < NlmsgHdrLen {
		return r, fmt.Errorf("ulog: reply of %d bytes, netlink header needs %d: %w", len(b), NlmsgHdrLen, ErrShort)
	}
	r.decodeNetlink(b)
	if r.NlLen < NlmsgHdrLen+CnMsgLen {
		return r, fmt.Errorf("ulog: reply nlmsg_len %d, headers need %d: %w", r.NlLen, NlmsgHdrLen+CnMsgLen, ErrShort)
	}
	if r.NlLen-NlmsgHdrLen > MaxConnectorMsg {
		return r, fmt.Errorf("ulog: reply nlmsg_len %d: %w", r.NlLen, ErrTooLong)
	}
	if uint64(r.NlLen) > uint64(len(b)) {
		return r, fmt.Errorf("ulog: reply nlmsg_len %d, %d bytes: %w", r.NlLen, len(b), ErrTruncated)
	}
	r.decodeConnector(b)
	if NlmsgHdrLen+CnMsgLen+uint32(r.CnLen) > r.NlLen {
		return r, fmt.Errorf("ulog: reply cn_msg.len %d, nlmsg_len %d: %w", r.CnLen, r.NlLen, ErrCnLen)
	}
	if r.CnIdx != CnIdxDM || r.CnVal != CnValDMUserspaceLog {
		return r, fmt.Errorf("ulog: reply cn_msg.id %d/%d: %w", r.CnIdx, r.CnVal, ErrConnectorID)
	}
	if r.CnLen == 0 {
		r.AckOnly = true
		return r, nil
	}
	if r.CnLen < RequestHeaderLen {
		return r, fmt.Errorf("ulog: reply cn_msg.len %d, header needs %d: %w", r.CnLen, RequestHeaderLen, ErrIncomplete)
	}
	q := &r.Req
	q.decodeHeader(b)
	if uint64(q.DataSize) > uint64(r.CnLen)-RequestHeaderLen {
		return r, fmt.Errorf("ulog: reply data_size %d, cn_msg.len %d: %w", q.DataSize, r.CnLen, ErrDataSize)
	}
	end := HeaderLen + int(q.DataSize)
	q.Data = b[HeaderLen:end:end]
	return r, nil
}

// Validate checks the rules dlog holds its own replies to, beyond what the
// kernel enforces (docs/protocol.md §1.4, §2.4, docs/conformance.md items 10 and 13):
// nlmsg_type NLMSG_DONE and flags 0; nlmsg_len exactly 36 + cn_msg.len;
// in the full form cn_msg.len exactly 160 + data_size and error 0 or a
// negative errno (-4095..0); in the ack-only form an ack of 0..4095.
// Every reply AppendReply and AppendAck produce passes.
func (r *Reply) Validate() error {
	if r.NlType != NlmsgDone || r.NlFlags != 0 {
		return fmt.Errorf("ulog: reply nlmsg_type %d flags %#x: %w", r.NlType, r.NlFlags, ErrReplyForm)
	}
	if r.NlLen != NlmsgHdrLen+CnMsgLen+uint32(r.CnLen) {
		return fmt.Errorf("ulog: reply nlmsg_len %d, cn_msg.len %d: %w", r.NlLen, r.CnLen, ErrReplyForm)
	}
	if r.AckOnly {
		if r.CnAck > maxErrno {
			return fmt.Errorf("ulog: ack %d: %w", r.CnAck, ErrErrno)
		}
		return nil
	}
	if uint32(r.CnLen) != RequestHeaderLen+r.Req.DataSize {
		return fmt.Errorf("ulog: reply cn_msg.len %d, data_size %d: %w", r.CnLen, r.Req.DataSize, ErrReplyForm)
	}
	if r.Req.Error > 0 || r.Req.Error < -maxErrno {
		return fmt.Errorf("ulog: reply error %d: %w", r.Req.Error, ErrErrno)
	}
	return nil
}

// ReplyCapacity returns how many payload bytes the kernel (module 1.3.0)
// offers for the reply to a request of type t (docs/protocol.md §2.5), and
// false when that depends on the call: STATUS_INFO gets what is left of the
// status buffer, STATUS_TABLE is never sent, and invalid types are never
// answered with data. A successful reply must carry exactly this many bytes
// for every type with a fixed answer (GET_REGION_SIZE, IS_CLEAN, IN_SYNC,
// GET_SYNC_COUNT: 8; GET_RESYNC_WORK, IS_REMOTE_RECOVERING: 16) and none
// for the others. CTR gets MaxCtrReply at table load and 0 in the
// reconnect sequence (docs/protocol.md §1.6); the table-load value is returned.
func ReplyCapacity(t RequestType) (n int, ok bool) {
	switch t {
	case TypeCtr:
		return MaxCtrReply, true
	case TypeDtr, TypePresuspend, TypePostsuspend, TypeResume, TypeFlush,
		TypeMarkRegion, TypeClearRegion, TypeSetRegionSync:
		return 0, true
	case TypeGetRegionSize, TypeIsClean, TypeInSync, TypeGetSyncCount:
		return Int64Len, true
	case TypeGetResyncWork, TypeIsRemoteRecovering:
		return PairLen, true
	}
	return 0, false
}
