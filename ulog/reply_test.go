package ulog_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dlog-dev/dlog/ulog"
)

func decodedInSync(t *testing.T) ulog.Frame {
	t.Helper()
	var f ulog.Frame
	if err := ulog.DecodeRequest(inSyncFrame(), &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// Ensure that AppendReply writes the full form byte for byte.
func TestAppendReply(t *testing.T) {
	f := decodedInSync(t)
	got := ulog.AppendReply(nil, &f.Req, 99, 0, ulog.AppendBool(nil, true))
	if want := inSyncReplyFrame(); !bytes.Equal(want, got) {
		t.Fatalf("AppendReply:\n got % x\nwant % x", got, want)
	}
	// The request's error, data_size and upper type bits: error and
	// data_size are the reply's own, request_type is echoed as received.
	f.Req.Error, f.Req.DataSize, f.Req.RawType = 77, 3, 0x1008
	got = ulog.AppendReply([]byte("xy"), &f.Req, 99, -int32(ulog.EIO), nil)
	want := cat([]byte("xy"), with(with(with(with(with(inSyncReplyFrame()[:196],
		offNlLen, uint32(196)), // nlmsg_len: no payload
		offCnLen, uint16(160)), // cn_msg.len: no payload
		offError, uint32(0xfffffffb)), // error: -EIO
		offDataSize, uint32(0)), // data_size: 0
		offType, uint32(0x1008))) // request_type: echoed with its upper bits
	if !bytes.Equal(want, got) {
		t.Fatalf("AppendReply(-EIO):\n got % x\nwant % x", got, want)
	}
}

// Ensure that AppendReply never emits a positive error or a payload that
// cannot be framed.
func TestAppendReplyGuards(t *testing.T) {
	f := decodedInSync(t)
	for _, tc := range []struct {
		name    string
		errno   int32
		payload []byte
		wantErr int32
		wantLen uint32
	}{
		{name: "success", errno: 0, payload: u64(1), wantErr: 0, wantLen: 8},
		{name: "negative errno kept", errno: -22, payload: nil, wantErr: -22},
		{name: "positive errno negated", errno: 22, payload: nil, wantErr: -22},
		{name: "largest payload", errno: 0, payload: make([]byte, ulog.MaxReplyPayload), wantErr: 0, wantLen: ulog.MaxReplyPayload},
		{name: "oversize payload becomes -EMSGSIZE", errno: 0, payload: make([]byte, ulog.MaxReplyPayload+1), wantErr: -int32(ulog.EMSGSIZE)},
		{name: "oversize payload keeps an errno", errno: -5, payload: make([]byte, 70000), wantErr: -5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := ulog.AppendReply(nil, &f.Req, 1, tc.errno, tc.payload)
			r, err := ulog.DecodeReply(b)
			if err != nil {
				t.Fatalf("kernel would drop the reply: %v", err)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if want, got := tc.wantErr, r.Req.Error; want != got {
				t.Errorf("error = %d, want %d", got, want)
			}
			if want, got := tc.wantLen, r.Req.DataSize; want != got {
				t.Errorf("data_size = %d, want %d", got, want)
			}
		})
	}
	if r, err := ulog.DecodeReply(ulog.AppendReply(nil, nil, 1, 0, nil)); err != nil || r.Req.Seq != 0 {
		t.Errorf("AppendReply(nil req): %v", err)
	}
}

// Ensure that AppendAck writes the ack-only form byte for byte, errno positive.
func TestAppendAck(t *testing.T) {
	got := ulog.AppendAck(nil, 0x1234, 99, uint32(ulog.EAGAIN))
	if want := ackFrame(); !bytes.Equal(want, got) {
		t.Fatalf("AppendAck:\n got % x\nwant % x", got, want)
	}
	r, err := ulog.DecodeReply(got)
	if err != nil {
		t.Fatal(err)
	}
	if !r.AckOnly || r.MatchSeq() != 0x1234 {
		t.Errorf("AckOnly %v MatchSeq %#x", r.AckOnly, r.MatchSeq())
	}
	if res, n := r.Result(8); res != -11 || n != 8 {
		t.Errorf("Result(8) = %d, %d; want -EAGAIN with the capacity kept", res, n)
	}
	r0, _ := ulog.DecodeReply(ulog.AppendAck(nil, 5, 99, 0))
	if res, n := r0.Result(8); res != 0 || n != 0 {
		t.Errorf("ack 0: Result(8) = %d, %d; want 0, 0", res, n)
	}
}

// Ensure that DecodeReply applies the kernel's acceptance checks (docs/protocol.md §1.4)
// in the kernel's order.
func TestDecodeReplyMalformed(t *testing.T) {
	for _, tc := range malformedReplies() {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ulog.DecodeReply(tc.b)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

// Ensure that Validate holds replies to dlog's canonical form while
// DecodeReply accepts whatever the kernel accepts.
func TestReplyValidate(t *testing.T) {
	full := inSyncReplyFrame()
	ack := ackFrame()
	for _, tc := range []struct {
		name string
		b    []byte
		err  error // from Validate; DecodeReply must succeed
	}{
		{name: "full", b: full},
		{name: "ack", b: ack},
		{name: "ack-only 0", b: with(ack, offCnAck, uint32(0))},
		{name: "NLMSG_ERROR type", b: with(full, offNlType, uint16(2)), err: ulog.ErrReplyForm},
		{name: "nlmsg flags", b: with(full, offNlFlags, uint16(1)), err: ulog.ErrReplyForm},
		{name: "nlmsg_len longer than cn_msg", b: append(with(full, offNlLen, uint32(208)), 0, 0, 0, 0), err: ulog.ErrReplyForm},
		{name: "cn_msg.len longer than data", b: with(with(append(bytes.Clone(full), 0, 0, 0, 0), offCnLen, uint16(172)), offNlLen, uint32(208)), err: ulog.ErrReplyForm},
		{name: "data_size shorter than cn_msg", b: with(full, offDataSize, uint32(4)), err: ulog.ErrReplyForm},
		{name: "positive error", b: with(full, offError, uint32(22)), err: ulog.ErrErrno},
		{name: "error below -4095", b: with(full, offError, uint32(0xffffe000)), err: ulog.ErrErrno},
		{name: "ack 4096", b: with(ack, offCnAck, uint32(4096)), err: ulog.ErrErrno},
		{name: "ack with a longer nlmsg_len", b: append(with(ack, offNlLen, uint32(40)), 0, 0, 0, 0), err: ulog.ErrReplyForm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ulog.DecodeReply(tc.b)
			if err != nil {
				t.Fatalf("DecodeReply: %v", err)
			}
			if err := r.Validate(); !errors.Is(err, tc.err) {
				t.Fatalf("Validate = %v, want %v", err, tc.err)
			}
		})
	}
}

// Ensure that Result reproduces the kernel's fill_pkg.
func TestReplyResult(t *testing.T) {
	f := decodedInSync(t)
	for _, tc := range []struct {
		name     string
		b        []byte
		capacity int
		res      int32
		n        int
	}{
		{name: "fits", b: ulog.AppendReply(nil, &f.Req, 1, 0, u64(1)), capacity: 8, res: 0, n: 8},
		{name: "larger capacity", b: ulog.AppendReply(nil, &f.Req, 1, 0, u64(1)), capacity: 16, res: 0, n: 8},
		{name: "too large: -ENOSPC", b: ulog.AppendReply(nil, &f.Req, 1, 0, u64(1)), capacity: 0, res: -28, n: 0},
		{name: "negative capacity", b: ulog.AppendReply(nil, &f.Req, 1, 0, u64(1)), capacity: -1, res: -28, n: 0},
		{name: "error with no data", b: ulog.AppendReply(nil, &f.Req, 1, -22, nil), capacity: 0, res: -22, n: 0},
		{name: "ack ESRCH", b: ulog.AppendAck(nil, 3, 1, 3), capacity: 16, res: -3, n: 0},
		{name: "ack EAGAIN", b: ulog.AppendAck(nil, 3, 1, 11), capacity: 16, res: -11, n: 16},
		{name: "ack 2^32-1 (kernel: -ack wraps to 1)", b: ulog.AppendAck(nil, 3, 1, 0xffffffff), capacity: 16, res: 1, n: 0},
	} {
		r, err := ulog.DecodeReply(tc.b)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if res, n := r.Result(tc.capacity); res != tc.res || n != tc.n {
			t.Errorf("%s: Result(%d) = %d, %d; want %d, %d", tc.name, tc.capacity, res, n, tc.res, tc.n)
		}
	}
}

func TestReplyCapacity(t *testing.T) {
	want := map[ulog.RequestType]int{
		ulog.TypeCtr: 128, ulog.TypeDtr: 0, ulog.TypePresuspend: 0, ulog.TypePostsuspend: 0,
		ulog.TypeResume: 0, ulog.TypeGetRegionSize: 8, ulog.TypeIsClean: 8, ulog.TypeInSync: 8,
		ulog.TypeFlush: 0, ulog.TypeMarkRegion: 0, ulog.TypeClearRegion: 0, ulog.TypeGetResyncWork: 16,
		ulog.TypeSetRegionSync: 0, ulog.TypeGetSyncCount: 8, ulog.TypeIsRemoteRecovering: 16,
	}
	for typ := ulog.RequestType(0); typ < 300; typ++ {
		n, ok := ulog.ReplyCapacity(typ)
		w, wok := want[typ]
		if ok != wok || n != w {
			t.Errorf("ReplyCapacity(%v) = %d, %v; want %d, %v", typ, n, ok, w, wok)
		}
	}
}

// Ensure that the reply for a FrameError is the one its action names.
func TestFrameErrorAppendReply(t *testing.T) {
	fe := &ulog.FrameError{Action: ulog.ActionReplyError, Errno: ulog.EINVAL, Seq: 9, Err: ulog.ErrUUID}
	r, err := ulog.DecodeReply(fe.AppendReply(nil, nil, 1))
	if err != nil || r.AckOnly || r.Req.Seq != 9 || r.Req.Error != -22 {
		t.Errorf("reply-error with nil frame: %+v, %v", r, err)
	}
	if got := (&ulog.FrameError{Action: ulog.ActionDrop}).AppendReply([]byte("x"), nil, 1); string(got) != "x" {
		t.Errorf("drop appended %q", got)
	}
	if !errors.Is(fe, ulog.ErrUUID) {
		t.Error("FrameError does not unwrap to its sentinel")
	}
	if want, got := "ulog: invalid frame (reply-error -EINVAL seq 9)", (&ulog.FrameError{Action: ulog.ActionReplyError, Errno: ulog.EINVAL, Seq: 9}).Error(); want != got {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
