package cluster

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestBatchHandOut: two idle nodes resync a fresh 128-region log while
// every message takes 5 ms to arrive. dm-raid1 recovers one region at a
// time; with one PROPOSE and one VOTE per region the cluster's message
// latency set the pace of the whole resync (bench/vmcluster-results.md).
// One vote must hand out several regions: the PROPOSEs must number far
// fewer than the regions, each region recovered once, and both nodes must
// recover a share.
func TestBatchHandOut(t *testing.T) {
	coreAndDisk(t, func(t *testing.T, args string) {
		a, b, net := pairOn(t, "131072 "+args)
		sent := a.Info().Sent + b.Info().Sent
		net.SetLatency(5 * time.Millisecond)
		done := make(chan int, 2)
		for _, l := range []*Log{a, b} {
			go func() { done <- idleKernel(t, l) }()
		}
		na, nb := <-done, <-done
		waitFor(t, "full sync known to both", func() bool { return a.SyncCount() == 128 && b.SyncCount() == 128 })
		if na+nb != 128 || na == 0 || nb == 0 {
			t.Fatalf("regions recovered: %d and %d; want 128 in all, each node some", na, nb)
		}
		props := a.Info().Proposals + b.Info().Proposals
		t.Logf("128 regions resynced with %d proposals (%d and %d recovered)", props, na, nb)
		if props*4 > 128 {
			t.Fatalf("%d PROPOSE messages for 128 regions: want at least 4 regions per vote on average", props)
		}
		// Every message keeps corosync busy: the reports go in batches
		// too, not one SYNC per region.
		msgs := a.Info().Sent + b.Info().Sent - sent
		t.Logf("%d messages in all", msgs)
		if msgs*4 > 128 {
			t.Fatalf("%d messages for 128 recovered regions: want at least 4 regions per message on average", msgs)
		}
	})
}

// TestFirstBatchIsFairShare: of two idle members of a fresh log, each
// takes its half in its first vote (up to maxBatch): every vote is two
// corosync messages, and under qemu each message takes CPU from the
// mirrors' copies (docs/design/cluster.md, "Idle resync timeline"). With
// a quarter per vote the 192-region bench mirror took 8 PROPOSEs and 8
// VOTEs where 4 and 4 do.
func TestFirstBatchIsFairShare(t *testing.T) {
	for _, tc := range []struct {
		regions, want int
	}{{128, 64}, {192, 64}, {64, 32}} {
		a, b, _ := pairOn(t, fmt.Sprintf("%d clustered-core 1024", tc.regions*1024))
		for _, l := range []*Log{a, b} {
			if _, ok, err := l.GetResyncWork(); err != nil || !ok {
				t.Fatalf("%d regions: GET_RESYNC_WORK = %v, %v; want a region", tc.regions, ok, err)
			}
			in := l.Info()
			if g := len(in.Grants[in.Me]); g != tc.want || in.Proposals != 1 {
				t.Fatalf("%d regions: %s holds %d regions after %d proposals; want %d after one", tc.regions, in.Me, g, in.Proposals, tc.want)
			}
		}
	}
}

// TestVoteAcceptsSubset: a voter that has one region of a batch marked
// refuses that region only; the proposer is granted the rest in the same
// vote, and never the marked region while it is marked.
func TestVoteAcceptsSubset(t *testing.T) {
	a, b, _ := pairOn(t, "65536 clustered-core 1024") // 64 regions
	lo, hi := a, b
	if hi.Info().Me < lo.Info().Me {
		lo, hi = hi, lo
	}
	// hi's cursor starts at region 32 (its share, which its first batch
	// takes whole); lo marks 33.
	mustFlush(t, lo, 33)
	r, ok, err := hi.GetResyncWork()
	if err != nil || !ok || r != 32 {
		t.Fatalf("GET_RESYNC_WORK = %d, %v, %v; want region 32", r, ok, err)
	}
	g := hi.Info().Grants[hi.Info().Me]
	want := []uint64{32}
	for r := uint64(34); r < 64; r++ {
		want = append(want, r)
	}
	if !slices.Equal(g, want) {
		t.Fatalf("grant %v after one vote; want %v (the batch 32-63 without the region the voter has marked)", g, want)
	}
	if p := hi.Info().Proposals; p != 1 {
		t.Fatalf("%d proposals for the first grant, want 1", p)
	}
	waitFor(t, "the grant known to the voter", func() bool { return slices.Equal(lo.Info().Grants[hi.Info().Me], want) })
}

// TestBatchGrantStateTransfer: a member that joins while another holds a
// batch of regions takes the whole batch over in the state, and the
// holder's reports release the regions on the joiner too.
func TestBatchGrantStateTransfer(t *testing.T) {
	c := ctr(t, "65536 clustered-core 1024")
	net := NewFakeNet(3)
	a, b, d := openNode(t, net, 1, c), openNode(t, net, 2, c), openNode(t, net, 3, c)
	defer a.Close()
	defer b.Close()
	defer d.Close()
	resume(t, a, b)
	r, ok, _ := a.GetResyncWork()
	if !ok {
		t.Fatal("no hand-out")
	}
	g := a.Info().Grants[a.Info().Me]
	if len(g) < 2 {
		t.Fatalf("grant %v, want a batch", g)
	}
	resume(t, d)
	if got := d.Info().Grants[a.Info().Me]; !slices.Equal(got, g) {
		t.Fatalf("joiner holds %v granted to a, a holds %v", got, g)
	}
	if err := a.SetRegionSync(r, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the report applied on the joiner", func() bool { return !held(d, r) && replicatedInSync(d, r) })
	if got := d.Info().Grants[a.Info().Me]; len(got) < len(g)-1 || slices.Contains(got, r) {
		t.Fatalf("joiner holds %v granted to a after a reported %d", got, r)
	}
}

// TestReportDelayed: a report held back to go with the next ones reaches
// the group within reportDelay even when the kernel asks for nothing more,
// and the region stays held by the reporter until then.
func TestReportDelayed(t *testing.T) {
	a, b, _ := pairOn(t, "65536 clustered-core 1024")
	r, ok, _ := a.GetResyncWork()
	if !ok {
		t.Fatal("no hand-out")
	}
	if len(a.Info().Grants[a.Info().Me]) < 2 {
		t.Fatal("want a batch")
	}
	sent := a.Info().Sent
	start := time.Now()
	if err := a.SetRegionSync(r, true); err != nil {
		t.Fatal(err)
	}
	if in, _ := a.InSync(r); !in {
		t.Fatal("the reporter answers IN_SYNC 0 for the region it reported")
	}
	if a.Info().Sent != sent {
		t.Fatal("one report of a batch sent at once")
	}
	waitFor(t, "the report delivered to b", func() bool { return replicatedInSync(b, r) })
	if d := time.Since(start); d < reportDelay/2 {
		t.Fatalf("report delivered after %v, want it held about %v", d, reportDelay)
	}
	if held(b, r) {
		t.Fatalf("region %d still held after its report", r)
	}
}
