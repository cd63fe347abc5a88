package ulog_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/ulog"
)

// Ensure that every malformed datagram is rejected with the documented
// sentinel, action, errno and seq, and that the reply the action calls for
// would be accepted by the kernel and matched to the right request.
func TestDecodeRequestMalformed(t *testing.T) {
	for _, tc := range malformed() {
		t.Run(tc.name, func(t *testing.T) {
			var f ulog.Frame
			err := ulog.DecodeRequest(tc.b, &f)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			var fe *ulog.FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("err %T is not a *FrameError", err)
			}
			if want, got := tc.action, fe.Action; want != got {
				t.Errorf("Action = %v, want %v", got, want)
			}
			if want, got := tc.errno, fe.Errno; want != got {
				t.Errorf("Errno = %d, want %d", got, want)
			}
			if want, got := tc.seq, fe.Seq; want != got {
				t.Errorf("Seq = %#x, want %#x", got, want)
			}
			if !strings.HasPrefix(err.Error(), "ulog: ") || !strings.Contains(err.Error(), tc.err.Error()) {
				t.Errorf("Error() = %q, want ulog: prefix and %q", err.Error(), tc.err.Error())
			}
			if f.Req.Data != nil {
				t.Errorf("rejected frame has Data % x", f.Req.Data)
			}
			out := fe.AppendReply(nil, &f, 99)
			if tc.action == ulog.ActionDrop {
				if len(out) != 0 {
					t.Fatalf("ActionDrop produced a %d-byte reply", len(out))
				}
				return
			}
			r, err := ulog.DecodeReply(out)
			if err != nil {
				t.Fatalf("kernel would drop the reply: %v", err)
			}
			if err := r.Validate(); err != nil {
				t.Errorf("reply not canonical: %v", err)
			}
			if want, got := tc.action == ulog.ActionAckAgain, r.AckOnly; want != got {
				t.Errorf("AckOnly = %v, want %v", got, want)
			}
			if want, got := tc.seq, r.MatchSeq(); want != got {
				t.Errorf("reply matched by seq %#x, want %#x", got, want)
			}
			if res, n := r.Result(16); res != -int32(tc.errno) || (tc.action == ulog.ActionReplyError && n != 0) {
				t.Errorf("kernel result %d (%d bytes), want %d", res, n, -int32(tc.errno))
			}
			if tc.action == ulog.ActionReplyError {
				if want, got := uint64(fixLUID), r.Req.LUID; want != got {
					t.Errorf("reply luid %#x, want %#x", got, want)
				}
			}
		})
	}
}

// Ensure that a kernel request decodes into every field, without copying
// the payload.
func TestDecodeRequestFields(t *testing.T) {
	b := inSyncFrame()
	var f ulog.Frame
	if err := ulog.DecodeRequest(b, &f); err != nil {
		t.Fatal(err)
	}
	want := ulog.Frame{
		NlLen: 204, NlType: 3, NlFlags: 0, NlSeq: fixSeq, NlPID: 0,
		CnIdx: 7, CnVal: 1, CnSeq: fixSeq, CnAck: 0, CnLen: 168, CnFlags: 0,
		Req: ulog.Request{LUID: fixLUID, Version: 3, Error: 0, Seq: fixSeq, RawType: 8, DataSize: 8},
	}
	copy(want.Req.UUID[:], fixUUID)
	if got := frameNoData(f); !reflect.DeepEqual(want, got) {
		t.Errorf("frame:\n got %+v\nwant %+v", got, want)
	}
	if want, got := ulog.TypeInSync, f.Req.Type(); want != got {
		t.Errorf("Type() = %v, want %v", got, want)
	}
	if want, got := fixUUID, string(f.Req.UUIDBytes()); want != got {
		t.Errorf("UUIDBytes() = %q, want %q", got, want)
	}
	if want, got := u64(42), f.Req.Data; !bytes.Equal(want, got) {
		t.Errorf("Data = % x, want % x", got, want)
	}
	if &f.Req.Data[0] != &b[offData] {
		t.Error("Data does not alias the input buffer")
	}
	if cap(f.Req.Data) != 8 {
		t.Errorf("cap(Data) = %d, want 8 (appending must not write into the input)", cap(f.Req.Data))
	}
	if !f.Req.KnownVersion() || !f.Req.CtrDeviceAllowed() {
		t.Error("version 3 not known")
	}
}

// frameNoData returns f without Data, for comparing headers.
func frameNoData(f ulog.Frame) ulog.Frame { f.Req.Data = nil; return f }

// Ensure that well-formed variations a kernel could send are accepted.
func TestDecodeRequestAccepts(t *testing.T) {
	base := inSyncFrame()
	ctr := request(ulog.TypeCtr, 1, bytes.Repeat([]byte{'9'}, ulog.MaxRequestPayload))
	for _, tc := range []struct {
		name    string
		b       []byte
		typ     ulog.RequestType
		raw     uint32
		version uint32
		known   bool
		data    []byte
	}{
		{name: "IN_SYNC", b: base, typ: ulog.TypeInSync, raw: 8, version: 3, known: true, data: u64(42)},
		{name: "NLMSG_ALIGN padding after nlmsg_len", b: request(ulog.TypeCtr, 1, []byte("1 a")), typ: ulog.TypeCtr, raw: 1, version: 3, known: true, data: []byte("1 a")},
		{name: "trailing bytes after the message", b: append(bytes.Clone(base), 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4), typ: ulog.TypeInSync, raw: 8, version: 3, known: true, data: u64(42)},
		{name: "cn_msg.len shorter than nlmsg_len allows", b: with(base, offNlLen, uint32(204)), typ: ulog.TypeInSync, raw: 8, version: 3, known: true, data: u64(42)},
		{name: "data_size shorter than cn_msg.len allows", b: with(base, offDataSize, uint32(4)), typ: ulog.TypeInSync, raw: 8, version: 3, known: true, data: u64(42)[:4]},
		{name: "request_type upper bits masked", b: with(base, offType, uint32(0x1008)), typ: ulog.TypeInSync, raw: 0x1008, version: 3, known: true, data: u64(42)},
		{name: "request_type 0xffffff11", b: with(base, offType, uint32(0xffffff11)), typ: ulog.TypeIsRemoteRecovering, raw: 0xffffff11, version: 3, known: true, data: u64(42)},
		{name: "version 1", b: with(base, offVersion, uint32(1)), typ: ulog.TypeInSync, raw: 8, version: 1, known: true, data: u64(42)},
		{name: "version 2", b: with(base, offVersion, uint32(2)), typ: ulog.TypeInSync, raw: 8, version: 2, known: true, data: u64(42)},
		{name: "version 4 (unknown, accepted)", b: with(base, offVersion, uint32(4)), typ: ulog.TypeInSync, raw: 8, version: 4, known: false, data: u64(42)},
		{name: "version 2^32-1 (unknown, accepted)", b: with(base, offVersion, uint32(0xffffffff)), typ: ulog.TypeInSync, raw: 8, version: 0xffffffff, known: false, data: u64(42)},
		{name: "uuid of 128 bytes", b: with(base, offUUID, bytes.Repeat([]byte{'u'}, 128)), typ: ulog.TypeInSync, raw: 8, version: 3, known: true, data: u64(42)},
		{name: "empty uuid", b: with(base, offUUID, make([]byte, ulog.UUIDLen)), typ: ulog.TypeInSync, raw: 8, version: 3, known: true, data: u64(42)},
		{name: "332-byte CTR string", b: ctr, typ: ulog.TypeCtr, raw: 1, version: 3, known: true, data: bytes.Repeat([]byte{'9'}, 332)},
		{name: "nonzero error, flags, pid, ack", b: with(with(with(with(base, offError, uint32(5)), offNlFlags, uint16(2)), offNlPID, uint32(9)), offCnAck, uint32(3)), typ: ulog.TypeInSync, raw: 8, version: 3, known: true, data: u64(42)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f ulog.Frame
			if err := ulog.DecodeRequest(tc.b, &f); err != nil {
				t.Fatal(err)
			}
			if want, got := tc.typ, f.Req.Type(); want != got {
				t.Errorf("Type() = %v, want %v", got, want)
			}
			if want, got := tc.raw, f.Req.RawType; want != got {
				t.Errorf("RawType = %#x, want %#x", got, want)
			}
			if want, got := tc.version, f.Req.Version; want != got {
				t.Errorf("Version = %d, want %d", got, want)
			}
			if want, got := tc.known, f.Req.KnownVersion(); want != got {
				t.Errorf("KnownVersion() = %v, want %v", got, want)
			}
			if want, got := tc.data, f.Req.Data; !bytes.Equal(want, got) || uint32(len(got)) != f.Req.DataSize {
				t.Errorf("Data = % x (DataSize %d), want % x", got, f.Req.DataSize, want)
			}
		})
	}
}

// Ensure that every valid request type round-trips through AppendRequest.
func TestRequestTypesRoundTrip(t *testing.T) {
	for typ := ulog.TypeCtr; typ <= ulog.MaxRequestType; typ++ {
		b := request(typ, uint32(typ)*1000, u64(uint64(typ)))
		var f ulog.Frame
		if err := ulog.DecodeRequest(b, &f); err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		if f.Req.Type() != typ || f.Req.Seq != uint32(typ)*1000 || f.CnSeq != f.Req.Seq || f.NlSeq != f.Req.Seq {
			t.Errorf("%v: decoded type %v seq %d cn %d nl %d", typ, f.Req.Type(), f.Req.Seq, f.CnSeq, f.NlSeq)
		}
	}
}

// Ensure that DecodeRequest resets the frame and survives a nil one.
func TestDecodeRequestResetsFrame(t *testing.T) {
	var f ulog.Frame
	if err := ulog.DecodeRequest(inSyncFrame(), &f); err != nil {
		t.Fatal(err)
	}
	err := ulog.DecodeRequest(with(inSyncFrame(), offCnLen, uint16(100)), &f)
	if !errors.Is(err, ulog.ErrIncomplete) {
		t.Fatalf("err = %v", err)
	}
	if f.Req.LUID != 0 || f.Req.Seq != 0 || f.Req.Data != nil {
		t.Errorf("stale request left in the frame after ErrIncomplete: %+v", f.Req)
	}
	var fe *ulog.FrameError
	if err := ulog.DecodeRequest(inSyncFrame(), nil); !errors.As(err, &fe) || fe.Action != ulog.ActionDrop {
		t.Errorf("nil frame: err = %v", err)
	}
}

// Ensure that AppendRequest writes the kernel's bytes, including the
// zeroed NLMSG_ALIGN padding after an unaligned payload.
func TestAppendRequest(t *testing.T) {
	var r ulog.Request
	r.LUID, r.Version, r.Seq, r.RawType = fixLUID, 3, fixSeq, 8
	r.Data = u64(42)
	if err := r.SetUUID(fixUUID); err != nil {
		t.Fatal(err)
	}
	r.DataSize = 999 // ignored
	if want, got := inSyncFrame(), ulog.AppendRequest(nil, &r); !bytes.Equal(want, got) {
		t.Errorf("AppendRequest:\n got % x\nwant % x", got, want)
	}
	prefix := []byte("keep")
	if got := ulog.AppendRequest(prefix, &r); !bytes.Equal(got[:4], prefix) || !bytes.Equal(got[4:], inSyncFrame()) {
		t.Error("AppendRequest does not append after dst")
	}
	for n := 0; n <= 8; n++ {
		r.Data = bytes.Repeat([]byte{0xff}, n)
		b := ulog.AppendRequest(nil, &r)
		if want, got := (196+n+3)&^3, len(b); want != got {
			t.Errorf("payload %d: datagram of %d bytes, want %d", n, got, want)
		}
		if want, got := uint32(196+n), ne.Uint32(b[offNlLen:]); want != got {
			t.Errorf("payload %d: nlmsg_len %d, want %d", n, got, want)
		}
		if pad := b[196+n:]; !bytes.Equal(pad, make([]byte, len(pad))) {
			t.Errorf("payload %d: padding % x not zero", n, pad)
		}
	}
	r.Data = make([]byte, ulog.MaxReplyPayload+10)
	if want, got := ulog.HeaderLen+ulog.MaxReplyPayload, len(ulog.AppendRequest(nil, &r)); want != got {
		t.Errorf("oversize payload: %d bytes, want %d", got, want)
	}
	var f ulog.Frame
	if err := ulog.DecodeRequest(ulog.AppendRequest(nil, nil), &f); !errors.Is(err, ulog.ErrRequestType) {
		t.Errorf("AppendRequest(nil) decodes with %v, want ErrRequestType (type 0)", err)
	}
}

func TestSetUUID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{in: "", ok: true},
		{in: fixUUID, ok: true},
		{in: "LVM-" + strings.Repeat("x", 124), ok: true}, // 128 bytes
		{in: strings.Repeat("x", 129), ok: false},
		{in: "a\x00b", ok: false},
	} {
		var r ulog.Request
		r.UUID[128] = 'z' // stale byte that SetUUID must clear
		err := r.SetUUID(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("SetUUID(%q) err = %v", tc.in, err)
			continue
		}
		if err != nil {
			if !errors.Is(err, ulog.ErrUUID) {
				t.Errorf("SetUUID(%q) err = %v, want ErrUUID", tc.in, err)
			}
			continue
		}
		if want, got := tc.in, string(r.UUIDBytes()); want != got || r.UUID[128] != 0 {
			t.Errorf("SetUUID(%q): UUIDBytes %q, last byte %d", tc.in, got, r.UUID[128])
		}
	}
	var r ulog.Request
	copy(r.UUID[:], bytes.Repeat([]byte{'u'}, ulog.UUIDLen))
	if want, got := ulog.UUIDLen, len(r.UUIDBytes()); want != got {
		t.Errorf("UUIDBytes of a field without NUL: %d bytes, want %d", got, want)
	}
}

func TestRequestType(t *testing.T) {
	for _, tc := range []struct {
		t     ulog.RequestType
		s     string
		valid bool
	}{
		{t: 0, s: "RequestType(0)"},
		{t: ulog.TypeCtr, s: "CTR", valid: true},
		{t: ulog.TypeDtr, s: "DTR", valid: true},
		{t: ulog.TypePresuspend, s: "PRESUSPEND", valid: true},
		{t: ulog.TypePostsuspend, s: "POSTSUSPEND", valid: true},
		{t: ulog.TypeResume, s: "RESUME", valid: true},
		{t: ulog.TypeGetRegionSize, s: "GET_REGION_SIZE", valid: true},
		{t: ulog.TypeIsClean, s: "IS_CLEAN", valid: true},
		{t: ulog.TypeInSync, s: "IN_SYNC", valid: true},
		{t: ulog.TypeFlush, s: "FLUSH", valid: true},
		{t: ulog.TypeMarkRegion, s: "MARK_REGION", valid: true},
		{t: ulog.TypeClearRegion, s: "CLEAR_REGION", valid: true},
		{t: ulog.TypeGetResyncWork, s: "GET_RESYNC_WORK", valid: true},
		{t: ulog.TypeSetRegionSync, s: "SET_REGION_SYNC", valid: true},
		{t: ulog.TypeGetSyncCount, s: "GET_SYNC_COUNT", valid: true},
		{t: ulog.TypeStatusInfo, s: "STATUS_INFO", valid: true},
		{t: ulog.TypeStatusTable, s: "STATUS_TABLE", valid: true},
		{t: ulog.TypeIsRemoteRecovering, s: "IS_REMOTE_RECOVERING", valid: true},
		{t: 18, s: "RequestType(18)"},
		{t: 0x1008, s: "RequestType(4104)"},
	} {
		if want, got := tc.s, tc.t.String(); want != got {
			t.Errorf("String(%d) = %q, want %q", uint32(tc.t), got, want)
		}
		if want, got := tc.valid, tc.t.Valid(); want != got {
			t.Errorf("Valid(%d) = %v, want %v", uint32(tc.t), got, want)
		}
		p, ok := ulog.ParseRequestType(tc.s)
		if ok != tc.valid || (ok && p != tc.t) {
			t.Errorf("ParseRequestType(%q) = %v, %v", tc.s, p, ok)
		}
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[ulog.Action]string{
		ulog.ActionDrop: "drop", ulog.ActionAckAgain: "ack-again", ulog.ActionReplyError: "reply-error", 7: "Action(7)",
	} {
		if got := a.String(); got != want {
			t.Errorf("Action(%d).String() = %q, want %q", int(a), got, want)
		}
	}
}
