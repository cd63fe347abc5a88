package transport_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// TestDatagramDecode checks the one decoding the transports do for their
// Handler: a sound request is decoded with no error, a fault the sender
// is owed an answer for is handed on in Err, and a datagram to drop is an
// error of Decode.
func TestDatagramDecode(t *testing.T) {
	req := &ulog.Request{LUID: 5, Version: 3, Seq: 77, RawType: uint32(ulog.TypeInSync), Data: ulog.AppendUint64(nil, 9)}
	req.SetUUID("decode")
	sound := ulog.AppendRequest(nil, req)

	var d transport.Datagram
	if err := d.Decode(sound); err != nil || d.Err != nil {
		t.Fatalf("sound request: Decode %v, Err %v", err, d.Err)
	}
	if &d.Bytes[0] != &sound[0] || len(d.Bytes) != len(sound) {
		t.Error("Bytes is not the datagram as received")
	}
	if d.Frame.Req.Seq != 77 || d.Frame.Req.LUID != 5 || d.Frame.Req.Type() != ulog.TypeInSync {
		t.Errorf("decoded request %+v", d.Frame.Req)
	}
	if r, err := ulog.Region(d.Frame.Req.Data); err != nil || r != 9 {
		t.Errorf("payload region %d, %v", r, err)
	}

	// A bad request type: the kernel waits for an EINVAL reply.
	bad := append([]byte(nil), sound...)
	const offType = 188 // dm_ulog_request.request_type: 16 nlmsghdr + 20 cn_msg + 152
	binary.NativeEndian.PutUint32(bad[offType:], 0xff)
	if err := d.Decode(bad); err != nil {
		t.Fatalf("bad request type: Decode %v, want it handed on", err)
	}
	if d.Err == nil || d.Err.Action != ulog.ActionReplyError || d.Err.Seq != 77 || !errors.Is(d.Err, ulog.ErrRequestType) {
		t.Errorf("bad request type: Err %v", d.Err)
	}

	// A sound request after a faulty one clears Err.
	if err := d.Decode(sound); err != nil || d.Err != nil {
		t.Fatalf("sound request after a fault: Decode %v, Err %v", err, d.Err)
	}

	// Too short for a netlink header: dropped, nothing to answer.
	if err := d.Decode(sound[:8]); err == nil || !errors.Is(err, ulog.ErrShort) {
		t.Errorf("short datagram: Decode %v, want ErrShort", err)
	}
	if a := testing.AllocsPerRun(100, func() { _ = d.Decode(sound) }); a != 0 {
		t.Errorf("Decode of a sound request: %v allocations, want 0", a)
	}
}
