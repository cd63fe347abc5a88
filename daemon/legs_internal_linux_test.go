//go:build linux

package daemon

import (
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/dm"
)

// Ensure that a mirror table without handle_errors gets a warning that
// names the mirror and the fix, and one with it none.
func TestHandleErrorsWarning(t *testing.T) {
	for _, tc := range []struct {
		table string
		warn  bool
	}{
		{"userspace 4 u1 clustered-disk 253:2 1024 2 253:3 0 253:4 0", true},
		{"userspace 4 u1 clustered-disk 253:2 1024 2 253:3 0 253:4 0 1 handle_errors", false},
		{"userspace 4 u1 clustered-core 1024 nosync 2 253:3 0 253:4 0 2 handle_errors keep_log", false},
	} {
		m, err := dm.ParseMirror(tc.table)
		if err != nil {
			t.Fatalf("%s: %v", tc.table, err)
		}
		w := handleErrorsWarning("vg-lv", m)
		if got := w != ""; got != tc.warn {
			t.Errorf("%s: warning %q, want one: %v", tc.table, w, tc.warn)
		}
		if tc.warn && (!strings.Contains(w, "vg-lv") || !strings.Contains(w, "1 handle_errors")) {
			t.Errorf("the warning should name the mirror and the fix: %q", w)
		}
	}
}
