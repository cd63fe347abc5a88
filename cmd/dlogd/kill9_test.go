package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/ulog"
)

// TestKill9Persistence kills dlogd with SIGKILL at random instants while a
// client plays the kernel on a clustered-disk log, restarts it, replays the
// kernel's reconnect (CTR with its NUL, then RESUME), and checks that every
// mark acknowledged before the kill, by its MARK_REGION reply or by the
// FLUSH that carried it, is dirty. It runs
// DLOG_KILL9 rounds (25 by default).
func TestKill9Persistence(t *testing.T) {
	rounds := 25
	if s := os.Getenv("DLOG_KILL9"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	if testing.Short() {
		rounds = 5
	}
	dir := t.TempDir()
	dev := filepath.Join(dir, "log.img")
	if err := os.WriteFile(dev, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	const regions = 8192
	ctr := fmt.Sprintf("%d clustered-disk %s 2", 2*regions, dev)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DLOG_KILL9_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (replay with DLOG_KILL9_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	mustDirty := map[uint64]bool{}
	checked := 0
	for round := 0; round < rounds; round++ {
		p := start(t, dir)
		c := dial(t, p.sock)
		// The kernel's reconnect sequence: CTR with the trailing NUL, RESUME.
		c.must(ulog.TypeCtr, "k9", 0xfeed, []byte(ctr+"\x00"))
		c.must(ulog.TypeResume, "k9", 0xfeed, nil)
		for r := range mustDirty {
			e, d, ok := c.call(ulog.TypeIsClean, "k9", 0xfeed, ulog.AppendUint64(nil, r))
			if !ok || e != 0 {
				t.Fatalf("round %d: IS_CLEAN %d: %d %v", round, r, e, ok)
			}
			if v, _ := ulog.Int64(d); v != 0 {
				t.Fatalf("round %d (seed %d): region %d was marked and flushed before a kill, but is clean", round, seed, r)
			}
			checked++
		}
		// The workload, until the daemon dies under it.
		var mu sync.Mutex
		done := make(chan struct{})
		wrng := rand.New(rand.NewPCG(seed, uint64(round)+2))
		go func() {
			rng := wrng
			defer close(done)
			hot := make([]uint64, 48)
			for i := range hot {
				hot[i] = rng.Uint64N(regions)
			}
			var pending []uint64
			for {
				r := hot[rng.IntN(len(hot))]
				switch x := rng.IntN(10); {
				case x < 4:
					// A MARK of a disk log is durable when acknowledged, not
					// only at the FLUSH: a daemon killed in between must not
					// lose it (the kernel would retry the FLUSH on the next
					// daemon and write).
					if e, _, ok := c.call(ulog.TypeMarkRegion, "k9", 0xfeed, ulog.AppendUint64(nil, r)); !ok {
						return
					} else if e == 0 {
						mu.Lock()
						mustDirty[r] = true
						mu.Unlock()
					}
				case x < 6:
					// A clear makes the region free to be clean, before the
					// request is even sent (the daemon may apply it and die).
					mu.Lock()
					delete(mustDirty, r)
					mu.Unlock()
					pending = slices.DeleteFunc(pending, func(x uint64) bool { return x == r })
					if _, _, ok := c.call(ulog.TypeClearRegion, "k9", 0xfeed, ulog.AppendUint64(nil, r)); !ok {
						return
					}
				case x < 8:
					// Integrated flush: the marks ride in the FLUSH.
					e, _, ok := c.call(ulog.TypeFlush, "k9", 0xfeed, ulog.AppendUint64(nil, r))
					if !ok {
						return
					}
					if e == 0 {
						mu.Lock()
						mustDirty[r] = true
						for _, q := range pending {
							mustDirty[q] = true
						}
						mu.Unlock()
						pending = pending[:0]
					}
				default:
					e, _, ok := c.call(ulog.TypeFlush, "k9", 0xfeed, nil)
					if !ok {
						return
					}
					if e == 0 {
						mu.Lock()
						for _, q := range pending {
							mustDirty[q] = true
						}
						mu.Unlock()
						pending = pending[:0]
					}
				}
			}
		}()
		time.Sleep(time.Duration(5+rng.IntN(60)) * time.Millisecond)
		p.cmd.Process.Kill()
		p.wait(t, 10*time.Second)
		<-done
	}
	t.Logf("%d kills, %d acknowledged marks checked after restarts, 0 lost", rounds, checked)
}
