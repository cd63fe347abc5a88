package ulog_test

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/internal/testutil/ktrace"
	"github.com/dlog-dev/dlog/ulog"
)

// The trace holds raw dumps for 131 requests and 131 replies.
const traceRawDumps = 131

// Ensure that every request datagram captured from the kernel decodes to
// the fields of its summary line, and that AppendRequest (and the ktrace
// rebuild from the summary line alone) reproduces the kernel's bytes.
func TestGoldenRequests(t *testing.T) {
	requireLittleEndian(t)
	entries := ktrace.Load(t)
	n := 0
	for i := range entries {
		e := &entries[i]
		if e.Kind != ktrace.KindRequest || e.Raw == nil {
			continue
		}
		n++
		var f ulog.Frame
		if err := ulog.DecodeRequest(e.Raw, &f); err != nil {
			t.Errorf("line %d: %v", e.Line, err)
			continue
		}
		want := ulog.Frame{
			NlLen: uint32(len(e.Raw)), NlType: 3, NlSeq: e.Seq, // nlmsg_seq = seq, pid 0, flags 0
			CnIdx: 7, CnVal: 1, CnSeq: e.CnSeq, CnAck: e.CnAck, CnLen: uint16(e.CnLen),
			Req: ulog.Request{LUID: e.LUID, Version: e.Version, Error: e.Error, Seq: e.Seq, RawType: uint32(e.Type), DataSize: e.DataSize},
		}
		copy(want.Req.UUID[:], e.UUID)
		if got := frameNoData(f); !reflect.DeepEqual(got, want) {
			t.Errorf("line %d: frame\n got %+v\nwant %+v", e.Line, got, want)
		}
		if !bytes.Equal(f.Req.Data, e.Data) {
			t.Errorf("line %d: data % x, want % x", e.Line, f.Req.Data, e.Data)
		}
		if want, got := e.UUID, string(f.Req.UUIDBytes()); want != got {
			t.Errorf("line %d: uuid %q, want %q", e.Line, got, want)
		}
		// What recvmsg returns: the dump plus the kernel's NLMSG_ALIGN padding.
		padded := append(bytes.Clone(e.Raw), make([]byte, (4-len(e.Raw)%4)%4)...)
		if got := ulog.AppendRequest(nil, &f.Req); !bytes.Equal(got, padded) {
			t.Errorf("line %d: AppendRequest\n got % x\nwant % x", e.Line, got, padded)
		}
		var f2 ulog.Frame
		if err := ulog.DecodeRequest(padded, &f2); err != nil || !reflect.DeepEqual(frameNoData(f2), frameNoData(f)) || !bytes.Equal(f2.Req.Data, f.Req.Data) {
			t.Errorf("line %d: padded datagram decodes differently (%v)", e.Line, err)
		}
		if got, err := e.AppendDatagram(nil); err != nil || !bytes.Equal(got, padded) {
			t.Errorf("line %d: rebuilt from the summary line: %v\n got % x\nwant % x", e.Line, err, got, padded)
		}
	}
	if n != traceRawDumps {
		t.Errorf("%d raw requests in the trace, want %d", n, traceRawDumps)
	}
}

// Ensure that every reply captured in the trace passes the kernel's
// acceptance checks and dlog's own, carries its summary line's fields,
// and is what AppendReply produces for the request it answers.
func TestGoldenReplies(t *testing.T) {
	requireLittleEndian(t)
	_, ex := ktrace.LoadExchanges(t)
	n := 0
	for _, x := range ex {
		if x.Rsp == nil || x.Rsp.Raw == nil {
			continue
		}
		n++
		e := x.Rsp
		r, err := ulog.DecodeReply(e.Raw)
		if err != nil {
			t.Errorf("line %d: kernel would drop the reply: %v", e.Line, err)
			continue
		}
		if err := r.Validate(); err != nil {
			t.Errorf("line %d: %v", e.Line, err)
		}
		if r.AckOnly || r.MatchSeq() != e.Seq || r.Req.Type() != e.Type || r.Req.Error != e.Error ||
			r.Req.DataSize != e.DataSize || !bytes.Equal(r.Req.Data, e.Data) {
			t.Errorf("line %d: reply %+v does not match %q", e.Line, r, e.Text)
		}
		if r.Req.LUID != x.Req.LUID || string(r.Req.UUIDBytes()) != x.Req.UUID || r.Req.Version != x.Req.Version {
			t.Errorf("line %d: reply does not echo the request of line %d", e.Line, x.Req.Line)
		}
		capacity, ok := ulog.ReplyCapacity(e.Type)
		if !ok {
			capacity = 4096 // STATUS_INFO: what is left of the status buffer
		}
		if res, got := r.Result(capacity); res != e.Error || got != int(e.DataSize) {
			t.Errorf("line %d: kernel result %d with %d bytes, want %d with %d", e.Line, res, got, e.Error, e.DataSize)
		}
		// The tracing daemon left nlmsg_seq at 0, as cmirrord does; dlog
		// puts the request's seq there. Everything else is identical.
		req, err := x.Req.Request()
		if err != nil {
			t.Fatal(err)
		}
		got := ulog.AppendReply(nil, &req, r.NlPID, e.Error, e.Data)
		want := with(e.Raw, offNlSeq, e.Seq)
		if !bytes.Equal(got, want) {
			t.Errorf("line %d: AppendReply\n got % x\nwant % x", e.Line, got, want)
		}
	}
	if n != traceRawDumps {
		t.Errorf("%d raw replies in the trace, want %d", n, traceRawDumps)
	}
}

// Ensure that all 441 summary lines rebuild into requests that decode to
// their fields, that every payload passes the check for its type, and
// that the traced answers, re-encoded by AppendReply, would be accepted.
func TestGoldenSummaries(t *testing.T) {
	entries, ex := ktrace.LoadExchanges(t)
	if len(ex) != 441 {
		t.Errorf("%d requests, want 441", len(ex))
	}
	var ctrNotes []string
	for i := range entries {
		if s, ok := strings.CutPrefix(entries[i].Text, "ctr string: "); ok && entries[i].Kind == ktrace.KindNote {
			u, err := strconv.Unquote(s)
			if err != nil {
				t.Fatalf("line %d: %v", entries[i].Line, err)
			}
			ctrNotes = append(ctrNotes, u)
		}
	}
	var ctrs []string
	for _, x := range ex {
		e := x.Req
		b, err := e.AppendDatagram(nil)
		if err != nil {
			t.Fatalf("line %d: %v", e.Line, err)
		}
		var f ulog.Frame
		if err := ulog.DecodeRequest(b, &f); err != nil {
			t.Errorf("line %d: %v", e.Line, err)
			continue
		}
		q := &f.Req
		if q.Seq != e.Seq || q.Type() != e.Type || q.LUID != e.LUID || string(q.UUIDBytes()) != e.UUID ||
			q.Version != e.Version || q.DataSize != e.DataSize || !bytes.Equal(q.Data, e.Data) {
			t.Errorf("line %d: decoded %+v from %q", e.Line, q, e.Text)
		}
		if err := checkPayload(q, &ctrs); err != nil {
			t.Errorf("line %d: %v payload % x: %v", e.Line, q.Type(), q.Data, err)
		}
		if x.Rsp == nil {
			t.Errorf("line %d: no reply", e.Line)
			continue
		}
		out := ulog.AppendReply(nil, q, 1, x.Rsp.Error, x.Rsp.Data)
		r, err := ulog.DecodeReply(out)
		if err != nil {
			t.Errorf("line %d: %v", x.Rsp.Line, err)
			continue
		}
		if err := r.Validate(); err != nil {
			t.Errorf("line %d: %v", x.Rsp.Line, err)
		}
		if capacity, ok := ulog.ReplyCapacity(e.Type); ok && e.Type != ulog.TypeCtr && int(x.Rsp.DataSize) != capacity {
			t.Errorf("line %d: traced %v reply of %d bytes, the kernel expects exactly %d", x.Rsp.Line, e.Type, x.Rsp.DataSize, capacity)
		}
	}
	if strings.Join(ctrs, "\n") != strings.Join(ctrNotes, "\n") {
		t.Errorf("CTR strings\n%q\ndiffer from the trace's notes\n%q", ctrs, ctrNotes)
	}
}

// checkPayload applies the per-type payload check a daemon makes.
func checkPayload(q *ulog.Request, ctrs *[]string) error {
	var err error
	switch q.Type() {
	case ulog.TypeIsClean, ulog.TypeInSync, ulog.TypeIsRemoteRecovering:
		_, err = ulog.Region(q.Data)
	case ulog.TypeMarkRegion, ulog.TypeClearRegion:
		_, err = ulog.Regions(q.Data)
	case ulog.TypeFlush:
		if len(q.Data) > 0 {
			_, err = ulog.Regions(q.Data)
		}
	case ulog.TypeSetRegionSync:
		var s int64
		if _, s, err = ulog.SetRegionSync(q.Data); err == nil && s != 0 && s != 1 {
			err = errInSync
		}
	case ulog.TypeCtr:
		var s string
		if s, err = ulog.CtrString(q.Data); err == nil {
			*ctrs = append(*ctrs, s)
		}
	default:
		if len(q.Data) != 0 {
			err = ulog.ErrPayloadSize
		}
	}
	return err
}

var errInSync = errorString("in_sync not 0 or 1")

type errorString string

func (e errorString) Error() string { return string(e) }
