//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"
)

// interop: the on-disk format both ways (docs/conformance.md item 43). The
// kernel's disk log writes an image with writes in flight (regions 3, 7
// and 40 dirty), a copy of it is resumed by dlogd's clustered-disk log:
// the same dirty set, the same sync count, and dlogd's rewrite at resume
// is byte-identical. Then the reverse: dlogd writes the image with the same
// writes in flight, and the kernel's disk log resumes a copy with the
// matching sync count. The first buf_size bytes are compared throughout.
//
// Legs are zero targets (only the log matters); leg B sits behind
// dm-delay, which holds its writes so the in-flight state can be
// captured, and holds the resync after a resume so the sync count can be
// read before it changes.

var interopDirty = []int{3, 7, 40}

// interopRuns is the bitmap of a 128-region log with interopDirty dirty.
const interopRuns = "[0,3)=1 [3,4)=0 [4,7)=1 [7,8)=0 [8,40)=1 [40,41)=0 [41,128)=1 [128,4096)=0"

func scenInterop(s *S) {
	var kimg, uimg, kclean, uclean []byte
	s.Part("kernel disk log writes, dlogd resumes", func(p *S) {
		kimg, kclean = interopPart(p, true)
	})
	s.Part("dlogd writes, kernel disk log resumes", func(p *S) {
		uimg, uclean = interopPart(p, false)
	})
	if kimg != nil && uimg != nil {
		s.Check("in-flight images, kernel's vs dlogd's, same writes: byte-identical", "equal", bytesEqual(kimg, uimg))
	}
	if kclean != nil && uclean != nil {
		s.Check("clean images after remove, kernel's vs dlogd's: byte-identical", "equal", bytesEqual(kclean, uclean))
	}
}

func bytesEqual(a, b []byte) string {
	if bytes.Equal(a, b) {
		return "equal"
	}
	n := 0
	first := -1
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	return fmt.Sprintf("differ: lengths %d and %d, %d bytes differ, first at offset %d", len(a), len(b), n, first)
}

// interopPart runs one direction. kernelFirst: the kernel writes, dlogd
// resumes; otherwise the reverse. It returns the writer's in-flight image
// and the resumer's image after its final remove.
func interopPart(s *S, kernelFirst bool) (inflight, clean []byte) {
	writer, resumer := logSpec{Type: "disk"}, logSpec{Type: "clustered-disk"}
	tag := "ikd"
	if !kernelFirst {
		writer, resumer = resumer, writer
		tag = "idk"
	}
	d := startDlogd(s)
	g := newGolden(s, tag, 512, 131072, regionSize)
	g.target = 131072
	slow := g.slowLegB(131072, 0)
	copyLog := g.e.loop("the copy of the log device", 1*mib, 512)
	mk := func(spec logSpec, log *Loop, name string) *mirrorDev {
		return &mirrorDev{spec: spec, name: name, uuid: "dlog-vm-" + name, sectors: g.target, region: regionSize,
			legs: []string{g.legA.Path, g.legB.Path}, legMM: []string{g.legA.MajMin, g.legB.MajMin},
			logPath: log.Dev, logMM: log.MajMin()}
	}

	// 1. The writer: full resync, then three writes held in flight.
	w := mk(writer, g.log, tag+"w")
	w.create(g.e, writer.Label()+": create")
	s.MustExpect(writer.Label()+": full resync", "128/128", syncTimeout, syncWait(w.name))
	slow.set(s, "hold leg B's writes", freezeMS)
	var wg sync.WaitGroup
	errs := make([]error, len(interopDirty))
	for i, r := range interopDirty {
		wg.Add(1)
		go func(i, r int) {
			defer wg.Done()
			errs[i] = writeDirect(context.Background(), w.dev.Path, int64(r)*regionBytes, pattern(uint64(430+r), 4096), 4096)
		}(i, r)
	}
	s.Expect(writer.Label()+": regions 3, 7, 40 marked dirty on disk before the writes reach leg B", interopRuns, 20*time.Second, func(ctx context.Context) (string, error) {
		for {
			img, err := readLogImage(g.log, 128)
			if err != nil {
				return "", err
			}
			if BitRuns(img[bitmapOffset:]) == interopRuns || ctx.Err() != nil {
				inflight = img
				return BitRuns(img[bitmapOffset:]), nil
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	s.Check(writer.Label()+": in-flight image", WantLogImage(128, interopRuns), DescribeLogImage(inflight))
	s.Do("copy the first buf_size bytes to the second log device (what a crash would leave)", stepTimeout, func(ctx context.Context) error {
		return writeDirect(ctx, copyLog.Dev, 0, inflight, len(inflight))
	})
	slow.set(s, "release leg B's writes", 0)
	s.Do(writer.Label()+": the held writes complete", stepTimeout, func(ctx context.Context) error {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	})
	w.dev.remove(s, writer.Label()+": remove")

	// 2. The resumer, on the copy, with the resync held.
	slow.set(s, "hold leg B's writes again (the resync of the dirty regions waits)", freezeMS)
	r := mk(resumer, copyLog, tag+"r")
	r.create(g.e, resumer.Label()+": activate on the copy")
	thaw := s.Defer("release leg B before removing the mirror", stepTimeout, func(ctx context.Context) error {
		return dmLoadResume(ctx, slow.d.Name, delayTable(slow.under, slow.sectors, 0))
	})
	s.Expect(resumer.Label()+": sync count = regions minus the 3 dirty ones", "125/128", stepTimeout, ratio(r.name))
	s.Expect(resumer.Label()+": status", r.WantStatus("125/128", "AA", "A"), stepTimeout, status(r.name))
	s.Expect(resumer.Label()+": image after its resume (rewritten) is byte-identical to the writer's", "equal", stepTimeout, func(ctx context.Context) (string, error) {
		img, err := readLogImage(copyLog, 128)
		if err != nil {
			return "", err
		}
		return bytesEqual(inflight, img), nil
	})
	if resumer.Userspace() {
		s.Expect("dlogd's own view (SIGUSR1 dump): regions, in sync, dirty", "128 125 3", stepTimeout,
			dumpField(d, r.uuid, func(l DumpLog) string { return fmt.Sprintf("%d %d %d", l.Regions, l.InSync, l.Dirty) }))
	}
	slow.set(s, "release leg B (the resync proceeds)", 0)
	thaw()
	s.MustExpect(resumer.Label()+": resync of the 3 dirty regions", "128/128", syncTimeout, syncWait(r.name))
	r.dev.remove(s, resumer.Label()+": remove")
	s.Expect(resumer.Label()+": image after remove: every region clean", WantLogImage(128, "[0,128)=1 [128,4096)=0"), stepTimeout, func(ctx context.Context) (string, error) {
		img, err := readLogImage(copyLog, 128)
		clean = img
		return DescribeLogImage(img), err
	})
	return inflight, clean
}
