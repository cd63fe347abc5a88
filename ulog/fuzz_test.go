package ulog_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/dlog-dev/dlog/ulog"
)

// The seeds of every target are the committed files under
// testdata/fuzz/<FuzzName>/seed-* (written by TestFuzzCorpus from the
// kernel trace and the malformed tables); plain go test replays them.

var frameSentinels = []error{
	ulog.ErrShort, ulog.ErrTruncated, ulog.ErrNotDone, ulog.ErrConnectorID, ulog.ErrCnLen,
	ulog.ErrIncomplete, ulog.ErrDataSize, ulog.ErrRequestType, ulog.ErrUUID, ulog.ErrVersion,
}

var replySentinels = []error{
	ulog.ErrShort, ulog.ErrTooLong, ulog.ErrTruncated, ulog.ErrCnLen, ulog.ErrConnectorID,
	ulog.ErrIncomplete, ulog.ErrDataSize,
}

func isOneOf(err error, sentinels []error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzDecodeRequest checks that no datagram makes DecodeRequest panic or
// read past its input, that a rejection names a consistent action whose
// reply a kernel would accept, and that an accepted request satisfies
// every documented bound and round-trips through AppendRequest.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(inSyncFrame())
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:len(b):len(b)] // any read past len(b), even by reslicing, panics
		var fr ulog.Frame
		err := ulog.DecodeRequest(b, &fr)
		if err != nil {
			checkRejection(t, b, &fr, err)
			return
		}
		q := &fr.Req
		if !q.Type().Valid() || q.Version == 0 || bytes.IndexByte(q.UUID[:], 0) < 0 {
			t.Fatalf("accepted type %v version %d uuid % x", q.Type(), q.Version, q.UUID)
		}
		if uint32(len(q.Data)) != q.DataSize || q.DataSize > ulog.MaxRequestPayload || cap(q.Data) != len(q.Data) {
			t.Fatalf("accepted data_size %d with len %d cap %d", q.DataSize, len(q.Data), cap(q.Data))
		}
		if 36+uint32(fr.CnLen) > fr.NlLen || uint64(fr.NlLen) > uint64(len(b)) || uint32(fr.CnLen) < 160+q.DataSize {
			t.Fatalf("accepted nlmsg_len %d cn_msg.len %d data_size %d in %d bytes", fr.NlLen, fr.CnLen, q.DataSize, len(b))
		}
		if len(q.Data) > 0 && &q.Data[0] != &b[ulog.HeaderLen] {
			t.Fatal("Data does not alias the payload in the input")
		}
		enc := ulog.AppendRequest(nil, q)
		var fr2 ulog.Frame
		if err := ulog.DecodeRequest(enc, &fr2); err != nil {
			t.Fatalf("re-encoded request rejected: %v", err)
		}
		if !reflect.DeepEqual(frameNoData(fr2).Req, frameNoData(fr).Req) || !bytes.Equal(fr2.Req.Data, q.Data) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", fr2.Req, *q)
		}
		if enc2 := ulog.AppendRequest(nil, &fr2.Req); !bytes.Equal(enc, enc2) {
			t.Fatalf("second encoding differs:\n% x\n% x", enc, enc2)
		}
		rep, err := ulog.DecodeReply(ulog.AppendReply(nil, q, 1, 0, q.Data))
		if err != nil || rep.Validate() != nil || rep.MatchSeq() != q.Seq {
			t.Fatalf("reply to an accepted request: %v / %v", err, rep.Validate())
		}
	})
}

// checkRejection checks a DecodeRequest error against the documented
// actions.
func checkRejection(t *testing.T, b []byte, fr *ulog.Frame, err error) {
	t.Helper()
	var fe *ulog.FrameError
	if !errors.As(err, &fe) || !isOneOf(err, frameSentinels) {
		t.Fatalf("error %v (%T) is not a FrameError around a sentinel", err, err)
	}
	if fr.Req.Data != nil {
		t.Fatal("rejected frame has Data")
	}
	switch fe.Action {
	case ulog.ActionDrop:
		if fe.Errno != 0 || fe.Seq != 0 {
			t.Fatalf("drop with errno %d seq %d", fe.Errno, fe.Seq)
		}
		if out := fe.AppendReply(nil, fr, 1); len(out) != 0 {
			t.Fatal("drop produced a reply")
		}
		return
	case ulog.ActionAckAgain:
		if !errors.Is(err, ulog.ErrIncomplete) || fe.Errno != ulog.EAGAIN || fe.Seq != fr.CnSeq || fr.CnLen >= 160 {
			t.Fatalf("ack-again: %v errno %d seq %d cn seq %d len %d", err, fe.Errno, fe.Seq, fr.CnSeq, fr.CnLen)
		}
		if fr.Req.Seq != 0 || fr.Req.LUID != 0 {
			t.Fatal("request header parsed although cn_msg.len < 160")
		}
	case ulog.ActionReplyError:
		if (fe.Errno != ulog.EINVAL && fe.Errno != ulog.EPROTO) || fe.Seq != fr.Req.Seq || fr.CnLen < 160 {
			t.Fatalf("reply-error: errno %d seq %d request seq %d", fe.Errno, fe.Seq, fr.Req.Seq)
		}
		if 36+uint32(fr.CnLen) > fr.NlLen || uint64(fr.NlLen) > uint64(len(b)) {
			t.Fatal("reply-error for a message whose lengths are not sound")
		}
	default:
		t.Fatalf("action %v", fe.Action)
	}
	r, err := ulog.DecodeReply(fe.AppendReply(nil, fr, 1))
	if err != nil {
		t.Fatalf("kernel would drop the %v reply: %v", fe.Action, err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if res, _ := r.Result(0); r.MatchSeq() != fe.Seq || res != -int32(fe.Errno) {
		t.Fatalf("reply seq %d result %d, want %d %d", r.MatchSeq(), res, fe.Seq, -int32(fe.Errno))
	}
}

// FuzzDecodeReply checks that no datagram makes DecodeReply panic or read
// past its input, and that an accepted reply re-encodes (AppendReply,
// AppendAck) into one that decodes to the same request and result.
func FuzzDecodeReply(f *testing.F) {
	f.Add(inSyncReplyFrame())
	f.Add(ackFrame())
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:len(b):len(b)]
		r, err := ulog.DecodeReply(b)
		if err != nil {
			if !isOneOf(err, replySentinels) {
				t.Fatalf("error %v is not one of the sentinels", err)
			}
			return
		}
		if uint64(r.NlLen) > uint64(len(b)) || r.NlLen-16 > ulog.MaxConnectorMsg || 36+uint32(r.CnLen) > r.NlLen {
			t.Fatalf("accepted nlmsg_len %d cn_msg.len %d in %d bytes", r.NlLen, r.CnLen, len(b))
		}
		for _, c := range []int{-1, 0, 8, 16, 1 << 20} {
			if res, n := r.Result(c); n < 0 || (n > max(c, 0)) || (n > 0 && res != r.Req.Error && !r.AckOnly) {
				t.Fatalf("Result(%d) = %d, %d", c, res, n)
			}
		}
		if r.AckOnly {
			r2, err := ulog.DecodeReply(ulog.AppendAck(nil, r.CnSeq, r.NlPID, r.CnAck))
			if err != nil || !r2.AckOnly || r2.CnSeq != r.CnSeq || r2.CnAck != r.CnAck {
				t.Fatalf("ack round trip: %+v, %v", r2, err)
			}
			if (r2.Validate() == nil) != (r.CnAck <= 4095) {
				t.Fatalf("Validate of ack %d: %v", r.CnAck, r2.Validate())
			}
			return
		}
		if uint32(len(r.Req.Data)) != r.Req.DataSize || r.CnLen < 160 || uint32(r.CnLen) < 160+r.Req.DataSize {
			t.Fatalf("accepted data_size %d len %d cn_msg.len %d", r.Req.DataSize, len(r.Req.Data), r.CnLen)
		}
		r2, err := ulog.DecodeReply(ulog.AppendReply(nil, &r.Req, r.NlPID, r.Req.Error, r.Req.Data))
		if err != nil {
			t.Fatalf("re-encoded reply rejected: %v", err)
		}
		want := frameNoData(r.Frame).Req
		want.DataSize = r.Req.DataSize
		if want.Error > 0 {
			want.Error = -want.Error // AppendReply never sends a positive error
		}
		if got := frameNoData(r2.Frame).Req; !reflect.DeepEqual(got, want) || !bytes.Equal(r2.Req.Data, r.Req.Data) {
			t.Fatalf("reply round trip:\n got %+v\nwant %+v", got, want)
		}
		if (r2.Validate() == nil) != (want.Error >= -4095) {
			t.Fatalf("Validate of error %d: %v", want.Error, r2.Validate())
		}
	})
}

// FuzzPayloads checks the payload helpers against their definitions on
// any input, and that the encoders invert them.
func FuzzPayloads(f *testing.F) {
	f.Add(u64(42))
	f.Fuzz(func(t *testing.T, data []byte) {
		data = data[:len(data):len(data)]
		n := len(data)

		r, err := ulog.Region(data)
		if (err == nil) != (n == 8) || (err != nil && !errors.Is(err, ulog.ErrPayloadSize)) {
			t.Fatalf("Region(%d bytes): %v", n, err)
		}
		if err == nil && !bytes.Equal(ulog.AppendUint64(nil, r), data) {
			t.Fatal("Region does not invert AppendUint64")
		}
		if v, err := ulog.Int64(data); err == nil && !bytes.Equal(ulog.AppendInt64(nil, v), data) {
			t.Fatal("Int64 does not invert AppendInt64")
		}

		l, err := ulog.Regions(data)
		if (err == nil) != (n >= 8 && n <= 332 && n%8 == 0) || (err != nil && !errors.Is(err, ulog.ErrPayloadSize)) {
			t.Fatalf("Regions(%d bytes): %v", n, err)
		}
		if err == nil {
			var re []byte
			for i := 0; i < l.Len(); i++ {
				re = ulog.AppendUint64(re, l.At(i))
			}
			k := 0
			for i, v := range l.All() {
				if i != k || v != l.At(i) {
					t.Fatalf("All yields (%d, %d) at %d", i, v, k)
				}
				k++
			}
			if !bytes.Equal(re, data) || k != l.Len() || l.Len() != n/8 {
				t.Fatal("Regions does not invert AppendUint64")
			}
		}

		region, inSync, err := ulog.SetRegionSync(data)
		if (err == nil) != (n == 16) || (err != nil && !errors.Is(err, ulog.ErrPayloadSize)) {
			t.Fatalf("SetRegionSync(%d bytes): %v", n, err)
		}
		if err == nil && !bytes.Equal(ulog.AppendRegionSync(nil, region, inSync), data) {
			t.Fatal("SetRegionSync does not invert AppendRegionSync")
		}
		if i, r, err := ulog.Pair(data); (err == nil) != (n == 16) || (err == nil && !bytes.Equal(ulog.AppendPair(nil, i, r), data)) {
			t.Fatalf("Pair(%d bytes): %v", n, err)
		}

		s, err := ulog.CtrString(data)
		trimmed := bytes.TrimRight(data, "\x00")
		switch {
		case n > 332:
			if !errors.Is(err, ulog.ErrPayloadSize) {
				t.Fatalf("CtrString(%d bytes): %v", n, err)
			}
		case len(trimmed) == 0 || bytes.IndexByte(trimmed, 0) >= 0:
			if !errors.Is(err, ulog.ErrCtrString) {
				t.Fatalf("CtrString(%q): %v", data, err)
			}
		default:
			if err != nil || s != string(trimmed) {
				t.Fatalf("CtrString(%q) = %q, %v", data, s, err)
			}
		}
	})
}
