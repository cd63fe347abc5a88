package fakekernel_test

import (
	"errors"
	"testing"

	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/ulog"
)

// Check passes the replies a sound daemon sends and catches each rule a
// broken one could break.
func TestCheck(t *testing.T) {
	var seqs fakekernel.Seqs
	req := func(typ ulog.RequestType, data []byte) *ulog.Request {
		r, err := fakekernel.NewRequest(&seqs, typ, "check", 7, data)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	check := func(r *ulog.Request, b []byte, capacity int) (fakekernel.Result, error) {
		rep, err := fakekernel.Decode(b)
		if err != nil {
			return fakekernel.Result{}, err
		}
		return fakekernel.Check(r, &rep, capacity)
	}
	inSync := req(ulog.TypeInSync, ulog.AppendUint64(nil, 3))
	other := *inSync
	other.LUID = 8
	for _, tc := range []struct {
		name     string
		r        *ulog.Request
		reply    []byte
		capacity int
		err      int32 // the caller's result when the reply is sound
		bad      bool  // the reply breaks a rule
	}{
		{"sound IN_SYNC", inSync, ulog.AppendReply(nil, inSync, 0, 0, ulog.AppendBool(nil, true)), 8, 0, false},
		{"ack -EAGAIN", inSync, ulog.AppendAck(nil, inSync.Seq, 0, uint32(ulog.EAGAIN)), 8, -int32(ulog.EAGAIN), false},
		{"-ESRCH with zeros of the answer", inSync, ulog.AppendReply(nil, inSync, 0, -int32(ulog.ESRCH), make([]byte, 8)), 8, -int32(ulog.ESRCH), false},
		{"-EIO, no data", inSync, ulog.AppendReply(nil, inSync, 0, -int32(ulog.EIO), nil), 8, -int32(ulog.EIO), false},
		{"IN_SYNC of 2", inSync, ulog.AppendReply(nil, inSync, 0, 0, ulog.AppendInt64(nil, 2)), 8, 0, true},
		{"IN_SYNC of 16 bytes", inSync, ulog.AppendReply(nil, inSync, 0, 0, make([]byte, 16)), 16, 0, true},
		{"reply too large for the room", inSync, ulog.AppendReply(nil, inSync, 0, 0, make([]byte, 8)), 4, 0, true},
		{"header not echoed", inSync, ulog.AppendReply(nil, &other, 0, 0, ulog.AppendBool(nil, true)), 8, 0, true},
		{"-EIO with data", inSync, ulog.AppendReply(nil, inSync, 0, -int32(ulog.EIO), make([]byte, 8)), 8, 0, true},
		{"-ESRCH with non-zero data", inSync, ulog.AppendReply(nil, inSync, 0, -int32(ulog.ESRCH), ulog.AppendBool(nil, true)), 8, 0, true},
		{"not a reply", inSync, []byte{1, 2, 3}, 8, 0, true},
	} {
		got, err := check(tc.r, tc.reply, tc.capacity)
		if tc.bad {
			if !errors.Is(err, fakekernel.ErrProtocol) {
				t.Errorf("%s: %v, want ErrProtocol", tc.name, err)
			}
			continue
		}
		if err != nil || got.Err != tc.err {
			t.Errorf("%s: result %d, %v; want %d", tc.name, got.Err, err, tc.err)
		}
	}
}
