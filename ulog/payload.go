package ulog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"iter"
)

// Payload decoders. DecodeRequest checks only that a payload lies within
// the message; the daemon checks its size for the request type with these
// (docs/conformance.md §5 row g). They never read outside data and do not
// allocate on success, except CtrString, which returns a string.

// Region decodes the u64 region number that is the whole payload of
// IS_CLEAN, IN_SYNC and IS_REMOTE_RECOVERING. data must be exactly 8
// bytes, else ErrPayloadSize.
func Region(data []byte) (uint64, error) {
	if len(data) != Int64Len {
		return 0, fmt.Errorf("ulog: region payload of %d bytes, want %d: %w", len(data), Int64Len, ErrPayloadSize)
	}
	return binary.NativeEndian.Uint64(data), nil
}

// RegionList is a payload of u64 region numbers (MARK_REGION,
// CLEAR_REGION, FLUSH with integrated-flush marks), read in place.
type RegionList []byte

// MaxRegions is the most regions a request payload can hold (41; kernels
// send at most 32, MAX_FLUSH_GROUP_COUNT).
const MaxRegions = MaxRequestPayload / Int64Len

// Regions checks a list payload and returns it as a RegionList: a multiple
// of 8 bytes, at least 8 and at most 332 (so at most 41 regions), else
// ErrPayloadSize. It does not allocate.
func Regions(data []byte) (RegionList, error) {
	if len(data) < Int64Len || len(data) > MaxRequestPayload || len(data)%Int64Len != 0 {
		return nil, fmt.Errorf("ulog: region list payload of %d bytes, want a multiple of 8 in 8..%d: %w", len(data), MaxRequestPayload, ErrPayloadSize)
	}
	return RegionList(data), nil
}

// Len returns the number of regions in l.
func (l RegionList) Len() int { return len(l) / Int64Len }

// At returns region i, 0 <= i < l.Len().
func (l RegionList) At(i int) uint64 { return binary.NativeEndian.Uint64(l[i*Int64Len:]) }

// All returns an iterator over the index and value of every region in l.
func (l RegionList) All() iter.Seq2[int, uint64] {
	return func(yield func(int, uint64) bool) {
		for i := 0; i < l.Len(); i++ {
			if !yield(i, l.At(i)) {
				return
			}
		}
	}
}

// SetRegionSync decodes the 16-byte SET_REGION_SYNC payload
// {u64 region; s64 in_sync} (note the order: the opposite of the
// GET_RESYNC_WORK reply). data must be exactly 16 bytes, else
// ErrPayloadSize.
func SetRegionSync(data []byte) (region uint64, inSync int64, err error) {
	if len(data) != PairLen {
		return 0, 0, fmt.Errorf("ulog: SET_REGION_SYNC payload of %d bytes, want %d: %w", len(data), PairLen, ErrPayloadSize)
	}
	return binary.NativeEndian.Uint64(data), int64(binary.NativeEndian.Uint64(data[8:])), nil
}

// CtrString decodes the CTR payload: the ASCII constructor string
// "<target_len_sectors> <args...>". It reads only data (data_size bytes)
// and strips trailing NULs, because the kernel sends the string without a
// NUL on table load and with one in the reconnect sequence (docs/protocol.md §2.5). An
// empty string or one with an embedded NUL gives ErrCtrString, a payload
// over 332 bytes ErrPayloadSize. The tokens are not interpreted.
func CtrString(data []byte) (string, error) {
	if len(data) > MaxRequestPayload {
		return "", fmt.Errorf("ulog: CTR payload of %d bytes, at most %d: %w", len(data), MaxRequestPayload, ErrPayloadSize)
	}
	s := bytes.TrimRight(data, "\x00")
	if len(s) == 0 {
		return "", fmt.Errorf("ulog: empty CTR string: %w", ErrCtrString)
	}
	if i := bytes.IndexByte(s, 0); i >= 0 {
		return "", fmt.Errorf("ulog: CTR string has a NUL at byte %d of %d: %w", i, len(data), ErrCtrString)
	}
	return string(s), nil
}

// Int64 decodes an 8-byte s64 reply payload (IS_CLEAN, IN_SYNC; the u64
// answers of GET_REGION_SIZE and GET_SYNC_COUNT decode with Region).
// data must be exactly 8 bytes, else ErrPayloadSize.
func Int64(data []byte) (int64, error) {
	if len(data) != Int64Len {
		return 0, fmt.Errorf("ulog: s64 payload of %d bytes, want %d: %w", len(data), Int64Len, ErrPayloadSize)
	}
	return int64(binary.NativeEndian.Uint64(data)), nil
}

// Pair decodes a 16-byte {s64; u64} reply payload: {i, r} of
// GET_RESYNC_WORK and {is_recovering, in_sync_hint} of
// IS_REMOTE_RECOVERING. data must be exactly 16 bytes, else
// ErrPayloadSize.
func Pair(data []byte) (int64, uint64, error) {
	if len(data) != PairLen {
		return 0, 0, fmt.Errorf("ulog: pair payload of %d bytes, want %d: %w", len(data), PairLen, ErrPayloadSize)
	}
	return int64(binary.NativeEndian.Uint64(data)), binary.NativeEndian.Uint64(data[8:]), nil
}

// Payload encoders. They append to dst, so a daemon can build a reply
// payload in a stack array without allocating:
//
//	var p [ulog.PairLen]byte
//	buf = ulog.AppendReply(buf[:0], &f.Req, pid, 0, ulog.AppendPair(p[:0], 1, region))

// AppendUint64 appends v as a native-endian u64: the reply of
// GET_REGION_SIZE and GET_SYNC_COUNT, or one region of a request payload.
func AppendUint64(dst []byte, v uint64) []byte { return binary.NativeEndian.AppendUint64(dst, v) }

// AppendInt64 appends v as a native-endian s64.
func AppendInt64(dst []byte, v int64) []byte { return binary.NativeEndian.AppendUint64(dst, uint64(v)) }

// AppendBool appends v as an s64 that is exactly 1 or 0: the reply of
// IS_CLEAN and IN_SYNC (docs/conformance.md item 30; some kernel callers compare with 1,
// others with 0).
func AppendBool(dst []byte, v bool) []byte {
	var i int64
	if v {
		i = 1
	}
	return AppendInt64(dst, i)
}

// AppendPair appends the 16-byte {s64 i; u64 r} reply of GET_RESYNC_WORK
// ({i = 1, r = region} hands out work, i = 0 none) and of
// IS_REMOTE_RECOVERING ({is_recovering, in_sync_hint}).
func AppendPair(dst []byte, i int64, r uint64) []byte {
	dst = AppendInt64(dst, i)
	return AppendUint64(dst, r)
}

// AppendRegionSync appends the 16-byte {u64 region; s64 in_sync} request
// payload of SET_REGION_SYNC (for fake kernels and tests).
func AppendRegionSync(dst []byte, region uint64, inSync int64) []byte {
	dst = AppendUint64(dst, region)
	return AppendInt64(dst, inSync)
}

// AppendCString appends s and a terminating NUL: the CTR reply naming the
// log device (version >= 2, at most MaxCtrReply bytes with the NUL) and
// the STATUS_INFO reply, which must include the NUL in data_size (docs/protocol.md §3.1).
func AppendCString(dst []byte, s string) []byte {
	dst = append(dst, s...)
	return append(dst, 0)
}
