package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/engine"
)

// TestFlushAfterLostResume: the kernel's RESUME was lost (sent once, and
// dropped by a receive queue overrun) after a POSTSUSPEND: the mirror
// runs and writes while the log is suspended, out of the group. A FLUSH
// with new marks must fail, not acknowledge marks that no group or slot
// holds, and the mirror is restarted so that its next RESUME arrives.
func TestFlushAfterLostResume(t *testing.T) { coreAndDisk(t, testFlushAfterLostResume) }

func testFlushAfterLostResume(t *testing.T, args string) {
	c := ctr(t, "65536 "+args+" nosync")
	net := NewFakeNet(1)
	restarts := make(chan string, 4)
	open := func(id uint32) *Log {
		l := openWith(t, net, id, c, func(o *Options) {
			o.Restart = func(_ context.Context, uuid string) error { restarts <- uuid; return nil }
		})
		t.Cleanup(func() { l.Close() })
		return l
	}
	a, b := open(1), open(2)
	resume(t, a, b)
	if err := a.Presuspend(); err != nil {
		t.Fatal(err)
	}
	if err := a.Postsuspend(); err != nil {
		t.Fatal(err)
	}
	// No RESUME: the kernel writes on.
	if err := a.MarkRegion(5); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(); !errors.Is(err, engine.ErrIO) {
		t.Fatalf("FLUSH of a new mark on a suspended log = %v; want an I/O error", err)
	}
	select {
	case <-restarts:
	case <-time.After(5 * time.Second):
		t.Fatal("the mirror was not restarted after a FLUSH showed its RESUME was lost")
	}
	if err := a.Resume(); err != nil { // the restart's RESUME
		t.Fatal(err)
	}
	if err := a.Flush(); err != nil {
		t.Fatalf("FLUSH after the RESUME: %v", err)
	}
	waitFor(t, "the mark of 5 in the group after the resume", func() bool { return markedFor(t, watchOf(a, b), a.Info().Me, 5) })
}

// watchOf is the log whose view shows a's marks: b's group view
// (clustered-core) or a's own slot (clustered-disk).
func watchOf(a, b *Log) *Log {
	if a.core {
		return b
	}
	return a
}

// TestRestartRetriedWhenSuspendLost: the self-restart's suspend reached
// the log (PRESUSPEND) but its POSTSUSPEND and RESUME were dropped: the
// mirror runs, the log stays halted and would hand out no work for ever.
// The restart is made again until the log sees its resume.
func TestRestartRetriedWhenSuspendLost(t *testing.T) {
	c := ctr(t, "65536 clustered-core 1024 nosync")
	net := NewFakeNet(1)
	var a *Log
	var calls atomic.Int32
	o := testOptions(net.Node(1))
	o.Restart = func(context.Context, string) error {
		if err := a.Presuspend(); err != nil {
			return err
		}
		if calls.Add(1) == 1 {
			return nil // POSTSUSPEND and RESUME lost
		}
		if err := a.Postsuspend(); err != nil {
			return err
		}
		return a.Resume()
	}
	a, err := Open("uuid-1", c, engine.Options{Logger: testLogger()}, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b := openNode(t, net, 2, c)
	t.Cleanup(func() { b.Close() })
	resume(t, a, b)
	a.mu.Lock()
	a.restartMirror("test")
	a.mu.Unlock()
	waitFor(t, "a second restart", func() bool { return calls.Load() >= 2 })
	waitFor(t, "the log resumed", func() bool { return !a.halted.Load() && a.running.Load() })
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d restarts, want 2", n)
	}
}
