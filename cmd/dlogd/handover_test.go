package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/dm"
)

const (
	diskTable = "disk 2 253:2 1024 2 253:3 0 253:4 0 1 handle_errors"
	userTable = "userspace 4 LVM-abc clustered-disk 253:2 1024 2 253:3 0 253:4 0 1 handle_errors"
)

func mustMirror(t *testing.T, s string) dm.Mirror {
	t.Helper()
	m, err := dm.ParseMirror(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Ensure that adopt's and release's table rewrites keep the log device,
// region size, legs and features, and are each other's inverse.
func TestHandoverTables(t *testing.T) {
	u, err := toUserspace(mustMirror(t, diskTable), "LVM-abc")
	if err != nil || u.String() != userTable {
		t.Fatalf("toUserspace: %q, %v; want %q", u.String(), err, userTable)
	}
	d, err := toDisk(u)
	if err != nil || d.String() != diskTable {
		t.Fatalf("toDisk: %q, %v; want %q", d.String(), err, diskTable)
	}
	for in, want := range map[string]string{
		"disk 3 253:2 1024 nosync 2 253:3 0 253:4 0":               "userspace 5 u clustered-disk 253:2 1024 nosync 2 253:3 0 253:4 0",
		"disk 4 253:2 8 nosync block_on_error 3 8:1 0 8:2 0 8:3 0": "userspace 6 u clustered-disk 253:2 8 nosync block_on_error 3 8:1 0 8:2 0 8:3 0",
	} {
		u, err := toUserspace(mustMirror(t, in), "u")
		if err != nil || u.String() != want {
			t.Errorf("toUserspace(%q) = %q, %v; want %q", in, u.String(), err, want)
		}
	}
	for in, want := range map[string]string{
		"userspace 5 u integrated_flush clustered-disk 253:2 1024 2 253:3 0 253:4 0": "disk 2 253:2 1024 2 253:3 0 253:4 0",
		"userspace 5 u disk 2 253:2 1024 2 253:3 0 253:4 0":                          "disk 2 253:2 1024 2 253:3 0 253:4 0",
	} {
		d, err := toDisk(mustMirror(t, in))
		if err != nil || d.String() != want {
			t.Errorf("toDisk(%q) = %q, %v; want %q", in, d.String(), err, want)
		}
	}
}

// Ensure that what cannot be switched without a resync or a hidden
// divergence is refused with the reason.
func TestHandoverRefusals(t *testing.T) {
	for in, want := range map[string]string{
		"core 2 1024 nosync 2 253:3 0 253:4 0":      "core log",
		userTable:                                   "already a userspace log",
		"disk 3 253:2 1024 sync 2 253:3 0 253:4 0":  "full resync",
		"disk 1 253:2 2 253:3 0 253:4 0":            "want <dev> <region_size>",
		"disk 3 253:2 1024 bogus 2 253:3 0 253:4 0": `argument "bogus"`,
	} {
		if _, err := toUserspace(mustMirror(t, in), "u"); !errors.Is(err, errUnsafe) || !strings.Contains(err.Error(), want) {
			t.Errorf("adopt %q: %v, want a refusal with %q", in, err, want)
		}
	}
	for in, want := range map[string]string{
		diskTable: `is "disk", not a userspace log`,
		"userspace 4 u clustered-core 1024 nosync 2 253:3 0 253:4 0":     "clustered-core",
		"userspace 5 u clustered-disk 253:2 1024 sync 2 253:3 0 253:4 0": "full resync",
		"userspace 2 u integrated_flush 2 253:3 0 253:4 0":               "no log type",
	} {
		if _, err := toDisk(mustMirror(t, in)); !errors.Is(err, errUnsafe) || !strings.Contains(err.Error(), want) {
			t.Errorf("release %q: %v, want a refusal with %q", in, err, want)
		}
	}
	if _, err := toUserspace(mustMirror(t, diskTable), "a b"); !errors.Is(err, errUnsafe) {
		t.Errorf("a uuid with a blank: %v", err)
	}
}

// Ensure that the mirror status is read as dm-raid1 prints it and that a
// failed leg or log device refuses the switch.
func TestMirrorHealth(t *testing.T) {
	if s, err := mirrorHealth("2 253:3 253:4 128/128 1 AA 3 disk 253:2 A"); err != nil || s != "128/128" {
		t.Errorf("healthy: %q, %v", s, err)
	}
	if s, err := mirrorHealth("3 8:1 8:2 8:3 5/100 1 AAA 1 core"); err != nil || s != "5/100" {
		t.Errorf("core, resyncing: %q, %v", s, err)
	}
	for status, want := range map[string]string{
		"2 253:3 253:4 128/128 1 AD 3 disk 253:2 A": "leg 1 (253:4)",
		"2 253:3 253:4 128/128 1 AA 3 disk 253:2 F": "log device",
		"2 253:3 253:4 128/128 1 A 3 disk 253:2 A":  "1 health characters for 2 legs",
		"9 253:3": "does not parse",
		"":        "empty",
	} {
		if _, err := mirrorHealth(status); !errors.Is(err, errUnsafe) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", status, err, want)
		}
	}
}

// kernel is device-mapper as handover sees it, for the order of the calls
// and the failure paths; the real kernel is the VM's (tests/vmguest).
type kernel struct {
	info                   dm.Info
	live, inactive, status string
	failLoad, failResume   bool
	calls                  []string
}

func (k *kernel) Info(string) (dm.Info, error) {
	i := k.info
	i.InactivePresent = k.inactive != ""
	return i, nil
}
func (k *kernel) Table(string) ([]dm.Target, error) {
	return []dm.Target{{Length: 262144, Type: "mirror", Params: k.live}}, nil
}
func (k *kernel) Status(string) ([]dm.Target, error) {
	return []dm.Target{{Length: 262144, Type: "mirror", Params: k.status}}, nil
}
func (k *kernel) Load(_ string, ts []dm.Target) error {
	k.calls = append(k.calls, "load")
	if k.failLoad {
		return errors.New("EINVAL")
	}
	k.inactive = ts[0].Params
	return nil
}
func (k *kernel) Suspend(string, dm.SuspendOptions) error {
	k.calls = append(k.calls, "suspend")
	k.info.Suspended = true
	return nil
}
func (k *kernel) Resume(string) error {
	k.calls = append(k.calls, "resume")
	if k.inactive != "" {
		if k.failResume {
			return errors.New("EIO")
		}
		k.live, k.inactive = k.inactive, ""
	}
	k.info.Suspended = false
	return nil
}
func (k *kernel) ClearInactive(string) error {
	k.calls = append(k.calls, "clear")
	k.inactive = ""
	return nil
}

func adoptRewrite(m dm.Mirror, info dm.Info) (dm.Mirror, error) { return toUserspace(m, logUUID(info)) }

// Ensure that handover loads, suspends, resumes, and on any failure leaves
// the mirror running with its old table.
func TestHandoverSteps(t *testing.T) {
	healthy := "2 253:3 253:4 128/128 1 AA 3 disk 253:2 A"
	k := &kernel{info: dm.Info{Name: "m0", UUID: "LVM-abc"}, live: diskTable, status: healthy}
	before, after, err := handover(k, "m0", adoptRewrite)
	if err != nil || before != diskTable || after != userTable || k.live != userTable || k.info.Suspended || strings.Join(k.calls, ",") != "load,suspend,resume" {
		t.Fatalf("adopt: %q -> %q, %v; live %q, calls %v", before, after, err, k.live, k.calls)
	}

	k = &kernel{info: dm.Info{Name: "m0"}, live: diskTable, status: healthy, failLoad: true}
	if _, _, err := handover(k, "m0", adoptRewrite); err == nil || k.live != diskTable || k.inactive != "" || k.info.Suspended {
		t.Fatalf("failed load: %v; live %q inactive %q suspended %v", err, k.live, k.inactive, k.info.Suspended)
	}
	k = &kernel{info: dm.Info{Name: "m0"}, live: diskTable, status: healthy, failResume: true}
	if _, _, err := handover(k, "m0", adoptRewrite); err == nil || !strings.Contains(err.Error(), "old one is live again") || k.live != diskTable || k.info.Suspended {
		t.Fatalf("failed resume: %v; live %q suspended %v calls %v", err, k.live, k.info.Suspended, k.calls)
	}
	for _, k := range []*kernel{
		{info: dm.Info{Name: "m0", Suspended: true}, live: diskTable, status: healthy},
		{info: dm.Info{Name: "m0"}, live: diskTable, inactive: "other", status: healthy},
		{info: dm.Info{Name: "m0"}, live: diskTable, status: "2 253:3 253:4 128/128 1 DA 3 disk 253:2 A"},
		{info: dm.Info{Name: "m0"}, live: "core 2 1024 nosync 2 253:3 0 253:4 0", status: healthy},
	} {
		live := k.live
		if _, _, err := handover(k, "m0", adoptRewrite); !errors.Is(err, errUnsafe) || len(k.calls) != 0 || k.live != live {
			t.Errorf("%+v: %v, calls %v: want a refusal before any change", k.info, err, k.calls)
		}
	}
}
