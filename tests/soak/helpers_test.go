//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/internal/testutil/syncbuf"
	"github.com/dlog-dev/dlog/ulog"
)

// testDlogd is the dlogd binary the tests run, built once by TestMain
// (with the race detector when the tests have it).
var testDlogd string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dlog-soak-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDlogd = filepath.Join(dir, "dlogd")
	args := []string{"build", "-tags", "faultinject", "-o", testDlogd}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/dlog-dev/dlog/cmd/dlogd")
	gobin, err := exec.LookPath("go")
	if err == nil {
		var out []byte
		out, err = exec.Command(gobin, args...).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot build dlogd for the tests:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lineWith returns the last line of s containing every sub.
func lineWith(s string, subs ...string) string {
	lines := strings.Split(s, "\n")
outer:
	for i := len(lines) - 1; i >= 0; i-- {
		for _, sub := range subs {
			if !strings.Contains(lines[i], sub) {
				continue outer
			}
		}
		return lines[i]
	}
	return ""
}

// waitLine waits (up to 5 s) for a line of the daemon's output containing
// every sub, and returns it ("" if none came): the log line and the reply
// travel different pipes.
func (d *tdaemon) waitLine(subs ...string) string {
	for i := 0; i < 250; i++ {
		if l := lineWith(d.out.String(), subs...); l != "" {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ""
}

// tdaemon is a dlogd run by a test.
type tdaemon struct {
	t       *testing.T
	sock    string
	pidfile string
	p       *daemonProc
	out     *syncbuf.Buffer
}

// startTestDaemon runs dlogd serve on dir/name.sock with dir/name.pid.
func startTestDaemon(t *testing.T, dir, name string, mode runMode) *tdaemon {
	t.Helper()
	sp := newSpawner()
	t.Cleanup(sp.close) // after the kill below: Pdeathsig follows the spawner's thread
	d := &tdaemon{t: t, sock: filepath.Join(dir, name+".sock"), pidfile: filepath.Join(dir, name+".pid"), out: &syncbuf.Buffer{}}
	p, err := startDaemon(context.Background(), sp, testDlogd, d.sock, d.pidfile, false, mode, nil, d.out)
	if err != nil {
		t.Fatalf("start dlogd: %v\n%s", err, d.out)
	}
	d.p = p
	t.Cleanup(func() {
		if !p.exited() {
			p.signal(syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("dlogd %s output:\n%s", name, d.out)
		}
	})
	return d
}

func (d *tdaemon) kill() {
	d.p.signal(syscall.SIGKILL)
	<-d.p.done
}

// runDlogd runs dlogd to completion and returns its output and exit code.
func runDlogd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testDlogd, args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("dlogd %v did not exit within 30 s:\n%s", args, out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("dlogd %v: %v", args, err)
	}
	return string(out), code
}

// tkernel is a test's fake kernel: one connection, synchronous requests.
type tkernel struct {
	t     *testing.T
	k     *kconn
	st    fakekernel.Stats
	seqs  fakekernel.Seqs
	luids atomic.Uint64
}

// use makes t the test that c reports to (subtests run one at a time).
func (c *tkernel) use(t *testing.T) { c.t = t }

func dialTest(t *testing.T, d *tdaemon) *tkernel {
	t.Helper()
	k, err := dialGen(&generation{sock: d.sock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.close)
	return &tkernel{t: t, k: k}
}

// call sends one request and returns the kernel's result and payload.
func (c *tkernel) call(typ ulog.RequestType, uuid string, luid uint64, data []byte, capacity int) (int32, []byte) {
	c.t.Helper()
	res, d, err := c.k.roundTrip(context.Background(), &c.st, &c.seqs, 10*time.Second, typ, uuid, luid, data, capacity)
	if err != nil {
		c.t.Fatalf("%s: %v", typ, err)
	}
	return res, d
}

// tlog is one log a test drives.
type tlog struct {
	c       *tkernel
	uuid    string
	luid    uint64
	ctr     string
	regions uint64
}

func newTlog(c *tkernel, uuid, ctr string, regions uint64) *tlog {
	return &tlog{c: c, uuid: uuid, luid: 0xffff888200000000 + c.luids.Add(0x200), ctr: ctr, regions: regions}
}

// diskCtr is a clustered-disk constructor for regions regions of 8 sectors.
func diskCtr(dev string, regions uint64) string {
	return fmt.Sprintf("%d clustered-disk %s 8", regions*8, dev)
}

func (l *tlog) req(typ ulog.RequestType, data []byte) (int32, []byte) {
	l.c.t.Helper()
	capacity, ok := ulog.ReplyCapacity(typ)
	if !ok {
		capacity = statusCapacity
	}
	return l.c.call(typ, l.uuid, l.luid, data, capacity)
}

func (l *tlog) must(typ ulog.RequestType, data []byte) []byte {
	l.c.t.Helper()
	res, d := l.req(typ, data)
	if res != 0 {
		l.c.t.Fatalf("%s on %s: error %d", typ, l.uuid, res)
	}
	return d
}

// ctrReq is the table load's CTR: it returns the result.
func (l *tlog) ctrReq() int32 {
	l.c.t.Helper()
	res, _ := l.c.call(ulog.TypeCtr, l.uuid, l.luid, []byte(l.ctr), ulog.MaxCtrReply)
	return res
}

// activate is CTR, GET_REGION_SIZE, RESUME, all expected to succeed.
func (l *tlog) activate() {
	l.c.t.Helper()
	if res := l.ctrReq(); res != 0 {
		l.c.t.Fatalf("CTR %q: error %d", l.ctr, res)
	}
	l.must(ulog.TypeGetRegionSize, nil)
	l.must(ulog.TypeResume, nil)
}

// clean clears rs and flushes: a fresh log starts with every region dirty.
func (l *tlog) clean(rs ...uint64) {
	l.c.t.Helper()
	l.must(ulog.TypeClearRegion, regionList(rs))
	l.must(ulog.TypeFlush, nil)
}

// markFlush marks rs with an integrated FLUSH and returns its result.
func (l *tlog) markFlush(rs ...uint64) int32 {
	l.c.t.Helper()
	res, _ := l.req(ulog.TypeFlush, regionList(rs))
	return res
}

func (l *tlog) isClean(r uint64) int64 {
	l.c.t.Helper()
	v, _ := ulog.Int64(l.must(ulog.TypeIsClean, u64(r)))
	return v
}

func (l *tlog) status() string {
	l.c.t.Helper()
	return strings.TrimRight(string(l.must(ulog.TypeStatusInfo, nil)), "\x00")
}

// deactivate is PRESUSPEND, POSTSUSPEND, DTR.
func (l *tlog) deactivate() {
	l.c.t.Helper()
	l.must(ulog.TypePresuspend, nil)
	l.must(ulog.TypePostsuspend, nil)
	l.must(ulog.TypeDtr, nil)
}

// expectDirty fails unless every region in rs reads dirty.
func (l *tlog) expectDirty(what string, rs ...uint64) {
	l.c.t.Helper()
	for _, r := range rs {
		if l.isClean(r) != 0 {
			l.c.t.Errorf("%s: %s region %d was marked and flushed but reads clean", what, l.uuid, r)
		}
	}
}

// bystander is a disk log with acknowledged marks that an edge fault on
// another log must leave alone.
// mustFile creates a zero-filled file of size bytes at path, failing the
// test when it cannot.
func mustFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := makeFile(path, size); err != nil {
		t.Fatal(err)
	}
}

type bystander struct {
	l     *tlog
	marks []uint64
}

func newBystander(t *testing.T, c *tkernel, dir string) *bystander {
	t.Helper()
	path := filepath.Join(dir, "bystander.img")
	mustFile(t, path, 1<<20)
	b := &bystander{l: newTlog(c, "bystander", diskCtr(path, 8192), 8192)}
	b.l.activate()
	b.l.clean(0, 1, 2, 3, 4, 5, 6, 7, 77, 100, 200, 300, 400, 500, 600, 4000, 8191)
	b.marks = []uint64{3, 77, 4000, 8191}
	if res := b.l.markFlush(b.marks...); res != 0 {
		t.Fatalf("bystander FLUSH: %d", res)
	}
	return b
}

// check: the bystander keeps its marks, its status is A, and it still
// makes new marks durable.
func (b *bystander) check(what string) {
	t := b.l.c.t
	t.Helper()
	b.l.expectDirty(what+": bystander", b.marks...)
	if st := b.l.status(); !strings.HasSuffix(st, " A") {
		t.Errorf("%s: bystander status %q, want A", what, st)
	}
	r := uint64(len(b.marks) * 100)
	if res := b.l.markFlush(r); res != 0 {
		t.Errorf("%s: bystander FLUSH after the fault: error %d", what, res)
	} else {
		b.marks = append(b.marks, r)
	}
}
