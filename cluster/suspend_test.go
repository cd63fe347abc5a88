package cluster

import (
	"testing"
)

// TestWriteAfterPresuspend: the kernel presuspends before it blocks I/O,
// so writes still arrive. A write to a region out of sync must never go
// unmarked to the default leg only: IS_REMOTE_RECOVERING answers "not
// recovering" while presuspended, so IN_SYNC must then answer 1 for that
// region and every region below the hint it returned (the kernel asks no
// more below it), and once the write's mark is flushed no peer is handed
// the region (issue #12, writes after PRESUSPEND).
func TestWriteAfterPresuspend(t *testing.T) {
	a, b := freshPair(t)
	if err := a.Presuspend(); err != nil {
		t.Fatal(err)
	}
	rec, hint, err := a.IsRemoteRecovering(2)
	if err != nil {
		t.Fatal(err)
	}
	if rec {
		t.Fatal("presuspended: IS_REMOTE_RECOVERING(2) = 1: the write waits for a recovery the suspend stopped")
	}
	for r := uint64(0); r < 4; r++ {
		if r != 2 && r >= hint {
			continue
		}
		if in, _ := a.InSync(r); !in {
			t.Fatalf("presuspended: IS_REMOTE_RECOVERING(2) = (0, hint %d), IN_SYNC(%d) = 0: the write goes unmarked to one leg", hint, r)
		}
	}
	// The kernel marks and flushes region 2 (it is "in sync"), then
	// writes it to every leg: b must not be handed region 2 meanwhile.
	mustFlush(t, a, 2)
	for range 4 {
		r, ok, err := b.GetResyncWork()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if r == 2 {
			t.Fatal("region 2 handed to b while a writes it")
		}
		if err := b.SetRegionSync(r, true); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReconnectKeepsHint: the kernel's reconnect (CTR + RESUME of a
// running log after -ESRCH) keeps the in_sync_hint it latched. A region
// that goes out of sync afterwards (a peer died with it marked) below that
// hint is written without IS_REMOTE_RECOVERING: IN_SYNC must answer 1 so
// the write is marked and goes to every leg (issue #12, reconnect resets
// the hint).
func TestReconnectKeepsHint(t *testing.T) {
	c := ctr(t, "8192 clustered-core 1024 nosync")
	net := NewFakeNet(1)
	a, b := openNode(t, net, 1, c), openNode(t, net, 2, c)
	defer a.Close()
	resume(t, a, b)
	if rec, hint, _ := a.IsRemoteRecovering(0); rec || hint != 8 {
		t.Fatalf("IS_REMOTE_RECOVERING on a log in sync = (%v, %d), want (false, 8)", rec, hint)
	}
	// The kernel latched hint 8; netlink loses a request: reconnect.
	if err := a.Resume(); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, b, 5)
	net.Kill(2)
	b.crash()
	waitFor(t, "b's mark out of sync on a", func() bool { return !replicatedInSync(a, 5) })
	if in, _ := a.InSync(5); !in {
		t.Fatal("after a reconnect, IN_SYNC(5) = 0 below the kernel's latched hint 8: the write goes unmarked to one leg")
	}
}
