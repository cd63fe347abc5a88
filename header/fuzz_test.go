package header_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dlog-dev/dlog/header"
)

// FuzzHeader checks that any 16 bytes decode without panic, round-trip
// exactly, and that Interpret never honours more regions than this
// activation has.
func FuzzHeader(f *testing.F) {
	f.Add([]byte{0x72, 0x52, 0x69, 0x4D, 2, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0}, uint64(2048), uint8(0))
	f.Add([]byte{0x72, 0x52, 0x69, 0x4D, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint64(5), uint8(0))
	f.Add([]byte{0x72, 0x52, 0x69, 0x4D, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, uint64(1), uint8(1))
	f.Add([]byte{}, uint64(0), uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, regions uint64, mode uint8) {
		h, err := header.Decode(b)
		if len(b) < header.Size {
			if !errors.Is(err, header.ErrShort) {
				t.Fatalf("short input: err = %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, header.Size)
		if err := h.Encode(out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, b[:header.Size]) {
			t.Fatalf("round trip: % x != % x", out, b[:header.Size])
		}
		r, err := header.Interpret(h, regions, header.SyncMode(mode%3))
		if r.Valid > regions {
			t.Fatalf("Valid %d > regions %d", r.Valid, regions)
		}
		if err != nil && r.Valid != 0 {
			t.Fatalf("error %v with Valid %d", err, r.Valid)
		}
		if err == nil && (r.Header.Magic != header.Magic || r.Header.Version != header.Version) {
			t.Fatalf("accepted header %+v", r.Header)
		}
	})
}
