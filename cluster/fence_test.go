package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestFence(t *testing.T) {
	for _, args := range []string{"clustered-core 1024", "clustered-disk " + logDevice(t, 1<<20) + " 1024"} {
		t.Run(strings.Fields(args)[0], func(t *testing.T) { testFence(t, args) })
	}
}

// testFence: the fencing rule (issue #12). d's dlogd dies while its node
// (and kernel) live on: d's marks are not handed out for resync, however
// long the survivors wait, until d's dlogd rejoins, and then they are the
// new member's marks (its kernel still holds them). b's node dies (fenced:
// the fake engine confirms a killed node): its marks are resynced.
func testFence(t *testing.T, args string) {
	c := ctr(t, "65536 "+args+" nosync")
	net := NewFakeNet(1)
	a, b, d := threeNodes(t, net, c, nil)
	defer a.Close()
	mustFlush(t, d, 5)
	net.KillProcesses(3)
	d.crash()
	waitFor(t, "d to leave", func() bool { return len(a.Info().Members) == 2 })
	time.Sleep(300 * time.Millisecond) // the fence check runs and fails
	for _, l := range []*Log{a, b} {
		if r, ok, _ := l.GetResyncWork(); ok {
			t.Fatalf("%s was handed region %d while d's kernel may still write", l.Info().Me, r)
		}
	}
	if !c.Disk() && replicatedInSync(a, 5) {
		t.Fatal("d's mark 5 is in sync on a")
	}
	if c.Disk() && a.Info().Merges != 0 {
		t.Fatal("d's slot merged while d's kernel may still write")
	}
	// d's dlogd restarts under the same kernel: it rejoins and holds 5.
	d2 := openNode(t, net, 3, c)
	defer d2.Close()
	resume(t, d2)
	if cl, _ := d2.IsClean(5); cl {
		t.Fatal("the rejoined member does not hold its kernel's mark 5")
	}
	waitFor(t, "5 out of sync on a", func() bool { return !replicatedInSync(a, 5) })
	for _, l := range []*Log{a, b} {
		if r, ok, _ := l.GetResyncWork(); ok && r == 5 {
			t.Fatalf("%s was handed region 5, which the rejoined d still holds", l.Info().Me)
		} else if ok {
			l.SetRegionSync(r, true)
		}
	}
	// b's node dies with 7 marked: fenced, so 7 is resynced.
	mustFlush(t, b, 7)
	net.Kill(2)
	b.crash()
	waitFor(t, "7 out of sync on a", func() bool { return !replicatedInSync(a, 7) })
	got := false
	for range 5 {
		if r, ok, _ := a.GetResyncWork(); ok {
			got = got || r == 7
			a.SetRegionSync(r, true)
		}
	}
	if !got {
		t.Fatal("region 7 of the fenced node b never handed out")
	}
}

// TestFenceTimeout: with no fence confirmation, Options.FenceTimeout takes
// a node out of the membership that long as fenced; a node whose dlogd
// alone died stays a member and is never taken as fenced.
func TestFenceTimeout(t *testing.T) {
	c := ctr(t, "65536 clustered-core 1024 nosync")
	net := NewFakeNet(1)
	a, b, d := threeNodes(t, net, c, func(o *Options) { o.FenceConfirm, o.FenceTimeout = nil, 200*time.Millisecond })
	defer a.Close()
	mustFlush(t, d, 5)
	mustFlush(t, b, 7)
	net.KillProcesses(3)
	d.crash()
	waitFor(t, "5 out of sync", func() bool { return !replicatedInSync(a, 5) })
	time.Sleep(time.Second)
	if _, ok, _ := a.GetResyncWork(); ok {
		t.Fatal("work handed out while d's node is a member (only its dlogd died)")
	}
	net.Kill(3) // now the node goes
	waitFor(t, "5 handed out after the timeout", func() bool {
		r, ok, _ := a.GetResyncWork()
		if ok {
			a.SetRegionSync(r, true)
		}
		return ok && r == 5
	})
	b.Close()
}
