package dm

import (
	"reflect"
	"strings"
	"testing"
)

// answer lays out a DM_TABLE_STATUS answer as the kernel's retrieve_status
// does: records padded to 8 bytes, next counted from the data area's start.
func answer(ts []Target) []byte {
	var data []byte
	for _, t := range ts {
		n := (specSize + len(t.Params) + 1 + 7) &^ 7
		rec := make([]byte, n)
		le.PutUint64(rec[0:], t.Start)
		le.PutUint64(rec[8:], t.Length)
		copy(rec[24:], t.Type)
		copy(rec[specSize:], t.Params+" ")
		le.PutUint32(rec[20:], uint32(len(data)+n))
		data = append(data, rec...)
	}
	b, _ := encodeRequest("m0", 0, data, 0)
	le.PutUint32(b[offTargetCount:], uint32(len(ts)))
	return b
}

func TestDecodeTargets(t *testing.T) {
	ts := []Target{
		{0, 2097152, "mirror", "userspace 4 u1 clustered-disk 253:2 1024 2 253:3 0 253:4 0"},
		{2097152, 8, "linear", "7:0 0"},
	}
	b := answer(ts)
	h, err := decodeHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeTargets(b, h)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ts) {
		t.Errorf("decodeTargets:\n got %+v\nwant %+v", got, ts)
	}

	// Lies about counts and offsets are errors, never reads past the buffer.
	bad := answer(ts)
	le.PutUint32(bad[offTargetCount:], 1000)
	h, _ = decodeHeader(bad)
	if _, err := decodeTargets(bad, h); err == nil {
		t.Error("1000 targets in a short buffer decoded")
	}
	bad = answer(ts)
	le.PutUint32(bad[headerSize+20:], 0) // first record's next points back
	h, _ = decodeHeader(bad)
	if _, err := decodeTargets(bad, h); err == nil {
		t.Error("a next offset that does not advance decoded")
	}
	bad = answer(ts)
	le.PutUint32(bad[offDataSize:], uint32(len(bad)+1))
	if _, err := decodeHeader(bad); err == nil {
		t.Error("data_size past the buffer decoded")
	}
	if _, err := decodeHeader(bad[:headerSize-1]); err == nil {
		t.Error("a short header decoded")
	}
}

func TestEncodeTargetsLoadsWhatStatusReturns(t *testing.T) {
	ts := []Target{{0, 100, "mirror", "core 1 1024 2 7:0 0 7:1 0"}, {100, 28, "zero", ""}}
	p, err := encodeTargets(ts)
	if err != nil {
		t.Fatal(err)
	}
	// The load format counts next from each record: walk it that way.
	off := 0
	for i, want := range ts {
		rec := p[off:]
		if got := cstring(rec[24 : 24+typeLen]); got != want.Type {
			t.Errorf("record %d type %q, want %q", i, got, want.Type)
		}
		if got := cstring(rec[specSize:]); got != want.Params {
			t.Errorf("record %d params %q, want %q", i, got, want.Params)
		}
		next := int(le.Uint32(rec[20:]))
		if next%8 != 0 || next < specSize+len(want.Params)+1 {
			t.Errorf("record %d next %d", i, next)
		}
		off += next
	}
	if off != len(p) {
		t.Errorf("records cover %d of %d bytes", off, len(p))
	}
	if _, err := encodeTargets([]Target{{Type: strings.Repeat("x", typeLen)}}); err == nil {
		t.Error("a 16-byte target type encoded")
	}
	if _, err := encodeRequest(strings.Repeat("n", nameLen), 0, nil, 0); err == nil {
		t.Error("a 128-byte name encoded")
	}
}

func TestDecodeNames(t *testing.T) {
	rec := func(dev uint64, name string, last bool) []byte {
		n := (12 + len(name) + 1 + 7) &^ 7
		r := make([]byte, n)
		le.PutUint64(r, dev)
		if !last {
			le.PutUint32(r[8:], uint32(n))
		}
		copy(r[12:], name)
		return r
	}
	data := append(rec(253<<8|1, "m0", false), rec(253<<8|2|(0x100<<12), "m0_mimage_1", true)...)
	b, _ := encodeRequest("", 0, data, 0)
	h, err := decodeHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeNames(b, h)
	want := []Device{{"m0", 253, 1}, {"m0_mimage_1", 253, 0x102}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("decodeNames = %+v, %v; want %+v", got, err, want)
	}

	// No devices: the kernel sets data_size = data_start.
	b, _ = encodeRequest("", 0, nil, 0)
	h, _ = decodeHeader(b)
	if got, err := decodeNames(b, h); err != nil || got != nil {
		t.Errorf("empty list = %+v, %v", got, err)
	}

	// A next that runs off the end is an error.
	bad := rec(1, "x", false)
	le.PutUint32(bad[8:], 4096)
	b, _ = encodeRequest("", 0, bad, 0)
	h, _ = decodeHeader(b)
	if _, err := decodeNames(b, h); err == nil {
		t.Error("a next past the data decoded")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(answer([]Target{{0, 8, "mirror", "core 1 8 2 7:0 0 7:1 0"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeader(b)
		if err != nil || h.flags&flagBufferFull != 0 {
			return
		}
		_, _ = decodeTargets(b, h)
		_, _ = decodeNames(b, h)
	})
}

// Ensure that an answer without data, whose data_size the kernel sets to
// offsetof(struct dm_ioctl, data) (305) below the request's data_start
// (312), decodes as empty, as DEV_STATUS answers on a real kernel do; any
// other data_size below data_start is still refused.
func TestDecodeHeaderNoData(t *testing.T) {
	b, _ := encodeRequest("m0", 0, nil, 16<<10)
	le.PutUint32(b[offDataSize:], dataOffset)
	h, err := decodeHeader(b)
	if err != nil || h.dataSize != h.dataStart || h.name != "m0" {
		t.Fatalf("no-data answer: %+v, %v", h, err)
	}
	le.PutUint32(b[offDataSize:], 300)
	if _, err := decodeHeader(b); err == nil {
		t.Error("data_size 300 below data_start decoded")
	}
}
