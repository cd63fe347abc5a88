package cluster

import (
	"fmt"
	"testing"
	"time"
)

// TestVetoClearedAfterRecovery: a node that failed a write on region 10
// vetoes its resync by others (its kernel holds 10 NOSYNC) until it
// recovers 10 itself; after that its veto must go, or the region, out of
// sync again later (a third node died with it marked), is never handed to
// anyone else (issue #12, a failed write leaves its region on the veto
// list forever).
func TestVetoClearedAfterRecovery(t *testing.T) {
	c := ctr(t, "65536 clustered-core 1024 nosync")
	net := NewFakeNet(1)
	a, b, d := openNode(t, net, 1, c), openNode(t, net, 2, c), openNode(t, net, 3, c)
	defer a.Close()
	defer b.Close()
	resume(t, a, b, d)
	if err := b.SetRegionSync(10, false); err != nil { // b's write to 10 failed
		t.Fatal(err)
	}
	waitFor(t, "10 out of sync on a", func() bool { return !replicatedInSync(a, 10) })
	recoverRegion(t, b, 10, "b failed its write")
	waitFor(t, "10 in sync on a", func() bool { return replicatedInSync(a, 10) })
	// d dies with 10 marked: 10 is out of sync again.
	mustFlush(t, d, 10)
	net.Kill(3)
	d.crash()
	waitFor(t, "d's mark out of sync on a", func() bool { return !replicatedInSync(a, 10) })
	recoverRegion(t, a, 10, "b recovered its failed write long ago")
}

// recoverRegion is a kernel's recovery of region want: GET_RESYNC_WORK
// must hand it out, then SET_REGION_SYNC reports it done. "No work" is
// asked again, as dm-raid1 does on its next pass: the grant may still be
// on its way (a vote round, a departed node's fence confirmation).
func recoverRegion(t *testing.T, l *Log, want uint64, why string) {
	t.Helper()
	var r uint64
	var ok bool
	var err error
	waitFor(t, fmt.Sprintf("GET_RESYNC_WORK to hand out region %d (%s)", want, why), func() bool {
		r, ok, err = l.GetResyncWork()
		return err != nil || ok
	})
	if err != nil || !ok || r != want {
		t.Fatalf("%s: GET_RESYNC_WORK = %d, %v, %v; want region %d (%s)", l.Info().Me, r, ok, err, want, why)
	}
	if err := l.SetRegionSync(r, true); err != nil {
		t.Fatal(err)
	}
}

// TestMergeServerDies: the server merges a dead member's slot and dies
// before its MERGED leaves it. The next server merges the slot again: the
// dead member's acknowledged mark must still be found there (issue #12, a
// membership change before a merge is delivered).
func TestMergeServerDies(t *testing.T) {
	c := ctr(t, "65536 clustered-disk "+logDevice(t, 1<<20)+" 1024 nosync")
	net := NewFakeNet(1)
	a, b, d := openNode(t, net, 1, c), openNode(t, net, 2, c), openNode(t, net, 3, c)
	defer b.Close()
	resume(t, a)
	resume(t, b, d)
	if s := a.Info().Server; s != a.Info().Me {
		t.Fatalf("server %s, want a", s)
	}
	mustFlush(t, d, 5)
	net.Mute(1, func(msg []byte) bool { return msgType(msg[5]) == mMerged }) // a's MERGED is lost
	net.Kill(3)
	d.crash()
	waitFor(t, "a to merge d's slot", func() bool { return a.Info().Merges == 1 })
	net.Kill(1)
	a.crash()
	waitFor(t, "b to merge d's slot", func() bool { return b.Info().Merges >= 1 })
	waitFor(t, "d's mark out of sync on b", func() bool { return !replicatedInSync(b, 5) })
}

// TestMergeTwice: a merge repeated before the first MERGED is delivered,
// or delivered after the slot was freed and its regions resynced, must not
// send those regions out of sync again (issue #12).
func TestMergeTwice(t *testing.T) {
	c := ctr(t, "65536 clustered-disk "+logDevice(t, 1<<20)+" 1024 nosync")
	net := NewFakeNet(1)
	a, b := openNode(t, net, 1, c), openNode(t, net, 2, c)
	defer a.Close()
	resume(t, a, b)
	mustFlush(t, b, 7)
	k := b.Info().Slot
	owner := b.Info().Me
	net.Kill(2)
	b.crash()
	waitFor(t, "b's mark out of sync on a", func() bool { return !replicatedInSync(a, 7) })
	waitFor(t, "b's slot freed", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return a.st.slots[k].state == slotFree })
	recoverRegion(t, a, 7, "b died with it marked")
	waitFor(t, "7 in sync", func() bool { return replicatedInSync(a, 7) })
	// A late MERGED of the same slot (a second merge started before the
	// first was delivered) arrives now.
	a.mu.Lock()
	a.send(func(seq uint64) []byte { return a.codec.merged(seq, uint32(k), owner, []uint64{7}, true) })
	a.mu.Unlock()
	a.mu.Lock()
	seq := a.seq
	a.mu.Unlock()
	waitFor(t, "the late MERGED delivered", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return a.delivered >= seq })
	if !replicatedInSync(a, 7) {
		t.Fatal("a late MERGED of a freed slot sent region 7, resynced since, out of sync again")
	}
}

// TestVetoFailedWriteGranted: a's kernel fails a write to region r that
// is granted to a but that a's kernel was not handed for recovery
// (dm_rh_mark_nosync reports SET_REGION_SYNC(r, 0)): a's kernel holds r
// NOSYNC and writes only the default leg, so a must veto everyone else's
// resync of r, as for a region it does not hold. Before, a granted region
// counted as "being recovered" and b could recover r and report it in
// sync.
func TestVetoFailedWriteGranted(t *testing.T) {
	a, b, _ := pairOn(t, "65536 clustered-core 1024")
	mustWork(t, a)
	ga := a.Info().Grants[a.Info().Me]
	r := ga[len(ga)-1] // granted, not handed to a's kernel
	if err := a.SetRegionSync(r, false); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	ns := a.ns[r]
	a.mu.Unlock()
	if !ns {
		t.Fatalf("a's failed write to region %d, granted to a, is not tracked NOSYNC", r)
	}
	waitFor(t, "a's hold of r ended on b", func() bool { return !held(b, r) })
	// b's kernel recovers whatever it is handed: never r.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		x, ok, err := b.GetResyncWork()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if x == r {
			t.Fatalf("b's kernel handed region %d, which a's kernel holds NOSYNC", r)
		}
		if err := b.SetRegionSync(x, true); err != nil {
			t.Fatal(err)
		}
	}
	if replicatedInSync(a, r) || replicatedInSync(b, r) {
		t.Fatalf("region %d in sync while a's kernel holds it NOSYNC", r)
	}
}

// TestVetoStarted: a's kernel was handed region r for recovery and has
// not reported it; a's hold of r ends all the same (here a RELEASE; after
// a partition heal, the adopted state). a's kernel may still be copying
// r, so a votes no when b proposes it: b's kernel is never handed r while
// a's is.
func TestVetoStarted(t *testing.T) {
	a, b, _ := pairOn(t, "65536 clustered-core 1024")
	r := mustWork(t, a)
	a.mu.Lock()
	a.send(func(seq uint64) []byte { return a.codec.release(seq, r) })
	a.mu.Unlock()
	waitFor(t, "a's hold of r ended on b", func() bool { return !held(b, r) })
	// b's kernel waits to write r: b proposes it first.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if rec, _, _ := b.IsRemoteRecovering(r); !rec {
			t.Fatalf("IS_REMOTE_RECOVERING(%d) = 0 on b while it is out of sync", r)
		}
		x, ok, err := b.GetResyncWork()
		if err != nil {
			t.Fatal(err)
		}
		if ok && x == r {
			t.Fatalf("b's kernel handed region %d while a's kernel recovers it", r)
		}
		if ok {
			if err := b.SetRegionSync(x, true); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.SetRegionSync(r, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's recovery of r known to b", func() bool { return replicatedInSync(b, r) })
}
