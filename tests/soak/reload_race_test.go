//go:build linux

package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/ulog"
)

// TestReloadWhileServing is the soak's finding as a test: a live reload
// (CTR of a second luid for a uuid whose log is serving, docs/protocol.md §6.4)
// while requests for that uuid keep coming, as they do during every
// `dmsetup reload` of a mirror in use. dlogd's request path reads its log
// table without a lock (copy on write); the CTR must never change a map a
// reader can see. Under the race detector a violation shows as a DATA RACE
// in dlogd's output; without it, as "fatal error: concurrent map read and
// map write" when the runtime catches it, which kills dlogd.
func TestReloadWhileServing(t *testing.T) {
	dir := t.TempDir()
	d := startTestDaemon(t, dir, "dlogd", normal())
	c := dialTest(t, d)
	live := newTlog(c, "LVM-reload", fmt.Sprintf("%d clustered-core 8", 8192*8), 8192)
	live.activate()

	var stop atomic.Bool
	var wg sync.WaitGroup
	var served atomic.Uint64
	for i := range 3 {
		rc := dialTest(t, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := uint64(i); !stop.Load(); r = (r + 7) % 8192 {
				res, _, err := rc.k.roundTrip(t.Context(), &rc.st, &rc.seqs, 10*time.Second, ulog.TypeInSync, live.uuid, live.luid, u64(r), 8)
				if err != nil || res != 0 {
					return // the daemon died: reported below
				}
				served.Add(1)
			}
		}()
	}
	dur := 3 * time.Second
	if s := os.Getenv("DLOG_RELOAD_RACE_DURATION"); s != "" {
		dur, _ = time.ParseDuration(s)
	}
	deadline := time.Now().Add(dur)
	reloads := 0
	var failed error
	for time.Now().Before(deadline) && !d.p.exited() && failed == nil {
		luid := live.luid + 0x1000 + uint64(reloads%2)*0x40
		res, _, err := c.k.roundTrip(t.Context(), &c.st, &c.seqs, 10*time.Second, ulog.TypeCtr, live.uuid, luid, []byte(live.ctr), ulog.MaxCtrReply)
		if err == nil && res == 0 {
			res, _, err = c.k.roundTrip(t.Context(), &c.st, &c.seqs, 10*time.Second, ulog.TypeDtr, live.uuid, luid, nil, 0)
		}
		if err != nil || res != 0 {
			failed = fmt.Errorf("CTR/DTR of a second instance: %d %v", res, err)
		}
		reloads++
	}
	stop.Store(true)
	wg.Wait()
	time.Sleep(100 * time.Millisecond) // the last of dlogd's output
	out := d.out.String()
	t.Logf("%d CTR+DTR of a second luid while %d IN_SYNC were served", reloads, served.Load())
	if i := strings.Index(out, "WARNING: DATA RACE"); i >= 0 {
		t.Errorf("BUG: data race in dlogd between the CTR of a second luid for a uuid in use and the request path:\n%s", head(out[i:], 24))
	}
	if i := strings.Index(out, "fatal error:"); i >= 0 {
		t.Errorf("BUG: dlogd crashed during live reloads:\n%s", head(out[i:], 12))
	} else if d.p.exited() {
		t.Errorf("BUG: dlogd died during live reloads: %v", d.p.err)
	}
	if failed != nil && !t.Failed() {
		t.Error(failed)
	}
}

// head returns at most the first n lines of s.
func head(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
