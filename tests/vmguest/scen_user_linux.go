//go:build linux

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// The userspace-log lifecycle scenarios (ucore, udisk, ucore-if, udisk-if):
// the same workload as kcore/kdisk, first over the kernel's own log (the
// reference, same boot, same I/O), then over dlogd, with the exact status
// and table strings of docs/protocol.md §5, suspend/resume, a live reload
// (docs/conformance.md item 45), remove, and for disk logs the on-disk image
// and a re-activation that honours it.

func scenUcore(s *S)   { userLifecycle(s, logSpec{Type: "clustered-core"}) }
func scenUdisk(s *S)   { userLifecycle(s, logSpec{Type: "clustered-disk"}) }
func scenUcoreIf(s *S) { userLifecycle(s, logSpec{Type: "clustered-core", Integrated: true}) }
func scenUdiskIf(s *S) { userLifecycle(s, logSpec{Type: "clustered-disk", Integrated: true}) }

// lifeResult is what one lifecycle run measured, for the comparison of
// dlogd with the kernel's log.
type lifeResult struct {
	ok       bool
	sum      string // md5 of everything written
	image    []byte // disk logs: the first buf_size bytes after remove
	resync   time.Duration
	write1M  time.Duration // 8 MiB in 1 MiB writes
	write4K  time.Duration // 1 MiB in 4 KiB writes
	reloadTo string        // right after the live reload: in sync at once, or resyncing
}

func userLifecycle(s *S, spec logSpec) {
	ref := logSpec{Type: strings.TrimPrefix(spec.Type, "clustered-")}
	var kr, ur lifeResult
	tag := strings.ReplaceAll(s.scenario, "-", "")
	s.Part(ref.Label()+" (reference)", func(p *S) { kr = lifecycle(p, ref, nil, tag+"k") })
	s.Part(spec.Label(), func(p *S) {
		d := startDlogd(p)
		ur = lifecycle(p, spec, d, tag+"u")
	})
	if !kr.ok || !ur.ok {
		return
	}
	s.Check("same data through dlogd's mirror as through the kernel's (md5 of 10+2 MiB)", kr.sum, ur.sum)
	if spec.Disk() {
		s.Check("dlogd's log device after remove is byte-identical to the kernel's (first buf_size bytes)", sha(kr.image), sha(ur.image))
	}
	s.Check("right after the live reload: dlogd's mirror as the kernel's", kr.reloadTo, ur.reloadTo)
	s.Note("timings, kernel vs dlogd", fmt.Sprintf("resync 64 MiB %s vs %s; 8 MiB in 1 MiB writes %s vs %s (%.1fx); 1 MiB in 4 KiB writes %s vs %s (%.1fx, %.2f ms per write)",
		secs(kr.resync), secs(ur.resync), secs(kr.write1M), secs(ur.write1M), ratioOf(ur.write1M, kr.write1M),
		secs(kr.write4K), secs(ur.write4K), ratioOf(ur.write4K, kr.write4K), ur.write4K.Seconds()*1000/256))
}

func ratioOf(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return a.Seconds() / b.Seconds()
}

func sha(b []byte) string {
	if b == nil {
		return "(none)"
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// lifecycle runs the whole workload over one mirror. d is dlogd for
// userspace logs (nil for the kernel's logs).
func lifecycle(s *S, spec logSpec, d *Dlogd, tag string) (r lifeResult) {
	e := newEnv(s, tag)
	a := e.loop("leg A", legBytes, 512)
	b := e.loop("leg B", legBytes, 512)
	m := &mirrorDev{spec: spec, name: "m" + tag, uuid: "dlog-vm-" + tag, sectors: legSectors, region: regionSize,
		legs: []string{a.Dev, b.Dev}, legMM: []string{a.MajMin(), b.MajMin()}}
	var logDev *Loop
	if spec.Disk() {
		logDev = e.loop("the log device", 1*mib, 512)
		m.logPath, m.logMM = logDev.Dev, logDev.MajMin()
	}
	full := m.full()
	wantStatus := m.WantStatus(full, "AA", "A")

	m.create(e, "create")
	s.Expect("dmsetup table", m.WantTable(), stepTimeout, table(m.name))
	r.resync = timed(func() { s.MustExpect("full resync", full, syncTimeout, syncWait(m.name)) })
	s.Expect("dmsetup status", wantStatus, stepTimeout, status(m.name))
	if d != nil {
		s.Expect("dlogd's view after the resync (SIGUSR1 dump): phase, regions, in sync, status", fmt.Sprintf("running 128 128 %q", m.WantLogStatus("A")), stepTimeout, func(ctx context.Context) (string, error) {
			logs, err := d.DumpOf(ctx, m.uuid, 1)
			if err != nil {
				return "", err
			}
			l := logs[0]
			return fmt.Sprintf("%s %d %d %q", l.Phase, l.Regions, l.InSync, l.Status), nil
		})
	}

	// 8 MiB in 1 MiB writes, then 1 MiB in 4 KiB writes, O_DIRECT.
	data := pattern(1, 9*mib)
	r.write1M = timed(func() {
		s.Do("write 8 MiB, O_DIRECT, 1 MiB blocks", time.Minute, func(ctx context.Context) error {
			return writeDirect(ctx, m.dev.Path, 0, data[:8*mib], mib)
		})
	})
	var before []DumpLog
	if d != nil {
		before = s.dumpValue(d, m.uuid, "dlogd's request counters before the 4 KiB writes")
	}
	r.write4K = timed(func() {
		s.Do("write 1 MiB, O_DIRECT, 4 KiB blocks (256 writes)", 2*time.Minute, func(ctx context.Context) error {
			return writeDirect(ctx, m.dev.Path, 8*mib, data[8*mib:], 4096)
		})
	})
	if d != nil {
		after := s.dumpValue(d, m.uuid, "dlogd's request counters after the 4 KiB writes")
		delta := RequestDelta(before[0].Requests, after[0].Requests)
		var n uint64
		for _, v := range delta {
			n += v
		}
		s.Note("kernel requests per 4 KiB write (dlogd's counters)", fmt.Sprintf("%.2f round trips per write: %s", float64(n)/256, FormatCounts(delta)))
		// Where the marks travel (docs/protocol.md §3, docs/conformance.md item 44): in FLUSH
		// with integrated_flush, never in MARK_REGION; in MARK_REGION
		// without it.
		step, want, ok := "the marks of the 4 KiB writes came in MARK_REGION, each followed by a FLUSH",
			"MARK_REGION > 0, FLUSH >= MARK_REGION", delta["MARK_REGION"] > 0 && delta["FLUSH"] >= delta["MARK_REGION"]
		if spec.Integrated {
			step, want, ok = "integrated_flush: the marks of the 4 KiB writes came in FLUSH",
				"MARK_REGION 0, FLUSH > 0", delta["MARK_REGION"] == 0 && delta["FLUSH"] > 0
		}
		got := want
		if !ok {
			got = fmt.Sprintf("MARK_REGION %d, FLUSH %d", delta["MARK_REGION"], delta["FLUSH"])
		}
		s.Check(step, want, got)
	}
	sum := md5hex(data)
	s.Expect("md5 of 9 MiB read back through the mirror", sum, time.Minute, md5Of(m.dev.Path, 0, len(data)))
	s.Expect("md5 of 9 MiB of leg A", sum, time.Minute, md5Of(a.Dev, 0, len(data)))
	s.Expect("md5 of 9 MiB of leg B", sum, time.Minute, md5Of(b.Dev, 0, len(data)))

	// suspend / resume
	s.Do("suspend", stepTimeout, func(ctx context.Context) error { _, err := dmsetup(ctx, "suspend", m.name); return err })
	s.Expect("state after suspend", "SUSPENDED", stepTimeout, state(m.name))
	if d != nil {
		s.Expect("dlogd's phase while suspended", "suspended", stepTimeout, dumpField(d, m.uuid, func(l DumpLog) string { return l.Phase }))
	}
	s.Do("resume", stepTimeout, func(ctx context.Context) error { _, err := dmsetup(ctx, "resume", m.name); return err })
	s.Expect("state after resume", "ACTIVE", stepTimeout, state(m.name))
	s.Expect("status after resume (still in sync)", wantStatus, stepTimeout, status(m.name))
	if d != nil {
		s.Expect("dlogd's phase after resume", "running", stepTimeout, dumpField(d, m.uuid, func(l DumpLog) string { return l.Phase }))
	}
	more := pattern(2, mib)
	s.Do("write 1 MiB after resume, O_DIRECT", time.Minute, func(ctx context.Context) error {
		return writeDirect(ctx, m.dev.Path, 9*mib, more, mib)
	})
	all := append(append([]byte(nil), data...), more...)
	sumAll := md5hex(all)
	s.Expect("md5 of 10 MiB of leg A", sumAll, time.Minute, md5Of(a.Dev, 0, len(all)))
	s.Expect("md5 of 10 MiB of leg B", sumAll, time.Minute, md5Of(b.Dev, 0, len(all)))

	// Live reload (docs/conformance.md item 45): load the same table into the
	// inactive slot (CTR of a second instance, same uuid, new luid), then
	// resume under I/O (PRESUSPEND, POSTSUSPEND of the old, RESUME of the
	// new, DTR of the old).
	var oldLUID string
	if d != nil {
		oldLUID = s.dumpValue(d, m.uuid, "dlogd's instance before the reload")[0].LUID
	}
	s.Do("reload: dmsetup load (same table)", stepTimeout, func(ctx context.Context) error {
		_, err := dmsetup(ctx, "load", m.name, "--table", m.Table())
		return err
	})
	var newLUID string
	if d != nil {
		s.Expect("two dlogd instances with the uuid after load: old running, new constructed", "running constructed", stepTimeout, func(ctx context.Context) (string, error) {
			logs, err := d.DumpOf(ctx, m.uuid, 2)
			if err != nil {
				return "", err
			}
			var ph []string
			for _, want := range []bool{true, false} {
				for _, l := range logs {
					if (l.LUID == oldLUID) == want {
						ph = append(ph, l.Phase)
						if !want {
							newLUID = l.LUID
						}
					}
				}
			}
			return strings.Join(ph, " "), nil
		})
	}
	reloadData := pattern(3, 2*mib)
	w := startWriter(m.dev.Path, 10*mib, reloadData, 4096)
	s.Do("reload: dmsetup resume (swap tables) while 2 MiB of 4 KiB writes run", stepTimeout, func(ctx context.Context) error {
		time.Sleep(100 * time.Millisecond) // let some writes start
		_, err := dmsetup(ctx, "resume", m.name)
		return err
	})
	// A new core log starts out of sync (full resync); a disk log resumes
	// from the device, which the old instance left clean.
	got := s.Value("in-sync ratio right after the reload", stepTimeout, ratio(m.name))
	r.reloadTo = "resyncing (below " + full + ")"
	if got == full {
		r.reloadTo = "in sync at once (" + full + ")"
	}
	s.Do("the writes during the reload complete", 2*time.Minute, w.Wait)
	if d != nil {
		s.Expect("one dlogd instance after the reload: the new one, running", "new running", stepTimeout, func(ctx context.Context) (string, error) {
			logs, err := d.DumpOf(ctx, m.uuid, 1)
			if err != nil {
				return "", err
			}
			which := "old"
			if logs[0].LUID == newLUID && newLUID != "" {
				which = "new"
			} else if logs[0].LUID != oldLUID {
				which = "other(" + logs[0].LUID + ")"
			}
			return which + " " + logs[0].Phase, nil
		})
	}
	s.MustExpect("in sync after the reload", full, syncTimeout, syncWait(m.name))
	s.Expect("status after the reload", wantStatus, stepTimeout, status(m.name))
	all = append(all, reloadData...)
	r.sum = md5hex(all)
	s.Expect("md5 of 12 MiB of leg A after the reload", r.sum, time.Minute, md5Of(a.Dev, 0, len(all)))
	s.Expect("md5 of 12 MiB of leg B after the reload", r.sum, time.Minute, md5Of(b.Dev, 0, len(all)))

	m.dev.remove(s, "remove")
	s.Expect("device gone after remove", "false", stepTimeout, func(ctx context.Context) (string, error) {
		ok, err := dmExists(ctx, m.name)
		return fmt.Sprint(ok), err
	})
	if d != nil {
		s.Expect("dlogd has no instance of the uuid after remove (DTR)", "0", stepTimeout, func(ctx context.Context) (string, error) {
			logs, err := d.DumpOf(ctx, m.uuid, -1)
			return fmt.Sprint(len(logs)), err
		})
	}
	if spec.Disk() {
		cleanImage := WantLogImage(nRegions, fmt.Sprintf("[0,%d)=1 [%d,4096)=0", nRegions, nRegions))
		s.Expect("on-disk log after remove: every region clean", cleanImage, stepTimeout, func(ctx context.Context) (string, error) {
			img, err := readLogImage(logDev, nRegions)
			r.image = img
			return DescribeLogImage(img), err
		})
		m.create(e, "re-activate with the same table")
		s.Expect("in sync at once after re-activation (the on-disk log is honoured)", full, stepTimeout, ratio(m.name))
		s.Expect("md5 of 12 MiB through the re-activated mirror", r.sum, time.Minute, md5Of(m.dev.Path, 0, len(all)))
		m.dev.remove(s, "remove after re-activation")
	}
	r.ok = !s.Failed()
	return r
}

// dumpValue takes a dump as a step and returns the uuid's single instance.
func (s *S) dumpValue(d *Dlogd, uuid, step string) []DumpLog {
	var logs []DumpLog
	s.Value(step, stepTimeout, func(ctx context.Context) (string, error) {
		var err error
		logs, err = d.DumpOf(ctx, uuid, 1)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("luid %s, %s, %s", logs[0].LUID, logs[0].Phase, FormatCounts(logs[0].Requests)), nil
	})
	return logs
}

// dumpField reads one field of the uuid's single instance.
func dumpField(d *Dlogd, uuid string, f func(DumpLog) string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		logs, err := d.DumpOf(ctx, uuid, 1)
		if err != nil {
			return "", err
		}
		return f(logs[0]), nil
	}
}
