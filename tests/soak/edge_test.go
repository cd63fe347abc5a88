//go:build linux

package main

// Faults at start and at the edges (the "Hardening" issue, part 3), each
// against the real dlogd binary: a clear message, a non-zero exit where
// dlogd cannot start, and no lost state of the other logs.

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/ulog"
)

func normal() runMode { return runMode{name: "normal"} }

// TestEdgeSocketInUse: a second dlogd on the socket of a live one is
// refused with exit 1 and says why; so is one whose socket path is a
// regular file (left alone); one with the live one's pidfile exits 2. The
// live daemon, its socket and its logs are unharmed.
func TestEdgeSocketInUse(t *testing.T) {
	dir := t.TempDir()
	a := startTestDaemon(t, dir, "a", normal())
	c := dialTest(t, a)
	b := newBystander(t, c, dir)

	out, code := runDlogd(t, "serve", "--transport", "unix:"+a.sock, "--pidfile", filepath.Join(dir, "b.pid"), "--no-mlock")
	msg := lineWith(out, "cannot listen")
	if code != 1 || !strings.Contains(msg, "in use") || !strings.Contains(msg, a.sock) {
		t.Errorf("second dlogd on a live socket: exit %d, want 1 and a message saying the socket is in use:\n%s", code, out)
	}
	t.Logf("socket in use: exit %d: %s", code, shortMsg(msg))
	if _, err := os.Stat(filepath.Join(dir, "b.pid")); !os.IsNotExist(err) {
		t.Errorf("the refused dlogd left its pidfile behind (%v)", err)
	}

	out, code = runDlogd(t, "serve", "--transport", "unix:"+filepath.Join(dir, "c.sock"), "--pidfile", a.pidfile, "--no-mlock")
	if msg := lineWith(out, "another log daemon (dlogd or cmirrord) is running"); code != 2 || msg == "" {
		t.Errorf("second dlogd on a live pidfile: exit %d, want 2 and \"another log daemon (dlogd or cmirrord) is running\":\n%s", code, out)
	} else {
		t.Logf("pidfile in use: exit %d: %s", code, shortMsg(msg))
	}

	precious := filepath.Join(dir, "precious")
	if err := os.WriteFile(precious, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runDlogd(t, "serve", "--transport", "unix:"+precious, "--pidfile", filepath.Join(dir, "d.pid"), "--no-mlock")
	if msg := lineWith(out, "not a socket"); code != 1 || msg == "" {
		t.Errorf("dlogd on a regular file: exit %d, want 1 and \"not a socket\":\n%s", code, out)
	} else {
		t.Logf("socket path is a file: exit %d: %s", code, shortMsg(msg))
	}
	if got, _ := os.ReadFile(precious); string(got) != "not a socket" {
		t.Errorf("the file at the socket path was changed: %q", got)
	}

	if a.p.exited() {
		t.Fatalf("the live dlogd died: %v", a.p.err)
	}
	if fi, err := os.Lstat(a.sock); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("the live dlogd's socket is gone: %v", err)
	}
	b.check("after a second dlogd tried its socket")
	b.l.c = dialTest(t, a)
	b.check("over a new connection")
}

// TestEdgePidfileDirUnwritable: dlogd exits 1 with a message naming the
// pidfile and telling to use --pidfile, before it listens.
func TestEdgePidfileDirUnwritable(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	how := "chmod 0555"
	if os.Geteuid() == 0 {
		// Root writes through modes: make the directory immutable.
		how = "chattr +i"
		if err := setImmutable(run, true); err != nil {
			t.Skipf("cannot make a directory unwritable for root here (%v)", err)
		}
		t.Cleanup(func() { setImmutable(run, false) })
	} else {
		if err := os.Chmod(run, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(run, 0o755) })
	}
	for _, tc := range []struct{ name, pidfile, why string }{
		{"unwritable (" + how + ")", filepath.Join(run, "dlogd.pid"), ""},
		{"missing", filepath.Join(dir, "nodir", "dlogd.pid"), "no such file or directory"},
	} {
		sock := filepath.Join(dir, "d.sock")
		out, code := runDlogd(t, "serve", "--transport", "unix:"+sock, "--pidfile", tc.pidfile, "--no-mlock")
		msg := lineWith(out, "pidfile")
		why := tc.why
		if why == "" {
			why = "operation not permitted"
			if !strings.Contains(msg, why) {
				why = "permission denied"
			}
		}
		if code != 1 || !strings.Contains(msg, "--pidfile") || !strings.Contains(msg, tc.pidfile) || !strings.Contains(msg, why) {
			t.Errorf("pidfile directory %s: exit %d, want 1 and a message naming %s, %q and --pidfile:\n%s", tc.name, code, tc.pidfile, why, out)
		}
		t.Logf("pidfile directory %s: exit %d: %s", tc.name, code, shortMsg(msg))
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("pidfile directory %s: dlogd left a socket behind (%v)", tc.name, err)
		}
	}
}

// TestEdgeLogDevice: CTR with the log device missing, too small or
// read-only, a device that turns read-only, replaced between CTR and
// RESUME, or on a full filesystem. Each gives a clear message; the
// bystander log on the same daemon loses nothing.
func TestEdgeLogDevice(t *testing.T) {
	dir := t.TempDir()
	d := startTestDaemon(t, dir, "dlogd", normal())
	c := dialTest(t, d)
	b := newBystander(t, c, dir)
	root := os.Geteuid() == 0
	const regions = 8192

	// ctrRefused: CTR on dev gets -EINVAL, dlogd's log says every want,
	// and no half-made log is left (a request for it gets -ESRCH).
	ctrRefused := func(t *testing.T, uuid, dev string, wants ...string) {
		t.Helper()
		l := newTlog(c, uuid, diskCtr(dev, regions), regions)
		res := l.ctrReq()
		msg := d.waitLine("CTR failed", "uuid="+uuid)
		if res != fakekernel.EINVAL {
			t.Errorf("CTR on %s: %d, want %d (-EINVAL)", dev, res, fakekernel.EINVAL)
		}
		for _, w := range wants {
			if !strings.Contains(msg, w) {
				t.Errorf("CTR on %s: dlogd's message %q does not say %q", dev, msg, w)
			}
		}
		t.Logf("CTR on %s: %d: %s", filepath.Base(dev), res, shortMsg(msg))
		if res, _ := l.req(ulog.TypeIsClean, u64(0)); res != fakekernel.ESRCH {
			t.Errorf("after the refused CTR a request for the log got %d, want -ESRCH (no log)", res)
		}
	}

	t.Run("missing", func(t *testing.T) {
		c.use(t)
		ctrRefused(t, "missing", filepath.Join(dir, "nope.img"), "nope.img", "no such file or directory")
		b.check("missing device")
	})

	t.Run("too small", func(t *testing.T) {
		c.use(t)
		p := filepath.Join(dir, "small.img")
		mustFile(t, p, 512)
		ctrRefused(t, "small", p, "small.img", "too small", "need 2048 bytes, have 512")
		b.check("device too small")
	})

	t.Run("read-only file", func(t *testing.T) {
		c.use(t)
		p := filepath.Join(dir, "ro.img")
		mustFile(t, p, 1<<20)
		why := "permission denied"
		if root {
			if err := setImmutable(p, true); err != nil {
				t.Skipf("chattr +i: %v", err)
			}
			t.Cleanup(func() { setImmutable(p, false) })
			why = "operation not permitted"
		} else if err := os.Chmod(p, 0o400); err != nil {
			t.Fatal(err)
		}
		ctrRefused(t, "rofile", p, "ro.img", why)
		b.check("read-only file")
	})

	t.Run("read-only filesystem", func(t *testing.T) {
		c.use(t)
		if !root {
			t.Skip("needs root for a read-only bind mount")
		}
		src, mnt := filepath.Join(dir, "rosrc"), filepath.Join(dir, "romnt")
		if err := os.Mkdir(src, 0o755); err != nil {
			t.Fatal(err)
		}
		mustFile(t, filepath.Join(src, "log.img"), 1<<20)
		if err := bindReadOnly(src, mnt); err != nil {
			t.Skipf("read-only bind mount: %v", err)
		}
		t.Cleanup(func() { unmount(mnt) })
		ctrRefused(t, "rofs", filepath.Join(mnt, "log.img"), "log.img", "read-only file system")
		b.check("read-only filesystem")
	})

	t.Run("read-only block device", func(t *testing.T) {
		c.use(t)
		if !root {
			t.Skip("needs root for a loop device")
		}
		lp, err := attachLoopMode(filepath.Join(dir, "roloop.img"), 1<<20, true)
		if err != nil {
			t.Skipf("read-only loop device: %v", err)
		}
		t.Cleanup(func() { lp.Detach() })
		// A read-only block device opens for writing; only writes fail.
		// The kernel's disk log would fail at table load; dlogd must
		// refuse the CTR too, saying the device is read-only.
		l := newTlog(c, "roloop", diskCtr(lp.MajMin(), regions), regions)
		res := l.ctrReq()
		if res == 0 {
			// What dlogd does today: see what the failure looks like.
			l.must(ulog.TypeGetRegionSize, nil)
			rres, _ := l.req(ulog.TypeResume, nil)
			st := l.status()
			msg := d.waitLine("log device failed", "uuid=roloop")
			t.Errorf("BUG: CTR on the read-only block device %s (%s) succeeded (the kernel's disk log fails the table load); "+
				"the failure only shows at RESUME: %d, status %q, and dlogd says: %s", lp.Dev, lp.MajMin(), rres, st, shortMsg(msg))
			l.req(ulog.TypePresuspend, nil)
			l.req(ulog.TypePostsuspend, nil)
			l.must(ulog.TypeDtr, nil)
		} else {
			msg := d.waitLine("CTR failed", "uuid=roloop")
			if res != fakekernel.EINVAL || !strings.Contains(msg, "read-only") {
				t.Errorf("CTR on a read-only block device: %d, message %q; want -EINVAL and \"read-only\"", res, msg)
			}
			t.Logf("CTR on a read-only block device: %d: %s", res, shortMsg(msg))
		}
		b.check("read-only block device")
	})

	t.Run("turns read-only", func(t *testing.T) {
		c.use(t)
		if !root {
			t.Skip("needs root for a loop device")
		}
		lp, err := attachLoop(filepath.Join(dir, "rwloop.img"), 1<<20)
		if err != nil {
			t.Skipf("loop device: %v", err)
		}
		t.Cleanup(func() { setReadOnly(lp.Dev, false); lp.Detach() })
		l := newTlog(c, "turnsro", diskCtr(lp.MajMin(), regions), regions)
		l.activate()
		l.clean(10, 20, 30)
		if res := l.markFlush(10, 20); res != 0 {
			t.Fatalf("FLUSH: %d", res)
		}
		if err := setReadOnly(lp.Dev, true); err != nil {
			t.Skipf("BLKROSET: %v", err)
		}
		res := l.markFlush(30)
		st := l.status()
		msg := d.waitLine("log device failed", "uuid=turnsro")
		if res != fakekernel.EIO || !strings.HasSuffix(st, " D") || !strings.Contains(msg, "operation not permitted") {
			t.Errorf("FLUSH on a device turned read-only: %d, status %q, message %q; want -EIO, D, \"operation not permitted\"", res, st, msg)
		}
		t.Logf("device turned read-only: FLUSH %d, status %q: %s", res, st, shortMsg(msg))
		l.expectDirty("device turned read-only", 10, 20)
		// Writable again: a reload (a new instance) clears D; nothing lost.
		if err := setReadOnly(lp.Dev, false); err != nil {
			t.Fatal(err)
		}
		l2 := reload(t, l)
		if st := l2.status(); !strings.HasSuffix(st, " A") {
			t.Errorf("after the reload on a writable device: status %q, want A", st)
		}
		l2.expectDirty("after the reload", 10, 20)
		l2.deactivate()
		b.check("device turned read-only")
	})

	t.Run("replaced between CTR and RESUME", func(t *testing.T) {
		c.use(t)
		orig := filepath.Join(dir, "replaced.img")
		mustFile(t, orig, 1<<20)
		marked := []uint64{5, 900, 8000}
		cleared := []uint64{6, 901, 8001}
		// A first life on the device: every region dirty (a fresh log),
		// cleared ones clean, marked ones marked.
		l1 := newTlog(c, "replaced", diskCtr(orig, regions), regions)
		l1.activate()
		l1.must(ulog.TypeClearRegion, regionList(cleared))
		if res := l1.markFlush(marked...); res != 0 {
			t.Fatalf("FLUSH: %d", res)
		}
		l1.deactivate()
		// Another valid image where every region is clean (nosync).
		other := filepath.Join(dir, "other.img")
		mustFile(t, other, 1<<20)
		lo := newTlog(c, "other", fmt.Sprintf("%d clustered-disk %s 8 nosync", regions*8, other), regions)
		lo.activate()
		lo.deactivate()
		otherImg, err := os.ReadFile(other)
		if err != nil {
			t.Fatal(err)
		}
		keep, err := os.Open(orig) // the original inode, to look at later
		if err != nil {
			t.Fatal(err)
		}
		defer keep.Close()

		l2 := newTlog(c, "replaced", diskCtr(orig, regions), regions)
		if res := l2.ctrReq(); res != 0 {
			t.Fatalf("CTR: %d", res)
		}
		if err := os.Rename(other, orig); err != nil {
			t.Fatal(err)
		}
		l2.must(ulog.TypeGetRegionSize, nil)
		l2.must(ulog.TypeResume, nil)
		// RESUME read the device opened at CTR, not the file now at the
		// path: the marks are dirty and the cleared regions clean.
		l2.expectDirty("RESUME after the path was replaced", marked...)
		for _, r := range cleared {
			if l2.isClean(r) != 1 {
				t.Errorf("region %d, clean on the original device, reads dirty: RESUME did not read the original", r)
			}
		}
		if res := l2.markFlush(4242); res != 0 {
			t.Fatalf("FLUSH: %d", res)
		}
		l2.deactivate()
		now, err := os.ReadFile(orig)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(now, otherImg) {
			t.Errorf("dlogd wrote into the replacement file at %s, which it never opened", orig)
		}
		img := make([]byte, 2048)
		if _, err := keep.ReadAt(img, 0); err != nil {
			t.Fatal(err)
		}
		for _, r := range append(marked, 4242) {
			if img[1024+r/8]&(1<<(r%8)) != 0 {
				t.Errorf("the original device does not hold the mark of region %d", r)
			}
		}
		t.Logf("path replaced between CTR and RESUME: dlogd keeps the device it opened at CTR; RESUME read it (marks dirty), new marks went to it, the replacement was left untouched")
		b.check("device replaced between CTR and RESUME")
	})

	t.Run("disk full", func(t *testing.T) {
		c.use(t)
		if !root {
			t.Skip("needs root to mount a small tmpfs")
		}
		mnt, err := os.MkdirTemp("", "dlog-soak-edge-full-")
		if err != nil {
			t.Fatal(err)
		}
		if err := mountTmpfs(mnt, 256<<10); err != nil {
			os.Remove(mnt)
			t.Skipf("tmpfs: %v", err)
		}
		t.Cleanup(func() { unmount(mnt); os.Remove(mnt) })
		p := filepath.Join(mnt, "full.img")
		const big = 65536 // regions: a 9 KiB image on a sparse 64 KiB file
		mustFile(t, p, 64<<10)
		filler := filepath.Join(mnt, "filler")
		if _, err := fill(filler); err != nil {
			t.Fatal(err)
		}
		l := newTlog(c, "full", diskCtr(p, big), big)
		if res := l.ctrReq(); res != 0 {
			t.Fatalf("CTR on a sparse file of the right size: %d", res)
		}
		l.must(ulog.TypeGetRegionSize, nil)
		rres, _ := l.req(ulog.TypeResume, nil)
		st := l.status()
		l.must(ulog.TypeClearRegion, regionList([]uint64{100, 60000}))
		fres := l.markFlush(100)
		msg := d.waitLine("log device failed", "uuid=full")
		if rres != fakekernel.EIO || !strings.HasSuffix(st, " D") || fres != fakekernel.EIO || !strings.Contains(msg, "no space left on device") {
			t.Errorf("log on a full filesystem: RESUME %d, status %q, FLUSH %d, message %q; want -EIO, D, -EIO, \"no space left on device\"", rres, st, fres, msg)
		}
		t.Logf("disk full: RESUME %d, status %q, FLUSH %d: %s", rres, st, fres, shortMsg(msg))
		// Space again: the next flush writes what failed; D stays until
		// the log is reloaded, which clears it.
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		l.must(ulog.TypeClearRegion, regionList([]uint64{200, 50000}))
		if res := l.markFlush(200); res != 0 {
			t.Errorf("FLUSH once space is back: %d, want 0", res)
		}
		if st := l.status(); !strings.HasSuffix(st, " D") {
			t.Errorf("after a good flush: status %q, want D until the log is reloaded", st)
		}
		l2 := reload(t, l)
		if st := l2.status(); !strings.HasSuffix(st, " A") {
			t.Errorf("after the reload: status %q, want A", st)
		}
		l2.expectDirty("disk full, then space back and a reload", 100, 200)
		for _, r := range []uint64{60000, 50000} {
			if l2.isClean(r) != 1 {
				t.Errorf("region %d, cleared and flushed once space was back, reads dirty after the reload", r)
			}
		}
		l2.deactivate()
		b.check("disk full")
	})
}

// reload is a live reload of l onto a new instance: CTR(new), GET_REGION_SIZE,
// PRESUSPEND(old), POSTSUSPEND(old), RESUME(new), DTR(old).
func reload(t *testing.T, l *tlog) *tlog {
	t.Helper()
	n := newTlog(l.c, l.uuid, l.ctr, l.regions)
	if res := n.ctrReq(); res != 0 {
		t.Fatalf("reload CTR: %d", res)
	}
	n.must(ulog.TypeGetRegionSize, nil)
	l.req(ulog.TypePresuspend, nil)
	l.req(ulog.TypePostsuspend, nil)
	n.must(ulog.TypeResume, nil)
	l.must(ulog.TypeDtr, nil)
	return n
}

// TestEdgeDeviceGoneAtReconnect: dlogd is killed, a log's device file
// disappears, dlogd restarts. The kernel's reconnect for the other log
// works and finds its marks; the reconnect CTR for the lost one fails with
// a message naming the file (the kernel retries every 2 s); once a device
// is back the reconnect completes, with a fresh log: every region dirty.
func TestEdgeDeviceGoneAtReconnect(t *testing.T) {
	dir := t.TempDir()
	d := startTestDaemon(t, dir, "dlogd", normal())
	c := dialTest(t, d)
	b := newBystander(t, c, dir)
	const regions = 8192
	gone := filepath.Join(dir, "gone.img")
	mustFile(t, gone, 1<<20)
	x := newTlog(c, "gone", diskCtr(gone, regions), regions)
	x.activate()
	if res := x.markFlush(5, 6); res != 0 {
		t.Fatalf("FLUSH: %d", res)
	}
	d.kill()
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	d2 := startTestDaemon(t, dir, "dlogd2", normal())
	c2 := dialTest(t, d2)
	b.l.c, x.c = c2, c2

	reconnect := func(l *tlog) int32 {
		t.Helper()
		if res, _ := l.req(ulog.TypeIsClean, u64(0)); res != fakekernel.ESRCH {
			t.Fatalf("first request after the restart: %d, want -ESRCH (a log whose device is gone is not restored)", res)
		}
		res, _ := c2.call(ulog.TypeCtr, l.uuid, l.luid, []byte(l.ctr+"\x00"), 0)
		if res == 0 {
			l.must(ulog.TypeResume, nil)
		}
		return res
	}
	// The bystander was restored from the state directory: served at once.
	if res, _ := b.l.req(ulog.TypeIsClean, u64(0)); res != 0 {
		t.Fatalf("bystander after the restart: %d, want it restored and served", res)
	}
	b.check("after a restart")

	res := reconnect(x)
	msg := d2.waitLine("CTR failed", "uuid=gone")
	if res != fakekernel.EINVAL || !strings.Contains(msg, "gone.img") || !strings.Contains(msg, "no such file or directory") {
		t.Errorf("reconnect CTR with the device gone: %d, message %q; want -EINVAL naming the file", res, msg)
	}
	t.Logf("device gone at reconnect: CTR %d: %s", res, shortMsg(msg))
	b.check("while another log's device is gone")

	mustFile(t, gone, 1<<20)
	if res, _ := c2.call(ulog.TypeCtr, x.uuid, x.luid, []byte(x.ctr+"\x00"), 0); res != 0 {
		t.Fatalf("reconnect CTR once a device is back: %d", res)
	}
	x.must(ulog.TypeResume, nil)
	x.expectDirty("a fresh log after the device came back", 5, 6, 7, 8191)
	b.check("after the other log came back")
}

// A dlogd killed -9 after answering a disk log's POSTSUSPEND (the RESUME of
// the suspend/resume cycle still to come) is restarted with the log
// suspended. Until the RESUME, it must answer IS_CLEAN as the dead process
// did: the acknowledged marks dirty, not the constructor's all-clean bits.
// The soak found 66 marks lost this way (its kernel checked the log while
// the POSTSUSPEND reply was lost with the daemon).
func TestEdgeKilledWhileSuspended(t *testing.T) {
	dir := t.TempDir()
	d := startTestDaemon(t, dir, "dlogd", normal())
	c := dialTest(t, d)
	const regions = 8192
	dev := filepath.Join(dir, "log.img")
	mustFile(t, dev, 1<<20)
	x := newTlog(c, "suspended", diskCtr(dev, regions), regions)
	x.activate()
	x.clean(5, 6, 7, 8191)
	if res := x.markFlush(5, 6, 8191); res != 0 {
		t.Fatalf("FLUSH: %d", res)
	}
	x.must(ulog.TypePresuspend, nil)
	x.must(ulog.TypePostsuspend, nil)
	d.kill()

	d2 := startTestDaemon(t, dir, "dlogd2", normal())
	x.c = dialTest(t, d2)
	if line := d2.waitLine("log state restored", "uuid=suspended"); !strings.Contains(line, "phase=suspended") {
		t.Fatalf("dlogd did not restore the log suspended: %q", line)
	}
	x.expectDirty("restored suspended, before the RESUME", 5, 6, 8191)
	if x.isClean(7) != 1 {
		t.Errorf("region 7, cleared and flushed, reads dirty after the restore")
	}
	x.must(ulog.TypeResume, nil)
	x.expectDirty("after the RESUME", 5, 6, 8191)
	if x.isClean(7) != 1 {
		t.Errorf("region 7, cleared and flushed, reads dirty after the RESUME")
	}
}
