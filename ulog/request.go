package ulog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"
)

// Request is one struct dm_ulog_request: the 160-byte header and its
// payload. The same struct describes a request (kernel to daemon) and the
// header of a full reply (daemon to kernel).
type Request struct {
	// LUID is the kernel's id of this log instance (the address of its
	// context); unique only among live instances with the same UUID.
	LUID uint64
	// UUID is the raw 129-byte uuid field: NUL-terminated and zero-padded
	// by the kernel. Use UUIDBytes for the string part.
	UUID [UUIDLen]byte
	// Version is DM_ULOG_REQUEST_VERSION of the sender (3 on Linux >= 3.14).
	Version uint32
	// Error is 0 in requests and the result (0 or a negative errno) in
	// replies.
	Error int32
	// Seq is the sequence number a reply is matched by.
	Seq uint32
	// RawType is request_type as received, upper bits included; replies
	// echo it. Type returns the masked type.
	RawType uint32
	// DataSize is data_size as received.
	DataSize uint32
	// Data is the payload. After a successful decode it aliases the input
	// buffer (its capacity ends with the payload) and len(Data) == DataSize.
	Data []byte
}

// Type returns the request type: RawType & 0xFF (DM_ULOG_REQUEST_MASK).
func (r *Request) Type() RequestType { return RequestType(r.RawType & RequestTypeMask) }

// UUIDBytes returns the uuid: the bytes of the UUID field before its first
// NUL. It does not allocate; the result aliases r.UUID. For a field with no
// NUL (which DecodeRequest rejects) it returns all 129 bytes.
func (r *Request) UUIDBytes() []byte {
	if i := bytes.IndexByte(r.UUID[:], 0); i >= 0 {
		return r.UUID[:i]
	}
	return r.UUID[:]
}

// SetUUID stores s in the UUID field, NUL-terminated and zero-padded as the
// kernel does. It fails with ErrUUID if s is longer than 128 bytes or
// contains a NUL.
func (r *Request) SetUUID(s string) error {
	if len(s) > MaxUUIDLen {
		return fmt.Errorf("ulog: uuid of %d bytes, at most %d: %w", len(s), MaxUUIDLen, ErrUUID)
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Errorf("ulog: uuid has a NUL at byte %d: %w", i, ErrUUID)
	}
	r.UUID = [UUIDLen]byte{}
	copy(r.UUID[:], s)
	return nil
}

// KnownVersion reports whether Version is one this package knows (1..3).
// DecodeRequest accepts higher versions too (the struct is UAPI and has not
// changed size); a daemon should warn once and serve them as version 3.
func (r *Request) KnownVersion() bool { return r.Version >= 1 && r.Version <= Version }

// CtrDeviceAllowed reports whether a successful CTR reply may carry the log
// device name: only from version 2 on (version 1 kernels offer no reply
// buffer for CTR; docs/protocol.md §2.3, docs/conformance.md item 18).
func (r *Request) CtrDeviceAllowed() bool { return r.Version >= 2 }

// Frame is one decoded datagram: the netlink and connector headers as
// received, and the request they carry.
type Frame struct {
	NlLen   uint32 // nlmsghdr.nlmsg_len
	NlType  uint16 // nlmsghdr.nlmsg_type (NLMSG_DONE)
	NlFlags uint16 // nlmsghdr.nlmsg_flags (0 from the kernel)
	NlSeq   uint32 // nlmsghdr.nlmsg_seq (= cn_msg.seq from the kernel)
	NlPID   uint32 // nlmsghdr.nlmsg_pid (0 from the kernel)
	CnIdx   uint32 // cn_msg.id.idx (CN_IDX_DM)
	CnVal   uint32 // cn_msg.id.val (CN_VAL_DM_USERSPACE_LOG)
	CnSeq   uint32 // cn_msg.seq (= Req.Seq from the kernel)
	CnAck   uint32 // cn_msg.ack (0 from the kernel; errno in ack-only replies)
	CnLen   uint16 // cn_msg.len (160 + data_size; 0 in ack-only replies)
	CnFlags uint16 // cn_msg.flags (0)
	Req     Request
}

// DecodeRequest parses one datagram exactly as the kernel sends it into f,
// without allocating: f.Req.Data aliases b. f is reset first.
//
// It runs the framing checks of docs/conformance.md items 5-8, items
// 16-18 and §5 rows a-e in the order given in the package documentation
// and stops at the first that fails, returning a *FrameError that says how
// to react. When the action is ActionReplyError, f holds the netlink and
// connector headers and the request header (but no Data) so that the error
// reply can echo it; after an ActionAckAgain or ActionDrop error f holds the
// headers decoded so far and a zero Req.
//
// Bytes after nlmsg_len (the kernel's alignment padding) are ignored, as
// are bytes between the end of the payload and cn_msg.len or nlmsg_len.
// Payload contents are not checked; see Region, Regions, SetRegionSync and
// CtrString.
func DecodeRequest(b []byte, f *Frame) error {
	if f == nil {
		return &FrameError{Action: ActionDrop, Err: fmt.Errorf("ulog: DecodeRequest into a nil *Frame")}
	}
	*f = Frame{}
	// docs/conformance.md §5 a, docs/conformance.md item 5: the netlink header must be there at all.
	if len(b) < NlmsgHdrLen {
		return dropf(ErrShort, "ulog: datagram of %d bytes, netlink header needs %d", len(b), NlmsgHdrLen)
	}
	f.decodeNetlink(b)
	// docs/conformance.md §5 b, docs/conformance.md item 5: 36 <= nlmsg_len <= received.
	if f.NlLen < NlmsgHdrLen+CnMsgLen {
		return dropf(ErrShort, "ulog: nlmsg_len %d, netlink and connector headers need %d", f.NlLen, NlmsgHdrLen+CnMsgLen)
	}
	if uint64(f.NlLen) > uint64(len(b)) {
		return dropf(ErrTruncated, "ulog: nlmsg_len %d, %d bytes received", f.NlLen, len(b))
	}
	if f.NlType != NlmsgDone {
		return dropf(ErrNotDone, "ulog: nlmsg_type %d", f.NlType)
	}
	f.decodeConnector(b)
	// docs/conformance.md item 6.
	if f.CnIdx != CnIdxDM || f.CnVal != CnValDMUserspaceLog {
		return dropf(ErrConnectorID, "ulog: cn_msg.id %d/%d", f.CnIdx, f.CnVal)
	}
	// docs/conformance.md §5 c, docs/conformance.md item 7: 36 + cn_msg.len <= nlmsg_len, else no reply.
	if NlmsgHdrLen+CnMsgLen+uint32(f.CnLen) > f.NlLen {
		return dropf(ErrCnLen, "ulog: cn_msg.len %d, nlmsg_len %d leaves %d", f.CnLen, f.NlLen, f.NlLen-NlmsgHdrLen-CnMsgLen)
	}
	// cn_msg.len >= 160, else ask for a resend without parsing the header.
	if f.CnLen < RequestHeaderLen {
		return &FrameError{
			Action: ActionAckAgain, Errno: EAGAIN, Seq: f.CnSeq,
			Err: fmt.Errorf("ulog: cn_msg.len %d, request header needs %d: %w", f.CnLen, RequestHeaderLen, ErrIncomplete),
		}
	}
	r := &f.Req
	r.decodeHeader(b)
	// docs/conformance.md §5 d, docs/conformance.md item 8.
	if uint64(r.DataSize) > uint64(f.CnLen)-RequestHeaderLen {
		return replyf(r.Seq, EINVAL, ErrDataSize, "ulog: data_size %d, cn_msg.len %d leaves %d", r.DataSize, f.CnLen, f.CnLen-RequestHeaderLen)
	}
	if r.DataSize > MaxRequestPayload {
		return replyf(r.Seq, EINVAL, ErrDataSize, "ulog: data_size %d, kernel requests carry at most %d", r.DataSize, MaxRequestPayload)
	}
	// docs/conformance.md item 16.
	if !r.Type().Valid() {
		return replyf(r.Seq, EINVAL, ErrRequestType, "ulog: request_type %#x (type %d)", r.RawType, r.Type())
	}
	// docs/conformance.md item 17, docs/conformance.md §5 e.
	if bytes.IndexByte(r.UUID[:], 0) < 0 {
		return replyf(r.Seq, EINVAL, ErrUUID, "ulog: %s", r.Type())
	}
	// docs/conformance.md item 18: versions 1..3 are known; higher ones are accepted
	// (KnownVersion reports false); 0 was never sent by any kernel.
	if r.Version == 0 {
		return replyf(r.Seq, EPROTO, ErrVersion, "ulog: %s", r.Type())
	}
	end := HeaderLen + int(r.DataSize)
	r.Data = b[HeaderLen:end:end]
	return nil
}

// decodeNetlink reads the netlink header; len(b) >= NlmsgHdrLen.
func (f *Frame) decodeNetlink(b []byte) {
	f.NlLen = binary.NativeEndian.Uint32(b[offNlLen:])
	f.NlType = binary.NativeEndian.Uint16(b[offNlType:])
	f.NlFlags = binary.NativeEndian.Uint16(b[offNlFlags:])
	f.NlSeq = binary.NativeEndian.Uint32(b[offNlSeq:])
	f.NlPID = binary.NativeEndian.Uint32(b[offNlPID:])
}

// decodeConnector reads the connector header; len(b) >= NlmsgHdrLen +
// CnMsgLen.
func (f *Frame) decodeConnector(b []byte) {
	ne := binary.NativeEndian
	f.CnIdx, f.CnVal = ne.Uint32(b[offCnIdx:]), ne.Uint32(b[offCnVal:]) // cn_msg.id
	f.CnSeq, f.CnAck = ne.Uint32(b[offCnSeq:]), ne.Uint32(b[offCnAck:])
	f.CnLen, f.CnFlags = ne.Uint16(b[offCnLen:]), ne.Uint16(b[offCnFlags:])
}

// decodeHeader reads the dm_ulog_request header (not Data); len(b) >=
// HeaderLen.
func (r *Request) decodeHeader(b []byte) {
	r.LUID = binary.NativeEndian.Uint64(b[offLUID:])
	copy(r.UUID[:], b[offUUID:offUUID+UUIDLen])
	r.Version = binary.NativeEndian.Uint32(b[offVersion:])
	r.Error = int32(binary.NativeEndian.Uint32(b[offError:]))
	r.Seq = binary.NativeEndian.Uint32(b[offSeq:])
	r.RawType = binary.NativeEndian.Uint32(b[offType:])
	r.DataSize = binary.NativeEndian.Uint32(b[offDataSize:])
}

func dropf(sentinel error, format string, args ...any) error {
	return &FrameError{Action: ActionDrop, Err: fmt.Errorf(format+": %w", append(args, sentinel)...)}
}

func replyf(seq uint32, errno syscall.Errno, sentinel error, format string, args ...any) error {
	return &FrameError{
		Action: ActionReplyError, Errno: errno, Seq: seq,
		Err: fmt.Errorf(format+": %w", append(args, sentinel)...),
	}
}

// AppendRequest appends to dst the datagram a kernel sends for req (the
// other direction of DecodeRequest, for fake kernels, replay drivers and
// tests), as built by dm-log-userspace-transfer.c and the connector core
// (docs/protocol.md §1.2, §1.3):
//
//	nlmsghdr{len = 196 + n, type = NLMSG_DONE, flags = 0, seq = req.Seq, pid = 0}
//	cn_msg{idx = 7, val = 1, seq = req.Seq, ack = 0, len = 160 + n, flags = 0}
//	dm_ulog_request{luid, uuid (all 129 bytes), 3 zero bytes, version,
//	                error, seq, request_type = req.RawType, data_size = n}
//	req.Data
//	zero padding to a multiple of 4 (NLMSG_ALIGN), as __nlmsg_put adds it
//
// where n = len(req.Data). The padding is not counted in nlmsg_len; a
// receiver gets it (the kernel's skb holds the aligned length), but the
// kernel-trace.txt dumps stop at nlmsg_len. req.DataSize is ignored. A
// payload longer than MaxReplyPayload (which no connector message can
// carry; kernels send at most 332 bytes) is cut to that length.
func AppendRequest(dst []byte, req *Request) []byte {
	if req == nil {
		req = &Request{}
	}
	data := req.Data
	if len(data) > MaxReplyPayload {
		data = data[:MaxReplyPayload]
	}
	n := len(data)
	dst = appendHeaders(dst, uint32(HeaderLen+n), 0, req.Seq, 0, uint16(RequestHeaderLen+n))
	dst = appendRequestHeader(dst, req, req.Error, uint32(n))
	dst = append(dst, data...)
	for i := HeaderLen + n; i < align4(HeaderLen+n); i++ {
		dst = append(dst, 0)
	}
	return dst
}

// appendHeaders appends nlmsghdr and cn_msg with the fields every
// datagram of either direction shares.
func appendHeaders(dst []byte, nlLen, pid, seq, ack uint32, cnLen uint16) []byte {
	dst = binary.NativeEndian.AppendUint32(dst, nlLen)
	dst = binary.NativeEndian.AppendUint16(dst, NlmsgDone)
	dst = binary.NativeEndian.AppendUint16(dst, 0)   // nlmsg_flags
	dst = binary.NativeEndian.AppendUint32(dst, seq) // nlmsg_seq
	dst = binary.NativeEndian.AppendUint32(dst, pid) // nlmsg_pid
	dst = binary.NativeEndian.AppendUint32(dst, CnIdxDM)
	dst = binary.NativeEndian.AppendUint32(dst, CnValDMUserspaceLog)
	dst = binary.NativeEndian.AppendUint32(dst, seq) // cn_msg.seq
	dst = binary.NativeEndian.AppendUint32(dst, ack) // cn_msg.ack
	dst = binary.NativeEndian.AppendUint16(dst, cnLen)
	dst = binary.NativeEndian.AppendUint16(dst, 0) // cn_msg.flags
	return dst
}

// appendRequestHeader appends the 160-byte dm_ulog_request header.
func appendRequestHeader(dst []byte, req *Request, errno int32, dataSize uint32) []byte {
	dst = binary.NativeEndian.AppendUint64(dst, req.LUID)
	dst = append(dst, req.UUID[:]...)
	dst = append(dst, 0, 0, 0) // padding
	dst = binary.NativeEndian.AppendUint32(dst, req.Version)
	dst = binary.NativeEndian.AppendUint32(dst, uint32(errno))
	dst = binary.NativeEndian.AppendUint32(dst, req.Seq)
	dst = binary.NativeEndian.AppendUint32(dst, req.RawType)
	dst = binary.NativeEndian.AppendUint32(dst, dataSize)
	return dst
}
