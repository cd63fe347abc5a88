package ulog

import "strconv"

// Sizes and limits of the wire format. All of them are fixed by the kernel
// UAPI (linux/netlink.h, linux/connector.h, linux/dm-log-userspace.h) and by
// dm-log-userspace-transfer.c; docs/protocol.md §1.2, §2.1 and Appendix A.
const (
	// NlmsgHdrLen is sizeof(struct nlmsghdr) (NLMSG_HDRLEN).
	NlmsgHdrLen = 16
	// CnMsgLen is sizeof(struct cn_msg).
	CnMsgLen = 20
	// RequestHeaderLen is sizeof(struct dm_ulog_request) without its payload.
	RequestHeaderLen = 160
	// HeaderLen is the length of everything before the payload in one
	// datagram: nlmsghdr + cn_msg + dm_ulog_request.
	HeaderLen = NlmsgHdrLen + CnMsgLen + RequestHeaderLen
	// MaxRequestPayload is the largest payload a kernel request carries: the
	// kernel builds requests in a preallocated 512-byte buffer
	// (DM_ULOG_PREALLOCED_SIZE) holding cn_msg + dm_ulog_request + payload.
	MaxRequestPayload = 512 - CnMsgLen - RequestHeaderLen
	// MaxRequestLen is the longest request datagram a kernel sends (528).
	MaxRequestLen = HeaderLen + MaxRequestPayload
	// MaxConnectorMsg is CONNECTOR_MAX_MSG_SIZE: the largest netlink payload
	// (cn_msg + data) the kernel accepts from user space.
	MaxConnectorMsg = 16384
	// MaxReplyPayload is the largest reply payload that fits in one
	// connector message (16204). The kernel offers far less to every request
	// type (docs/protocol.md §2.5); this is only the framing limit.
	MaxReplyPayload = MaxConnectorMsg - CnMsgLen - RequestHeaderLen
	// UUIDLen is DM_UUID_LEN, the size of the uuid field including its NUL.
	UUIDLen = 129
	// MaxUUIDLen is the longest uuid string (DM_UUID_LEN - 1).
	MaxUUIDLen = UUIDLen - 1
	// CnIdxDM is CN_IDX_DM, the connector index of device-mapper; it is also
	// the netlink multicast group the kernel sends requests to.
	CnIdxDM = 0x7
	// CnValDMUserspaceLog is CN_VAL_DM_USERSPACE_LOG.
	CnValDMUserspaceLog = 0x1
	// NlmsgDone is NLMSG_DONE, the netlink message type of every connector
	// message in both directions.
	NlmsgDone = 0x3
	// Version is DM_ULOG_REQUEST_VERSION of the newest protocol this package
	// knows (Linux 3.14 and later).
	Version = 3
	// RequestTypeMask is DM_ULOG_REQUEST_MASK: only the low 8 bits of
	// request_type carry the type.
	RequestTypeMask = 0xFF
	// Int64Len is the size of the one-value payloads (u64 region, s64
	// answer, u64 count).
	Int64Len = 8
	// PairLen is the size of the two-value payloads: the {u64, s64} request
	// of SET_REGION_SYNC and the {s64, u64} replies of GET_RESYNC_WORK and
	// IS_REMOTE_RECOVERING.
	PairLen = 16
)

// Byte offsets of every field inside one datagram.
const (
	offNlLen    = 0
	offNlType   = 4
	offNlFlags  = 6
	offNlSeq    = 8
	offNlPID    = 12
	offCnIdx    = NlmsgHdrLen + 0
	offCnVal    = NlmsgHdrLen + 4
	offCnSeq    = NlmsgHdrLen + 8
	offCnAck    = NlmsgHdrLen + 12
	offCnLen    = NlmsgHdrLen + 16
	offCnFlags  = NlmsgHdrLen + 18
	offReq      = NlmsgHdrLen + CnMsgLen
	offLUID     = offReq + 0
	offUUID     = offReq + 8
	offPad      = offUUID + UUIDLen // 3 bytes of padding
	offVersion  = offReq + 140
	offError    = offReq + 144
	offSeq      = offReq + 148
	offType     = offReq + 152
	offDataSize = offReq + 156
)

// RequestType is the type of a dm-log-userspace request (the low 8 bits of
// dm_ulog_request.request_type). Its values are the DM_ULOG_* numbers of
// linux/dm-log-userspace.h.
type RequestType uint32

// The request types of protocol version 3 (docs/protocol.md §3).
const (
	TypeCtr                RequestType = 1  // DM_ULOG_CTR: construct a log from a table string
	TypeDtr                RequestType = 2  // DM_ULOG_DTR: destroy a log
	TypePresuspend         RequestType = 3  // DM_ULOG_PRESUSPEND: stop handing out recovery work
	TypePostsuspend        RequestType = 4  // DM_ULOG_POSTSUSPEND: persist, no I/O until resume
	TypeResume             RequestType = 5  // DM_ULOG_RESUME: load state (read the disk log)
	TypeGetRegionSize      RequestType = 6  // DM_ULOG_GET_REGION_SIZE: reply u64 sectors
	TypeIsClean            RequestType = 7  // DM_ULOG_IS_CLEAN: u64 region, reply s64 0/1
	TypeInSync             RequestType = 8  // DM_ULOG_IN_SYNC: u64 region, reply s64 0/1
	TypeFlush              RequestType = 9  // DM_ULOG_FLUSH: optional u64 regions to mark (v3)
	TypeMarkRegion         RequestType = 10 // DM_ULOG_MARK_REGION: u64 regions
	TypeClearRegion        RequestType = 11 // DM_ULOG_CLEAR_REGION: u64 regions
	TypeGetResyncWork      RequestType = 12 // DM_ULOG_GET_RESYNC_WORK: reply {s64 i, u64 r}
	TypeSetRegionSync      RequestType = 13 // DM_ULOG_SET_REGION_SYNC: {u64 r, s64 in_sync}
	TypeGetSyncCount       RequestType = 14 // DM_ULOG_GET_SYNC_COUNT: reply u64
	TypeStatusInfo         RequestType = 15 // DM_ULOG_STATUS_INFO: reply status text
	TypeStatusTable        RequestType = 16 // DM_ULOG_STATUS_TABLE: reply table text (never sent)
	TypeIsRemoteRecovering RequestType = 17 // DM_ULOG_IS_REMOTE_RECOVERING: u64 region, reply {s64, u64}

	// MaxRequestType is the highest request type defined by version 3.
	MaxRequestType = TypeIsRemoteRecovering
)

var typeNames = [...]string{
	TypeCtr:                "CTR",
	TypeDtr:                "DTR",
	TypePresuspend:         "PRESUSPEND",
	TypePostsuspend:        "POSTSUSPEND",
	TypeResume:             "RESUME",
	TypeGetRegionSize:      "GET_REGION_SIZE",
	TypeIsClean:            "IS_CLEAN",
	TypeInSync:             "IN_SYNC",
	TypeFlush:              "FLUSH",
	TypeMarkRegion:         "MARK_REGION",
	TypeClearRegion:        "CLEAR_REGION",
	TypeGetResyncWork:      "GET_RESYNC_WORK",
	TypeSetRegionSync:      "SET_REGION_SYNC",
	TypeGetSyncCount:       "GET_SYNC_COUNT",
	TypeStatusInfo:         "STATUS_INFO",
	TypeStatusTable:        "STATUS_TABLE",
	TypeIsRemoteRecovering: "IS_REMOTE_RECOVERING",
}

// Valid reports whether t is one of the 17 request types of protocol
// version 3. Type 0 and 18 and above are not.
func (t RequestType) Valid() bool {
	return t >= TypeCtr && t <= MaxRequestType
}

// String returns the kernel's name of t without the DM_ULOG_ prefix, such
// as "CTR" or "IN_SYNC", or "RequestType(N)" for an invalid type.
func (t RequestType) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return "RequestType(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// ParseRequestType returns the type whose String is name ("IN_SYNC"), or
// false if there is none.
func ParseRequestType(name string) (RequestType, bool) {
	for t := TypeCtr; t <= MaxRequestType; t++ {
		if typeNames[t] == name {
			return t, true
		}
	}
	return 0, false
}

// align4 rounds n up to NLMSG_ALIGNTO (4).
func align4(n int) int { return (n + 3) &^ 3 }
