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
//  1. node 1 writes a pattern over region 0 of leg A (the recovery's
//     source) before any mirror exists; leg B holds zeros there.
//  2. node 2 alone creates the mirror (a fresh log: every region out of
//     sync) over leg A and a dm-delay device on leg B that holds writes
//     to region 0 for minutes. Its recovery of region 0 reads the pattern
//     from leg A; kcopyd's write of it to leg B is held (dm-delay's
//     status counts it).
//  3. node 1 creates its mirror (it joins the log's group) and discards
//     region 0 through it: the discard completes at once, reaches both
//     legs (their discard counters), and dlogd saw no MARK_REGION and no
//     IS_REMOTE_RECOVERING for it. A 4 KiB write to region 0 after it, the
//     control, is held by IS_REMOTE_RECOVERING as it must be.
//  4. node 2 releases the held write (suspending the dm-delay device
//     flushes it): the pattern lands on leg B after the discard.
//  5. both nodes reach full sync, the mirror is removed, and the legs
//     differ over region 0 alone: leg A reads the discard's zeros, leg B
//     the discarded data, in a region the log reports in sync.
//
// Then node 1 checks the PREFLUSH side on the synced mirror: a FUA data
// write (O_DIRECT|O_DSYNC) to a region never written is marked before it
// is acknowledged (MARK_REGION and FLUSH in dlogd's request counters),
// an empty flush (fsync of the mirror) reaches both legs and asks the log
// for no mark; and the operator's mitigation: discard_max_bytes 0 on the
// mirror makes a discard fail with EOPNOTSUPP.
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
	const hazardRegion = 0
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
		t := heldWriteTable(regionOff/512, regionBytes/512)
		s.Defer("remove "+delayDev, stepTimeout, func(ctx context.Context) error {
			if ok, err := dmExists(ctx, delayDev); err != nil || !ok {
				return err
			}
			return dmRemove(ctx, delayDev)
		})
		s.Do("dm-delay on leg B holding writes to region 0: "+strings.ReplaceAll(t, "\n", "; "), time.Minute, func(ctx context.Context) error {
			return dmCreate(ctx, delayDev, t)
		})
		mt, err := tableForLegs(cr.uuid, cr.c.logType, "", legADev, "/dev/mapper/"+delayDev)
		if err != nil {
			s.Fail("log device number", "maj:min of "+clogDev, "error", err.Error())
		}
		cr.createTable(mt)
		s.Value("node 2's recovery of region 0 read leg A and its write to leg B is held (dm-delay status: held reads, writes, flushes)", 3*time.Minute, func(ctx context.Context) (string, error) {
			return waitHeldWrite(ctx, delayDev, 0)
		})
		s.Value("node 2's mirror while the write is held", 10*time.Second, func(ctx context.Context) (string, error) {
			m, err := mirrorStatus(ctx, cr.name)
			return m.Ratio(), err
		})
		s.Do("publish: recovery write held", 10*time.Second, func(ctx context.Context) error { return cr.mb.phase(3) })
		s.Do("wait for node 1's discard", 5*time.Minute, func(ctx context.Context) error { return cr.mb.wait(ctx, []int{1}, 4) })
		s.Do("release the held recovery write after the discard (a table load and resume suspends the dm-delay device, which flushes it)", time.Minute, func(ctx context.Context) error {
			return dmLoadResume(ctx, delayDev, fmt.Sprintf("0 %d linear %s 0", clLegBytes/512, legBDev))
		})
	} else {
		s.Do("wait until node 2's recovery write of region 0 is held", 5*time.Minute, func(ctx context.Context) error { return cr.mb.wait(ctx, []int{2}, 3) })
		cr.create()
		s.Value("node 1's mirror after joining (region 0 recovering on node 2)", 10*time.Second, func(ctx context.Context) (string, error) {
			m, err := mirrorStatus(ctx, cr.name)
			return m.Ratio(), err
		})
		ctl := cr.discardRace(regionOff, regionBytes)
		s.Do("publish: discarded", 10*time.Second, func(ctx context.Context) error { return cr.mb.phase(4) })
		cr.await("the control write completes once node 2's recovery of region 0 ends", 3*time.Minute, ctl)
	}
	cr.waitFullSync("in sync after the recovery of region 0", true)
	cr.healthy("status after the recovery")
	if cr.c.node == 1 {
		s.Value("region 0 through the mirror on node 1 (reads go to the default leg, A)", time.Minute, func(ctx context.Context) (string, error) {
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
	s.Expect("HAZARD reproduced (kernel, not dlogd): legs differ over the discarded region alone", "1 of 192 regions differ: 0", 2*time.Minute, func(ctx context.Context) (string, error) {
		return compareLegs()
	})
	s.Expect("HAZARD reproduced: region 0 on leg A", "block 1: the control write; 63 blocks: zeros (discarded)", time.Minute, func(ctx context.Context) (string, error) {
		return describeRegion(legADev, regionOff, regionBytes)
	})
	s.Expect("HAZARD reproduced: region 0 on leg B", "block 1: the control write; 63 blocks: the pre-discard data (the recovery's copy landed after the discard)", time.Minute, func(ctx context.Context) (string, error) {
		return describeRegion(legBDev, regionOff, regionBytes)
	})
}

// discardRace is node 1's part while node 2's recovery write of region 0
// is held: the discard of the region through the mirror, what dlogd and
// the legs saw of it, and the control write (started here, returned as
// its outcome).
func (cr *clusterRun) discardRace(off, length int64) <-chan error {
	s := cr.s
	before := cr.requests()
	legsBefore := discardCounts()
	start := time.Now()
	s.Do(fmt.Sprintf("BLKDISCARD of region 0 (%d bytes at %d) through node 1's mirror while node 2 recovers it", length, off), 30*time.Second, func(ctx context.Context) error {
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
	s.Expect("control: a 4 KiB write to region 0 is held while node 2 recovers it (not acknowledged within 5 s)", "held", 10*time.Second, func(ctx context.Context) (string, error) {
		select {
		case err := <-ctl:
			ctl <- err
			return fmt.Sprintf("acknowledged (err %v)", err), nil
		case <-time.After(5 * time.Second):
			return "held", nil
		}
	})
	d = RequestDelta(afterDiscard, cr.requests())
	s.Logf("node 1: dlogd's requests while the control write is held: %s", FormatCounts(d))
	s.Check("control: the kernel asked IS_REMOTE_RECOVERING for it", "yes", yesNo(d["IS_REMOTE_RECOVERING"] > 0, FormatCounts(d)))
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
		f, err := os.OpenFile(cr.mirror, os.O_WRONLY|unix.O_DIRECT|unix.O_DSYNC, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		buf, free, err := alignedBuf(clusterBlock)
		if err != nil {
			return err
		}
		defer free()
		copy(buf, controlBlock(fresh))
		_, err = f.WriteAt(buf, fresh)
		return err
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

// heldWriteTable is leg B with writes to sectors [start, start+n) held by
// dm-delay for 5 minutes (reads and flushes not delayed) and the rest
// linear. dmsetup's --table takes two lines.
func heldWriteTable(start, n int64) string {
	total := int64(clLegBytes / 512)
	if start != 0 {
		panic("heldWriteTable: the held range must start the device")
	}
	return fmt.Sprintf("0 %d delay %s 0 0 %s 0 300000 %s 0 0\n%d %d linear %s %d",
		n, legBDev, legBDev, legBDev, n, total-n, legBDev, n)
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

// preDiscardRegion is the data node 1 puts in region 0 of leg A before
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
