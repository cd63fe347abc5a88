//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Single-node correctness against the real kernel (issue #13).
//
// ufile (item 2): a clustered-disk log on a regular file. The CTR reply
// names no device (the kernel's dm_get_device cannot open a path to a
// file, and when it fails it drops the log without a DTR): the table
// loads, the mirror serves I/O, and after the remove dlogd holds no log.
//
// legflush (item 4): the kernel's own disk log has dm-raid1 flush every
// leg's cache before it persists clears; dlogd does the same for a
// clustered-disk log. Legs are loop devices, whose flushes the block layer
// counts (/sys/block/loopN/stat field 16). After each 4 KiB write the
// region goes dirty, then clean again on the log device: every clean that
// reaches the log device came after at least one flush of each leg. The
// kernel's disk log runs the same workload as the reference.

const (
	singleLegBytes = 16 << 20
	singleSectors  = singleLegBytes / 512
	singleRegions  = singleSectors / regionSize
)

func scenUfile(s *S) {
	d := startDlogd(s)
	e := newEnv(s, "ufile")
	legA := e.loop("leg A", singleLegBytes, 512)
	legB := e.loop("leg B", singleLegBytes, 512)
	logFile := filepath.Join("/tmp", "ufile-log.img")
	s.Do("a 1 MiB regular file as the log device: "+logFile, stepTimeout, func(ctx context.Context) error {
		return os.WriteFile(logFile, make([]byte, mib), 0o600)
	})
	s.Defer("remove "+logFile, stepTimeout, func(ctx context.Context) error { return os.Remove(logFile) })
	m := &mirrorDev{spec: logSpec{Type: "clustered-disk"}, name: "ufile", uuid: "dlog-vm-ufile", sectors: singleSectors,
		region: regionSize, legs: []string{legA.Dev, legB.Dev}, legMM: []string{legA.MajMin(), legB.MajMin()},
		logPath: logFile, logMM: logFile}
	m.create(e, "create a mirror whose clustered-disk log is a regular file (the table load must succeed)")
	if s.Failed() {
		return
	}
	s.MustExpect("full resync", m.full(), syncTimeout, syncWait(m.name))
	s.Expect("dmsetup status (the log device as the file's path)", m.WantStatus(m.full(), "AA", "A"), stepTimeout, status(m.name))
	data := pattern(2, mib)
	s.Do("write 1 MiB O_DIRECT through the mirror", stepTimeout, func(ctx context.Context) error {
		return writeDirect(ctx, "/dev/mapper/"+m.name, 3*regionBytes, data, 64<<10)
	})
	want := md5hex(data)
	s.Expect("leg A holds the data", want, stepTimeout, md5Of(legA.Dev, 3*regionBytes, mib))
	s.Expect("leg B holds the data", want, stepTimeout, md5Of(legB.Dev, 3*regionBytes, mib))
	s.Expect("dlogd serves the log", "1", stepTimeout, dumpCount(d, m.uuid))
	m.dev.remove(s, "remove the mirror")
	s.Expect("nothing left in dlogd after the remove (no orphaned log)", "0", stepTimeout, dumpCount(d, ""))
}

// dumpCount is the number of logs dlogd serves (with uuid, or all).
func dumpCount(d *Dlogd, uuid string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		dump, err := d.Dump(ctx)
		if err != nil {
			return "", err
		}
		if uuid == "" {
			return strconv.Itoa(len(dump.Logs)), nil
		}
		return strconv.Itoa(len(dump.ByUUID(uuid))), nil
	}
}

func scenLegflush(s *S) {
	var kernel, dlogd string
	s.Part("kernel disk log (reference)", func(p *S) { kernel = legflushPart(p, logSpec{Type: "disk"}, nil, "lfdisk") })
	s.Part("dlogd clustered-disk", func(p *S) {
		d := startDlogd(p)
		dlogd = legflushPart(p, logSpec{Type: "clustered-disk"}, d, "lfcdisk")
	})
	s.Note("leg flushes per clear, kernel disk log vs dlogd", kernel+" vs "+dlogd)
	// The same through pwritev and fdatasync instead of io_uring: what
	// the write path costs each way under this kernel (docs/performance.md).
	s.Part("dlogd clustered-disk, pwritev (--io-fallback)", func(p *S) {
		d := startDlogd(p, "--io-fallback")
		legflushPart(p, logSpec{Type: "clustered-disk"}, d, "lfpwritev")
	})
}

// legflushPart writes one 4 KiB block to each of 8 regions in turn, waits
// for the region to be clean again on the log device, and counts the
// flushes each leg received meanwhile. It returns a summary.
func legflushPart(s *S, spec logSpec, d *Dlogd, tag string) string {
	e := newEnv(s, tag)
	legA := e.loop("leg A", singleLegBytes, 512)
	legB := e.loop("leg B", singleLegBytes, 512)
	log := e.loop("the disk log", mib, 512)
	m := &mirrorDev{spec: spec, name: tag, uuid: "dlog-vm-" + tag, sectors: singleSectors, region: regionSize, sync: "nosync",
		legs: []string{legA.Dev, legB.Dev}, legMM: []string{legA.MajMin(), legB.MajMin()}, logPath: log.Dev, logMM: log.MajMin()}
	m.create(e, spec.Label()+": create (nosync: no resync)")
	if s.Failed() {
		return "failed"
	}
	s.MustExpect(spec.Label()+": in sync", m.full(), syncTimeout, syncWait(m.name))
	const writes = 8
	var perClear []string
	ok := 0
	for i := range writes {
		r := uint64(2*i + 1)
		var a0, b0, a1, b1 uint64
		s.Do(fmt.Sprintf("%s: write 4 KiB to region %d, wait until it is clean on the log device again", spec.Label(), r), stepTimeout, func(ctx context.Context) error {
			var err error
			if a0, err = flushCount(legA.Dev); err != nil {
				return err
			}
			if b0, err = flushCount(legB.Dev); err != nil {
				return err
			}
			if err := writeDirect(ctx, m.dev.Path, int64(r)*regionBytes, pattern(700+r, 4096), 4096); err != nil {
				return err
			}
			for {
				img, err := readLogImage(log, singleRegions)
				if err != nil {
					return err
				}
				if img[bitmapOffset+int(r/8)]&(1<<(r%8)) != 0 {
					break
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("region %d never clean again on the log device", r)
				case <-time.After(5 * time.Millisecond):
				}
			}
			if a1, err = flushCount(legA.Dev); err != nil {
				return err
			}
			b1, err = flushCount(legB.Dev)
			return err
		})
		perClear = append(perClear, fmt.Sprintf("%d/%d", a1-a0, b1-b0))
		if a1 > a0 && b1 > b0 {
			ok++
		}
	}
	s.Check(spec.Label()+": clears on the log device that came after a flush of both legs", fmt.Sprintf("%d of %d", writes, writes), fmt.Sprintf("%d of %d", ok, writes))
	// The cost: 1 MiB in 4 KiB O_DIRECT writes, each of which ends with
	// a clear (the region goes idle between synchronous writes).
	var took time.Duration
	var fa0, fa1 uint64
	var before []DumpLog
	if d != nil {
		before = s.dumpValue(d, m.uuid, spec.Label()+": flush-path timers before")
	}
	s.Do(spec.Label()+": 1 MiB in 4 KiB O_DIRECT writes (timed)", 2*time.Minute, func(ctx context.Context) error {
		var err error
		if fa0, err = flushCount(legA.Dev); err != nil {
			return err
		}
		start := time.Now()
		if err := writeDirect(ctx, m.dev.Path, 20*regionBytes, pattern(800, mib), 4096); err != nil {
			return err
		}
		took = time.Since(start)
		fa1, err = flushCount(legA.Dev)
		return err
	})
	s.Note(spec.Label()+": 256 writes of 4 KiB", fmt.Sprintf("%s, %.2f ms per write, %d flushes of leg A", secs(took), took.Seconds()*1000/256, fa1-fa0))
	if d != nil && len(before) == 1 {
		after := s.dumpValue(d, m.uuid, spec.Label()+": flush-path timers after")
		if len(after) == 1 {
			ph, err := PhaseDelta(before[0], after[0])
			if err != nil {
				ph = err.Error()
			}
			s.Note(spec.Label()+": where the flushes spent their time", ph)
		}
	}
	if d != nil {
		s.Expect(spec.Label()+": dlogd serves the log", "1", stepTimeout, dumpCount(d, m.uuid))
	}
	m.dev.remove(s, spec.Label()+": remove")
	return "[" + strings.Join(perClear, " ") + "] (leg A/leg B); 4 KiB writes: " + fmt.Sprintf("%.2f ms each, %d leg A flushes per 256", took.Seconds()*1000/256, fa1-fa0)
}

// flushCount is the block layer's count of completed flush requests on a
// block device (/sys/block/<dev>/stat field 16).
func flushCount(dev string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "stat"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 17 {
		return 0, fmt.Errorf("%s stat has %d fields, no flush counters (Linux 5.5+)", dev, len(f))
	}
	return strconv.ParseUint(f[15], 10, 64)
}
