//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// handover (issue #14 item 5): dlogd adopt and release switch a running
// mirror between the kernel's disk log and dlogd's clustered-disk log on
// the same log device, under writes, with no resync: a poller reads the
// sync count every 20 ms across the whole part and its minimum must stay
// at the full count outside the switches, and never show a resync in
// progress (a count between 0 and full) at all; the legs are equal at the
// end. While the kernel swaps the tables, before the new log's resume,
// its status shows the new log's count before resume, 0 for the kernel's
// disk log (core_ctr) and for a userspace log not resumed yet: I/O is
// held then, and the next sample is the full count again. Then the refusals: a
// core-log mirror and a mirror with a failed leg are left as they were.

// syncFloor samples a mirror's in-sync count until stopped and keeps the
// lowest seen and how often it was read.
type syncFloor struct {
	start   time.Time
	mu      sync.Mutex
	changes []string // "at 1.23 s: 0/128", at most 40
	stop    chan struct{}
	done    sync.WaitGroup
	min     atomic.Uint64 // outside the switches
	partial atomic.Int64  // samples between 0 and full: a resync under way
	window  atomic.Bool   // a switch is running
	samples atomic.Int64
	errs    atomic.Int64
}

func watchSync(name string, regions uint64) *syncFloor {
	f := &syncFloor{stop: make(chan struct{}), start: time.Now()}
	f.min.Store(regions)
	last := regions
	f.done.Add(1)
	go func() {
		defer f.done.Done()
		for {
			select {
			case <-f.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			line, err := dmStatusFast(name)
			if err != nil {
				f.errs.Add(1)
				continue
			}
			st, err := ParseMirrorStatus(line)
			if err != nil {
				f.errs.Add(1)
				continue
			}
			f.samples.Add(1)
			if st.InSync != last {
				f.mark(st.Ratio())
				last = st.InSync
			}
			if st.InSync > 0 && st.InSync < regions {
				f.partial.Add(1)
			}
			if !f.window.Load() && st.InSync < f.min.Load() {
				f.min.Store(st.InSync)
			}
		}
	}()
	return f
}

// mark notes an event (a sync count change, a command) with its time.
func (f *syncFloor) mark(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.changes) < 40 {
		f.changes = append(f.changes, fmt.Sprintf("%.2f s %s", time.Since(f.start).Seconds(), what))
	}
}

func (f *syncFloor) timeline() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.changes) == 0 {
		return "none"
	}
	return strings.Join(f.changes, "; ")
}

func (f *syncFloor) end() (min uint64, samples int64) {
	close(f.stop)
	f.done.Wait()
	return f.min.Load(), f.samples.Load()
}

func scenHandover(s *S) {
	s.Part("adopt, release, adopt under writes: no resync, legs equal", handoverUnderWrites)
	s.Part("refusals leave the mirror as it was", handoverRefusals)
}

// handoverMetrics is where the handover's dlogd serves its metrics.
const handoverMetrics = "127.0.0.1:9342"

// scrapeSeries returns the value of one series on dlogd's /metrics, or
// "absent".
func scrapeSeries(series string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+handoverMetrics+"/metrics", nil)
		if err != nil {
			return "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, series+" "); ok {
				return v, nil
			}
		}
		return "absent", nil
	}
}

func handoverUnderWrites(s *S) {
	s.Do("bring up the loopback interface (for dlogd's metrics)", stepTimeout, func(ctx context.Context) error {
		_, err := run(ctx, "ip", "link", "set", "lo", "up")
		return err
	})
	d := startDlogd(s, "--metrics", handoverMetrics)
	e := newEnv(s, "ho")
	m, legs := newUserMirror(e, logSpec{Type: "disk"}, "ho", legBytes)
	m.create(e, "create with the kernel's disk log")
	s.MustExpect("full resync", m.full(), syncTimeout, syncWait(m.name))
	uuid := "dlogd-" + m.name // the device has no dm uuid
	userTable := fmt.Sprintf("0 %d mirror userspace 4 %s clustered-disk %s %d %s", m.sectors, uuid, m.logMM, m.region, m.legArgs(m.legMM))

	floor := watchSync(m.name, m.regions())
	data := pattern(1414, 16*mib)
	w := writesUnderWay(s, m.dev.Path, data, 50, "the handover")
	dlogdCmd := func(args ...string) func(ctx context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			floor.mark("dlogd " + args[0] + " starts")
			floor.window.Store(true)
			defer func() {
				// One more sample period: the sampler may hold a status
				// read during the swap.
				time.Sleep(50 * time.Millisecond)
				floor.window.Store(false)
				floor.mark("dlogd " + args[0] + " ends")
			}()
			out, err := run(ctx, d.Bin, args...)
			if err != nil {
				return err.Error(), nil
			}
			return strings.SplitN(out, "\n", 2)[0], nil
		}
	}
	adopted := m.name + ": log adopted by dlogd, no resync"
	released := m.name + ": log released to the kernel's disk log, no resync"
	s.MustExpect("dlogd adopt "+m.name+" (writes running)", adopted, time.Minute, dlogdCmd("adopt", m.name, "--pidfile", d.PidFile))
	s.Expect("table after adopt", userTable, stepTimeout, table(m.name))
	s.Expect("dlogd serves the log: phase, in sync", fmt.Sprintf("running %d", m.regions()), stepTimeout,
		dumpField(d, uuid, func(l DumpLog) string { return fmt.Sprintf("%s %d", l.Phase, l.InSync) }))
	// Item 4 on the real kernel: the log's series carry the mirror's
	// device-mapper name (looked up from the tables), and the second adopt
	// (a new CTR, a new luid) continues the same series.
	series := fmt.Sprintf(`dlogd_log_in_sync_regions{name=%q,type="clustered-disk",uuid=%q}`, m.name, uuid)
	s.Expect("metrics: "+series, fmt.Sprint(m.regions()), stepTimeout, scrapeSeries(series))
	s.Do("more writes through dlogd", stepTimeout, func(ctx context.Context) error {
		if err := w.Reach(ctx, w.blocks.Load()+50); !errors.Is(err, errIOFinished) {
			return err
		}
		return nil
	})
	s.MustExpect("dlogd release "+m.name+" (writes running)", released, time.Minute, dlogdCmd("release", m.name))
	s.Expect("table after release: the kernel's disk log again", m.WantTable(), stepTimeout, table(m.name))
	s.MustExpect("dlogd adopt "+m.name+" again", adopted, time.Minute, dlogdCmd("adopt", m.name, "--pidfile", d.PidFile))
	s.Expect("table after the second adopt", userTable, stepTimeout, table(m.name))
	s.Expect("metrics after the second adopt (a new luid): the same series", fmt.Sprint(m.regions()), stepTimeout, scrapeSeries(series))
	s.Do("the writes complete", 3*time.Minute, w.Wait)
	min, n := floor.end()
	s.Check(fmt.Sprintf("lowest sync count outside the switches (%d samples every 20 ms)", n), m.full(), fmt.Sprintf("%d/%d", min, m.regions()))
	s.Check("samples showing a resync under way (between 0 and full)", "0", fmt.Sprint(floor.partial.Load()))
	s.Check("the sync count was sampled", "true", fmt.Sprint(n > 10))
	s.Note("sync count changes and handovers over time", floor.timeline())
	verifyLegs(s, m, legs, 0, data, "the 16 MiB written across three handovers")
	s.Expect("4 KiB blocks where leg B differs from leg A", "none", time.Minute, func(ctx context.Context) (string, error) {
		return diffBlocks(legs[0].Dev, legs[1].Dev, len(data), 4096)
	})
	s.MustExpect("dlogd release "+m.name+" before removing", released, time.Minute, dlogdCmd("release", m.name))
	s.Expect("dmsetup status: the kernel's disk log, in sync, legs alive", m.WantStatus(m.full(), "AA", "A"), stepTimeout, status(m.name))
	m.dev.remove(s, "remove")
}

func handoverRefusals(s *S) {
	d := startDlogd(s)
	e := newEnv(s, "hr")
	m, _ := newUserMirror(e, logSpec{Type: "core"}, "hr", 8*mib)
	m.create(e, "create with the kernel's core log")
	s.MustExpect("full resync", m.full(), syncTimeout, syncWait(m.name))
	s.Expect("dlogd adopt of a core-log mirror is refused", "exit status 1, core log", time.Minute, func(ctx context.Context) (string, error) {
		_, err := run(ctx, d.Bin, "adopt", m.name, "--pidfile", d.PidFile)
		if err == nil {
			return "switched", nil
		}
		got := err.Error()
		if i := strings.Index(got, "exit status"); i >= 0 {
			got = got[i : i+len("exit status 1")]
		}
		if strings.Contains(err.Error(), "core log") {
			got += ", core log"
		}
		return got, nil
	})
	s.Expect("the core-log mirror's table is unchanged", m.WantTable(), stepTimeout, table(m.name))
	s.Expect("and it runs (not suspended)", "ACTIVE", stepTimeout, state(m.name))
	s.Expect("dlogd release of a kernel-log mirror is refused", "refused", time.Minute, func(ctx context.Context) (string, error) {
		_, err := run(ctx, d.Bin, "release", m.name)
		if err != nil && strings.Contains(err.Error(), "refused") {
			return "refused", nil
		}
		return fmt.Sprint(err), nil
	})
	m.dev.remove(s, "remove")
}
