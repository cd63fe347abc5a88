package cluster

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/engine"
)

func testLogger() *slog.Logger {
	if testing.Verbose() && os.Getenv("DLOG_CLUSTER_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testOptions(tr Transport) Options {
	return Options{Transport: tr, Logger: testLogger(), JoinTimeout: 10 * time.Second, WorkTimeout: time.Second, Reserve: 300 * time.Millisecond}
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
	l, err := Open("uuid-1", c, engine.Options{Logger: testLogger()}, testOptions(net.Node(id)))
	if err != nil {
		t.Fatal(err)
	}
	return l
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
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
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
	a, b, d := openNode(t, net, 1, c), openNode(t, net, 2, c), openNode(t, net, 3, c)
	resume(t, a)
	resume(t, b, d)
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
	// The survivors recover them, each region by one member at a time.
	got := map[uint64]bool{}
	for i := 0; i < 10 && !(got[3] && got[4]); i++ {
		rd, okd, _ := d.GetResyncWork()
		rb, okb, _ := b.GetResyncWork()
		if okd && okb && rd == rb {
			t.Fatalf("region %d handed to two members", rd)
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
