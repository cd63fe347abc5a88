package engine_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/header"
)

// The crash test's log: 2^16 regions of 2 sectors, a 9 KiB image over three
// 4 KiB blocks, so flushes write several blocks and kills land between them.
const (
	crashRegions = 1 << 16
	crashLen     = 2 * crashRegions
)

// TestCrash runs a random mark/clear/flush workload in a child process and
// kills it with SIGKILL at random instants, DLOG_CRASH_KILLS times (200 by
// default; `make crash` runs 10,000). After every kill it resumes the log
// and checks that every region whose mark was acknowledged by a completed
// flush, and not cleared since, is dirty: the log may over-report dirty
// regions, never under-report them.
//
// The child reports on a pipe, and the parent trusts only what arrived:
// "C r" before a clear is applied, "M r" after a mark is, "F" after a flush
// returned success.
func TestCrash(t *testing.T) {
	if path := os.Getenv("DLOG_CRASH_CHILD"); path != "" {
		crashChild(path)
		return
	}
	kills := 200
	if s := os.Getenv("DLOG_CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("DLOG_CRASH_KILLS=%q: want a positive number", s)
		}
		kills = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DLOG_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (replay with DLOG_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	bs, _ := header.BufSize(crashRegions, 512)
	path := logFile(t, int64(bs))
	// Regions that must read dirty after the next kill.
	mustDirty := map[uint64]bool{}
	checked := 0
	progress := time.Now()
	for k := 0; k < kills; k++ {
		events := runAndKill(t, path, k, time.Duration(1+rng.IntN(40))*time.Millisecond)
		// Replay the child's report into the model.
		var unacked []uint64
		for _, ev := range events {
			switch ev.op {
			case 'C':
				delete(mustDirty, ev.region)
				unacked = slices.DeleteFunc(unacked, func(x uint64) bool { return x == ev.region })
			case 'M':
				unacked = append(unacked, ev.region)
			case 'F':
				for _, r := range unacked {
					mustDirty[r] = true
				}
				unacked = unacked[:0]
			}
		}
		l := mustOpen(t, crashLen, "disk 2 "+path+" 2")
		if err := l.Resume(); err != nil {
			t.Fatalf("kill %d: resume: %v", k, err)
		}
		for r := range mustDirty {
			if c, _ := l.IsClean(r); c {
				t.Fatalf("kill %d (seed %d): region %d was marked and flushed, but is clean after the crash", k, seed, r)
			}
			checked++
		}
		l.Close()
		if time.Since(progress) > 10*time.Second {
			t.Logf("%d/%d kills, %d acknowledged marks checked", k+1, kills, checked)
			progress = time.Now()
		}
	}
	t.Logf("%d kills, %d acknowledged marks checked, 0 lost", kills, checked)
}

type crashEvent struct {
	op     byte
	region uint64
}

// runAndKill starts the child on path, lets it run for d after it reports
// ready, kills it with SIGKILL and returns everything it reported.
func runAndKill(t *testing.T, path string, k int, d time.Duration) []crashEvent {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
	cmd.Env = append(os.Environ(), "DLOG_CRASH_CHILD="+path, fmt.Sprintf("DLOG_CRASH_CHILD_SEED=%d", k))
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	sc := bufio.NewScanner(r)
	var events []crashEvent
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
			line := sc.Text()
			if line == "R" {
				close(ready)
				continue
			}
			op, arg, _ := strings.Cut(line, " ")
			ev := crashEvent{op: op[0]}
			if arg != "" {
				ev.region, _ = strconv.ParseUint(arg, 10, 64)
			}
			events = append(events, ev)
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("kill %d: child never became ready", k)
	}
	time.Sleep(d)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	<-done
	r.Close()
	return events
}

// crashChild is the child: resume the log, then mark, clear and flush at
// random until killed, reporting on fd 3.
func crashChild(path string) {
	out := os.NewFile(3, "events")
	seed, _ := strconv.ParseUint(os.Getenv("DLOG_CRASH_CHILD_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 99))
	c, err := engine.ParseCtr(fmt.Sprintf("%d disk 2 %s 2", crashLen, path))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := engine.Open(c, engine.Options{Logger: quiet(), IOFallback: seed%2 == 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := l.Resume(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	say := func(s string) {
		if _, err := out.WriteString(s + "\n"); err != nil {
			os.Exit(3)
		}
	}
	say("R")
	// A working set per run, so regions are marked, cleared and marked
	// again, and some are spread over every block of the image.
	hot := make([]uint64, 64)
	for i := range hot {
		hot[i] = rng.Uint64N(crashRegions)
	}
	for {
		r := hot[rng.IntN(len(hot))]
		switch x := rng.IntN(10); {
		case x < 5:
			l.MarkRegion(r)
			say("M " + strconv.FormatUint(r, 10))
		case x < 8:
			say("C " + strconv.FormatUint(r, 10))
			l.ClearRegion(r)
		default:
			if err := l.Flush(); err == nil {
				say("F")
			}
		}
	}
}
