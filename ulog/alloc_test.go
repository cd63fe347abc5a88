package ulog_test

import (
	"testing"

	"github.com/dlog-dev/dlog/ulog"
)

// Ensure that serving a request in the steady state allocates nothing:
// decoding into a reused Frame, reading the payload, and appending the
// reply into a reused buffer.
func TestZeroAllocs(t *testing.T) {
	inSync := inSyncFrame()
	var marks []byte
	for i := range 32 {
		marks = ulog.AppendUint64(marks, uint64(i))
	}
	mark := request(ulog.TypeMarkRegion, 8, marks)
	srs := request(ulog.TypeSetRegionSync, 9, ulog.AppendRegionSync(nil, 3, 1))
	var f ulog.Frame
	buf := make([]byte, 0, 1024)
	var sum uint64
	allocs := testing.AllocsPerRun(1000, func() {
		var p [ulog.PairLen]byte
		sum = 0
		if err := ulog.DecodeRequest(inSync, &f); err != nil {
			t.Fatal(err)
		}
		r, err := ulog.Region(f.Req.Data)
		if err != nil {
			t.Fatal(err)
		}
		buf = ulog.AppendReply(buf[:0], &f.Req, 99, 0, ulog.AppendBool(p[:0], r == 42))
		if _, err := ulog.DecodeReply(buf); err != nil {
			t.Fatal(err)
		}
		if err := ulog.DecodeRequest(mark, &f); err != nil {
			t.Fatal(err)
		}
		l, err := ulog.Regions(f.Req.Data)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < l.Len(); i++ {
			sum += l.At(i)
		}
		for _, r := range l.All() {
			sum += r
		}
		buf = ulog.AppendReply(buf[:0], &f.Req, 99, 0, nil)
		if err := ulog.DecodeRequest(srs, &f); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ulog.SetRegionSync(f.Req.Data); err != nil {
			t.Fatal(err)
		}
		buf = ulog.AppendReply(buf[:0], &f.Req, 99, 0, ulog.AppendPair(p[:0], 1, 5))
		buf = ulog.AppendAck(buf[:0], f.CnSeq, 99, 0)
		_ = f.Req.UUIDBytes()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
	if sum != 2*31*32/2 { // regions 0..31, summed twice
		t.Errorf("region sum %d", sum)
	}
}

// BenchmarkDecodeRequest decodes an IN_SYNC request, the hottest request
// (one per read bio), and its region.
func BenchmarkDecodeRequest(b *testing.B) {
	frame := inSyncFrame()
	var f ulog.Frame
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := ulog.DecodeRequest(frame, &f); err != nil {
			b.Fatal(err)
		}
		if _, err := ulog.Region(f.Req.Data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendReply encodes the IN_SYNC reply into a reused buffer.
func BenchmarkAppendReply(b *testing.B) {
	var f ulog.Frame
	if err := ulog.DecodeRequest(inSyncFrame(), &f); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	b.SetBytes(ulog.HeaderLen + ulog.Int64Len)
	for b.Loop() {
		var p [ulog.Int64Len]byte
		buf = ulog.AppendReply(buf[:0], &f.Req, 99, 0, ulog.AppendBool(p[:0], true))
	}
}
