// Package ulog is the wire codec of the device-mapper userspace dirty log
// (linux/dm-log-userspace.h, protocol version 3): one netlink connector
// datagram in either direction, kernel requests and daemon replies.
//
// The package is pure: no syscalls, no state, native byte order
// (binary.NativeEndian, as netlink is a host ABI), and it builds and tests
// on every platform. The socket lives elsewhere.
//
// # Layout
//
// Every datagram is one netlink message holding one connector message
// holding one dm_ulog_request (docs/protocol.md §1.2, §2.1):
//
//	offset size  field
//	     0    4  nlmsghdr.nlmsg_len    36 + cn_msg.len (padding not counted)
//	     4    2  nlmsghdr.nlmsg_type   NLMSG_DONE (3)
//	     6    2  nlmsghdr.nlmsg_flags  0
//	     8    4  nlmsghdr.nlmsg_seq    kernel: = seq; daemon: any
//	    12    4  nlmsghdr.nlmsg_pid    kernel: 0; daemon: its port id
//	    16    4  cn_msg.id.idx         CN_IDX_DM (7)
//	    20    4  cn_msg.id.val         CN_VAL_DM_USERSPACE_LOG (1)
//	    24    4  cn_msg.seq            kernel: = seq; ack-only reply: the match key
//	    28    4  cn_msg.ack            ack-only reply: positive errno; else 0
//	    32    2  cn_msg.len            160 + data_size; 0 = ack-only reply
//	    34    2  cn_msg.flags          0
//	    36    8  luid                  kernel's per-instance id
//	    44  129  uuid                  NUL-terminated, zero-padded
//	   173    3  (padding)             0
//	   176    4  version               DM_ULOG_REQUEST_VERSION (3)
//	   180    4  error                 request: 0; reply: 0 or -errno
//	   184    4  seq                   full reply: the match key
//	   188    4  request_type          type = request_type & 0xFF
//	   192    4  data_size             payload length
//	   196    n  data                  request: n <= 332; reply: see docs/protocol.md §2.5
//
// The kernel allocates its message with NLMSG_ALIGN, so a received request
// can carry up to 3 zero bytes after nlmsg_len; AppendRequest adds them
// too, AppendReply does not (the kernel needs none).
//
// # Checks
//
// DecodeRequest checks, in this order, and stops at the first failure
// (docs/conformance.md items 5-8, items 16-18, §5 rows a-e). What the
// daemon must do is the FrameError's Action:
//
//	 #  check                                 error           action
//	 1  len(b) >= 16                          ErrShort        drop
//	 2  nlmsg_len >= 36                       ErrShort        drop
//	 3  nlmsg_len <= len(b)                   ErrTruncated    drop
//	 4  nlmsg_type == NLMSG_DONE              ErrNotDone      drop
//	 5  cn_msg.id == 7/1                      ErrConnectorID  drop
//	 6  36 + cn_msg.len <= nlmsg_len          ErrCnLen        drop
//	 7  cn_msg.len >= 160                     ErrIncomplete   ack-only EAGAIN, cn_msg.seq
//	 8  data_size <= cn_msg.len - 160         ErrDataSize     reply -EINVAL, seq
//	 9  data_size <= 332                      ErrDataSize     reply -EINVAL, seq
//	10  request_type & 0xFF in 1..17          ErrRequestType  reply -EINVAL, seq
//	11  NUL within the 129-byte uuid          ErrUUID         reply -EINVAL, seq
//	12  version != 0                          ErrVersion      reply -EPROTO, seq
//
// Nothing of dm_ulog_request is read before check 7 passes. "drop" means no
// reply: without a sound connector header there is no request to answer,
// and the daemon drops datagrams not sent by the kernel anyway (docs/conformance.md item
// 4; MSG_TRUNC and the source address are the socket layer's to check).
// Type 0 gets the same -EINVAL as types 18..255 (not cmirrord's ack-only
// EAGAIN, which would make the kernel resend the same bad request at once,
// forever). Upper bits of request_type are masked, not rejected.
//
// Payload sizes per request type are not checked by DecodeRequest; the
// daemon checks them with Region, Regions, SetRegionSync and CtrString,
// which fail with ErrPayloadSize or ErrCtrString.
//
// # Version policy
//
// The kernel never reads the version of a reply, and the struct has the
// same size in every version (docs/protocol.md §2.3). DecodeRequest therefore accepts any
// version except 0: 1..3 are known (Request.KnownVersion), and a higher
// version is accepted as well, for the daemon to warn about once and serve
// as version 3. Version 0 was never sent by any kernel (the protocol began
// at 1), so a 0 marks a message not built by dm-log-userspace; it is
// answered with -EPROTO. What depends on the version is left to the
// daemon: a CTR reply may name the log device only from version 2 on
// (Request.CtrDeviceAllowed); FLUSH payloads exist from version 3 on but
// must be accepted whatever the version says (docs/protocol.md §3.1 FLUSH).
//
// # Replies
//
// AppendReply builds the full form (matched by dm_ulog_request.seq),
// AppendAck the ack-only form (matched by cn_msg.seq, errno positive in
// cn_msg.ack). Both append to a caller's buffer, and DecodeRequest fills a
// caller's Frame, so serving a request allocates nothing:
//
//	var f ulog.Frame
//	var p [ulog.Int64Len]byte
//	if err := ulog.DecodeRequest(b, &f); err != nil { ... }
//	r, err := ulog.Region(f.Req.Data)
//	out = ulog.AppendReply(out[:0], &f.Req, pid, 0, ulog.AppendBool(p[:0], inSync(r)))
//
// DecodeReply is the other direction, for fake kernels and tests: it
// applies the kernel's own acceptance checks, Reply.Result computes what
// the kernel's caller receives, and Reply.Validate checks dlog's stricter
// rules for replies.
package ulog
