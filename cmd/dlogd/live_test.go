package main

import (
	"slices"
	"testing"
)

func TestUserspaceLogUUIDs(t *testing.T) {
	out := `m0: 0 2097152 mirror userspace 4 LVM-abc clustered-disk 253:2 1024 2 253:3 0 253:4 0 1 handle_errors
m1: 0 131072 mirror userspace 5 dlog-test-0002 integrated_flush clustered-disk /dev/loop2 1024 2 7:0 0 7:1 0
m2: 0 131072 mirror core 1 1024 2 7:0 0 7:1 0
lin: 0 2048 linear 7:3 0
`
	got := userspaceLogUUIDs(out)
	if want := []string{"LVM-abc", "dlog-test-0002"}; !slices.Equal(got, want) {
		t.Fatalf("userspaceLogUUIDs = %q, want %q", got, want)
	}
	if got := userspaceLogUUIDs("No devices found\n"); len(got) != 0 {
		t.Fatalf("no tables: %q", got)
	}
}
