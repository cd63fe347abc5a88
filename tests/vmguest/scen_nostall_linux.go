//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// noStallMax is the longest a 4 KiB I/O to an in-sync region may take on a
// node whose peer holds every region left to resync: far below dlogd's old
// 10 s GET_RESYNC_WORK hold, far above a cluster FLUSH under emulation.
const noStallMax = 2 * time.Second

// noStallOps is how many reads and how many writes node 1 times.
const noStallOps = 24

// scenClNoStall (issue #12, "no stall"): node 2 holds the last region
// for recovery (its recovery write to leg B held by dm-delay) after it
// resynced every other region; node 1 then creates the mirror and does
// 4 KiB O_DIRECT reads and writes to in-sync regions and `dmsetup status`.
// dm-raid1's single worker asks GET_RESYNC_WORK before it serves any read
// or write of the userspace log's mirror, so while dlogd held that answer
// (nothing to grant to node 1) every I/O of node 1 waited up to 10 s. Each
// must complete well under that. Then node 2 dies (the host kills its
// qemu) with the region still held: node 1's kernel, answered "no work"
// and idle since, must resync it with no I/O and no suspend (dlogd wakes
// it once the region is granted to node 1), and the legs end identical
// with node 1's writes on both.
func scenClNoStall(s *S) {
	cr := startCluster(s, "no-stall")
	if cr.c.nodes != 2 || cr.c.victim != 2 {
		s.Fail("nodes", "2, node 2 the victim", fmt.Sprintf("%d, victim %d", cr.c.nodes, cr.c.victim), "no-stall runs on two nodes and kills node 2")
	}
	const heldRegion = clLegBytes/(clusterRegion*512) - 1
	cr.barrier(2, cr.all)
	if cr.c.node == 2 {
		cr.holdRecoveryWrite("vmc-legb", heldRegion)
		s.Do("wait for node 1's timed I/O", 10*time.Minute, func(ctx context.Context) error { return cr.mb.wait(ctx, []int{1}, 4) })
		s.Do("wait for the host to kill this guest, its recovery still held", 2*time.Minute, func(ctx context.Context) error {
			fmt.Printf("\n%s node %d holding region %d\n", killMarker, cr.c.node, heldRegion)
			select {
			case <-ctx.Done():
			case <-time.After(90 * time.Second):
			}
			return fmt.Errorf("this guest is still alive 90 s after %s", killMarker)
		})
		return
	}
	s.Do(fmt.Sprintf("wait until node 2 holds region %d for recovery", heldRegion), 6*time.Minute, func(ctx context.Context) error { return cr.mb.wait(ctx, []int{2}, 3) })
	cr.create()
	s.Value(fmt.Sprintf("node 1's mirror after joining (region %d recovering on node 2)", heldRegion), 10*time.Second, func(ctx context.Context) (string, error) {
		m, err := mirrorStatus(ctx, cr.name)
		return m.Ratio(), err
	})
	cr.noStallIO(heldRegion)
	s.Do("publish: timed I/O done", 10*time.Second, func(ctx context.Context) error { return cr.mb.phase(4) })
	s.Do("corosync: node 2 gone, 1 member, quorate", 2*time.Minute, func(ctx context.Context) error {
		return waitMembers(ctx, 1, true)
	})
	s.Value("dlogd handled node 2's departure (confirmed fenced)", 2*time.Minute, func(ctx context.Context) (string, error) {
		return cr.d.WaitLog(ctx, 1, "departed node confirmed fenced: its regions may be resynchronised")
	})
	cr.waitFullSync(fmt.Sprintf("node 1's idle kernel resyncs region %d, which dead node 2 held (woken by dlogd: no I/O)", heldRegion), true)
	s.Expect("node 1 was not suspended and resumed (no self-resume: a wake was enough)", "none", 10*time.Second, func(ctx context.Context) (string, error) {
		lines, err := cr.d.LogSince(1)
		if err != nil {
			return "", err
		}
		if g := grepLines(lines, 1, "restarting the mirror"); len(g) > 0 {
			return g[0], nil
		}
		return "none", nil
	})
	cr.healthy("status after the recovery")
	cr.noStallVerify(cr.mirror, "through the mirror", heldRegion)
	cr.remove()
	s.Expect("legs A and B identical over the whole device", "identical", 2*time.Minute, func(ctx context.Context) (string, error) {
		return compareLegs()
	})
	cr.noStallVerify(legADev, "on leg A", heldRegion)
	cr.noStallVerify(legBDev, "on leg B", heldRegion)
}

// noStallBlock is the offset of node 1's i-th timed block: spread over the
// in-sync regions 0 to held-1, one block per region.
func noStallBlock(i, held int) int64 {
	r := int64(i*held/noStallOps) % int64(held)
	return r*int64(clusterRegion*512) + int64(i%8)*clusterBlock
}

// noStallIO times node 1's 4 KiB O_DIRECT reads and writes of in-sync
// regions and `dmsetup status` while node 2 holds the region left.
func (cr *clusterRun) noStallIO(held int) {
	s := cr.s
	var status, reads, writes []time.Duration
	budget := time.Now().Add(3 * time.Minute) // at the old 10 s per I/O: a dozen
	s.Do(fmt.Sprintf("%d dmsetup status, %d reads and %d writes (4 KiB O_DIRECT, in-sync regions), each timed", 3, noStallOps, noStallOps), 4*time.Minute, func(ctx context.Context) error {
		for range 3 {
			t0 := time.Now()
			if _, err := mirrorStatus(ctx, cr.name); err != nil {
				return err
			}
			status = append(status, time.Since(t0))
		}
		for i := 0; i < noStallOps && time.Now().Before(budget); i++ {
			t0 := time.Now()
			if _, err := readDirect(cr.mirror, noStallBlock(i, held), clusterBlock); err != nil {
				return err
			}
			reads = append(reads, time.Since(t0))
			off := noStallBlock(i, held)
			t0 = time.Now()
			if err := writeDirect(ctx, cr.mirror, off, controlBlock(off), clusterBlock); err != nil {
				return err
			}
			writes = append(writes, time.Since(t0))
		}
		return nil
	})
	for _, m := range []struct {
		what string
		d    []time.Duration
		n    int
	}{{"dmsetup status", status, 3}, {"4 KiB reads", reads, noStallOps}, {"4 KiB writes", writes, noStallOps}} {
		s.Note(m.what+": latency", latencySummary(m.d))
		s.Check(fmt.Sprintf("%s: %d done, each under %v", m.what, m.n, noStallMax), "yes", yesNo(len(m.d) == m.n && slices.Max(m.d) < noStallMax, latencySummary(m.d)))
	}
}

// latencySummary is "n, min, median, p90, max" of ds.
func latencySummary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	d := slices.Clone(ds)
	slices.Sort(d)
	ms := func(x time.Duration) string { return fmt.Sprintf("%.0f ms", float64(x)/float64(time.Millisecond)) }
	return fmt.Sprintf("n %d: min %s, median %s, p90 %s, max %s", len(d), ms(d[0]), ms(d[len(d)/2]), ms(d[len(d)*9/10]), ms(d[len(d)-1]))
}

// noStallVerify checks node 1's timed writes on dev.
func (cr *clusterRun) noStallVerify(dev, where string, held int) {
	cr.s.Expect(fmt.Sprintf("node 1's %d timed writes read back %s", noStallOps, where), "all", time.Minute, func(ctx context.Context) (string, error) {
		var bad []string
		for i := range noStallOps {
			off := noStallBlock(i, held)
			b, err := readDirect(dev, off, clusterBlock)
			if err != nil {
				return "", err
			}
			if !bytes.Equal(b, controlBlock(off)) {
				bad = append(bad, fmt.Sprint(off))
			}
		}
		if len(bad) > 0 {
			return "differ at " + strings.Join(bad, ", "), nil
		}
		return "all", nil
	})
}
