//go:build linux

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// goldenDir is where the images go in /out; the host copies them to
// engine/testdata/kernel/ when asked (DLOG_VM_UPDATE_GOLDEN=1).
const goldenDir = outDir + "/golden"

// Every golden mirror uses zero-target legs (reads give zeros, writes are
// dropped): only the log matters, and the legs then cost no memory and no
// copying. Each image is taken from a fresh, zero-filled log device, so it
// is a pure function of what the kernel did. A write delay on leg B
// (dm-delay, 60 s) freezes the kernel mid-resync or mid-write: the mirror
// worker waits for leg B, and the log image cannot change until the delay
// device is reloaded, so those captures are deterministic too.
const freezeMS = 60000

// goldenRun is one activation of a golden mirror.
type goldenRun struct {
	e      *env
	log    *Loop
	name   string // dm name of the mirror
	target uint64 // sectors
	region uint64 // sectors
	mode   string // "", "nosync" or "sync"
	legA   *dmDev
	legB   *dmDev
	slow   *slowLeg // leg B's dm-delay, when there is one
	m      *dmDev
	table  string
	status string
}

func (g *goldenRun) regions() uint64 { return (g.target + g.region - 1) / g.region }

// activate creates the mirror (the kernel reads the log at resume).
func (g *goldenRun) activate(step string) {
	n, mode := 2, ""
	if g.mode != "" {
		n, mode = 3, " "+g.mode
	}
	tbl := fmt.Sprintf("0 %d mirror disk %d %s %d%s 2 %s 0 %s 0", g.target, n, g.log.Dev, g.region, mode, g.legA.Path, g.legB.Path)
	g.m = g.e.dm(step+": "+tbl, g.name, tbl)
	if sl := g.slow; sl != nil {
		// On a failure while leg B is frozen, thaw it before the mirror's
		// removal, which would otherwise wait out the delay.
		sl.undo = g.e.s.Defer("thaw leg B before removing the mirror", stepTimeout, func(ctx context.Context) error {
			return dmLoadResume(ctx, sl.d.Name, delayTable(sl.under, sl.sectors, 0))
		})
	}
	g.table = g.e.s.Value("dmsetup table", stepTimeout, table(g.name))
}

// snapshotStatus records the status line the sidecar will carry.
func (g *goldenRun) snapshotStatus(step, wantRatio string) {
	g.status = g.e.s.Value(step, stepTimeout, status(g.name))
	m, err := ParseMirrorStatus(g.status)
	if err != nil {
		g.e.s.Fail(step, "a mirror status line", g.status, err.Error())
	}
	g.e.s.Check(step+": in-sync ratio", wantRatio, m.Ratio())
}

func (g *goldenRun) remove(step string) { g.m.remove(g.e.s, step) }

// activateSynced activates the mirror and waits for its full resync.
func (g *goldenRun) activateSynced(step string) {
	g.activate(step)
	n := g.regions()
	g.e.s.MustExpect("full resync", fmt.Sprintf("%d/%d", n, n), syncTimeout, syncWait(g.name))
}

// captureRemoved records the status line (statusStep, in-sync ratio
// wantRatio), removes the mirror (the kernel's final flush of the log) and
// captures the image it leaves as name.
func (g *goldenRun) captureRemoved(statusStep, wantRatio, name, desc, wantRuns string) {
	g.snapshotStatus(statusStep, wantRatio)
	g.remove("remove (final flush)")
	g.capture(name, "after remove", desc, wantRuns)
}

// captureHeld puts leg B behind a 60 s write delay, re-activates the
// mirror with target and mode (activateStep), records its status
// (statusStep, in-sync ratio wantRatio) and captures the image as name
// while the resync waits for leg B; then it thaws leg B.
func (g *goldenRun) captureHeld(target uint64, mode, activateStep, statusStep, wantRatio, name, desc, wantRuns string) {
	slow := g.slowLegB(target, freezeMS)
	g.target, g.mode = target, mode
	g.activate(activateStep)
	g.snapshotStatus(statusStep, wantRatio)
	g.capture(name, "while active", desc, wantRuns)
	slow.thaw(g.e.s)
}

// capture reads the first buf_size bytes of the log device, stores them with
// their sidecar and checks them against the expected layout (docs/disk-format.md).
func (g *goldenRun) capture(name, captured, desc, wantRuns string) {
	s := g.e.s
	regions := g.regions()
	var img []byte
	s.Do("capture "+name, stepTimeout, func(ctx context.Context) error {
		var err error
		img, err = readLogImage(g.log, regions)
		return err
	})
	m, _ := ParseMirrorStatus(g.status)
	sum := sha256.Sum256(img)
	meta := vmharness.Golden{
		Name:             name,
		Table:            g.table,
		TargetSectors:    g.target,
		RegionSize:       g.region,
		RegionCount:      regions,
		LogicalBlockSize: g.log.BlockSize,
		BufSize:          len(img),
		Status:           g.status,
		SyncCount:        m.InSync,
		Description:      desc,
		Captured:         captured,
		Kernel:           kernelRelease(),
		SHA256:           hex.EncodeToString(sum[:]),
	}
	s.Do("store "+name+".img and .json", stepTimeout, func(ctx context.Context) error {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(goldenDir, name+".img"), img, 0o644); err != nil {
			return err
		}
		js, err := json.MarshalIndent(meta, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(goldenDir, name+".json"), append(js, '\n'), 0o644)
	})
	s.rec.AddGolden(meta)
	s.Check("buf_size of "+name, fmt.Sprint(LogBufSize(regions, g.log.BlockSize)), fmt.Sprint(len(img)))
	s.Check("image of "+name, WantLogImage(regions, wantRuns), DescribeLogImage(img))
}

func kernelRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// newGolden sets up a fresh log device and zero legs big enough for maxTarget.
func newGolden(s *S, tag string, lbs int, maxTarget, region uint64) *goldenRun {
	e := newEnv(s, tag)
	g := &goldenRun{e: e, name: tag, region: region}
	g.log = e.loop("the disk log", 1*mib, lbs)
	g.legA = e.zero(tag+"-a", maxTarget)
	g.legB = e.zero(tag+"-b", maxTarget)
	return g
}

// slowLeg is a dm-delay device put in front of leg B.
type slowLeg struct {
	d       *dmDev
	under   string // the device it delays
	sectors uint64
	undo    func() // cancels the failure-path thaw
}

// slowLegB puts leg B behind dm-delay holding its writes for ms.
func (g *goldenRun) slowLegB(sectors uint64, ms int) *slowLeg {
	sl := &slowLeg{under: g.legB.Path, sectors: sectors, undo: func() {}}
	sl.d = g.e.dm(fmt.Sprintf("leg B behind dm-delay (writes held %d ms)", ms), g.name+"-slowb", delayTable(sl.under, sectors, ms))
	g.legB, g.slow = sl.d, sl
	return sl
}

// set reloads the delay; reloading dm-delay also releases what it holds.
func (sl *slowLeg) set(s *S, step string, ms int) {
	s.Do(step, stepTimeout, func(ctx context.Context) error {
		return dmLoadResume(ctx, sl.d.Name, delayTable(sl.under, sl.sectors, ms))
	})
}

func (sl *slowLeg) thaw(s *S) {
	sl.set(s, "thaw leg B (reload dm-delay with no delay)", 0)
	sl.undo()
}

func scenKgolden(s *S) {
	const rs = regionSize
	runs := func(parts ...string) string { return strings.Join(parts, " ") }

	// One activation, one capture after remove: a default-mode mirror
	// after its full resync, or a nosync one at once.
	for _, c := range []struct {
		part, dev      string // the part and its capture; the mirror's dm name
		lbs            int    // the log device's logical block size
		sectors        uint64 // the target, and the legs
		mode, activate string
		step, ratio    string // the status step and its in-sync ratio
		desc           string
		runs           []string
	}{
		{"synced-128", "gsync", 512, 131072, "", "activate", "status before remove", "128/128",
			"64 MiB target, 512 KiB regions (128), default sync mode, fresh zeroed log device: full resync, then dmsetup remove. Every region clean; header nr_regions=128.",
			[]string{"[0,128)=1", "[128,4096)=0"}},
		{"nosync-100", "gnosync", 512, 102400, "nosync", "activate with nosync", "status at once (nosync: no resync)", "100/100",
			"50 MiB target, 512 KiB regions (100, not a multiple of 64), 'nosync' on a fresh zeroed log device: all 100 regions clean at once, bits 100..127 of the 128-bit bitset clear.",
			[]string{"[0,100)=1", "[100,4096)=0"}},
		{"lbs4096-128", "g4k", 4096, 131072, "", "activate on a 4096-byte-sector log device", "status before remove", "128/128",
			"As synced-128, but the log device has 4096-byte logical blocks (loop, LOOP_CONFIGURE block_size=4096): buf_size is rounded up to 4096, and the kernel writes all of it.",
			[]string{"[0,128)=1", "[128,24576)=0"}},
	} {
		s.Part(c.part, func(p *S) {
			g := newGolden(p, c.dev, c.lbs, c.sectors, rs)
			g.target, g.mode = c.sectors, c.mode
			if c.mode == "nosync" {
				g.activate(c.activate)
			} else {
				g.activateSynced(c.activate)
			}
			g.captureRemoved(c.step, c.ratio, c.part, c.desc, runs(c.runs...))
		})
	}

	// A fully synced 128-region log, removed, re-activated with leg B's
	// writes held: captured while the resync waits, then let finish.
	for _, c := range []struct {
		part, dev      string // the part and its capture; the mirror's dm name
		first          string // the first activation's step
		target         uint64 // the re-activation's target, and the legs
		mode, activate string
		step, ratio    string // the held status step and its in-sync ratio
		desc           string
		runs           []string
		resync         string // the step waiting for the resync after the thaw
	}{
		{"grow-128-to-256-resyncing", "ggrow", "activate with 128 regions", 262144, "", "re-activate with twice the target (256 regions)",
			"status with the resync of the new regions held", "128/256",
			"A 128-region log (512 KiB regions, fully synced, removed) re-activated with a 256-region target (128 MiB), default mode: the kernel keeps the 128 clean bits, marks the new regions 128..255 out of sync and rewrites the header (nr_regions=256). Captured while the resync of region 128 was held by a 60 s write delay on leg B, so no new region is clean yet.",
			[]string{"[0,128)=1", "[128,4096)=0"}, "resync of the new regions"},
		{"forcesync-128-resyncing", "gforce", "activate", 131072, "sync", "re-activate with 'sync' (forced full resync)",
			"status with the forced resync held", "0/128",
			"A fully synced 128-region log re-activated with 'sync': the kernel ignores the on-disk bits, marks every region out of sync and rewrites the log. Captured while the resync was held by a 60 s write delay on leg B.",
			[]string{"[0,4096)=0"}, "forced resync"},
	} {
		s.Part(c.part, func(p *S) {
			g := newGolden(p, c.dev, 512, c.target, rs)
			g.target = 131072
			g.activateSynced(c.first)
			g.remove("remove")
			g.captureHeld(c.target, c.mode, c.activate, c.step, c.ratio, c.part, c.desc, runs(c.runs...))
			n := g.regions()
			p.MustExpect(c.resync, fmt.Sprintf("%d/%d", n, n), syncTimeout, syncWait(g.name))
			g.remove("remove")
		})
	}

	s.Part("shrink-256-to-100", func(p *S) {
		g := newGolden(p, "gshrink", 512, 65536, 256)
		g.target, g.mode = 65536, "nosync"
		g.activate("activate with 256 regions (128 KiB), nosync")
		p.Expect("in sync at once", "256/256", stepTimeout, ratio(g.name))
		g.remove("remove")
		g.target, g.mode = 25600, ""
		g.activate("re-activate with 100 regions, default mode")
		g.captureRemoved("status at once (the on-disk log is trusted)", "100/100", "shrink-256-to-100",
			"A 256-region log (128 KiB regions, nosync: all clean) re-activated with a 100-region target (12.5 MiB), default mode. The kernel clears bits 100..127 (its bitset is now 128 bits) and rewrites nr_regions=100, but bytes 1040..1055 (bits 128..255) are outside its bitset and keep the stale 1s it read: the whole buf_size is written back as read.",
			runs("[0,100)=1", "[100,128)=0", "[128,256)=1", "[256,4096)=0"))
	})

	// A shrink whose 32-bit and 64-bit word boundaries differ: 70 regions
	// end a 32-bit word at 96 and a 64-bit word at 128. Since Linux 5.19
	// ("dm mirror log: clear log bits up to BITS_PER_LONG boundary", also
	// in the stable trees) the kernel clears up to BITS_PER_LONG, so bits
	// 70..127 come back clear; a kernel clearing to 32 bits would keep
	// 96..127 set.
	s.Part("shrink-256-to-70", func(p *S) {
		g := newGolden(p, "gshrink70", 512, 65536, 256)
		g.target, g.mode = 65536, "nosync"
		g.activate("activate with 256 regions (128 KiB), nosync")
		g.captureRemoved("in sync at once", "256/256", "nosync-256",
			"256 regions of 128 KiB (32 MiB target), nosync, fresh log device: every bit set. The starting point of shrink-256-to-70.",
			runs("[0,256)=1", "[256,4096)=0"))
		g.target, g.mode = 70*256, ""
		g.activate("re-activate with 70 regions, default mode")
		g.captureRemoved("status at once (the on-disk log is trusted)", "70/70", "shrink-256-to-70",
			"nosync-256 re-activated with a 70-region target (8960 KiB), default mode. The kernel clears bits 70..127, up to its BITS_PER_LONG word boundary (a 32-bit boundary would stop at 96), and rewrites nr_regions=70; bits 128..255, outside its 128-bit bitset, keep the stale 1s it read.",
			runs("[0,70)=1", "[70,128)=0", "[128,256)=1", "[256,4096)=0"))
	})

	s.Part("large-65536", func(p *S) {
		const small, big = 65536 * 16, 100000 * 16 // sectors, 8 KiB regions
		g := newGolden(p, "glarge", 512, big, 16)
		g.target, g.mode = small, "nosync"
		g.activate("activate with 65536 regions (8 KiB), nosync")
		g.captureRemoved("status at once", "65536/65536", "large-nosync-65536",
			"512 MiB target, 8 KiB regions: 65536 regions, nosync, fresh log device. The bitmap is 8 KiB, so buf_size is 9216 bytes (18 sectors, three 4 KiB pages); every bit set.",
			runs("[0,65536)=1"))
		g.captureHeld(big, "", "re-activate with 100000 regions, default mode",
			"status with the resync of the new regions held", "65536/100000", "large-grow-65536-to-100000-resyncing",
			"large-nosync-65536 re-activated with 100000 regions (800000 KiB target, 8 KiB regions), default mode: bits 0..65535 kept, 65536..99999 out of sync, tail bits up to 100032 clear; bitset 12504 bytes, buf_size 13824 (27 sectors). Captured while the resync was held by a 60 s write delay on leg B.",
			runs("[0,65536)=1", "[65536,102400)=0"))
		g.remove("remove (stops the resync)")
	})

	s.Part("inflight-write-128", func(p *S) {
		g := newGolden(p, "gwrite", 512, 131072, rs)
		slow := g.slowLegB(131072, 0) // no delay until the resync is done
		g.target = 131072
		g.activateSynced("activate")
		slow.set(p, "hold leg B's writes for 60 s", freezeMS)
		done := make(chan error, 1)
		go func() { // blocks until leg B is thawed
			done <- writeDirect(context.Background(), g.m.Path, 5*regionBytes, pattern(4, 4096), 4096)
		}()
		p.Expect("region 5 marked dirty on disk before the write reaches the legs", "0", 10*time.Second, func(ctx context.Context) (string, error) {
			for {
				img, err := readLogImage(g.log, 128)
				if err != nil {
					return "", err
				}
				if img[bitmapOffset]&(1<<5) == 0 {
					return "0", nil
				}
				select {
				case <-ctx.Done():
					return "1", nil
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
		g.snapshotStatus("status with the write in flight", "128/128")
		g.capture("inflight-write-128", "while active",
			"A synced 128-region log with one 4 KiB O_DIRECT write to region 5 in flight (held by a 60 s write delay on leg B): the kernel has cleared region 5's clean bit and flushed the log before issuing the write to the legs. This is what a crash at that moment leaves on disk.",
			runs("[0,5)=1", "[5,6)=0", "[6,128)=1", "[128,4096)=0"))
		slow.thaw(p)
		p.Do("the held write completes once leg B is thawed", stepTimeout, func(ctx context.Context) error {
			select {
			case err := <-done:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		g.remove("remove (final flush)")
		p.Expect("region 5 clean again on disk after remove", WantLogImage(128, runs("[0,128)=1", "[128,4096)=0")), stepTimeout, func(ctx context.Context) (string, error) {
			img, err := readLogImage(g.log, 128)
			return DescribeLogImage(img), err
		})
	})
}
