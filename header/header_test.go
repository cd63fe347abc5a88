package header_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dlog-dev/dlog/header"
)

// The worked examples of docs/disk-format.md §2 (64-bit kernel, 512-byte blocks).
func TestBufSizeWorkedExamples(t *testing.T) {
	for _, tc := range []struct {
		regions, bitset, buf uint64
		block                uint32
	}{
		{regions: 2048, bitset: 256, buf: 1536, block: 512},         // 1 GiB at 512 KiB regions
		{regions: 4194304, bitset: 524288, buf: 525312, block: 512}, // 2 TiB at 512 KiB regions
		{regions: 16, bitset: 8, buf: 1536, block: 512},             // 1000 sectors at 64
		{regions: 1, bitset: 8, buf: 1536, block: 512},
		{regions: 64, bitset: 8, buf: 1536, block: 512},
		{regions: 65, bitset: 16, buf: 1536, block: 512},
		{regions: 2048, bitset: 256, buf: 4096, block: 4096}, // 4Kn device
		{regions: 1 << 24, bitset: 2 << 20, buf: 2<<20 + 1024 + 3072, block: 4096},
		{regions: 0, bitset: 0, buf: 1024, block: 512},
	} {
		if got := header.BitsetSize(tc.regions); got != tc.bitset {
			t.Errorf("BitsetSize(%d) = %d, want %d", tc.regions, got, tc.bitset)
		}
		got, err := header.BufSize(tc.regions, tc.block)
		if err != nil || got != tc.buf {
			t.Errorf("BufSize(%d, %d) = %d, %v; want %d", tc.regions, tc.block, got, err, tc.buf)
		}
	}
}

func TestBufSizeRejects(t *testing.T) {
	for _, bs := range []uint32{0, 1, 256, 511, 513, 1000, 3 << 10} {
		if _, err := header.BufSize(10, bs); !errors.Is(err, header.ErrBlockSize) {
			t.Errorf("BufSize(10, %d) err = %v, want ErrBlockSize", bs, err)
		}
	}
	if _, err := header.BufSize(header.MaxRegions+1, 512); !errors.Is(err, header.ErrTooManyRegions) {
		t.Errorf("BufSize(2^32) err = %v, want ErrTooManyRegions", err)
	}
	if _, err := header.BufSize(header.MaxRegions, 512); err != nil {
		t.Errorf("BufSize(2^32-1) err = %v", err)
	}
}

// The header hex of docs/disk-format.md §2's first example.
func TestEncodeGolden(t *testing.T) {
	want := []byte{
		0x72, 0x52, 0x69, 0x4D, // magic 0x4D695272, little-endian ("rRiM" on disk)
		0x02, 0x00, 0x00, 0x00, // version 2
		0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // nr_regions 2048
	}
	h := header.Header{Magic: header.Magic, Version: header.Version, NrRegions: 2048}
	got, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("MarshalBinary = % x, want % x", got, want)
	}
	var back header.Header
	if err := back.UnmarshalBinary(want); err != nil || back != h {
		t.Fatalf("UnmarshalBinary = %+v, %v; want %+v", back, err, h)
	}
}

func TestEncodeLeavesTail(t *testing.T) {
	b := bytes.Repeat([]byte{0xAB}, 64)
	if err := header.Fresh().Encode(b); err != nil {
		t.Fatal(err)
	}
	for i := header.Size; i < len(b); i++ {
		if b[i] != 0xAB {
			t.Fatalf("byte %d changed to %#x", i, b[i])
		}
	}
}

func TestShortBuffers(t *testing.T) {
	for n := 0; n < header.Size; n++ {
		if _, err := header.Decode(make([]byte, n)); !errors.Is(err, header.ErrShort) {
			t.Errorf("Decode(%d bytes) err = %v, want ErrShort", n, err)
		}
		if err := header.Fresh().Encode(make([]byte, n)); !errors.Is(err, header.ErrShort) {
			t.Errorf("Encode(%d bytes) err = %v, want ErrShort", n, err)
		}
	}
}

// docs/disk-format.md §4 steps 2 and 3 and docs/conformance.md §5 (j).
func TestInterpret(t *testing.T) {
	good := header.Header{Magic: header.Magic, Version: 2, NrRegions: 100}
	for _, tc := range []struct {
		name    string
		h       header.Header
		regions uint64
		mode    header.SyncMode
		want    header.Resumed
		err     error
	}{
		{name: "honoured", h: good, regions: 200,
			want: header.Resumed{Header: good, Valid: 100}},
		{name: "shrunk clamps to this activation", h: good, regions: 50,
			want: header.Resumed{Header: good, Valid: 50}},
		// nr_regions of 2^32 or more: taken modulo 2^32, as the kernel's
		// unsigned int loop does (#13): never more trusted bits than the
		// kernel would trust.
		{name: "nr_regions 2^63 is 0", h: header.Header{Magic: header.Magic, Version: 2, NrRegions: 1 << 63}, regions: 7,
			want: header.Resumed{Header: header.Header{Magic: header.Magic, Version: 2, NrRegions: 1 << 63}, Valid: 0}},
		{name: "nr_regions 2^32 is 0", h: header.Header{Magic: header.Magic, Version: 2, NrRegions: 1 << 32}, regions: 100,
			want: header.Resumed{Header: header.Header{Magic: header.Magic, Version: 2, NrRegions: 1 << 32}, Valid: 0}},
		{name: "nr_regions 2^32+5 is 5", h: header.Header{Magic: header.Magic, Version: 2, NrRegions: 1<<32 + 5}, regions: 100,
			want: header.Resumed{Header: header.Header{Magic: header.Magic, Version: 2, NrRegions: 1<<32 + 5}, Valid: 5}},
		{name: "nr_regions 2^32+200 clamps", h: header.Header{Magic: header.Magic, Version: 2, NrRegions: 1<<32 + 200}, regions: 100,
			want: header.Resumed{Header: header.Header{Magic: header.Magic, Version: 2, NrRegions: 1<<32 + 200}, Valid: 100}},
		{name: "nr_regions 2^33-1 clamps", h: header.Header{Magic: header.Magic, Version: 2, NrRegions: 1<<33 - 1}, regions: 100,
			want: header.Resumed{Header: header.Header{Magic: header.Magic, Version: 2, NrRegions: 1<<33 - 1}, Valid: 100}},
		{name: "wrong magic is fresh", h: header.Header{Magic: 0x12345678, Version: 9, NrRegions: 100}, regions: 200,
			want: header.Resumed{Header: header.Fresh(), Fresh: true}},
		{name: "zero image is fresh", h: header.Header{}, regions: 200,
			want: header.Resumed{Header: header.Fresh(), Fresh: true}},
		{name: "nosync is fresh", h: good, regions: 200, mode: header.SyncNone,
			want: header.Resumed{Header: header.Fresh(), Fresh: true}},
		{name: "sync is fresh", h: good, regions: 200, mode: header.SyncForce,
			want: header.Resumed{Header: header.Fresh(), Fresh: true}},
		{name: "version 1 upgraded", h: header.Header{Magic: header.Magic, Version: 1, NrRegions: 10}, regions: 200,
			want: header.Resumed{Header: header.Header{Magic: header.Magic, Version: 2, NrRegions: 10}, Valid: 10, Upgraded: true}},
		{name: "version 3 fails the device", h: header.Header{Magic: header.Magic, Version: 3, NrRegions: 10}, regions: 200,
			want: header.Resumed{Header: header.Header{Magic: header.Magic, Version: 3, NrRegions: 10}}, err: header.ErrVersion},
		{name: "version 0 fails the device", h: header.Header{Magic: header.Magic, Version: 0, NrRegions: 10}, regions: 200,
			want: header.Resumed{Header: header.Header{Magic: header.Magic, Version: 0, NrRegions: 10}}, err: header.ErrVersion},
		{name: "bad version with nosync is fresh", h: header.Header{Magic: header.Magic, Version: 3, NrRegions: 10}, regions: 200, mode: header.SyncNone,
			want: header.Resumed{Header: header.Fresh(), Fresh: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := header.Interpret(tc.h, tc.regions, tc.mode)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("Interpret = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSyncModeString(t *testing.T) {
	if header.SyncDefault.String() != "" || header.SyncNone.String() != "nosync" || header.SyncForce.String() != "sync" {
		t.Fatal("SyncMode strings do not match the constructor words")
	}
}
