//go:build linux

package main

import (
	"context"
	"fmt"
	"time"
)

// The reference mirror of kcore and kdisk: two 64 MiB loop legs, 512 KiB
// regions, so 128 regions (docs/vm.md §3 scenarios a and b).
const (
	legBytes    = 64 << 20
	legSectors  = legBytes / 512
	regionSize  = 1024 // sectors
	regionBytes = regionSize * 512
	nRegions    = legSectors / regionSize
	mib         = 1 << 20
)

func scenKcore(s *S) { kernelMirror(s, "core") }
func scenKdisk(s *S) { kernelMirror(s, "disk") }

// kernelMirror runs the same workload over the kernel's core or disk log
// and checks the exact status and table strings (docs/protocol.md §5).
func kernelMirror(s *S, logType string) {
	e := newEnv(s, "k"+logType)
	a := e.loop("leg A", legBytes, 512)
	b := e.loop("leg B", legBytes, 512)
	var logDev *Loop
	var logArgs, logTable, logStatus string
	switch logType {
	case "core":
		logArgs, logTable, logStatus = "core 1 1024", "core 1 1024", "1 core"
	case "disk":
		logDev = e.loop("the disk log", 1*mib, 512)
		logArgs = "disk 2 " + logDev.Dev + " 1024"
		logTable = "disk 2 " + logDev.MajMin() + " 1024"
		logStatus = "3 disk " + logDev.MajMin() + " A"
	}
	name := "m" + logType
	tbl := fmt.Sprintf("0 %d mirror %s 2 %s 0 %s 0", legSectors, logArgs, a.Dev, b.Dev)
	wantTable := fmt.Sprintf("0 %d mirror %s 2 %s 0 %s 0", legSectors, logTable, a.MajMin(), b.MajMin())
	wantStatus := fmt.Sprintf("0 %d mirror 2 %s %s %d/%d 1 AA %s", legSectors, a.MajMin(), b.MajMin(), nRegions, nRegions, logStatus)
	full := fmt.Sprintf("%d/%d", nRegions, nRegions)

	m := e.dm("create: "+tbl, name, tbl)
	s.Expect("dmsetup table", wantTable, stepTimeout, table(name))
	s.MustExpect("full resync", full, syncTimeout, syncWait(name))
	s.Expect("dmsetup status", wantStatus, stepTimeout, status(name))

	// 8 MiB in 1 MiB writes, then 1 MiB in 4 KiB writes: both through the
	// mirror with O_DIRECT, then both legs and the mirror read back.
	data := pattern(1, 9*mib)
	s.Do("write 8 MiB, O_DIRECT, 1 MiB blocks", time.Minute, func(ctx context.Context) error {
		return writeDirect(ctx, m.Path, 0, data[:8*mib], mib)
	})
	s.Do("write 1 MiB, O_DIRECT, 4 KiB blocks", 2*time.Minute, func(ctx context.Context) error {
		return writeDirect(ctx, m.Path, 8*mib, data[8*mib:], 4096)
	})
	sum := md5hex(data)
	s.Expect("md5 of 9 MiB read back through the mirror", sum, time.Minute, md5Of(m.Path, 0, len(data)))
	s.Expect("md5 of 9 MiB of leg A", sum, time.Minute, md5Of(a.Dev, 0, len(data)))
	s.Expect("md5 of 9 MiB of leg B", sum, time.Minute, md5Of(b.Dev, 0, len(data)))

	s.Do("suspend", stepTimeout, func(ctx context.Context) error { _, err := dmsetup(ctx, "suspend", name); return err })
	s.Expect("state after suspend", "SUSPENDED", stepTimeout, state(name))
	s.Do("resume", stepTimeout, func(ctx context.Context) error { _, err := dmsetup(ctx, "resume", name); return err })
	s.Expect("state after resume", "ACTIVE", stepTimeout, state(name))
	s.Expect("status after resume (still in sync)", wantStatus, stepTimeout, status(name))
	more := pattern(2, mib)
	s.Do("write 1 MiB after resume, O_DIRECT", time.Minute, func(ctx context.Context) error {
		return writeDirect(ctx, m.Path, 9*mib, more, mib)
	})
	all := append(append([]byte(nil), data...), more...)
	sumAll := md5hex(all)
	s.Expect("md5 of 10 MiB of leg A", sumAll, time.Minute, md5Of(a.Dev, 0, len(all)))
	s.Expect("md5 of 10 MiB of leg B", sumAll, time.Minute, md5Of(b.Dev, 0, len(all)))

	m.remove(s, "remove")
	s.Expect("device gone after remove", "false", stepTimeout, func(ctx context.Context) (string, error) {
		ok, err := dmExists(ctx, name)
		return fmt.Sprint(ok), err
	})
	if logType != "disk" {
		return
	}

	// The disk log survives deactivation: the final flush left every region
	// clean, and a new activation trusts it.
	cleanImage := WantLogImage(nRegions, fmt.Sprintf("[0,%d)=1 [%d,4096)=0", nRegions, nRegions))
	s.Expect("on-disk log after remove", cleanImage, stepTimeout, func(ctx context.Context) (string, error) {
		img, err := readLogImage(logDev, nRegions)
		return DescribeLogImage(img), err
	})
	m = e.dm("re-activate with the same table", name, tbl)
	s.Expect("in sync at once after re-activation (no resync of clean regions)", full, stepTimeout, ratio(name))
	s.Expect("status after re-activation", wantStatus, stepTimeout, status(name))
	s.Expect("md5 of 10 MiB through the re-activated mirror", sumAll, time.Minute, md5Of(m.Path, 0, len(all)))
	m.remove(s, "remove after re-activation")

	// Partial resync: dirty regions 10-12 on disk behind the kernel's back,
	// corrupt leg B in region 10 (dirty: the resync must repair it) and in
	// region 20 (clean on disk: the kernel must trust the log and leave it),
	// and slow leg B's writes so "125/128" is observable before the resync.
	dirty := []int{10, 11, 12}
	s.Do("mark regions 10-12 dirty in the on-disk log", stepTimeout, func(ctx context.Context) error {
		img, err := readLogImage(logDev, nRegions)
		if err != nil {
			return err
		}
		for _, r := range dirty {
			img[bitmapOffset+r/8] &^= 1 << (r % 8)
		}
		return writeDirect(ctx, logDev.Dev, 0, img, len(img))
	})
	junk := pattern(3, 4096)
	s.Do("corrupt leg B in dirty region 10 and clean region 20", stepTimeout, func(ctx context.Context) error {
		if err := writeDirect(ctx, b.Dev, 10*regionBytes, junk, 4096); err != nil {
			return err
		}
		return writeDirect(ctx, b.Dev, 20*regionBytes, junk, 4096)
	})
	d := e.dm("delay leg B's writes by 500 ms (dm-delay)", name+"-slowb", delayTable(b.Dev, legSectors, 500))
	tbl3 := fmt.Sprintf("0 %d mirror %s 2 %s 0 %s 0", legSectors, logArgs, a.Dev, d.Path)
	m = e.dm("activate with 3 dirty regions on disk", name, tbl3)
	s.Expect("only the 3 dirty regions are out of sync", fmt.Sprintf("%d/%d", nRegions-len(dirty), nRegions), stepTimeout, ratio(name))
	s.MustExpect("resync of the dirty regions", full, syncTimeout, syncWait(name))
	s.Expect("status after the partial resync", fmt.Sprintf("0 %d mirror 2 %s %s %s 1 AA %s", legSectors, a.MajMin(), d.MajMin, full, logStatus), stepTimeout, status(name))
	m.remove(s, "remove after the partial resync")
	d.remove(s, "remove the delay device")
	wantA := s.Value("md5 of region 10 on leg A", stepTimeout, md5Of(a.Dev, 10*regionBytes, regionBytes))
	s.Expect("region 10 (dirty) on leg B was resynced from leg A", wantA, stepTimeout, md5Of(b.Dev, 10*regionBytes, regionBytes))
	s.Expect("region 20 (clean on disk) on leg B was left alone", "differs from leg A", stepTimeout, func(ctx context.Context) (string, error) {
		ma, err := md5Direct(a.Dev, 20*regionBytes, regionBytes)
		if err != nil {
			return "", err
		}
		mb, err := md5Direct(b.Dev, 20*regionBytes, regionBytes)
		if err != nil {
			return "", err
		}
		if ma == mb {
			return "equals leg A", nil
		}
		return "differs from leg A", nil
	})
}
