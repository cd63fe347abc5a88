package dm

import (
	"errors"
	"reflect"
	"testing"
)

// Tables as the kernel prints them (dm-raid1 mirror_status, STATUSTYPE_TABLE,
// with each log's own table fragment).
func TestParseMirror(t *testing.T) {
	for _, tc := range []struct {
		params string
		want   Mirror
		uuid   string
	}{
		{"disk 2 253:2 1024 2 253:3 0 253:4 0 1 handle_errors", Mirror{
			Log:      MirrorLog{Type: "disk", Args: []string{"253:2", "1024"}},
			Legs:     []Leg{{"253:3", 0}, {"253:4", 0}},
			Features: []string{"handle_errors"},
		}, ""},
		{"userspace 4 LVM-abc clustered-disk 253:2 1024 2 253:3 0 253:4 2048", Mirror{
			Log:  MirrorLog{Type: "userspace", Args: []string{"LVM-abc", "clustered-disk", "253:2", "1024"}},
			Legs: []Leg{{"253:3", 0}, {"253:4", 2048}},
		}, "LVM-abc"},
		{"userspace 5 u1 integrated_flush clustered-core 1024 nosync 3 7:0 0 7:1 0 7:2 0 2 handle_errors keep_log", Mirror{
			Log:      MirrorLog{Type: "userspace", Args: []string{"u1", "integrated_flush", "clustered-core", "1024", "nosync"}},
			Legs:     []Leg{{"7:0", 0}, {"7:1", 0}, {"7:2", 0}},
			Features: []string{"handle_errors", "keep_log"},
		}, "u1"},
		{"core 1 1024 2 7:0 0 7:1 0", Mirror{
			Log:  MirrorLog{Type: "core", Args: []string{"1024"}},
			Legs: []Leg{{"7:0", 0}, {"7:1", 0}},
		}, ""},
	} {
		got, err := ParseMirror(tc.params + " ") // the kernel leaves a trailing space
		if err != nil {
			t.Fatalf("ParseMirror(%q): %v", tc.params, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseMirror(%q)\n got %+v\nwant %+v", tc.params, got, tc.want)
		}
		if got.String() != tc.params {
			t.Errorf("String() = %q, want %q", got.String(), tc.params)
		}
		u, ok := got.LogUUID()
		if u != tc.uuid || ok != (tc.uuid != "") {
			t.Errorf("LogUUID() = %q, %v; want %q", u, ok, tc.uuid)
		}
	}
}

func TestParseMirrorRejects(t *testing.T) {
	for _, p := range []string{
		"",
		"disk",
		"disk x 253:2",
		"disk 9 253:2 1024 2 253:3 0 253:4 0", // log count past the end
		"disk 2 253:2 1024",                   // no legs
		"disk 2 253:2 1024 0",                 // zero legs
		"disk 2 253:2 1024 3 253:3 0 253:4 0", // leg count past the end
		"disk 2 253:2 1024 2 253:3 0 253:4 x", // bad offset
		"disk 2 253:2 1024 2 253:3 0 253:4 0 2 handle", // feature count past the end
		"disk 2 253:2 1024 2 253:3 0 253:4 0 1 a b",    // words after the features
		"disk 4294967296 a",                            // count overflows
	} {
		if _, err := ParseMirror(p); !errors.Is(err, ErrNotMirror) {
			t.Errorf("ParseMirror(%q) = %v, want ErrNotMirror", p, err)
		}
	}
}

func TestParseDev(t *testing.T) {
	ma, mi, err := ParseDev("253:1048575")
	if err != nil || ma != 253 || mi != 1048575 {
		t.Errorf("ParseDev = %d, %d, %v", ma, mi, err)
	}
	for _, s := range []string{"", "253", "a:1", "1:", "1:4294967296"} {
		if _, _, err := ParseDev(s); err == nil {
			t.Errorf("ParseDev(%q) succeeded", s)
		}
	}
}

func FuzzParseMirror(f *testing.F) {
	f.Add("userspace 4 LVM-abc clustered-disk 253:2 1024 2 253:3 0 253:4 0 1 handle_errors")
	f.Add("core 1 1024 2 7:0 0 7:1 0")
	f.Fuzz(func(t *testing.T, p string) {
		m, err := ParseMirror(p)
		if err != nil {
			return
		}
		again, err := ParseMirror(m.String())
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip of %q: %+v, %v; was %+v", p, again, err, m)
		}
	})
}
