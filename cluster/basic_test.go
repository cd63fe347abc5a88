package cluster

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/internal/testutil/poll"
)

func testLogger() *slog.Logger {
	if testing.Verbose() && os.Getenv("DLOG_CLUSTER_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testOptions(tr *FakeNode) Options {
	return Options{Messenger: tr, Logger: testLogger(), JoinTimeout: 10 * time.Second, WorkTimeout: time.Second, Reserve: 300 * time.Millisecond, GrantWait: time.Second,
		FenceConfirm: tr.net.Fenced}
}

// logDevice makes a zeroed log device file.
func logDevice(t testing.TB, size int64) string {
	p := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func ctr(t testing.TB, s string) engine.Config {
	c, err := engine.ParseCtr(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func openNode(t testing.TB, net *FakeNet, id uint32, c engine.Config) *Log {
	t.Helper()
	return openWith(t, net, id, c, nil)
}

// openWith opens node id's log with testOptions changed by opt.
func openWith(t testing.TB, net *FakeNet, id uint32, c engine.Config, opt func(*Options)) *Log {
	t.Helper()
	o := testOptions(net.Node(id))
	if opt != nil {
		opt(&o)
	}
	l, err := Open("uuid-1", c, engine.Options{Logger: testLogger()}, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// threeNodes opens nodes 1 to 3 with opt, resumes the first (it founds
// the state), then the other two.
func threeNodes(t testing.TB, net *FakeNet, c engine.Config, opt func(*Options)) (*Log, *Log, *Log) {
	t.Helper()
	a, b, d := openWith(t, net, 1, c, opt), openWith(t, net, 2, c, opt), openWith(t, net, 3, c, opt)
	resume(t, a)
	resume(t, b, d)
	return a, b, d
}

func resume(t testing.TB, ls ...*Log) {
	t.Helper()
	errs := make(chan error, len(ls))
	for _, l := range ls {
		go func() { errs <- l.Resume() }()
	}
	for range ls {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Each resumed member sees the others synced in its state (it may
	// apply the STATE that made them synced after their RESUME returned):
	// its first batch is then its share of the log among them.
	waitFor(t, "every resumed member synced in each one's state", func() bool {
		for _, l := range ls {
			l.mu.Lock()
			ok := true
			for _, o := range ls {
				ok = ok && l.st.isSynced(o.me)
			}
			l.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
}

// coreAndDisk runs test as a subtest for each cluster log type, with the
// CTR arguments after the region count and type's device.
func coreAndDisk(t *testing.T, test func(*testing.T, string)) {
	for _, args := range []string{"clustered-core 1024", "clustered-disk " + logDevice(t, 1<<20) + " 1024"} {
		t.Run(strings.Fields(args)[0], func(t *testing.T) { test(t, args) })
	}
}

// freshPair resumes two nodes on a fresh 4-region clustered-core log:
// every region to resync. They are closed at the end of the test.
func freshPair(t *testing.T) (*Log, *Log) {
	t.Helper()
	a, b, _ := pairOn(t, "4096 clustered-core 1024")
	return a, b
}

// pairOn resumes nodes 1 and 2 on a log with this CTR table; they are
// closed at the end of the test.
func pairOn(t *testing.T, table string) (*Log, *Log, *FakeNet) {
	t.Helper()
	c := ctr(t, table)
	net := NewFakeNet(2)
	a, b := openNode(t, net, 1, c), openNode(t, net, 2, c)
	t.Cleanup(func() { a.Close(); b.Close() })
	resume(t, a, b)
	return a, b, net
}

// mustWork asks l for resync work (GET_RESYNC_WORK) and fails the test
// unless it hands a region; it returns the region.
func mustWork(t testing.TB, l *Log) uint64 {
	t.Helper()
	r, ok, err := l.GetResyncWork()
	if err != nil || !ok {
		t.Fatalf("GET_RESYNC_WORK = %v, %v; want a region", ok, err)
	}
	return r
}

func mustFlush(t testing.TB, l *Log, rs ...uint64) {
	t.Helper()
	for _, r := range rs {
		if err := l.MarkRegion(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, what, 10*time.Second, 2*time.Millisecond, cond)
}

func replicatedInSync(l *Log, r uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.sync.Test(r)
}

func TestBasicCore(t *testing.T) { testBasic(t, "clustered-core 1024") }

func TestBasicDisk(t *testing.T) {
	testBasic(t, "clustered-disk "+logDevice(t, 1<<20)+" 1024")
}

// testBasic: three members join; the first founds, the others get the
// state; hand-outs go to one member at a time and are vetoed where a node
// has the region marked; a killed node's marks become out of sync on the
// survivors.
func testBasic(t *testing.T, args string) {
	c := ctr(t, "65536 "+args+" nosync")
	net := NewFakeNet(3)
	a, b, d := threeNodes(t, net, c, nil)
	for _, l := range []*Log{a, b, d} {
		if in := l.Info(); !in.Synced || len(in.Members) != 3 {
			t.Fatalf("%s: %+v", in.Me, in)
		}
		if n := l.SyncCount(); n != 64 {
			t.Fatalf("sync count %d, want 64 (nosync)", n)
		}
	}
	// Everything in sync: no work.
	if _, ok, _ := a.GetResyncWork(); ok {
		t.Fatal("work handed out on a log in sync")
	}
	mustFlush(t, a, 3, 4)
	mustFlush(t, b, 10)
	// b fails a write on 10: out of sync, and only b may resync it.
	if err := b.SetRegionSync(10, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "region 10 out of sync on a", func() bool { return !replicatedInSync(a, 10) })
	if _, ok, _ := a.GetResyncWork(); ok {
		t.Fatal("a got region 10, which b holds as NOSYNC")
	}
	// Kill a: its acknowledged marks 3 and 4 become out of sync.
	net.Kill(1)
	a.crash()
	for _, l := range []*Log{b, d} {
		waitFor(t, "a's marks out of sync", func() bool { return !replicatedInSync(l, 3) && !replicatedInSync(l, 4) })
	}
	// The survivors recover them, each region by one member at a time,
	// once a is confirmed fenced (until then GET_RESYNC_WORK answers "no
	// work" at once: the kernels ask again when woken).
	got := map[uint64]bool{}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !(got[3] && got[4]); {
		rd, okd, _ := d.GetResyncWork()
		rb, okb, _ := b.GetResyncWork()
		if okd && okb && rd == rb {
			t.Fatalf("region %d handed to two members", rd)
		}
		if !okd && !okb {
			time.Sleep(20 * time.Millisecond)
		}
		for _, x := range []struct {
			l  *Log
			r  uint64
			ok bool
		}{{d, rd, okd}, {b, rb, okb}} {
			if x.ok {
				if x.r == 10 && x.l == d {
					t.Fatal("d got region 10, which b holds as NOSYNC")
				}
				got[x.r] = true
				if err := x.l.SetRegionSync(x.r, true); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if !got[3] || !got[4] {
		t.Fatalf("recovered %v, want 3 and 4", got)
	}
	b.Close()
	d.Close()
}

// TestFoundOnce: two nodes resume while partitioned (each alone in its
// view, not quorate); quorum appears together with the merged view, while
// each node still has its own old-view ANNOUNCE to process (corosync
// updates the quorum flag before it delivers the merged CPG view). Exactly
// one of them founds the state, and both end with it (no split brain):
// founding waits for an intent delivered in the view it founds in.
func TestFoundOnce(t *testing.T) {
	for round := 0; round < 5; round++ {
		c := ctr(t, "65536 clustered-core 1024")
		net := NewFakeNet(3)
		net.Node(3)
		net.Partition(func(uint32) bool { return false }, []uint32{1}, []uint32{2})
		net.Hold(1, 2)
		a, b := openNode(t, net, 1, c), openNode(t, net, 2, c)
		errs := make(chan error, 2)
		go func() { errs <- a.Resume() }()
		go func() { errs <- b.Resume() }()
		// Each has seen its join and sent its ANNOUNCE, held.
		waitFor(t, "both announced", func() bool {
			a.mu.Lock()
			defer a.mu.Unlock()
			b.mu.Lock()
			defer b.mu.Unlock()
			return a.roundNo > 0 && b.roundNo > 0 && len(a.sendq) == 0 && len(b.sendq) == 0 && a.seq > 0 && b.seq > 0
		})
		net.Heal(nil)
		net.Release()
		for range 2 {
			if err := <-errs; err != nil {
				for _, l := range []*Log{a, b} {
					l.mu.Lock()
					for i, ev := range l.queue {
						if !ev.cc {
							m, _ := l.codec.decode(ev.msg)
							t.Logf("  queue %d: %s from %s seq %d members %d", i, m.Type, ev.from, m.Seq, m.Members)
						} else {
							t.Logf("  queue %d: cc %v left %v joined %v", i, ev.members, ev.left, ev.joined)
						}
					}
					t.Logf("%s: status %d cur %v round %v resolved %v roundNo %d intent %d seq %d events %d queue %d failed %v",
						l.me, l.status, l.cur, l.round, l.resolved, l.roundNo, l.foundIntent, l.seq, len(l.events), len(l.queue), l.failed)
					t.Logf("sendq %d; fake inboxes %v", len(l.sendq), net.inboxes())
					l.mu.Unlock()
				}
				t.Fatalf("round %d: %v", round, err)
			}
		}
		ia, ib := a.Info(), b.Info()
		if ia.Founded == ib.Founded {
			t.Fatalf("round %d: founded a=%v b=%v, want exactly one", round, ia.Founded, ib.Founded)
		}
		for _, l := range []*Log{a, b} {
			l.mu.Lock()
			failed := l.failed
			l.mu.Unlock()
			if failed != nil {
				t.Fatalf("round %d: %v", round, failed)
			}
		}
		a.Close()
		b.Close()
	}
}

// TestAbortedSuspend: PRESUSPEND followed by RESUME without POSTSUSPEND (a
// suspend that was aborted) restarts recovery.
func TestAbortedSuspend(t *testing.T) {
	c := ctr(t, "65536 clustered-core 1024")
	net := NewFakeNet(1)
	l := openNode(t, net, 1, c)
	resume(t, l)
	l.Presuspend()
	if _, ok, _ := l.GetResyncWork(); ok {
		t.Fatal("work handed out while presuspended")
	}
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := l.GetResyncWork(); !ok {
		t.Fatal("no work after the aborted suspend's RESUME")
	}
	l.Close()
}
