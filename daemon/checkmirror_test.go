package daemon_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/ulog"
)

// Ensure that Options.CheckMirror is asked once per log, after its first
// successful RESUME, and that its answer shows in Status (dlogd warns there
// of a mirror without handle_errors, #17).
func TestCheckMirrorWarning(t *testing.T) {
	var asked atomic.Int32
	d := newDaemon(t, daemon.Options{Logger: quietLogger(), CheckMirror: func(uuid string) string {
		asked.Add(1)
		return "mirror m-" + uuid + " has no handle_errors"
	}})
	k := newKernel(t, d)
	k.ctr("cm", 1, "131072 clustered-core 1024")
	if n := asked.Load(); n != 0 {
		t.Fatalf("asked %d times before RESUME", n)
	}
	if st := d.Status(); len(st) != 1 || st[0].Warning != "" {
		t.Fatalf("status before RESUME: %+v", st)
	}
	k.ok(ulog.TypeResume, "cm", 1, nil)
	k.ok(ulog.TypePostsuspend, "cm", 1, nil)
	k.ok(ulog.TypeResume, "cm", 1, nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := d.Status()
		if len(st) == 1 && strings.Contains(st[0].Warning, "mirror m-cm has no handle_errors") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the mirror's warning: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("asked %d times for one log, want once", n)
	}
}
