//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// demo (make demo) tells a new user, in plain sentences on the console,
// what it does and what that proves: dlogd serves the dirty log of a real
// kernel mirror. Every claim is also a step, so a failure is caught and
// reported as such. Lines for the user start with DemoPrefix; the host
// shows only those.

// DemoPrefix marks the narration on the console.
const DemoPrefix = "demo| "

// ProvedPrefix marks one proved claim, collected by the host for its summary.
const ProvedPrefix = "PROVED: "

func say(format string, args ...any) {
	fmt.Fprintf(os.Stdout, DemoPrefix+format+"\n", args...)
}

func scenDemo(s *S) {
	proved := func(claim string) { say(ProvedPrefix + claim) }
	say("The kernel %s is up; dm-mirror and dm-log-userspace are loaded (%.1f s after power-on).", kernelRelease(), uptime())

	d := startDlogd(s)
	say("dlogd is running (pid %d) and listens on the kernel's netlink connector, group 7, where cmirrord would.", d.Pid())

	e := newEnv(s, "demo")
	a := e.loop("leg A", legBytes, 512)
	braw := e.loop("leg B", legBytes, 512)
	logDev := e.loop("the log device", 1*mib, 512)
	// Leg B goes through dm-delay (no delay for now) so that a write can be
	// held in flight later, to show the log while it is.
	bdev := e.dm("leg B through dm-delay (no delay yet)", "demo-legb", delayTable(braw.Dev, legSectors, 0))
	m := &mirrorDev{spec: logSpec{Type: "clustered-disk"}, name: "demo", uuid: "dlog-demo", sectors: legSectors, region: regionSize,
		legs: []string{a.Dev, bdev.Path}, legMM: []string{a.MajMin(), bdev.MajMin}, logPath: logDev.Dev, logMM: logDev.MajMin()}
	say("Two 64 MiB loop devices will be the mirror's legs (%s and %s); a 1 MiB one (%s, %s) holds the dirty log.", a.Dev, braw.Dev, logDev.Dev, logDev.MajMin())
	say("Creating the mirror with dmsetup. Its table names a userspace log:")
	say("    %s", m.Table())
	say("so the kernel sends every dirty-log call (mark, clear, flush, in_sync, resync hand-out...) to dlogd, which keeps the log on %s in the kernel's own disk-log format.", logDev.MajMin())
	m.create(e, "create the mirror")

	// Resync, with progress.
	say("The legs start out different as far as the kernel knows, so it copies leg A to leg B region by region, asking dlogd for each one:")
	var resync time.Duration
	s.Do("full resync, with progress", syncTimeout, func(ctx context.Context) error {
		t0 := time.Now()
		last := ""
		lastPrint := time.Time{}
		for {
			line, err := dmStatusFast(m.name)
			if err != nil {
				return err
			}
			st, err := ParseMirrorStatus(line)
			if err != nil {
				return err
			}
			if r := st.Ratio(); r != last && (time.Since(lastPrint) > 400*time.Millisecond || st.InSync == st.Regions) {
				say("    resync: %s regions in sync (%3.0f%%)", r, 100*float64(st.InSync)/float64(st.Regions))
				last, lastPrint = r, time.Now()
			}
			if st.InSync == st.Regions {
				resync = time.Since(t0)
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	say("In sync after %.1f s.", resync.Seconds())
	showStatus(s, d, m, "after the resync")
	proved("a kernel dm-mirror created with a userspace dirty log served by dlogd resynced fully (128/128 regions)")

	// Writes.
	data := pattern(2026, 16*mib)
	var w1, w4 time.Duration
	w1 = timed(func() {
		s.Do("write 15 MiB in 1 MiB O_DIRECT writes", time.Minute, func(ctx context.Context) error {
			return writeDirect(ctx, m.dev.Path, 0, data[:15*mib], mib)
		})
	})
	before := s.dumpValue(d, m.uuid, "dlogd's request counters before the 4 KiB writes")
	w4 = timed(func() {
		s.Do("write 1 MiB in 4 KiB O_DIRECT writes", 2*time.Minute, func(ctx context.Context) error {
			return writeDirect(ctx, m.dev.Path, 15*mib, data[15*mib:], 4096)
		})
	})
	after := s.dumpValue(d, m.uuid, "dlogd's request counters after the 4 KiB writes")
	delta := RequestDelta(before[0].Requests, after[0].Requests)
	var n uint64
	for _, v := range delta {
		n += v
	}
	say("Wrote 16 MiB of random data through the mirror with O_DIRECT: 15 MiB in 1 MiB writes (%.2f s), then 1 MiB in 256 writes of 4 KiB (%.2f s).", w1.Seconds(), w4.Seconds())
	say("For those 256 small writes the kernel asked dlogd %d times (%.1f per write): %s.", n, float64(n)/256, FormatCounts(delta))

	// A write held in flight: the log says dirty before the data lands.
	say("Now a write that cannot finish: leg B is made to hold its writes for 60 s, and 4 KiB go to region 100.")
	s.Do("hold leg B's writes", stepTimeout, func(ctx context.Context) error {
		return dmLoadResume(ctx, bdev.Name, delayTable(braw.Dev, legSectors, freezeMS))
	})
	release := s.Defer("release leg B", stepTimeout, func(ctx context.Context) error {
		return dmLoadResume(ctx, bdev.Name, delayTable(braw.Dev, legSectors, 0))
	})
	held := pattern(100, 4096)
	w := startWriter(m.dev.Path, 100*regionBytes, held, 4096)
	s.Expect("region 100 is dirty in the on-disk log while the write is in flight", "0", 20*time.Second, func(ctx context.Context) (string, error) {
		for {
			img, err := readLogImage(logDev, nRegions)
			if err != nil {
				return "", err
			}
			if img[bitmapOffset+100/8]&(1<<(100%8)) == 0 {
				return "0", nil
			}
			if ctx.Err() != nil {
				return "1", nil
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	img, _ := readLogImage(logDev, nRegions)
	say("While it is in flight, the bitmap on %s reads: %s", logDev.MajMin(), strings.TrimPrefix(DescribeLogImage(img), "magic=0x4d695272 version=2 nr_regions=128 pad=zero "))
	say("  (1 = clean, 0 = dirty: region 100 was marked and flushed to disk before the data write was issued).")
	showStatus(s, d, m, "with the write in flight")
	s.Do("release leg B: the held write completes", stepTimeout, func(ctx context.Context) error {
		if err := dmLoadResume(ctx, bdev.Name, delayTable(braw.Dev, legSectors, 0)); err != nil {
			return err
		}
		release()
		return w.Wait(ctx)
	})
	say("Leg B released: the write completed, and dlogd cleared the region again once the kernel said so.")
	proved("dlogd marked the region dirty on disk, in the kernel's disk-log format, before the kernel wrote the data (a crash then would resync it)")

	// Kill -9, a write that waits, and a restart.
	say("Killing dlogd with SIGKILL while the mirror is live, and writing 1 MiB to the mirror with no daemon running.")
	marker := kmsgMark("demo kill")
	s.Do("kill -9 dlogd", stepTimeout, func(ctx context.Context) error { return d.Kill9() })
	more := pattern(7, mib)
	w2 := startWriter(m.dev.Path, 16*mib, more, 4096)
	time.Sleep(2 * time.Second)
	s.Check("the write waits while no daemon runs", "0 writes done", fmt.Sprintf("%d writes done", w2.blocks.Load()))
	say("Two seconds later none of its 256 writes has completed: the kernel holds them until a log server answers.")
	s.Do("start dlogd again", stepTimeout, func(ctx context.Context) error { return d.Start(ctx, 10*time.Second) })
	t0 := time.Now()
	s.Do("the waiting writes complete", time.Minute, w2.Wait)
	line := s.Value("the kernel reconnected to the new dlogd", 30*time.Second, func(ctx context.Context) (string, error) {
		return waitDmesg(ctx, marker, "Reconnected to userspace log server")
	})
	if i := strings.Index(line, "]"); i >= 0 {
		line = strings.TrimSpace(line[i+1:])
	}
	say("Started a new dlogd: the kernel reconnected (it logged %q) and the writes completed %.1f s later.", line, time.Since(t0).Seconds())
	proved("after a kill -9, the kernel reconnected to a new dlogd and the waiting I/O completed (cmirrord hangs here with clustered-disk)")

	// Verify the legs.
	all := append(append([]byte(nil), data...), more...)
	sum := md5hex(all)
	okM := s.Expect("md5 through the mirror", sum, time.Minute, md5Of(m.dev.Path, 0, len(all)))
	okA := s.Expect("md5 of leg A", sum, time.Minute, md5Of(a.Dev, 0, len(all)))
	okB := s.Expect("md5 of leg B", sum, time.Minute, md5Of(braw.Dev, 0, len(all)))
	okH := s.Expect("held write on leg B", md5hex(held), stepTimeout, md5Of(braw.Dev, 100*regionBytes, len(held)))
	if !(okM && okA && okB && okH) {
		s.Value("4 KiB blocks where leg B differs from leg A (first 17 MiB)", time.Minute, func(ctx context.Context) (string, error) {
			return diffBlocks(a.Dev, braw.Dev, len(all), 4096)
		})
		s.Fail("legs verified", "both legs equal to the data written", "they differ", "see the steps above")
	}
	say("Both legs read back directly, bypassing the mirror, have md5 %s: the same as the 17 MiB written.", sum)
	proved("both legs of the mirror hold exactly the data written (md5 of each leg read directly)")
	showStatus(s, d, m, "at the end")

	// Remove, and the log on disk.
	m.dev.remove(s, "remove the mirror")
	s.Expect("the log after remove: every region clean", WantLogImage(128, "[0,128)=1 [128,4096)=0"), stepTimeout, func(ctx context.Context) (string, error) {
		img, err := readLogImage(logDev, nRegions)
		return DescribeLogImage(img), err
	})
	say("Removed the mirror: dlogd flushed the log, and %s now records all 128 regions clean.", logDev.MajMin())
	m.create(e, "re-activate with the same table")
	s.Expect("in sync at once after re-activation", "128/128", stepTimeout, ratio(m.name))
	say("Re-created the mirror on the same log: 128/128 in sync at once, no resync, because dlogd trusted the log it had written.")
	m.dev.remove(s, "remove the mirror again")
	proved("the on-disk log survived deactivation and was honoured at the next activation (no needless resync)")
}

// showStatus prints dmsetup status beside dlogd's own view of the log.
func showStatus(s *S, d *Dlogd, m *mirrorDev, when string) {
	st := s.Value("dmsetup status "+when, stepTimeout, status(m.name))
	logs := s.dumpValue(d, m.uuid, "dlogd's view "+when)
	l := logs[0]
	say("  %s:", when)
	say("    the kernel (dmsetup status): %s", st)
	say("    dlogd's view (SIGUSR1):      %d regions, %d in sync, %d dirty, %d being resynced, status %q, %s",
		l.Regions, l.InSync, l.Dirty, l.Recovering, l.Status, l.Phase)
}
