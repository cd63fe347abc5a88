//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// scenClDiscardHazard (cluster scenario discard-hazard) is a hazard
// demonstration, not a pass of dlogd: it reproduces, on two real kernels,
// what dm-raid1 does with a DISCARD racing another node's recovery of its
// region, and shows that the log is never asked. dm-raid1's do_writes puts
// a REQ_OP_DISCARD bio (and an empty REQ_PREFLUSH one) straight on its
// sync list: no IS_REMOTE_RECOVERING, no region state, no mark
// (dm_rh_inc_pending skips it), and do_write sends it to every leg at
// once. docs/design/cluster.md ("DISCARD and PREFLUSH bios") has the
// kernel's code path and what an operator must do.
//
// The window is made deterministic with dm-delay, not with timing:
//
//  1. node 1 writes a pattern over region 191, the last, of leg A (the
//     recovery's
//     source) before any mirror exists; leg B holds zeros there.
//  2. node 2 alone creates the mirror (a fresh log: every region out of
//     sync) over leg A and a dm-delay device on leg B that holds writes
//     to region 191 for minutes. Its recovery of region 191 reads the pattern
//     from leg A; kcopyd's write of it to leg B is held (dm-delay's
//     status counts it).
//  3. node 1 creates its mirror (it joins the log's group) and discards
//     region 191 through it: the discard completes at once, reaches both
//     legs (their discard counters), and dlogd saw no MARK_REGION and no
//     IS_REMOTE_RECOVERING for it. A 4 KiB write to region 191 after it, the
//     control, is held by IS_REMOTE_RECOVERING as it must be.
//  4. node 2 releases the held write (suspending the dm-delay device
//     flushes it): the pattern lands on leg B after the discard.
//  5. both nodes reach full sync, the mirror is removed, and the legs
//     differ over region 191 alone: leg A reads the discard's zeros, leg B
//     the discarded data, in a region the log reports in sync.
//
// Then node 1 checks the PREFLUSH side on the synced mirror: a FUA data
// write (O_DIRECT|O_DSYNC) to a region never written is marked before it
// is acknowledged (MARK_REGION and FLUSH in dlogd's request counters),
// an empty flush (fsync of the mirror) reaches both legs and asks the log
// for no mark, a real flush with data (flushWithData) is marked; and the
// operator's mitigation: discard_max_bytes 0 on the mirror makes a
// discard fail with EOPNOTSUPP, through a suspend and resume, until the
// next table load.
func scenClDiscardHazard(s *S) {
	cr := startCluster(s, "discard-hazard")
	if cr.c.nodes != 2 {
		s.Fail("nodes", "2", fmt.Sprint(cr.c.nodes), "discard-hazard runs on two nodes")
	}
	for _, dev := range []string{legADev, legBDev} {
		s.Expect(dev+" takes discards (qemu discard=unmap)", "yes", 10*time.Second, func(ctx context.Context) (string, error) {
			n, err := readSysUint(filepath.Join("/sys/block", filepath.Base(dev), "queue/discard_max_bytes"))
			if err != nil {
				return "", err
			}
			if n == 0 {
				return "no (discard_max_bytes 0)", nil
			}
			return "yes", nil
		})
	}
	// The last region: the first ones stay free for preflushChecks'
	// snapshot, whose exception store starts at the mirror's sector 0.
	const hazardRegion = clLegBytes/(clusterRegion*512) - 1
	regionBytes := int64(clusterRegion * 512)
	regionOff := int64(hazardRegion) * regionBytes
	if cr.c.node == 1 {
		s.Do(fmt.Sprintf("write the pre-discard pattern over region %d of leg A (%s) before any mirror exists", hazardRegion, legADev), time.Minute, func(ctx context.Context) error {
			return writeDirect(ctx, legADev, regionOff, preDiscardRegion(regionOff, regionBytes), clusterBlock)
		})
	}
	cr.barrier(2, cr.all)

	delayDev := "vmc-legb"
	if cr.c.node == 2 {
		cr.holdRecovery(delayDev, hazardRegion, "node 1's discard")
	} else {
		s.Do(fmt.Sprintf("wait until node 2's recovery write of region %d is held", hazardRegion), 5*time.Minute, func(ctx context.Context) error { return cr.mb.wait(ctx, []int{2}, 3) })
		cr.create()
		s.Value(fmt.Sprintf("node 1's mirror after joining (region %d recovering on node 2)", hazardRegion), 10*time.Second, func(ctx context.Context) (string, error) {
			m, err := mirrorStatus(ctx, cr.name)
			return m.Ratio(), err
		})
		ctl := cr.discardRace(regionOff, regionBytes)
		s.Do("publish: discarded", 10*time.Second, func(ctx context.Context) error { return cr.mb.phase(4) })
		cr.await(fmt.Sprintf("the control write completes once node 2's recovery of region %d ends", hazardRegion), 3*time.Minute, ctl)
	}
	cr.waitFullSync(fmt.Sprintf("in sync after the recovery of region %d", hazardRegion), true)
	cr.healthy("status after the recovery")
	if cr.c.node == 1 {
		s.Value(fmt.Sprintf("region %d through the mirror on node 1 (reads go to the default leg, A)", hazardRegion), time.Minute, func(ctx context.Context) (string, error) {
			return describeRegion(cr.mirror, regionOff, regionBytes)
		})
	}
	cr.barrier(5, cr.all)
	if cr.c.node == 1 {
		cr.preflushChecks(int64(100) * regionBytes)
	}
	cr.barrier(6, cr.all)
	cr.remove()
	if cr.c.node == 2 {
		s.Do("dmsetup remove "+delayDev, time.Minute, func(ctx context.Context) error { return dmRemove(ctx, delayDev) })
	}
	cr.barrier(7, cr.all)
	if cr.c.node != 1 {
		return
	}
	s.Expect("HAZARD reproduced (kernel, not dlogd): legs differ over the discarded region alone", fmt.Sprintf("1 of %d regions differ: %d", hazardRegion+1, hazardRegion), 2*time.Minute, func(ctx context.Context) (string, error) {
		return compareLegs()
	})
	s.Expect(fmt.Sprintf("HAZARD reproduced: region %d on leg A", hazardRegion), "block 1: the control write; 63 blocks: zeros (discarded)", time.Minute, func(ctx context.Context) (string, error) {
		return describeRegion(legADev, regionOff, regionBytes)
	})
	s.Expect(fmt.Sprintf("HAZARD reproduced: region %d on leg B", hazardRegion), "block 1: the control write; 63 blocks: the pre-discard data (the recovery's copy landed after the discard)", time.Minute, func(ctx context.Context) (string, error) {
		return describeRegion(legBDev, regionOff, regionBytes)
	})
}

// holdRecovery is node 2's part of a scenario that holds its recovery of
// region (the last one) between its read of leg A and its write to leg B:
// dm-delay under leg B holds writes to the region, the mirror is created
// over it, and once the recovery's write is held phase 3 is published;
// when node 1 reaches phase 4 (what names its step) the held write is
// released. The delay device is removed at the end.
func (cr *clusterRun) holdRecovery(delayDev string, region int, what string) {
	cr.holdRecoveryWrite(delayDev, region)
	s := cr.s
	s.Do("wait for "+what, 10*time.Minute, func(ctx context.Context) error { return cr.mb.wait(ctx, []int{1}, 4) })
	s.Do("release the held recovery write (a table load and resume suspends the dm-delay device, which flushes it)", time.Minute, func(ctx context.Context) error {
		return dmLoadResume(ctx, delayDev, fmt.Sprintf("0 %d linear %s 0", clLegBytes/512, legBDev))
	})
}

// holdRecoveryWrite is holdRecovery up to phase 3: the recovery's write
// is held.
func (cr *clusterRun) holdRecoveryWrite(delayDev string, region int) {
	s := cr.s
	regionBytes := int64(clusterRegion * 512)
	t := heldWriteTable(int64(region)*regionBytes/512, regionBytes/512)
	s.Defer("remove "+delayDev, stepTimeout, func(ctx context.Context) error {
		if ok, err := dmExists(ctx, delayDev); err != nil || !ok {
			return err
		}
		return dmRemove(ctx, delayDev)
	})
	s.Do(fmt.Sprintf("dm-delay on leg B holding writes to region %d: ", region)+strings.ReplaceAll(t, "\n", "; "), time.Minute, func(ctx context.Context) error {
		return dmCreate(ctx, delayDev, t)
	})
	mt, err := tableForLegs(cr.uuid, cr.c.logType, "", legADev, "/dev/mapper/"+delayDev)
	if err != nil {
		s.Fail("log device number", "maj:min of "+clogDev, "error", err.Error())
	}
	cr.createTable(mt)
	s.Value(fmt.Sprintf("node 2's recovery of region %d read leg A and its write to leg B is held (dm-delay status: held reads, writes, flushes)", region), 4*time.Minute, func(ctx context.Context) (string, error) {
		return waitHeldWrite(ctx, delayDev, 1)
	})
	s.Value("node 2's mirror while the write is held", 10*time.Second, func(ctx context.Context) (string, error) {
		m, err := mirrorStatus(ctx, cr.name)
		return m.Ratio(), err
	})
	s.Do("publish: recovery write held", 10*time.Second, func(ctx context.Context) error { return cr.mb.phase(3) })
}

// discardRace is node 1's part while node 2's recovery write of the
// region at off is held: the discard of the region through the mirror,
// what dlogd and the legs saw of it, and the control write (started here,
// returned as its outcome).
func (cr *clusterRun) discardRace(off, length int64) <-chan error {
	s := cr.s
	before := cr.requests()
	legsBefore := discardCounts()
	start := time.Now()
	s.Do(fmt.Sprintf("BLKDISCARD of the region (%d bytes at %d) through node 1's mirror while node 2 recovers it", length, off), 30*time.Second, func(ctx context.Context) error {
		return blkDiscard(cr.mirror, off, length)
	})
	s.Note("the discard returned after", secs(time.Since(start)))
	afterDiscard := cr.requests()
	d := RequestDelta(before, afterDiscard)
	s.Logf("node 1: dlogd's requests during the discard: %s", FormatCounts(d))
	s.Check("dlogd's requests for the discard: no MARK_REGION, no IS_REMOTE_RECOVERING (the kernel never asks the log)", "MARK_REGION=0 IS_REMOTE_RECOVERING=0",
		fmt.Sprintf("MARK_REGION=%d IS_REMOTE_RECOVERING=%d", d["MARK_REGION"], d["IS_REMOTE_RECOVERING"]))
	after := discardCounts()
	var legs []string
	if after[0] > legsBefore[0] {
		legs = append(legs, "leg A")
	}
	if after[1] > legsBefore[1] {
		legs = append(legs, "leg B")
	}
	got := strings.Join(legs, " and ")
	if got == "" {
		got = fmt.Sprintf("neither (before %v, after %v)", legsBefore, after)
	}
	s.Check("the discard reached both legs at once (/sys/block stat discard I/Os)", "leg A and leg B", got)
	// The control: a write to the same region is held while node 2
	// recovers it.
	ctl := make(chan error, 1)
	go func() {
		ctl <- writeDirect(context.Background(), cr.mirror, off+clusterBlock, controlBlock(off+clusterBlock), clusterBlock)
	}()
	// The kernel asks IS_REMOTE_RECOVERING when its worker gets to the
	// write, which may be after a GET_RESYNC_WORK that dlogd holds up to
	// its WorkTimeout (10 s) while another node has the last regions.
	start = time.Now()
	s.Expect("control: a 4 KiB write to the region is held by IS_REMOTE_RECOVERING while node 2 recovers it", "held, IS_REMOTE_RECOVERING asked", 45*time.Second, func(ctx context.Context) (string, error) {
		for {
			select {
			case err := <-ctl:
				ctl <- err
				return fmt.Sprintf("acknowledged after %.1f s (err %v)", time.Since(start).Seconds(), err), nil
			case <-time.After(time.Second):
			}
			logs, err := cr.d.DumpOf(ctx, cr.uuid, 1)
			if err != nil {
				return "", err
			}
			d := RequestDelta(afterDiscard, logs[0].Requests)
			if d["IS_REMOTE_RECOVERING"] > 0 {
				s.Logf("node 1: dlogd's requests while the control write is held (%.1f s): %s", time.Since(start).Seconds(), FormatCounts(d))
				return "held, IS_REMOTE_RECOVERING asked", nil
			}
			if ctx.Err() != nil {
				return "held, but no IS_REMOTE_RECOVERING: " + FormatCounts(d), nil
			}
		}
	})
	s.Expect("control: still held 3 s later", "held", 10*time.Second, func(ctx context.Context) (string, error) {
		select {
		case err := <-ctl:
			ctl <- err
			return fmt.Sprintf("acknowledged (err %v)", err), nil
		case <-time.After(3 * time.Second):
			return "held", nil
		}
	})
	return ctl
}

// preflushChecks is the PREFLUSH side, on node 1's synced mirror with node
// 2 idle: a FUA data write to a region never written (fresh) is marked
// before it is acknowledged; an empty flush reaches both legs and asks for
// no mark; discard_max_bytes 0 on the mirror refuses discards.
func (cr *clusterRun) preflushChecks(fresh int64) {
	s := cr.s
	sysq := s.Value("the mirror's queue in sysfs", 10*time.Second, func(ctx context.Context) (string, error) {
		mm, err := devMajMin(cr.mirror)
		if err != nil {
			return "", err
		}
		return filepath.Join("/sys/dev/block", mm, "queue"), nil
	})
	s.Expect("the mirror has a write-back cache (the block layer passes its flushes and FUA on)", "write back", 10*time.Second, func(ctx context.Context) (string, error) {
		b, err := os.ReadFile(filepath.Join(sysq, "write_cache"))
		return strings.TrimSpace(string(b)), err
	})
	before := cr.requests()
	s.Do("a 4 KiB O_DIRECT|O_DSYNC (REQ_FUA) write to region 100, never written", 30*time.Second, func(ctx context.Context) error {
		return writeDirectFlags(ctx, cr.mirror, unix.O_DSYNC, fresh, controlBlock(fresh), clusterBlock, nil)
	})
	d := RequestDelta(before, cr.requests())
	s.Logf("node 1: dlogd's requests for the FUA write: %s", FormatCounts(d))
	s.Check("the FUA write was marked before it was acknowledged (MARK_REGION and FLUSH)", "yes", yesNo(d["MARK_REGION"] > 0 && d["FLUSH"] > 0, FormatCounts(d)))
	// Let the kernel clear the region and flush the clear (its periodic
	// worker), so that the empty flush finds no mark or clear pending.
	time.Sleep(5 * time.Second)
	before = cr.requests()
	fa0, errA := flushCount(legADev)
	fb0, errB := flushCount(legBDev)
	if err := errors.Join(errA, errB); err != nil {
		s.Fail("legs' flush counters", "readable", "error", err.Error())
	}
	s.Do("an empty flush: fsync of the mirror (blkdev_issue_flush, an empty REQ_PREFLUSH bio)", 30*time.Second, func(ctx context.Context) error {
		f, err := os.OpenFile(cr.mirror, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
	d = RequestDelta(before, cr.requests())
	s.Logf("node 1: dlogd's requests for the empty flush: %s", FormatCounts(d))
	s.Check("the empty flush asked the log for no mark", "MARK_REGION=0", fmt.Sprintf("MARK_REGION=%d", d["MARK_REGION"]))
	s.Expect("the empty flush reached both legs (/sys/block stat flush I/Os)", "leg A and leg B", 10*time.Second, func(ctx context.Context) (string, error) {
		fa1, errA := flushCount(legADev)
		fb1, errB := flushCount(legBDev)
		if err := errors.Join(errA, errB); err != nil {
			return "", err
		}
		if fa1 > fa0 && fb1 > fb0 {
			return "leg A and leg B", nil
		}
		return fmt.Sprintf("leg A %d -> %d, leg B %d -> %d", fa0, fa1, fb0, fb1), nil
	})
	cr.flushWithData()
	s.Do("mitigation: discard_max_bytes 0 on the mirror", 10*time.Second, func(ctx context.Context) error {
		return os.WriteFile(filepath.Join(sysq, "discard_max_bytes"), []byte("0\n"), 0)
	})
	s.Expect("mitigation: a discard through the mirror is refused", "operation not supported", 10*time.Second, func(ctx context.Context) (string, error) {
		err := blkDiscard(cr.mirror, 2*int64(clusterRegion*512), int64(clusterRegion*512))
		if err == nil {
			return "the discard was accepted", nil
		}
		if errors.Is(err, unix.EOPNOTSUPP) {
			return "operation not supported", nil
		}
		return err.Error(), nil
	})
	s.Do("suspend and resume the mirror (no new table, as dlogd's self-resume)", time.Minute, func(ctx context.Context) error {
		if _, err := dmsetup(ctx, "suspend", cr.name); err != nil {
			return err
		}
		_, err := dmsetup(ctx, "resume", cr.name)
		return err
	})
	s.Expect("mitigation: discard_max_bytes after a suspend and resume", "0", 10*time.Second, func(ctx context.Context) (string, error) {
		n, err := readSysUint(filepath.Join(sysq, "discard_max_bytes"))
		return fmt.Sprint(n), err
	})
	s.Do("reload the mirror's table (dmsetup load + resume of the same table)", time.Minute, func(ctx context.Context) error {
		return dmLoadResume(ctx, cr.name, cr.table())
	})
	s.Expect("mitigation: a table load restores discard_max_bytes (set it again after each load)", "restored", 10*time.Second, func(ctx context.Context) (string, error) {
		n, err := readSysUint(filepath.Join(sysq, "discard_max_bytes"))
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "still 0", nil
		}
		return "restored", nil
	})
}

// requests is this node's dlogd's request counters for the scenario's log.
func (cr *clusterRun) requests() map[string]uint64 {
	var got map[string]uint64
	cr.s.Do("dlogd's request counters (SIGUSR1 dump)", 20*time.Second, func(ctx context.Context) error {
		logs, err := cr.d.DumpOf(ctx, cr.uuid, 1)
		if err != nil {
			return err
		}
		got = logs[0].Requests
		return nil
	})
	return got
}

// heldWriteTable is leg B with writes to sectors [start, start+n), the
// end of the device, held by dm-delay for 5 minutes (reads and flushes
// not delayed) and the rest linear. dmsetup's --table takes two lines.
func heldWriteTable(start, n int64) string {
	if start+n != clLegBytes/512 {
		panic("heldWriteTable: the held range must end the device")
	}
	return fmt.Sprintf("0 %d linear %s 0\n%d %d delay %s %d 0 %s %d 300000 %s %d 0",
		start, legBDev, start, n, legBDev, start, legBDev, start, legBDev, start)
}

// waitHeldWrite waits until dm-delay's status shows a held write in the
// table's line-th target (from 0): "<start> <len> delay <reads> <writes>
// <flushes>", the counts of bios it holds now.
func waitHeldWrite(ctx context.Context, name string, line int) (string, error) {
	for {
		out, err := dmStatus(ctx, name)
		if err != nil {
			return "", err
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if line >= len(lines) {
			return "", fmt.Errorf("dm status of %s has %d lines, want line %d: %q", name, len(lines), line, out)
		}
		f := strings.Fields(lines[line])
		if len(f) != 6 || f[2] != "delay" {
			return "", fmt.Errorf("dm-delay status %q: want <start> <len> delay <reads> <writes> <flushes>", lines[line])
		}
		if n, err := strconv.Atoi(f[4]); err == nil && n > 0 {
			return strings.Join(f[3:], " "), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no held write; last status %q: %w", lines[line], ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// preDiscardRegion is the data node 1 puts in the hazard's region of leg A before
// the mirror exists: every 4 KiB block names itself.
func preDiscardRegion(off, n int64) []byte {
	b := make([]byte, n)
	for blk := int64(0); blk*clusterBlock < n; blk++ {
		copy(b[blk*clusterBlock:(blk+1)*clusterBlock], preDiscardBlock(off+blk*clusterBlock))
	}
	return b
}

func preDiscardBlock(at int64) []byte {
	return patternBlock(fmt.Sprintf("dlogvmc pre-discard at=%d |", at))
}

func controlBlock(at int64) []byte {
	return patternBlock(fmt.Sprintf("dlogvmc control write at=%d |", at))
}

func patternBlock(line string) []byte {
	b := make([]byte, clusterBlock)
	for i := 0; i < len(b); i += len(line) {
		copy(b[i:], line)
	}
	return b
}

// describeRegion reads a region and says what its 4 KiB blocks hold: the
// control write, zeros, the pre-discard data, or something else, by block
// ranges ("block 1: the control write; 63 blocks: zeros (discarded)").
func describeRegion(dev string, off, n int64) (string, error) {
	b, err := readDirect(dev, off, int(n))
	if err != nil {
		return "", err
	}
	zero := make([]byte, clusterBlock)
	var control []int
	var zeros, pre, other int
	for blk := 0; int64(blk)*clusterBlock < n; blk++ {
		at := off + int64(blk)*clusterBlock
		got := b[blk*clusterBlock : (blk+1)*clusterBlock]
		switch {
		case bytes.Equal(got, controlBlock(at)):
			control = append(control, blk)
		case bytes.Equal(got, zero):
			zeros++
		case bytes.Equal(got, preDiscardBlock(at)):
			pre++
		default:
			other++
		}
	}
	var parts []string
	if len(control) > 0 {
		parts = append(parts, "block "+runs(control)+": the control write")
	}
	if zeros > 0 {
		parts = append(parts, fmt.Sprintf("%d blocks: zeros (discarded)", zeros))
	}
	if pre > 0 {
		parts = append(parts, fmt.Sprintf("%d blocks: the pre-discard data (the recovery's copy landed after the discard)", pre))
	}
	if other > 0 {
		parts = append(parts, fmt.Sprintf("%d blocks: something else", other))
	}
	return strings.Join(parts, "; "), nil
}

// blkDiscard discards length bytes at off of a block device (BLKDISCARD).
func blkDiscard(dev string, off, length int64) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	rng := [2]uint64{uint64(off), uint64(length)}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKDISCARD, uintptr(unsafe.Pointer(&rng))); errno != 0 {
		return fmt.Errorf("BLKDISCARD %s %d+%d: %w", dev, off, length, errno)
	}
	return nil
}

// discardCounts is the completed discard I/Os of leg A and leg B.
func discardCounts() [2]int64 {
	return [2]int64{discardCount(legADev), discardCount(legBDev)}
}

// discardCount is the completed discard I/Os of a block device
// (/sys/block/<dev>/stat field 12); -1 when unreadable.
func discardCount(dev string) int64 {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "stat"))
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 15 {
		return -1
	}
	n, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// yesNo is "yes", or "no: " and why.
func yesNo(ok bool, why string) string {
	if ok {
		return "yes"
	}
	return "no: " + why
}

// readSysUint reads a sysfs file holding one unsigned number.
func readSysUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// Sizes of discard-hazard-local: 16 regions of 256 KiB; region 15 (the
// last one the kernel's core log hands out for recovery) is the one
// discarded.
const (
	localRegions = 16
	localRegion  = 512 // sectors
	localVictim  = localRegions - 1
)

// scenDiscardHazardLocal (discard-hazard-local) is the single-node form of
// the discard hazard, a demonstration, not a pass of dlogd: with the
// kernel's own core log (no dlogd at all), a discard that is still in
// flight when dm-raid1 starts recovering its region is not waited for
// (dm_rh_inc_pending does not count it, so __rh_recovery_prepare quiesces
// the region at once), and the legs end different over the region.
//
// Deterministic with dm-delay: leg A holds writes to region 15 (the
// discard's leg A part) until released; leg B delays writes to regions
// 0-14 by 400 ms, so the initial resync (lowest region first) takes 6 s
// before it reaches region 15. The discard of region 15 is issued at
// once; its leg B part completes, leg A's is held; the resync of region 15
// then reads the pattern from leg A and writes it to leg B; the mirror
// reports full sync; only then is leg A's discard released: leg A ends
// with zeros, leg B with the discarded data, in a region reported in sync.
func scenDiscardHazardLocal(s *S) {
	e := newEnv(s, "dhl")
	const rbytes = localRegion * 512
	size := int64(localRegions * rbytes)
	victim := int64(localVictim) * rbytes
	a := e.loop("leg A", size, 512)
	b := e.loop("leg B", size, 512)
	s.Do("write the pre-discard pattern over region 15 of leg A", time.Minute, func(ctx context.Context) error {
		return writeDirect(ctx, a.Dev, victim, preDiscardRegion(victim, rbytes), clusterBlock)
	})
	vs := victim / 512
	da := e.dm("leg A: writes to region 15 held until released", "dhl-a",
		fmt.Sprintf("0 %d linear %s 0\n%d %d delay %s %d 0 %s %d 300000 %s %d 0", vs, a.Dev, vs, localRegion, a.Dev, vs, a.Dev, vs, a.Dev, vs))
	db := e.dm("leg B: writes to regions 0-14 delayed 400 ms", "dhl-b",
		fmt.Sprintf("0 %d delay %s 0 0 %s 0 400 %s 0 0\n%d %d linear %s %d", vs, b.Dev, b.Dev, b.Dev, vs, localRegion, b.Dev, vs))
	m := e.dm("mirror with the kernel's core log (a fresh resync of every region)", "dhl-m",
		fmt.Sprintf("0 %d mirror core 1 %d 2 %s 0 %s 0 0", size/512, localRegion, da.Path, db.Path))
	legB0 := discardCount(b.Dev)
	discarded := make(chan error, 1)
	go func() { discarded <- blkDiscard(m.Path, victim, rbytes) }()
	s.Value("the discard's leg A part is held (dm-delay status of region 15: held reads, writes, flushes)", time.Minute, func(ctx context.Context) (string, error) {
		return waitHeldWrite(ctx, da.Name, 1)
	})
	s.Do("the discard's leg B part completed (/sys/block stat discard I/Os)", time.Minute, func(ctx context.Context) error {
		for discardCount(b.Dev) <= legB0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("leg B's discard count stays %d", legB0)
			case <-time.After(50 * time.Millisecond):
			}
		}
		return nil
	})
	s.Expect("region 15's recovery had not started then (regions in sync at most 14: recovery goes lowest first, one region at a time)", "yes", 10*time.Second, func(ctx context.Context) (string, error) {
		st, err := mirrorStatus(ctx, m.Name)
		if err != nil {
			return "", err
		}
		return yesNo(st.InSync <= localRegions-2, "in sync "+st.Ratio()), nil
	})
	s.Value("full sync with the discard still in flight on leg A", syncTimeout, func(ctx context.Context) (string, error) {
		return waitSync(ctx, m.Name)
	})
	s.Do("release leg A's held discard (a table load and resume flushes dm-delay)", stepTimeout, func(ctx context.Context) error {
		return dmLoadResume(ctx, da.Name, fmt.Sprintf("0 %d linear %s 0", size/512, a.Dev))
	})
	awaitStep(s, "the discard returns", stepTimeout, discarded)
	s.Expect("status: the mirror in sync, both legs A", fmt.Sprintf("%d/%d AA", localRegions, localRegions), stepTimeout, func(ctx context.Context) (string, error) {
		st, err := mirrorStatus(ctx, m.Name)
		return st.Ratio() + " " + st.Health, err
	})
	m.remove(s, "dmsetup remove dhl-m")
	s.Expect("HAZARD reproduced (kernel core log, no dlogd): legs differ over the discarded region alone", "1 of 16 regions differ: 15", time.Minute, func(ctx context.Context) (string, error) {
		return compareByRegion(a.Dev, b.Dev, int(size), rbytes)
	})
	s.Expect("HAZARD reproduced: region 15 on leg A", "64 blocks: zeros (discarded)", time.Minute, func(ctx context.Context) (string, error) {
		return describeRegion(a.Dev, victim, rbytes)
	})
	s.Expect("HAZARD reproduced: region 15 on leg B", "64 blocks: the pre-discard data (the recovery's copy landed after the discard)", time.Minute, func(ctx context.Context) (string, error) {
		return describeRegion(b.Dev, victim, rbytes)
	})
}

// flushWithData sends the mirror a real REQ_PREFLUSH bio with data:
// dm-snapshot's persistent exception store commits each exception with
// area_io(REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA | REQ_SYNC), a chunk of
// metadata, to its COW device, here the mirror itself. With a chunk of
// one region the store's header is region 0, its first metadata area
// (the commit) region 1 and the first data chunk region 2, and a write of
// one whole chunk to the snapshot goes to the COW with no copy: exactly
// two writes reach the mirror, the data (region 2) and then the commit
// (region 1), each to a clean region. dm core strips the commit's
// PREFLUSH (an empty flush first, then the data requeued without it), so
// dm-raid1 marks it like any write: MARK_REGION=2. Had dm-raid1 seen the
// PREFLUSH, do_writes would have sent the commit to the legs unmarked
// (MARK_REGION=1). The block layer's bio trace shows both sides: the
// mirror receives PREFLUSH+FUA with data, the legs FUA data without
// PREFLUSH.
func (cr *clusterRun) flushWithData() {
	s := cr.s
	const chunk = clusterRegion // sectors
	const originSectors = 4 * chunk
	s.Do("load dm-snapshot", 30*time.Second, func(ctx context.Context) error { return loadModules("dm-snapshot") })
	origin, snap := "vmc-origin", "vmc-snap"
	for _, d := range []string{origin, snap} {
		s.Defer("remove "+d, stepTimeout, func(ctx context.Context) error {
			if ok, err := dmExists(ctx, d); err != nil || !ok {
				return err
			}
			return dmRemove(ctx, d)
		})
	}
	s.Do(fmt.Sprintf("origin: %s (zero target, %d sectors)", origin, originSectors), stepTimeout, func(ctx context.Context) error {
		return dmCreate(ctx, origin, fmt.Sprintf("0 %d zero", originSectors))
	})
	st := fmt.Sprintf("0 %d snapshot /dev/mapper/%s %s P %d", originSectors, origin, cr.mirror, chunk)
	s.Do("a persistent snapshot whose exception store (COW) is the mirror: "+st, stepTimeout, func(ctx context.Context) error {
		return dmCreate(ctx, snap, st)
	})
	// Let the kernel clear regions 0 and 1 (the store's header and zeroed
	// area, written at creation) so that each write below starts from a
	// clean region.
	time.Sleep(3 * time.Second)
	devs := s.Value("trace devices: the mirror, leg A, leg B (major,minor)", 10*time.Second, func(ctx context.Context) (string, error) {
		var out []string
		for _, d := range []string{cr.mirror, legADev, legBDev} {
			mm, err := devMajMin(d)
			if err != nil {
				return "", err
			}
			out = append(out, strings.Replace(mm, ":", ",", 1))
		}
		return strings.Join(out, " "), nil
	})
	var stop func() (string, error)
	s.Do("trace block_bio_queue (tracefs)", 10*time.Second, func(ctx context.Context) (err error) {
		stop, err = traceBios()
		return err
	})
	before := cr.requests()
	s.Do("one whole-chunk (256 KiB) O_DIRECT write to the snapshot: its data to the COW, then the store's commit with PREFLUSH+FUA", 30*time.Second, func(ctx context.Context) error {
		return writeDirect(ctx, "/dev/mapper/"+snap, 0, make([]byte, chunk*512), chunk*512)
	})
	d := RequestDelta(before, cr.requests())
	s.Logf("node 1: dlogd's requests for the snapshot write: %s", FormatCounts(d))
	trace, err := stop()
	if err != nil {
		s.Fail("read the bio trace", "the trace", "error", err.Error())
	}
	s.Check("the commit (PREFLUSH with data) was marked: one MARK_REGION for the data, one for the commit", "MARK_REGION=2", fmt.Sprintf("MARK_REGION=%d", d["MARK_REGION"]))
	commit := fmt.Sprintf("%d + %d", chunk, chunk) // chunk 1 of the COW, on every leg at the same sector
	for _, line := range strings.Split(trace, "\n") {
		if strings.Contains(line, " "+commit+" ") {
			s.Logf("node 1: trace: %s", strings.TrimSpace(line))
		}
	}
	s.Check("bio trace of the commit ("+commit+"): what the mirror received, what it sent each leg", "mirror: PREFLUSH+FUA with data; leg A: FUA, no PREFLUSH; leg B: FUA, no PREFLUSH",
		describeCommitTrace(trace, strings.Fields(devs), commit))
	s.Do("remove "+snap+" and "+origin, stepTimeout, func(ctx context.Context) error {
		if err := dmRemove(ctx, snap); err != nil {
			return err
		}
		return dmRemove(ctx, origin)
	})
}

// traceBios mounts tracefs if needed, clears the trace and enables the
// block_bio_queue event; stop disables it and returns the trace.
func traceBios() (stop func() (string, error), err error) {
	const dir = "/sys/kernel/tracing"
	if _, err := os.Stat(dir + "/trace"); err != nil {
		if err := unix.Mount("tracefs", dir, "tracefs", 0, ""); err != nil {
			return nil, fmt.Errorf("mount tracefs on %s: %w", dir, err)
		}
	}
	event := dir + "/events/block/block_bio_queue/enable"
	for _, w := range []struct{ file, val string }{{dir + "/trace", ""}, {event, "1"}, {dir + "/tracing_on", "1"}} {
		if err := os.WriteFile(w.file, []byte(w.val), 0); err != nil {
			return nil, err
		}
	}
	return func() (string, error) {
		if err := os.WriteFile(event, []byte("0"), 0); err != nil {
			return "", err
		}
		b, err := os.ReadFile(dir + "/trace")
		return string(b), err
	}, nil
}

// describeCommitTrace says which block_bio_queue events for the bio at
// "<sector> + <sectors>" each device got: devs are the mirror's, leg A's
// and leg B's "major,minor". An rwbs of "FWFS" is PREFLUSH, write, FUA,
// sync (blk_fill_rwbs); a leading F is the PREFLUSH.
func describeCommitTrace(trace string, devs []string, bio string) string {
	names := []string{"mirror", "leg A", "leg B"}
	got := make(map[string][]string)
	for _, line := range strings.Split(trace, "\n") {
		_, ev, ok := strings.Cut(line, "block_bio_queue: ")
		if !ok || !strings.Contains(ev, " "+bio+" ") {
			continue
		}
		f := strings.Fields(ev)
		if len(f) < 2 {
			continue
		}
		got[f[0]] = append(got[f[0]], f[1])
	}
	var parts []string
	for i, dev := range devs {
		rwbs := got[dev]
		var what string
		switch {
		case len(rwbs) == 0:
			what = "nothing"
		case len(rwbs) > 1:
			what = "several bios " + strings.Join(rwbs, ",")
		case i == 0 && strings.HasPrefix(rwbs[0], "FW") && strings.Contains(rwbs[0][2:], "F"):
			what = "PREFLUSH+FUA with data"
		case i > 0 && strings.HasPrefix(rwbs[0], "W") && strings.Contains(rwbs[0][1:], "F"):
			what = "FUA, no PREFLUSH"
		default:
			what = rwbs[0]
		}
		parts = append(parts, names[i]+": "+what)
	}
	return strings.Join(parts, "; ")
}
