//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The crash test spans two boots sharing a raw disk (/dev/vdb, a file on
// the host kept between the boots). Boot 1 (crash-write) runs three
// mirrors side by side on that disk, the kernel's disk log and dlogd's
// clustered-disk log without and with integrated_flush, brings each to a
// clean point (suspend/resume: every region clean on disk), then has
// writers write 4 KiB blocks to random regions of all, with leg B slowed down so that writes are always in
// flight, journals every write it issues and every one that completes,
// and prints CrashMarker; the host kills qemu right after it (a power
// cut). Boot 2 (crash-check) reads every log as the crash left it and
// checks the guarantee a dirty log exists for: every region whose legs
// differ is dirty, so the resync at the next activation repairs it (over-
// reporting is allowed, under-reporting is data loss). It then resumes
// the logs, checks the sync count against the dirty set, resyncs and
// compares the legs.

// CrashMarker is the console line after which the host kills qemu.
const CrashMarker = "DLOG-CRASH-POINT"

const (
	crashDisk      = "/dev/vdb"
	crashJournal   = 4096                           // header sector at 0, journal entries from here
	crashJournalSz = 1*mib - 4096                   // 2040 entries of 512 bytes
	crashMirrorOff = 1 * mib                        // mirror k at 1 MiB + k*crashStride
	crashStride    = 1*mib + 2*legBytes             // log (1 MiB), leg A, leg B
	crashDiskBytes = crashMirrorOff + 3*crashStride // one stride per crashMirrors entry
	crashDelayMS   = 1500                           // leg B write delay while the writers run
	crashWriters   = 4                              // per mirror
	crashMagic     = "DLOGCRSH"
	journalMagic   = "DLOGJRNL"
)

// crashMirrors are the logs under test, in disk order: the kernel's, and
// dlogd's with marks in MARK_REGION and in FLUSH (integrated_flush).
var crashMirrors = []logSpec{{Type: "disk"}, {Type: "clustered-disk"}, {Type: "clustered-disk", Integrated: true}}

// crashLayout is one mirror's part of the crash disk, as dm-linear devices.
type crashLayout struct {
	spec      logSpec
	tag       string
	log, a, b *dmDev
	slowB     *dmDev
	m         *mirrorDev
	base      uint64 // byte offset on the crash disk
}

func crashTag(k int) string { return []string{"crk", "cru", "cri"}[k] }

// setupCrashDevices carves the crash disk into the mirrors' devices.
func setupCrashDevices(s *S, e *env) []*crashLayout {
	s.Do("the crash disk "+crashDisk+" is there and big enough", stepTimeout, func(ctx context.Context) error {
		if err := waitPath(crashDisk, 5*time.Second); err != nil {
			return fmt.Errorf("%w: the host attaches it for the crash scenario only", err)
		}
		f, err := os.Open(crashDisk)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKGETSIZE64)
		if err != nil {
			return err
		}
		if n < crashDiskBytes {
			return fmt.Errorf("%s is %d bytes, want at least %d", crashDisk, n, crashDiskBytes)
		}
		return nil
	})
	var out []*crashLayout
	for k, spec := range crashMirrors {
		c := &crashLayout{spec: spec, tag: crashTag(k), base: uint64(crashMirrorOff + k*crashStride)}
		lin := func(what, name string, off, size uint64) *dmDev {
			return e.dm(fmt.Sprintf("%s: dm-linear over %s at %d MiB", what, crashDisk, off/mib), name,
				fmt.Sprintf("0 %d linear %s %d", size/512, crashDisk, off/512))
		}
		c.log = lin(spec.Label()+" log device", c.tag+"-log", c.base, mib)
		c.a = lin(spec.Label()+" leg A", c.tag+"-a", c.base+mib, legBytes)
		c.b = lin(spec.Label()+" leg B", c.tag+"-b", c.base+mib+legBytes, legBytes)
		c.slowB = e.dm("leg B behind dm-delay", c.tag+"-slowb", delayTable(c.b.Path, legSectors, 0))
		c.m = &mirrorDev{spec: spec, name: "m" + c.tag, uuid: "dlog-vm-crash", sectors: legSectors, region: regionSize,
			legs: []string{c.a.Path, c.slowB.Path}, legMM: []string{c.a.MajMin, c.slowB.MajMin},
			logPath: c.log.Path, logMM: c.log.MajMin}
		out = append(out, c)
	}
	return out
}

func (c *crashLayout) setDelay(s *S, prefix string, ms int) {
	s.Do(fmt.Sprintf("%sleg B write delay %d ms", prefix, ms), stepTimeout, func(ctx context.Context) error {
		return dmLoadResume(ctx, c.slowB.Name, delayTable(c.b.Path, legSectors, ms))
	})
}

// journal appends 512-byte records to the crash disk with O_DIRECT|O_DSYNC.
type journal struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
	n   int
	seq uint64
}

const (
	jIssued    = 1
	jCompleted = 2
	jClean     = 3 // the clean point
)

type jEntry struct {
	Seq            uint64
	Kind, Mirror   uint8
	Region, Offset uint64
}

func openJournal() (*journal, error) {
	f, err := os.OpenFile(crashDisk, os.O_RDWR|unix.O_DIRECT|unix.O_DSYNC, 0)
	if err != nil {
		return nil, err
	}
	buf, _, err := alignedBuf(512)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &journal{f: f, buf: buf}, nil
}

func (j *journal) add(kind, mirror uint8, region, off uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if (j.n+1)*512 > crashJournalSz {
		return fmt.Errorf("journal full")
	}
	clear(j.buf)
	j.seq++
	copy(j.buf, journalMagic)
	binary.LittleEndian.PutUint64(j.buf[8:], j.seq)
	j.buf[16], j.buf[17] = kind, mirror
	binary.LittleEndian.PutUint64(j.buf[24:], region)
	binary.LittleEndian.PutUint64(j.buf[32:], off)
	_, err := j.f.WriteAt(j.buf, int64(crashJournal+j.n*512))
	j.n++
	return err
}

func readJournal() ([]jEntry, error) {
	b, err := readDirect(crashDisk, crashJournal, crashJournalSz)
	if err != nil {
		return nil, err
	}
	var out []jEntry
	for i := 0; i+512 <= len(b); i += 512 {
		r := b[i : i+512]
		if string(r[:8]) != journalMagic {
			break
		}
		out = append(out, jEntry{Seq: binary.LittleEndian.Uint64(r[8:]), Kind: r[16], Mirror: r[17],
			Region: binary.LittleEndian.Uint64(r[24:]), Offset: binary.LittleEndian.Uint64(r[32:])})
	}
	return out, nil
}

// scenCrashWrite is boot 1.
func scenCrashWrite(s *S) {
	startDlogd(s)
	e := newEnv(s, "crash")
	s.Do("clear the journal", stepTimeout, func(ctx context.Context) error {
		return writeDirect(ctx, crashDisk, 0, make([]byte, crashMirrorOff), 64<<10)
	})
	cs := setupCrashDevices(s, e)
	for _, c := range cs {
		// The legs start as zeros, identical: nosync is the truth, and no
		// resync is needed. Boot 2 activates without it (default mode).
		c.m.sync = "nosync"
		c.m.create(e, c.spec.Label()+": create (nosync)")
		s.Expect(c.spec.Label()+": in sync", "128/128", stepTimeout, ratio(c.m.name))
	}
	// Some data, then the clean point: suspend flushes the log, every
	// region clean on disk.
	for k, c := range cs {
		_ = k
		data := pattern(700, 4*mib)
		s.Do(c.spec.Label()+": write 4 MiB (1 MiB blocks)", time.Minute, func(ctx context.Context) error {
			return writeDirect(ctx, c.m.dev.Path, 0, data, mib)
		})
		s.Do(c.spec.Label()+": clean point: suspend + resume", stepTimeout, func(ctx context.Context) error {
			if _, err := dmsetup(ctx, "suspend", c.m.name); err != nil {
				return err
			}
			_, err := dmsetup(ctx, "resume", c.m.name)
			return err
		})
		s.Expect(c.spec.Label()+": every region clean on disk at the clean point", WantLogImage(128, "[0,128)=1 [128,4096)=0"), stepTimeout, func(ctx context.Context) (string, error) {
			img, err := readDirect(c.log.Path, 0, LogBufSize(128, 512))
			return DescribeLogImage(img), err
		})
	}
	j, err := openJournal()
	if err != nil {
		s.Fail("open the journal", "success", "error", err.Error())
	}
	s.Do("journal: clean point", stepTimeout, func(ctx context.Context) error { return j.add(jClean, 0, 0, 0) })
	for _, c := range cs {
		c.setDelay(s, c.spec.Label()+": ", crashDelayMS)
	}

	// The writers: the same random regions on every mirror.
	var issued, completed atomic.Int64
	var werr atomic.Value
	stop := make(chan struct{})
	for k, c := range cs {
		for w := 0; w < crashWriters; w++ {
			go func(k, w int, path string) {
				rng := rand.New(rand.NewPCG(uint64(w), 42))
				f, buf, done, err := openDirectBuf(path, os.O_WRONLY, 4096)
				if err != nil {
					werr.Store(err)
					return
				}
				defer done()
				for seq := 0; !chanClosed(stop); seq++ {
					region := rng.IntN(nRegions)
					off := uint64(region)*regionBytes + uint64(rng.IntN(regionBytes/4096))*4096
					copy(buf, pattern(uint64(k*1000000+w*10000+seq), 4096))
					copy(buf, fmt.Sprintf("%s m%d w%d #%d r%d", crashMagic, k, w, seq, region))
					if err := j.add(jIssued, uint8(k), uint64(region), off); err != nil {
						werr.Store(err)
						return
					}
					issued.Add(1)
					if _, err := f.WriteAt(buf, int64(off)); err != nil {
						werr.Store(err)
						return
					}
					completed.Add(1)
					if err := j.add(jCompleted, uint8(k), uint64(region), off); err != nil {
						werr.Store(err)
						return
					}
				}
			}(k, w, c.m.dev.Path)
		}
	}
	s.Do("writers running: at least 16 writes completed (leg B answers after 1.5 s)", time.Minute, func(ctx context.Context) error {
		for completed.Load() < 16 {
			if e := werr.Load(); e != nil {
				return e.(error)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%d issued, %d completed: %w", issued.Load(), completed.Load(), ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
		return nil
	})
	s.Note("writes at the crash point", fmt.Sprintf("%d issued, %d completed, %d in flight", issued.Load(), completed.Load(), issued.Load()-completed.Load()))
	// The host kills qemu when it sees the marker; the writers go on.
	fmt.Printf("\nvmguest: %s: %d writes issued, %d completed; the host kills qemu now\n", CrashMarker, issued.Load(), completed.Load())
	_ = os.Stdout.Sync()
	time.Sleep(30 * time.Second)
	close(stop)
	s.Fail("killed by the host", "qemu killed within 30 s of "+CrashMarker, "still running", "the host did not kill qemu at the crash marker: run this scenario through the host test (it is not part of 'all')")
}

// scenCrashCheck is boot 2.
func scenCrashCheck(s *S) {
	d := startDlogd(s)
	e := newEnv(s, "crash")
	entries := []jEntry(nil)
	s.Value("boot 1's journal", stepTimeout, func(ctx context.Context) (string, error) {
		var err error
		entries, err = readJournal()
		if err != nil {
			return "", err
		}
		if len(entries) == 0 || entries[0].Kind != jClean {
			return "", fmt.Errorf("no journal from boot 1 on %s (%d entries): did boot 1 reach its clean point?", crashDisk, len(entries))
		}
		return fmt.Sprintf("%d entries", len(entries)), nil
	})
	cs := setupCrashDevices(s, e)
	for k, c := range cs {
		s.Part(c.spec.Label(), func(p *S) { crashCheckOne(p, e, d, c, k, entries) })
	}
}

func crashCheckOne(s *S, e *env, d *Dlogd, c *crashLayout, k int, entries []jEntry) {
	// What the journal says about this mirror since the clean point.
	issued := map[uint64]int{}
	completed := map[uint64]int{}
	for _, en := range entries {
		if int(en.Mirror) != k {
			continue
		}
		switch en.Kind {
		case jIssued:
			issued[en.Region]++
		case jCompleted:
			completed[en.Region]++
		}
	}
	var inflight []int // regions with more writes issued than completed
	var written []int
	for r := range issued {
		written = append(written, int(r))
		if issued[r] > completed[r] {
			inflight = append(inflight, int(r))
		}
	}
	sort.Ints(inflight)
	sort.Ints(written)

	var img []byte
	s.Value("the log as the crash left it (first buf_size bytes)", stepTimeout, func(ctx context.Context) (string, error) {
		var err error
		img, err = readDirect(c.log.Path, 0, LogBufSize(128, 512))
		if err != nil {
			return "", err
		}
		return DescribeLogImage(img), nil
	})
	s.Check("header: magic, version, nr_regions", fmt.Sprintf("%#x 2 128", mirrorMagic), fmt.Sprintf("%#x %d %d",
		binary.LittleEndian.Uint32(img[0:]), binary.LittleEndian.Uint32(img[4:]), binary.LittleEndian.Uint64(img[8:])))
	dirty := map[int]bool{}
	for r := 0; r < nRegions; r++ {
		if img[bitmapOffset+r/8]&(1<<(r%8)) == 0 {
			dirty[r] = true
		}
	}
	var diff map[int]bool
	s.Value("regions whose legs differ", 2*time.Minute, func(ctx context.Context) (string, error) {
		var err error
		diff, err = diffRegions(c.a.Path, c.b.Path)
		return fmt.Sprintf("%d: %s", len(diff), setString(diff)), err
	})
	var missed []int
	for r := range diff {
		if !dirty[r] {
			missed = append(missed, r)
		}
	}
	sort.Ints(missed)
	s.Check("every region whose legs differ is dirty in the log (no under-report)", "none", orNone(runs(missed)))
	over := 0
	for r := range dirty {
		if !diff[r] {
			over++
		}
	}
	dirtyInflight := 0
	for _, r := range inflight {
		if dirty[r] {
			dirtyInflight++
		}
	}
	s.Note("since the clean point", fmt.Sprintf("%d regions written, %d with a write in flight at the crash (%d of them dirty; a write not yet marked had not reached the legs), %d dirty in the log, %d with differing legs, %d dirty with equal legs (over-report, allowed)",
		len(written), len(inflight), dirtyInflight, len(dirty), len(diff), over))
	var notWritten []int
	for r := range dirty {
		if issued[uint64(r)] == 0 {
			notWritten = append(notWritten, r)
		}
	}
	sort.Ints(notWritten)
	s.Check("every dirty region was written since the clean point (the clean point's flush held)", "none", orNone(runs(notWritten)))

	// Resume the log: the sync count must follow the dirty set, the resync
	// must repair every region, and the legs must end up identical.
	c.m.sync = ""
	c.setDelay(s, "", freezeMS) // hold the resync until the sync count is read
	thaw := s.Defer("release leg B", stepTimeout, func(ctx context.Context) error {
		return dmLoadResume(ctx, c.slowB.Name, delayTable(c.b.Path, legSectors, 0))
	})
	c.m.create(e, "resume the log: activate with the default mode")
	want := fmt.Sprintf("%d/128", 128-len(dirty))
	if c.spec.Userspace() {
		s.Expect("dlogd's view at resume: in sync, dirty", fmt.Sprintf("%d %d", 128-len(dirty), len(dirty)), stepTimeout,
			dumpField(d, c.m.uuid, func(l DumpLog) string { return fmt.Sprintf("%d %d", l.InSync, l.Dirty) }))
	}
	s.Expect("sync count at resume = regions minus the dirty ones (the resync waits for leg B)", want, stepTimeout, func(ctx context.Context) (string, error) {
		return ratio(c.m.name)(ctx)
	})
	c.setDelay(s, "", 0)
	thaw()
	s.MustExpect("resync", "128/128", syncTimeout, syncWait(c.m.name))
	s.Expect("regions whose legs differ after the resync", "none", 2*time.Minute, func(ctx context.Context) (string, error) {
		d, err := diffRegions(c.a.Path, c.b.Path)
		return orNone(setString(d)), err
	})
	c.m.dev.remove(s, "remove")
	s.Expect("the log after remove: every region clean", WantLogImage(128, "[0,128)=1 [128,4096)=0"), stepTimeout, func(ctx context.Context) (string, error) {
		img, err := readDirect(c.log.Path, 0, LogBufSize(128, 512))
		return DescribeLogImage(img), err
	})
}

// diffRegions compares two 64 MiB legs and returns the regions that differ.
func diffRegions(a, b string) (map[int]bool, error) {
	out := map[int]bool{}
	for off := 0; off < legBytes; off += 8 * mib {
		da, db, err := readBoth(a, b, int64(off), 8*mib)
		if err != nil {
			return nil, err
		}
		for i := 0; i < len(da); i += regionBytes {
			if string(da[i:i+regionBytes]) != string(db[i:i+regionBytes]) {
				out[(off+i)/regionBytes] = true
			}
		}
	}
	return out, nil
}

func setString(m map[int]bool) string {
	var v []int
	for r := range m {
		v = append(v, r)
	}
	sort.Ints(v)
	return strings.TrimSpace(runs(v))
}
