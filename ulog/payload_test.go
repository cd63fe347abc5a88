package ulog_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/ulog"
)

func TestRegion(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want uint64
		err  error
	}{
		{name: "region 0", data: u64(0), want: 0},
		{name: "region 42", data: u64(42), want: 42},
		{name: "region 2^64-1", data: u64(1<<64 - 1), want: 1<<64 - 1},
		{name: "empty", data: nil, err: ulog.ErrPayloadSize},
		{name: "7 bytes", data: make([]byte, 7), err: ulog.ErrPayloadSize},
		{name: "9 bytes", data: make([]byte, 9), err: ulog.ErrPayloadSize},
		{name: "16 bytes", data: make([]byte, 16), err: ulog.ErrPayloadSize},
		{name: "4 bytes (32-bit region_t)", data: make([]byte, 4), err: ulog.ErrPayloadSize},
	} {
		got, err := ulog.Region(tc.data)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("%s: Region = %d, %v; want %d, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestRegions(t *testing.T) {
	seq := func(n int) []byte {
		var b []byte
		for i := range n {
			b = ulog.AppendUint64(b, uint64(1000+i))
		}
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		n    int
		err  error
	}{
		{name: "1 region", data: seq(1), n: 1},
		{name: "2 regions", data: seq(2), n: 2},
		{name: "32 regions (MAX_FLUSH_GROUP_COUNT)", data: seq(32), n: 32},
		{name: "41 regions (328 bytes)", data: seq(41), n: 41},
		{name: "empty", data: nil, err: ulog.ErrPayloadSize},
		{name: "4 bytes", data: make([]byte, 4), err: ulog.ErrPayloadSize},
		{name: "odd size 9", data: make([]byte, 9), err: ulog.ErrPayloadSize},
		{name: "12 bytes (not a multiple of 8)", data: make([]byte, 12), err: ulog.ErrPayloadSize},
		{name: "332 bytes (not a multiple of 8)", data: make([]byte, 332), err: ulog.ErrPayloadSize},
		{name: "42 regions (336 bytes > 332)", data: seq(42), err: ulog.ErrPayloadSize},
	} {
		l, err := ulog.Regions(tc.data)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
			continue
		}
		if err != nil {
			if l != nil {
				t.Errorf("%s: list %v with error", tc.name, l)
			}
			continue
		}
		if want, got := tc.n, l.Len(); want != got {
			t.Errorf("%s: Len = %d, want %d", tc.name, got, want)
		}
		for i := 0; i < l.Len(); i++ {
			if want, got := uint64(1000+i), l.At(i); want != got {
				t.Errorf("%s: At(%d) = %d, want %d", tc.name, i, got, want)
			}
		}
		n := 0
		for i, r := range l.All() {
			if i != n || r != uint64(1000+i) {
				t.Errorf("%s: All yields (%d, %d) at step %d", tc.name, i, r, n)
			}
			n++
			if n == 3 {
				break // All must stop when the loop does
			}
		}
		if want := min(tc.n, 3); n != want {
			t.Errorf("%s: All yielded %d, want %d", tc.name, n, want)
		}
	}
	if l, _ := ulog.Regions(u64(1<<64 - 1)); l.At(0) != 1<<64-1 {
		t.Errorf("region 2^64-1 read as %d", l.At(0))
	}
}

func TestSetRegionSync(t *testing.T) {
	for _, tc := range []struct {
		name   string
		data   []byte
		region uint64
		inSync int64
		err    error
	}{
		{name: "in sync", data: cat(u64(5), u64(1)), region: 5, inSync: 1},
		{name: "out of sync", data: cat(u64(7), u64(0)), region: 7, inSync: 0},
		{name: "in_sync -1", data: cat(u64(7), u64(1<<64-1)), region: 7, inSync: -1},
		{name: "8 bytes", data: u64(5), err: ulog.ErrPayloadSize},
		{name: "24 bytes", data: make([]byte, 24), err: ulog.ErrPayloadSize},
		{name: "12 bytes (32-bit region_t)", data: make([]byte, 12), err: ulog.ErrPayloadSize},
	} {
		r, s, err := ulog.SetRegionSync(tc.data)
		if !errors.Is(err, tc.err) || r != tc.region || s != tc.inSync {
			t.Errorf("%s: SetRegionSync = %d, %d, %v; want %d, %d, %v", tc.name, r, s, err, tc.region, tc.inSync, tc.err)
		}
		if err == nil {
			if got := ulog.AppendRegionSync(nil, r, s); !bytes.Equal(got, tc.data) {
				t.Errorf("%s: AppendRegionSync = % x, want % x", tc.name, got, tc.data)
			}
		}
	}
}

func TestCtrString(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want string
		err  error
	}{
		{name: "table load, no NUL", data: "131072 clustered-core 1024", want: "131072 clustered-core 1024"},
		{name: "reconnect, with NUL", data: "131072 clustered-core 1024 nosync\x00", want: "131072 clustered-core 1024 nosync"},
		{name: "several trailing NULs", data: "1 a\x00\x00\x00", want: "1 a"},
		{name: "no spaces", data: "131072", want: "131072"},
		{name: "332 bytes", data: strings.Repeat("7", 332), want: strings.Repeat("7", 332)},
		{name: "331 bytes and NUL", data: strings.Repeat("7", 331) + "\x00", want: strings.Repeat("7", 331)},
		{name: "empty", data: "", err: ulog.ErrCtrString},
		{name: "only NULs", data: "\x00\x00", err: ulog.ErrCtrString},
		{name: "embedded NUL", data: "131072\x00clustered-core", err: ulog.ErrCtrString},
		{name: "embedded and trailing NUL", data: "1\x00a\x00", err: ulog.ErrCtrString},
		{name: "leading NUL", data: "\x001 a", err: ulog.ErrCtrString},
		{name: "333 bytes", data: strings.Repeat("7", 333), err: ulog.ErrPayloadSize},
	} {
		got, err := ulog.CtrString([]byte(tc.data))
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("%s: CtrString = %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestReplyPayloads(t *testing.T) {
	if want, got := u64(1), ulog.AppendBool(nil, true); !bytes.Equal(want, got) {
		t.Errorf("AppendBool(true) = % x, want % x", got, want)
	}
	if want, got := u64(0), ulog.AppendBool(nil, false); !bytes.Equal(want, got) {
		t.Errorf("AppendBool(false) = % x, want % x", got, want)
	}
	if want, got := u64(1<<64-1), ulog.AppendInt64(nil, -1); !bytes.Equal(want, got) {
		t.Errorf("AppendInt64(-1) = % x, want % x", got, want)
	}
	if want, got := u64(1024), ulog.AppendUint64(nil, 1024); !bytes.Equal(want, got) {
		t.Errorf("AppendUint64 = % x, want % x", got, want)
	}
	// GET_RESYNC_WORK {i, r}: i first.
	if want, got := cat(u64(1), u64(77)), ulog.AppendPair(nil, 1, 77); !bytes.Equal(want, got) {
		t.Errorf("AppendPair = % x, want % x", got, want)
	}
	if want, got := []byte("253:2\x00"), ulog.AppendCString(nil, "253:2"); !bytes.Equal(want, got) {
		t.Errorf("AppendCString = %q, want %q", got, want)
	}
	i, r, err := ulog.Pair(ulog.AppendPair(nil, -1, 1<<63))
	if err != nil || i != -1 || r != 1<<63 {
		t.Errorf("Pair = %d, %d, %v", i, r, err)
	}
	if _, _, err := ulog.Pair(make([]byte, 8)); !errors.Is(err, ulog.ErrPayloadSize) {
		t.Errorf("Pair(8 bytes) err = %v", err)
	}
	v, err := ulog.Int64(ulog.AppendInt64(nil, -5))
	if err != nil || v != -5 {
		t.Errorf("Int64 = %d, %v", v, err)
	}
	if _, err := ulog.Int64(make([]byte, 16)); !errors.Is(err, ulog.ErrPayloadSize) {
		t.Errorf("Int64(16 bytes) err = %v", err)
	}
}
