package ulog_test

import (
	"bytes"
	"encoding/binary"
	"syscall"
	"testing"

	"github.com/dlog-dev/dlog/ulog"
)

var ne = binary.NativeEndian

// Offsets of the datagram fields, spelled out independently of the package.
const (
	offNlLen    = 0
	offNlType   = 4
	offNlFlags  = 6
	offNlSeq    = 8
	offNlPID    = 12
	offCnIdx    = 16
	offCnVal    = 20
	offCnSeq    = 24
	offCnAck    = 28
	offCnLen    = 32
	offCnFlags  = 34
	offLUID     = 36
	offUUID     = 44
	offVersion  = 176
	offError    = 180
	offSeq      = 184
	offType     = 188
	offDataSize = 192
	offData     = 196
)

func u16(v uint16) []byte { return ne.AppendUint16(nil, v) }
func u32(v uint32) []byte { return ne.AppendUint32(nil, v) }
func u64(v uint64) []byte { return ne.AppendUint64(nil, v) }

// uuidField returns s NUL-padded to the 129-byte uuid field.
func uuidField(s string) []byte {
	b := make([]byte, ulog.UUIDLen)
	copy(b, s)
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

const (
	fixLUID = 0xff3dda563fde8400 // a luid the kernel sent in kernel-trace.txt
	fixUUID = "dlog-test-0001"
	fixSeq  = 7
)

// inSyncFrame is a well-formed IN_SYNC request for region 42 as the kernel
// sends it (native byte order, so the fixture holds on every host).
func inSyncFrame() []byte {
	return cat(
		// nlmsghdr
		u32(204),    // nlmsg_len: 16 + 20 + 160 + 8
		u16(3),      // nlmsg_type: NLMSG_DONE
		u16(0),      // nlmsg_flags: none
		u32(fixSeq), // nlmsg_seq: the kernel copies cn_msg.seq
		u32(0),      // nlmsg_pid: 0, the kernel
		// cn_msg
		u32(7),      // id.idx: CN_IDX_DM
		u32(1),      // id.val: CN_VAL_DM_USERSPACE_LOG
		u32(fixSeq), // seq: = dm_ulog_request.seq
		u32(0),      // ack: 0 in requests
		u16(168),    // len: 160 + data_size
		u16(0),      // flags: none
		// dm_ulog_request
		u64(fixLUID),       // luid
		uuidField(fixUUID), // uuid: "dlog-test-0001", NUL-padded to 129 bytes
		[]byte{0, 0, 0},    // padding
		u32(3),             // version: DM_ULOG_REQUEST_VERSION 3
		u32(0),             // error: 0 in requests
		u32(fixSeq),        // seq
		u32(8),             // request_type: IN_SYNC
		u32(8),             // data_size: one u64
		u64(42),            // data: region 42
	)
}

// ackFrame is the ack-only reply AppendAck(nil, 0x1234, 99, EAGAIN) must give.
func ackFrame() []byte {
	return cat(
		u32(36),     // nlmsg_len: headers only
		u16(3),      // nlmsg_type: NLMSG_DONE
		u16(0),      // nlmsg_flags: none
		u32(0x1234), // nlmsg_seq: the seq being acked
		u32(99),     // nlmsg_pid: the daemon's port id
		u32(7),      // id.idx: CN_IDX_DM
		u32(1),      // id.val: CN_VAL_DM_USERSPACE_LOG
		u32(0x1234), // seq: the match key of the ack-only form
		u32(11),     // ack: EAGAIN, positive
		u16(0),      // len: 0 marks the ack-only form
		u16(0),      // flags: none
	)
}

// inSyncReplyFrame is the full reply AppendReply must give for
// inSyncFrame's request, pid 99, answer "in sync".
func inSyncReplyFrame() []byte {
	return cat(
		u32(204),           // nlmsg_len: 196 + 8
		u16(3),             // nlmsg_type: NLMSG_DONE
		u16(0),             // nlmsg_flags: none
		u32(fixSeq),        // nlmsg_seq: the request's seq
		u32(99),            // nlmsg_pid: the daemon's port id
		u32(7),             // id.idx: CN_IDX_DM
		u32(1),             // id.val: CN_VAL_DM_USERSPACE_LOG
		u32(fixSeq),        // seq: the request's seq (not used by the kernel)
		u32(0),             // ack: 0 in the full form
		u16(168),           // len: 160 + 8
		u16(0),             // flags: none
		u64(fixLUID),       // luid: echoed
		uuidField(fixUUID), // uuid: echoed
		[]byte{0, 0, 0},    // padding
		u32(3),             // version: echoed
		u32(0),             // error: success
		u32(fixSeq),        // seq: the match key of the full form
		u32(8),             // request_type: echoed
		u32(8),             // data_size: one s64
		u64(1),             // data: 1 = in sync
	)
}

// with returns a copy of b with v written at off (2, 4 or 8 bytes by type).
func with(b []byte, off int, v any) []byte {
	c := bytes.Clone(b)
	switch v := v.(type) {
	case uint16:
		ne.PutUint16(c[off:], v)
	case uint32:
		ne.PutUint32(c[off:], v)
	case uint64:
		ne.PutUint64(c[off:], v)
	case []byte:
		copy(c[off:], v)
	default:
		panic("with: unsupported type")
	}
	return c
}

// request builds a kernel-style request datagram of type t with payload.
func request(t ulog.RequestType, seq uint32, payload []byte) []byte {
	r := ulog.Request{LUID: fixLUID, Version: 3, Seq: seq, RawType: uint32(t), Data: payload}
	if err := r.SetUUID(fixUUID); err != nil {
		panic(err)
	}
	return ulog.AppendRequest(nil, &r)
}

// badCase is a datagram DecodeRequest must reject, and the reaction.
type badCase struct {
	name   string
	b      []byte
	err    error
	action ulog.Action
	errno  syscall.Errno
	seq    uint32
}

// malformed lists every malformed datagram of docs/conformance.md item 50 and
// §5 rows a-e (the seeds of FuzzDecodeRequest include them). Where a
// reply is due the frame carries three different seqs (nlmsg 0x3333,
// cn_msg 0x1111, dm_ulog_request 0x2222), so the expected seq shows which
// one the reply must carry.
func malformed() []badCase {
	base := inSyncFrame()
	seqs := func(b []byte) []byte { // cn_msg.seq 0x1111, dm_ulog_request.seq 0x2222, nlmsg_seq 0x3333
		return with(with(with(b, offCnSeq, uint32(0x1111)), offSeq, uint32(0x2222)), offNlSeq, uint32(0x3333))
	}
	noNUL := bytes.Repeat([]byte{'u'}, ulog.UUIDLen)
	big := request(ulog.TypeMarkRegion, fixSeq, make([]byte, 336)) // 42 regions: over 332
	const drop, ack, reply = ulog.ActionDrop, ulog.ActionAckAgain, ulog.ActionReplyError
	return []badCase{
		// docs/conformance.md §5 a / docs/conformance.md item 5: too short to hold the headers.
		{name: "empty", b: nil, err: ulog.ErrShort, action: drop},
		{name: "truncated netlink header", b: base[:15], err: ulog.ErrShort, action: drop},
		{name: "netlink header only", b: base[:16], err: ulog.ErrTruncated, action: drop},
		{name: "nlmsg_len 0", b: with(base, offNlLen, uint32(0)), err: ulog.ErrShort, action: drop},
		{name: "nlmsg_len 16", b: with(base, offNlLen, uint32(16)), err: ulog.ErrShort, action: drop},
		{name: "nlmsg_len 35", b: with(base, offNlLen, uint32(35)), err: ulog.ErrShort, action: drop},
		// docs/conformance.md §5 b: nlmsg_len beyond the bytes received.
		{name: "nlmsg_len > received by 1", b: with(base, offNlLen, uint32(205)), err: ulog.ErrTruncated, action: drop},
		{name: "nlmsg_len 2^32-1", b: with(base, offNlLen, uint32(0xffffffff)), err: ulog.ErrTruncated, action: drop},
		{name: "datagram cut after cn_msg", b: base[:36], err: ulog.ErrTruncated, action: drop},
		{name: "datagram cut in the payload", b: base[:200], err: ulog.ErrTruncated, action: drop},
		// docs/conformance.md item 5: not NLMSG_DONE.
		{name: "type NLMSG_ERROR", b: with(base, offNlType, uint16(2)), err: ulog.ErrNotDone, action: drop},
		{name: "type NLMSG_NOOP", b: with(base, offNlType, uint16(1)), err: ulog.ErrNotDone, action: drop},
		{name: "type 0x10", b: with(base, offNlType, uint16(0x10)), err: ulog.ErrNotDone, action: drop},
		// docs/conformance.md item 6: another connector user.
		{name: "cn id 1/1 (proc events)", b: with(base, offCnIdx, uint32(1)), err: ulog.ErrConnectorID, action: drop},
		{name: "cn id 7/2", b: with(base, offCnVal, uint32(2)), err: ulog.ErrConnectorID, action: drop},
		{name: "cn id 0/0", b: with(with(base, offCnIdx, uint32(0)), offCnVal, uint32(0)), err: ulog.ErrConnectorID, action: drop},
		// docs/conformance.md §5 c / docs/conformance.md item 7: cn_msg.len beyond nlmsg_len (and the bytes received).
		{name: "cn_msg.len > received by 1", b: with(base, offCnLen, uint16(169)), err: ulog.ErrCnLen, action: drop},
		{name: "cn_msg.len 0xffff", b: with(base, offCnLen, uint16(0xffff)), err: ulog.ErrCnLen, action: drop},
		{name: "cn_msg.len within received, beyond nlmsg_len", b: with(append(bytes.Clone(base), 0, 0, 0, 0), offCnLen, uint16(172)), err: ulog.ErrCnLen, action: drop},
		// cn_msg.len < 160: ack-only EAGAIN with cn_msg.seq; the header is never read.
		{name: "cn_msg.len 159", b: with(seqs(base), offCnLen, uint16(159)), err: ulog.ErrIncomplete, action: ack, errno: ulog.EAGAIN, seq: 0x1111},
		{name: "cn_msg.len 0", b: with(seqs(base), offCnLen, uint16(0)), err: ulog.ErrIncomplete, action: ack, errno: ulog.EAGAIN, seq: 0x1111},
		{name: "headers only, cn_msg.len 0", b: with(with(seqs(base)[:36], offNlLen, uint32(36)), offCnLen, uint16(0)), err: ulog.ErrIncomplete, action: ack, errno: ulog.EAGAIN, seq: 0x1111},
		{name: "cn_msg.len 100 of a 136-byte message", b: with(with(seqs(base)[:136], offNlLen, uint32(136)), offCnLen, uint16(100)), err: ulog.ErrIncomplete, action: ack, errno: ulog.EAGAIN, seq: 0x1111},
		// docs/conformance.md §5 d / docs/conformance.md item 8: data_size beyond cn_msg.len or 332: reply -EINVAL with the request's seq.
		{name: "data_size 9 > cn_msg.len-160", b: with(seqs(base), offDataSize, uint32(9)), err: ulog.ErrDataSize, action: reply, errno: ulog.EINVAL, seq: 0x2222},
		{name: "data_size 2^32-1", b: with(seqs(base), offDataSize, uint32(0xffffffff)), err: ulog.ErrDataSize, action: reply, errno: ulog.EINVAL, seq: 0x2222},
		{name: "data_size 8 with cn_msg.len 160", b: with(with(seqs(base), offCnLen, uint16(160)), offNlLen, uint32(196)), err: ulog.ErrDataSize, action: reply, errno: ulog.EINVAL, seq: 0x2222},
		{name: "data_size 336 > 332, consistent lengths", b: big, err: ulog.ErrDataSize, action: reply, errno: ulog.EINVAL, seq: fixSeq},
		// docs/conformance.md item 16: unknown request types (after masking).
		{name: "request_type 0", b: with(seqs(base), offType, uint32(0)), err: ulog.ErrRequestType, action: reply, errno: ulog.EINVAL, seq: 0x2222},
		{name: "request_type 18", b: with(seqs(base), offType, uint32(18)), err: ulog.ErrRequestType, action: reply, errno: ulog.EINVAL, seq: 0x2222},
		{name: "request_type 255", b: with(seqs(base), offType, uint32(255)), err: ulog.ErrRequestType, action: reply, errno: ulog.EINVAL, seq: 0x2222},
		{name: "request_type 0x1000 (masks to 0)", b: with(seqs(base), offType, uint32(0x1000)), err: ulog.ErrRequestType, action: reply, errno: ulog.EINVAL, seq: 0x2222},
		{name: "request_type 0xffffff12 (masks to 18)", b: with(seqs(base), offType, uint32(0xffffff12)), err: ulog.ErrRequestType, action: reply, errno: ulog.EINVAL, seq: 0x2222},
		// docs/conformance.md item 17 / docs/conformance.md §5 e: uuid with no NUL in 129 bytes.
		{name: "uuid without NUL", b: with(seqs(base), offUUID, noNUL), err: ulog.ErrUUID, action: reply, errno: ulog.EINVAL, seq: 0x2222},
		// docs/conformance.md item 18: version 0 was never sent.
		{name: "version 0", b: with(seqs(base), offVersion, uint32(0)), err: ulog.ErrVersion, action: reply, errno: ulog.EPROTO, seq: 0x2222},
		// Several faults: the first check in the documented order wins.
		{name: "cn_msg.len 159 and request_type 0", b: with(with(seqs(base), offCnLen, uint16(159)), offType, uint32(0)), err: ulog.ErrIncomplete, action: ack, errno: ulog.EAGAIN, seq: 0x1111},
		{name: "bad data_size and request_type 0", b: with(with(seqs(base), offDataSize, uint32(16)), offType, uint32(0)), err: ulog.ErrDataSize, action: reply, errno: ulog.EINVAL, seq: 0x2222},
		{name: "request_type 0 and uuid without NUL", b: with(with(seqs(base), offType, uint32(0)), offUUID, noNUL), err: ulog.ErrRequestType, action: reply, errno: ulog.EINVAL, seq: 0x2222},
		{name: "uuid without NUL and version 0", b: with(with(seqs(base), offVersion, uint32(0)), offUUID, noNUL), err: ulog.ErrUUID, action: reply, errno: ulog.EINVAL, seq: 0x2222},
		{name: "wrong cn id and cn_msg.len 0", b: with(with(base, offCnIdx, uint32(1)), offCnLen, uint16(0)), err: ulog.ErrConnectorID, action: drop},
		{name: "not DONE and wrong cn id", b: with(with(base, offNlType, uint16(2)), offCnIdx, uint32(1)), err: ulog.ErrNotDone, action: drop},
	}
}

// requireLittleEndian skips tests whose fixtures are byte dumps from the
// little-endian (x86-64) kernel of kernel-trace.txt.
func requireLittleEndian(t testing.TB) {
	t.Helper()
	if ne.Uint16([]byte{1, 0}) != 1 {
		t.Skip("skipping: kernel-trace.txt was captured on a little-endian host; this host is big-endian")
	}
}

// badReply is a reply the kernel drops, and the DecodeReply error.
type badReply struct {
	name string
	b    []byte
	err  error
}

// malformedReplies lists replies a kernel would drop (docs/protocol.md §1.4),
// plus the one DecodeReply rejects although the kernel would misread it.
func malformedReplies() []badReply {
	full := inSyncReplyFrame()
	ack := ackFrame()
	return []badReply{
		{name: "empty", b: nil, err: ulog.ErrShort},
		{name: "15 bytes", b: full[:15], err: ulog.ErrShort},
		{name: "nlmsg_len 35", b: with(full, offNlLen, uint32(35)), err: ulog.ErrShort},
		{name: "nlmsg_len 15 (nlmsg_len - 16 negative)", b: with(full, offNlLen, uint32(15)), err: ulog.ErrShort},
		{name: "nlmsg_len - 16 > 16384", b: with(append(bytes.Clone(full), make([]byte, 16400)...), offNlLen, uint32(16+16385)), err: ulog.ErrTooLong},
		{name: "nlmsg_len 2^32-1", b: with(full, offNlLen, uint32(0xffffffff)), err: ulog.ErrTooLong},
		{name: "nlmsg_len > bytes", b: with(full, offNlLen, uint32(205)), err: ulog.ErrTruncated},
		{name: "cn_msg.len > nlmsg_len - 36", b: with(full, offCnLen, uint16(169)), err: ulog.ErrCnLen},
		{name: "cn id 7/2", b: with(full, offCnVal, uint32(2)), err: ulog.ErrConnectorID},
		{name: "ack with cn id 1/1", b: with(ack, offCnIdx, uint32(1)), err: ulog.ErrConnectorID},
		{name: "cn_msg.len 1", b: with(full, offCnLen, uint16(1)), err: ulog.ErrIncomplete},
		{name: "cn_msg.len 159", b: with(full, offCnLen, uint16(159)), err: ulog.ErrIncomplete},
		{name: "data_size > cn_msg.len - 160", b: with(full, offDataSize, uint32(9)), err: ulog.ErrDataSize},
		{name: "data_size 2^32-1", b: with(full, offDataSize, uint32(0xffffffff)), err: ulog.ErrDataSize},
		{name: "cn_msg.len check before the id", b: with(with(full, offCnLen, uint16(400)), offCnIdx, uint32(1)), err: ulog.ErrCnLen},
	}
}
