//go:build linux

package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/dm"
	"github.com/dlog-dev/dlog/iouring"
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

// Ensure that the legs are flushed, in one ring submission and with one
// fsync(2) per leg alike, and that a leg that cannot be flushed (a pipe
// stands in: fsync fails with EINVAL) fails the flush with its name while
// the other leg is still flushed.
func TestInstanceLegsFlush(t *testing.T) {
	for _, ring := range []bool{true, false} {
		t.Run(fmt.Sprintf("ring=%v", ring), func(t *testing.T) {
			good, err := os.Create(filepath.Join(t.TempDir(), "leg"))
			if err != nil {
				t.Fatal(err)
			}
			defer good.Close()
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			l := &instanceLegs{uuid: "u", name: "m", legs: []*os.File{good, w}}
			if ring {
				s, reason, err := iouring.NewFsyncer(2)
				if s == nil {
					t.Skipf("no io_uring here: %s %v", reason, err)
				}
				l.ring, l.fds = s, []int{int(good.Fd()), int(w.Fd())}
			}
			defer l.Close()
			err = l.flush()
			if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), w.Name()) {
				t.Errorf("flush with a pipe leg = %v, want EINVAL naming %s", err, w.Name())
			}
			if ring && l.ring == nil {
				t.Errorf("a leg's failure dropped the ring")
			}
			l.legs = l.legs[:1]
			l.fds = l.fds[:min(len(l.fds), 1)]
			if err := l.flush(); err != nil {
				t.Errorf("flush of a file leg: %v", err)
			}
		})
	}
}
