package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/header"
)

func TestParseCtrAccepts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want engine.Config
	}{
		{"2097152 core 1 1024", engine.Config{Type: "core", TargetLen: 2097152, RegionSize: 1024}},
		{"2097152 core 2 1024 sync", engine.Config{Type: "core", TargetLen: 2097152, RegionSize: 1024, Sync: header.SyncForce}},
		{"2097152 core 2 1024 nosync", engine.Config{Type: "core", TargetLen: 2097152, RegionSize: 1024, Sync: header.SyncNone}},
		{"1000 core 1 64", engine.Config{Type: "core", TargetLen: 1000, RegionSize: 64}},
		{"2 core 1 2", engine.Config{Type: "core", TargetLen: 2, RegionSize: 2}},
		{"2097152 core 1 01024", engine.Config{Type: "core", TargetLen: 2097152, RegionSize: 1024}}, // %u reads leading zeros as decimal
		{"4194304 disk 2 253:2 1024", engine.Config{Type: "disk", TargetLen: 4194304, RegionSize: 1024, Device: "253:2"}},
		{"4194304 disk 3 /dev/loop2 1024 nosync", engine.Config{Type: "disk", TargetLen: 4194304, RegionSize: 1024, Device: "/dev/loop2", Sync: header.SyncNone}},
		{"131072 clustered-core 1024", engine.Config{Type: "clustered-core", TargetLen: 131072, RegionSize: 1024}},
		{"131072 clustered-core 1024 nosync", engine.Config{Type: "clustered-core", TargetLen: 131072, RegionSize: 1024, Sync: header.SyncNone}},
		{"131072 clustered-core 1024 block_on_error sync", engine.Config{Type: "clustered-core", TargetLen: 131072, RegionSize: 1024, Sync: header.SyncForce, BlockOnError: true}},
		{"4194304 clustered-disk 253:2 1024", engine.Config{Type: "clustered-disk", TargetLen: 4194304, RegionSize: 1024, Device: "253:2"}},
		{"4194304 clustered-disk /dev/loop2 1024 nosync block_on_error", engine.Config{Type: "clustered-disk", TargetLen: 4194304, RegionSize: 1024, Device: "/dev/loop2", Sync: header.SyncNone, BlockOnError: true}},
		{"  131072   clustered-core   1024  ", engine.Config{Type: "clustered-core", TargetLen: 131072, RegionSize: 1024}},
		// The largest region count the kernel holds: 2^32-1 regions of 2 sectors.
		{"8589934590 core 1 2", engine.Config{Type: "core", TargetLen: 8589934590, RegionSize: 2}},
		{"4294967296 core 1 2147483648", engine.Config{Type: "core", TargetLen: 4294967296, RegionSize: 2147483648}},
	} {
		got, err := engine.ParseCtr(tc.in)
		if err != nil {
			t.Errorf("ParseCtr(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseCtr(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		// String gives arguments that parse back to the same config.
		f := strings.Fields(got.String())
		back, err := engine.ParseArgs(got.TargetLen, f[0], f[1:])
		if err != nil || back != got {
			t.Errorf("round trip of %q via %q: %+v, %v", tc.in, got.String(), back, err)
		}
	}
}

func TestParseCtrRejects(t *testing.T) {
	for _, tc := range []struct {
		in  string
		err error
	}{
		{"", engine.ErrArgs},
		{"131072", engine.ErrArgs},
		{"131072 mirror 1 1024", engine.ErrArgs},
		{"131072 userspace 1 1024", engine.ErrArgs},
		{"0 core 1 1024", engine.ErrTargetLen},
		{"-5 core 1 1024", engine.ErrTargetLen},
		{"0x20000 core 1 1024", engine.ErrTargetLen},
		{"18446744073709551616 core 1 1024", engine.ErrTargetLen},
		{"131072 core", engine.ErrArgs},
		{"131072 core 1", engine.ErrArgs},
		{"131072 core 0 1024", engine.ErrArgs},
		{"131072 core 3 1024 sync x", engine.ErrArgs},
		{"131072 core 2 1024", engine.ErrArgs},        // count says 2, one follows
		{"131072 core 1 1024 sync", engine.ErrArgs},   // count says 1, two follow
		{"131072 core 2 1024 bogus", engine.ErrArgs},  // unrecognised sync argument
		{"131072 core 2 1024 SYNC", engine.ErrArgs},   // case matters
		{"131072 core x 1024", engine.ErrArgs},        // count not a number
		{"131072 core 1 1023", engine.ErrRegionSize},  // not a power of two
		{"131072 core 1 0", engine.ErrRegionSize},     // zero
		{"131072 core 1 1", engine.ErrRegionSize},     // below 2
		{"131072 core 1 -2", engine.ErrRegionSize},    // sign
		{"131072 core 1 +1024", engine.ErrRegionSize}, // sign
		{"131072 core 1 0x400", engine.ErrRegionSize}, // cmirrord's strtoll base 0 would take it
		{"131072 core 1 1024k", engine.ErrRegionSize}, // trailing characters
		{"131072 core 1 262144", engine.ErrRegionSize},
		{"8589934592 core 1 4294967296", engine.ErrRegionSize}, // does not fit 32 bits
		{"8589934592 core 1 2", engine.ErrTargetLen},           // 2^32 regions
		{"131072 disk 2 1024", engine.ErrArgs},
		{"131072 disk 1 1024", engine.ErrArgs},
		{"131072 disk 4 /dev/x 1024 sync x", engine.ErrArgs},
		{"131072 clustered-core", engine.ErrArgs},
		{"131072 clustered-core 1024 sync nosync", engine.ErrArgs},
		{"131072 clustered-core 1024 nosync nosync", engine.ErrArgs},
		{"131072 clustered-core 1024 block_on_error block_on_error", engine.ErrArgs},
		{"131072 clustered-core 1024 sync block_on_error extra", engine.ErrArgs},
		{"131072 clustered-core 1024 foo", engine.ErrArgs},
		{"131072 clustered-core 253:2 1024", engine.ErrArgs}, // a device where the region size goes
		{"131072 clustered-disk", engine.ErrArgs},
		{"131072 clustered-disk 253:2", engine.ErrArgs},
		{"131072 clustered-disk 1024", engine.ErrArgs},
		{"131072 clustered-disk 253:2 1000", engine.ErrRegionSize},
	} {
		_, err := engine.ParseCtr(tc.in)
		if !errors.Is(err, tc.err) {
			t.Errorf("ParseCtr(%q) err = %v, want %v", tc.in, err, tc.err)
		}
	}
}

func TestRegionCount(t *testing.T) {
	for _, tc := range []struct {
		len  uint64
		rs   uint32
		want uint64
	}{
		{2097152, 1024, 2048},
		{4294967296, 1024, 4194304},
		{1000, 64, 16}, // ceil(15.6): the last region is short
		{1024, 1024, 1},
		{1025, 1024, 2},
	} {
		c := engine.Config{TargetLen: tc.len, RegionSize: tc.rs}
		if got := c.RegionCount(); got != tc.want {
			t.Errorf("RegionCount(%d/%d) = %d, want %d", tc.len, tc.rs, got, tc.want)
		}
	}
}

// FuzzParseCtr: no input panics; what is accepted obeys the kernel's
// region-size rules and survives a round trip through String.
func FuzzParseCtr(f *testing.F) {
	for _, s := range []string{
		"2097152 core 1 1024", "2097152 core 2 1024 nosync", "4194304 disk 2 253:2 1024",
		"131072 clustered-core 1024", "4194304 clustered-disk 253:2 1024 sync block_on_error",
		"131072 clustered-core", "1 core 1 2", "8589934590 core 1 2", "131072 core 1 0x400", "",
		strings.Repeat("9", 40) + " core 1 2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := engine.ParseCtr(s)
		if err != nil {
			return
		}
		rs := uint64(c.RegionSize)
		if rs < 2 || rs&(rs-1) != 0 || rs > c.TargetLen {
			t.Fatalf("accepted region size %d for length %d", rs, c.TargetLen)
		}
		if n := c.RegionCount(); n == 0 || n > header.MaxRegions {
			t.Fatalf("accepted region count %d", n)
		}
		fs := strings.Fields(c.String())
		back, err := engine.ParseArgs(c.TargetLen, fs[0], fs[1:])
		if err != nil || back != c {
			t.Fatalf("round trip %q -> %q: %+v %v", s, c.String(), back, err)
		}
	})
}
