package daemon_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/header"
	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/iouring"
	"github.com/dlog-dev/dlog/ulog"
)

// Tests are named after the items of docs/conformance.md they cover.

// coreLog constructs and resumes a 128-region clustered-core log.
func coreLog(t *testing.T, k *kernel, uuid string, luid uint64, extra string) {
	t.Helper()
	if r := k.ctr(uuid, luid, "131072 clustered-core 1024"+extra); r.err != 0 {
		t.Fatalf("CTR: %d", r.err)
	}
	k.ok(ulog.TypeResume, uuid, luid, nil)
}

// diskLog starts a daemon with one resumed clustered-disk log (uuid, luid
// 1) on a fresh 1 MiB file of its own: "regionSize clustered-disk FILE
// args". It returns the kernel and the file.
func diskLog(t *testing.T, uuid, regionSize, args string) (*kernel, string) {
	t.Helper()
	k := newKernel(t, newDaemon(t))
	p := logFile(t, 1<<20)
	if r := k.ctr(uuid, 1, regionSize+" clustered-disk "+p+" "+args); r.err != 0 {
		t.Fatalf("CTR: %d", r.err)
	}
	k.ok(ulog.TypeResume, uuid, 1, nil)
	return k, p
}

// Items 5-8: framing faults are dropped, acked for a resend, or answered
// with an error, never parsed further, and the daemon goes on serving.
func TestItems05to08Framing(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	coreLog(t, k, "u1", 1, " nosync")
	good := ulog.AppendRequest(nil, k.request(ulog.TypeInSync, "u1", 1, regions(3)))
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	le := binary.NativeEndian
	for _, tc := range []struct {
		name  string
		b     []byte
		reply string // "", "ack", "einval"
	}{
		{"empty", nil, ""},
		{"truncated netlink header", good[:10], ""},
		{"nlmsg_len beyond bytes", mut(func(b []byte) []byte { le.PutUint32(b, 400); return b }), ""},
		{"nlmsg_len below 36", mut(func(b []byte) []byte { le.PutUint32(b, 30); return b }), ""},
		{"not NLMSG_DONE", mut(func(b []byte) []byte { le.PutUint16(b[4:], 2); return b }), ""},
		{"foreign connector id", mut(func(b []byte) []byte { le.PutUint32(b[16:], 1); return b }), ""},
		{"cn_msg.len beyond nlmsg_len", mut(func(b []byte) []byte { le.PutUint16(b[32:], 500); return b }), ""},
		{"cn_msg.len below 160", mut(func(b []byte) []byte { le.PutUint16(b[32:], 100); return b }), "ack"},
		{"data_size beyond cn_msg.len", mut(func(b []byte) []byte { le.PutUint32(b[192:], 64); return b }), "einval"},
		{"data_size above 332", mut(func(b []byte) []byte {
			b = append(b[:196], make([]byte, 400)...)
			le.PutUint32(b, uint32(len(b)))
			le.PutUint16(b[32:], uint16(len(b)-36))
			le.PutUint32(b[192:], 400)
			return b
		}), "einval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handle(d, tc.b, k.p)
			select {
			case b := <-k.p.Replies:
				rep := k.check(b)
				switch {
				case tc.reply == "ack" && (!rep.AckOnly || rep.CnAck != uint32(syscall.EAGAIN)):
					t.Fatalf("want ack-only EAGAIN, got %+v", rep)
				case tc.reply == "einval" && (rep.AckOnly || rep.Req.Error != fakekernel.EINVAL):
					t.Fatalf("want -EINVAL, got %+v", rep)
				case tc.reply == "":
					t.Fatalf("want no reply, got %+v", rep)
				}
			case <-time.After(100 * time.Millisecond):
				if tc.reply != "" {
					t.Fatalf("no reply, want %s", tc.reply)
				}
			}
			// The daemon still serves the log.
			if !k.inSync("u1", 1, 3) {
				t.Fatal("log lost its state")
			}
		})
	}
}

// Items 10-13 are checked on every reply by kernel.finish; this test makes
// each request type produce a reply at least once.
func TestItems10to13EveryReply(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	p := logFile(t, 1<<20)
	if r := k.ctr("u", 7, "131072 clustered-disk "+p+" 1024"); r.err != 0 {
		t.Fatal(r.err)
	}
	k.u64(ulog.TypeGetRegionSize, "u", 7)
	k.u64(ulog.TypeGetSyncCount, "u", 7)
	k.ok(ulog.TypeResume, "u", 7, nil)
	k.isClean("u", 7, 0)
	k.inSync("u", 7, 0)
	k.ok(ulog.TypeMarkRegion, "u", 7, regions(1, 2))
	k.ok(ulog.TypeClearRegion, "u", 7, regions(1))
	k.ok(ulog.TypeFlush, "u", 7, nil)
	k.ok(ulog.TypeFlush, "u", 7, regions(9))
	k.pair(ulog.TypeGetResyncWork, "u", 7, nil)
	k.ok(ulog.TypeSetRegionSync, "u", 7, ulog.AppendRegionSync(nil, 0, 1))
	k.status(ulog.TypeStatusInfo, "u", 7)
	k.status(ulog.TypeStatusTable, "u", 7)
	k.pair(ulog.TypeIsRemoteRecovering, "u", 7, regions(5))
	k.ok(ulog.TypePresuspend, "u", 7, nil)
	k.ok(ulog.TypePostsuspend, "u", 7, nil)
	k.ok(ulog.TypeDtr, "u", 7, nil)
}

// Item 14: IN_SYNC and IS_CLEAN never wait behind a flush's disk I/O, of
// another log or of their own.
func TestItem14NoHeadOfLineBlocking(t *testing.T) {
	g := newSlowGate()
	// Only the first log's device (log 0) is slow.
	var opened sync.Mutex
	first := true
	d := newDaemon(t, daemon.Options{Engine: engine.Options{WrapDevice: func(dev engine.Device) engine.Device {
		opened.Lock()
		defer opened.Unlock()
		if !first {
			return dev
		}
		first = false
		return g.wrap(dev)
	}}})
	k := newKernel(t, d)
	p1, p2 := logFile(t, 1<<20), logFile(t, 1<<20)
	for i, p := range []string{p1, p2} {
		if r := k.ctr("u", uint64(i), "131072 clustered-disk "+p+" 1024 nosync"); r.err != 0 {
			t.Fatal(r.err)
		}
		k.ok(ulog.TypeResume, "u", uint64(i), nil)
	}
	// The next device write of log 0 blocks until released.
	flush := k.request(ulog.TypeMarkRegion, "u", 0, regions(4))
	g.stick(t, k, flush)
	// The flush of log 0 is stuck in its write. Both logs still answer,
	// and log 1 still flushes.
	for i := 0; i < 50; i++ {
		if k.inSync("u", 0, 4) != true || k.isClean("u", 0, 4) != false || k.inSync("u", 1, 9) != true {
			t.Fatal("wrong answers while a flush is blocked")
		}
	}
	k.ok(ulog.TypeMarkRegion, "u", 1, regions(2))
	g.release()
	if r := k.finish(flush); r.err != 0 {
		t.Fatalf("flush: %d", r.err)
	}
}

// Items 11 and 15: a log whose worker is swamped asks for a resend in the
// ack-only form, matched by the request's seq, which leaves the kernel
// caller's reply space as it was (a full-form -EAGAIN without data would
// shrink it to 0 and fail the resent request with -ENOSPC); the requests
// already queued are all answered once the device moves again.
func TestItems11_15BusyAsksResendKeepingReplySpace(t *testing.T) {
	g := newSlowGate()
	d := newDaemon(t, daemon.Options{Engine: engine.Options{WrapDevice: g.wrap}})
	k := newKernel(t, d)
	if r := k.ctr("u", 1, "131072 clustered-disk "+logFile(t, 1<<20)+" 1024 nosync"); r.err != 0 {
		t.Fatal(r.err)
	}
	k.ok(ulog.TypeResume, "u", 1, nil)
	mark := k.request(ulog.TypeMarkRegion, "u", 1, regions(4))
	g.stick(t, k, mark)
	// The worker is stuck in the MARK's write: FLUSHes pile up behind it.
	const sent = 1100
	flushes := make([]*ulog.Request, sent)
	for i := range flushes {
		flushes[i] = k.request(ulog.TypeFlush, "u", 1, nil)
		k.send(flushes[i])
	}
	g.release()
	if r := k.finish(mark); r.err != 0 {
		t.Fatalf("MARK_REGION: %d", r.err)
	}
	var again, done int
	for _, f := range flushes {
		rep := k.wait(f)
		if res, _ := rep.Result(0); res == 0 {
			done++
			continue
		}
		if !rep.AckOnly || rep.CnSeq != f.Seq || rep.CnAck != uint32(ulog.EAGAIN) {
			t.Fatalf("FLUSH seq %d refused with %+v, want the ack-only EAGAIN form with cn_msg.seq %d", f.Seq, rep, f.Seq)
		}
		if res, n := rep.Result(ulog.PairLen); res != -int32(ulog.EAGAIN) || n != ulog.PairLen {
			t.Fatalf("busy reply gives the kernel %d with %d bytes of reply space, want -EAGAIN with %d kept", res, n, ulog.PairLen)
		}
		again++
	}
	if again == 0 || done == 0 || again+done != sent {
		t.Fatalf("%d FLUSHes: %d answered, %d asked to resend", sent, done, again)
	}
	// The resend succeeds.
	k.ok(ulog.TypeFlush, "u", 1, nil)
}

// Item 15: a resent request (same content, new seq) is answered correctly
// and duplicates change nothing.
func TestItem15Resends(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	coreLog(t, k, "u", 1, "")
	for i := 0; i < 3; i++ {
		k.ok(ulog.TypeMarkRegion, "u", 1, regions(5, 6))
		k.ok(ulog.TypeClearRegion, "u", 1, regions(6))
		k.ok(ulog.TypeSetRegionSync, "u", 1, ulog.AppendRegionSync(nil, 9, 1))
		k.ok(ulog.TypeFlush, "u", 1, regions(5))
	}
	if k.isClean("u", 1, 5) || !k.isClean("u", 1, 6) {
		t.Fatal("duplicates changed the outcome")
	}
	if n := k.u64(ulog.TypeGetSyncCount, "u", 1); n != 1 {
		t.Fatalf("sync count %d after three identical SET_REGION_SYNC, want 1", n)
	}
	// GET_RESYNC_WORK resent before the kernel saw the first answer.
	i1, r1 := k.pair(ulog.TypeGetResyncWork, "u", 1, nil)
	i2, r2 := k.pair(ulog.TypeGetResyncWork, "u", 1, nil)
	if i1 != 1 || i2 != 1 || r1 != r2 {
		t.Fatalf("resent GET_RESYNC_WORK: {%d,%d} then {%d,%d}; want the same region twice", i1, r1, i2, r2)
	}
}

// Items 16-19: request header validation.
func TestItems16to19Header(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	coreLog(t, k, "u", 1, "")
	// 16: unknown types get -EINVAL (not silence); upper bits are masked.
	for _, typ := range []uint32{0, 18, 99, 255} {
		r := k.request(ulog.RequestType(typ), "u", 1, nil)
		k.send(r)
		if got := k.finish(r); got.err != fakekernel.EINVAL {
			t.Fatalf("type %d: error %d, want -EINVAL", typ, got.err)
		}
	}
	r := k.request(ulog.TypeGetRegionSize, "u", 1, nil)
	r.RawType |= 0xABCD00
	k.send(r)
	if got := k.finish(r); got.err != 0 || binary.NativeEndian.Uint64(got.data) != 1024 {
		t.Fatalf("GET_REGION_SIZE with upper bits: %+v", got)
	}
	// 17: a uuid with no NUL in its 129 bytes.
	r = k.request(ulog.TypeGetRegionSize, "u", 1, nil)
	b := ulog.AppendRequest(nil, r)
	for i := 44; i < 44+129; i++ {
		b[i] = 'x'
		r.UUID[i-44] = 'x' // what the reply must echo
	}
	handle(d, b, k.p)
	if got := k.finish(r); got.err != fakekernel.EINVAL {
		t.Fatalf("uuid without NUL: error %d", got.err)
	}
	// 18: versions 1 and 2 are served; a newer one too (with a warning);
	// version 0 is refused.
	p := logFile(t, 1<<20)
	for _, v := range []uint32{1, 2, 3, 4} {
		k.Version = v
		uuid := fmt.Sprintf("v%d", v)
		got := k.ctr(uuid, 1, "131072 clustered-disk "+p+" 1024")
		if got.err != 0 {
			t.Fatalf("version %d CTR: %d", v, got.err)
		}
		// A regular file is no device the kernel can hold.
		if len(got.data) != 0 {
			t.Fatalf("version %d CTR reply %q for a file", v, got.data)
		}
		k.ok(ulog.TypeDtr, uuid, 1, nil)
	}
	k.Version = 0
	if got := k.call(ulog.TypeGetRegionSize, "u", 1, nil); got.err != -int32(syscall.EPROTO) {
		t.Fatalf("version 0: error %d, want -EPROTO", got.err)
	}
	k.Version = 3
	// 19: an unknown (uuid, luid) gets -ESRCH (the kernel then replays CTR
	// and RESUME), DTR -EINVAL; nothing is created.
	for _, typ := range []ulog.RequestType{ulog.TypeInSync, ulog.TypeFlush, ulog.TypeResume, ulog.TypeGetSyncCount, ulog.TypeMarkRegion} {
		data := []byte(nil)
		if typ == ulog.TypeInSync || typ == ulog.TypeMarkRegion {
			data = regions(1)
		}
		if got := k.call(typ, "u", 2, data); got.err != fakekernel.ESRCH {
			t.Fatalf("%s on an unknown luid: %d, want -ESRCH", typ, got.err)
		}
		if got := k.call(typ, "nope", 1, data); got.err != fakekernel.ESRCH {
			t.Fatalf("%s on an unknown uuid: %d, want -ESRCH", typ, got.err)
		}
	}
	if got := k.call(ulog.TypeDtr, "nope", 1, nil); got.err != fakekernel.EINVAL {
		t.Fatalf("DTR of an unknown log: %d, want -EINVAL", got.err)
	}
	if n := d.InUse(); n != 1 {
		t.Fatalf("%d logs, want 1", n)
	}
}

// Items 20-25: the constructor.
func TestItems20to25Ctr(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	p := logFile(t, 1<<20)
	small := logFile(t, 1000)
	for _, tc := range []struct {
		name string
		data string
		err  int32
	}{
		{"no NUL", "131072 clustered-core 1024", 0},
		{"with NUL", "131072 clustered-core 1024\x00", 0},
		{"embedded NUL", "131072 clustered\x00-core 1024", fakekernel.EINVAL},
		{"empty", "", fakekernel.EINVAL},
		{"only NULs", "\x00\x00", fakekernel.EINVAL},
		{"non-numeric length", "abc clustered-core 1024", fakekernel.EINVAL},
		{"zero length", "0 clustered-core 1024", fakekernel.EINVAL},
		{"no spaces", "131072", fakekernel.EINVAL},
		{"332 bytes", "131072 clustered-core 1024 " + strings.Repeat("x", 332-27), fakekernel.EINVAL},
		{"unknown type", "131072 mirror 1024", fakekernel.EINVAL},
		{"core words", "131072 core 1 1024", 0},
		{"disk words", "131072 disk 2 " + p + " 1024", 0},
		{"region size not a power of two", "131072 clustered-core 1000", fakekernel.EINVAL},
		{"region size 0x400", "131072 clustered-core 0x400", fakekernel.EINVAL},
		{"region size 1", "131072 clustered-core 1", fakekernel.EINVAL},
		{"region size beyond length", "1024 clustered-core 2048", fakekernel.EINVAL},
		{"region size beyond 32 bits", "17179869184 clustered-core 8589934592", fakekernel.EINVAL},
		{"too many regions", "17179869184 clustered-core 2", fakekernel.EINVAL},
		{"extra word", "131072 clustered-core 1024 sync please", fakekernel.EINVAL},
		{"sync and nosync", "131072 clustered-core 1024 sync nosync", fakekernel.EINVAL},
		{"block_on_error", "131072 clustered-core 1024 block_on_error", 0},
		{"missing device", "131072 clustered-disk /nonexistent 1024", fakekernel.EINVAL},
		{"device too small", "131072 clustered-disk " + small + " 1024", fakekernel.EINVAL},
		{"device a directory", "131072 clustered-disk " + t.TempDir() + " 1024", fakekernel.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			luid := uint64(len(tc.name))
			got := k.call(ulog.TypeCtr, "ctr-"+tc.name, luid, []byte(tc.data))
			if got.err != tc.err {
				t.Fatalf("CTR %q: error %d, want %d", tc.data, got.err, tc.err)
			}
			if got.err == 0 {
				k.ok(ulog.TypeDtr, "ctr-"+tc.name, luid, nil)
			}
		})
	}
	// 24: a disk log's CTR reply names the block device as major:minor
	// (NUL included; testCtrMajMin); a regular file, which the kernel's
	// dm_get_device cannot open, and a core log carry nothing (#13).
	if got := k.ctr("d", 1, "131072 clustered-disk "+p+" 1024"); got.err != 0 || len(got.data) != 0 {
		t.Fatalf("disk CTR reply %q (%d)", got.data, got.err)
	}
	if got := k.ctr("c", 1, "131072 clustered-core 1024"); got.err != 0 || len(got.data) != 0 {
		t.Fatalf("core CTR reply %q (%d)", got.data, got.err)
	}
	// 25: a CTR for an existing (uuid, luid) succeeds, and the log keeps
	// its state (the kernel's reconnect sequence, or its resend of a slow
	// table-load CTR: testCtrMajMin checks the device in that reply).
	k.ok(ulog.TypeResume, "d", 1, nil)
	k.ok(ulog.TypeFlush, "d", 1, regions(3))
	for _, s := range []string{"131072 clustered-disk " + p + " 1024", "131072 clustered-disk " + p + " 1024\x00"} {
		if got := k.call(ulog.TypeCtr, "d", 1, []byte(s)); got.err != 0 || len(got.data) != 0 {
			t.Fatalf("repeated CTR: %d %q", got.err, got.data)
		}
		k.ok(ulog.TypeResume, "d", 1, nil)
		if k.isClean("d", 1, 3) {
			t.Fatal("reconnect lost a mark")
		}
	}
	// The reconnect CTR of a log the daemon does not know (it restarted)
	// carries the NUL and offers no reply room: no device name.
	if got := k.call(ulog.TypeCtr, "d2", 1, []byte("131072 clustered-disk "+p+" 1024\x00")); got.err != 0 || len(got.data) != 0 {
		t.Fatalf("reconnect CTR of a new log: %d %q", got.err, got.data)
	}
	// The device may be named major:minor when it is a block device.
	if os.Geteuid() == 0 {
		if _, err := os.Stat("/dev/loop-control"); err == nil {
			testCtrMajMin(t, k)
		}
	}
}

// Items 26, 27, 29, 41: lifecycle without resume, and repeated resume.
func TestItems26_27_29_41Lifecycle(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	p := logFile(t, 1<<20)
	for _, ctr := range []string{"131072 clustered-core 1024", "131072 clustered-disk " + p + " 1024"} {
		// 27: region size and sync count before any resume.
		k.ctr("l", 1, ctr)
		if rs := k.u64(ulog.TypeGetRegionSize, "l", 1); rs != 1024 {
			t.Fatalf("region size %d", rs)
		}
		k.u64(ulog.TypeGetSyncCount, "l", 1)
		// 41: presuspend and postsuspend of a never-resumed log succeed.
		k.ok(ulog.TypePresuspend, "l", 1, nil)
		k.ok(ulog.TypePostsuspend, "l", 1, nil)
		// 26: CTR then DTR without RESUME frees everything.
		k.ok(ulog.TypeDtr, "l", 1, nil)
		if d.InUse() != 0 {
			t.Fatal("DTR left the log behind")
		}
		// 29: RESUME of a resumed log changes nothing.
		k.ctr("l", 1, ctr)
		k.ok(ulog.TypeResume, "l", 1, nil)
		k.ok(ulog.TypeFlush, "l", 1, regions(8))
		k.ok(ulog.TypeSetRegionSync, "l", 1, ulog.AppendRegionSync(nil, 8, 1))
		k.ok(ulog.TypeResume, "l", 1, nil)
		if k.isClean("l", 1, 8) || !k.inSync("l", 1, 8) {
			t.Fatal("second RESUME changed the state")
		}
		k.ok(ulog.TypeDtr, "l", 1, nil)
	}
}

// Item 28: RESUME reads the disk log per docs/disk-format.md §4 and syncs before replying.
func TestItem28ResumeReadsTheDisk(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	// An image with regions 0..99 of 128 clean, 5 dirty.
	img := make([]byte, 4096)
	header.Header{Magic: header.Magic, Version: 1, NrRegions: 100}.Encode(img)
	for r := 0; r < 100; r++ {
		if r != 5 {
			img[1024+r/8] |= 1 << (r % 8)
		}
	}
	p := logFile(t, 4096)
	os.WriteFile(p, img, 0o600)
	k.ctr("r", 1, "131072 clustered-disk "+p+" 1024")
	k.ok(ulog.TypeResume, "r", 1, nil)
	if n := k.u64(ulog.TypeGetSyncCount, "r", 1); n != 99 {
		t.Fatalf("sync count %d, want 99 (100 honoured, one dirty, 28 new)", n)
	}
	if k.inSync("r", 1, 5) || !k.inSync("r", 1, 6) || k.inSync("r", 1, 100) {
		t.Fatal("wrong sync bits after resume")
	}
	got, _ := os.ReadFile(p)
	h, _ := header.Decode(got)
	if h != (header.Header{Magic: header.Magic, Version: 2, NrRegions: 128}) {
		t.Fatalf("header written at resume: %v", h)
	}
}

// Item 30: single-region requests check their size and range; booleans
// are 0 or 1 (checked by kernel.finish).
func TestItem30SingleRegion(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	coreLog(t, k, "u", 1, " nosync")
	for _, typ := range []ulog.RequestType{ulog.TypeIsClean, ulog.TypeInSync, ulog.TypeIsRemoteRecovering} {
		for _, data := range [][]byte{nil, make([]byte, 4), make([]byte, 9), make([]byte, 16), regions(128), regions(1 << 40), regions(^uint64(0))} {
			if got := k.call(typ, "u", 1, data); got.err != fakekernel.EINVAL {
				t.Fatalf("%s with % x: error %d, want -EINVAL", typ, data, got.err)
			}
		}
		if got := k.call(typ, "u", 1, regions(127)); got.err != 0 {
			t.Fatalf("%s of the last region: %d", typ, got.err)
		}
	}
}

// Item 31: MARK, CLEAR and FLUSH payloads: multiples of 8, 8..332 bytes,
// every region in range, validated before any is applied.
func TestItem31Batches(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	coreLog(t, k, "u", 1, " nosync")
	bad := [][]byte{
		make([]byte, 7), make([]byte, 12), regions(make([]uint64, 42)...),
		regions(1, 2, 128), regions(3, ^uint64(0)),
	}
	for _, typ := range []ulog.RequestType{ulog.TypeMarkRegion, ulog.TypeClearRegion, ulog.TypeFlush} {
		for _, data := range bad {
			if got := k.call(typ, "u", 1, data); got.err != fakekernel.EINVAL {
				t.Fatalf("%s with %d bytes: error %d", typ, len(data), got.err)
			}
		}
		if got := k.call(typ, "u", 1, nil); (got.err == 0) != (typ == ulog.TypeFlush) {
			t.Fatalf("%s with no payload: error %d", typ, got.err)
		}
	}
	// Nothing of the rejected batches was applied.
	for r := uint64(0); r < 128; r++ {
		if !k.isClean("u", 1, r) {
			t.Fatalf("region %d dirty after rejected batches", r)
		}
	}
	// The largest batch the kernel sends (32) and the largest that fits (41).
	all := make([]uint64, 41)
	for i := range all {
		all[i] = uint64(i * 3)
	}
	k.ok(ulog.TypeMarkRegion, "u", 1, regions(all...))
	for _, r := range all {
		if k.isClean("u", 1, r) {
			t.Fatalf("region %d of a 41-region batch not marked", r)
		}
	}
}

// Items 32-33: a FLUSH with a payload marks, then persists; the marks are
// on the device when the reply comes; a FLUSH with nothing changed does no
// I/O; a write error is -EIO and status D.
func TestItems32_33Flush(t *testing.T) {
	var failWrites sync.Map
	d := newDaemon(t, daemon.Options{Engine: engine.Options{WrapDevice: func(dev engine.Device) engine.Device {
		return &failingDevice{Device: dev, fail: &failWrites}
	}}})
	k := newKernel(t, d)
	p := logFile(t, 1<<20)
	k.ctr("f", 1, "131072 clustered-disk "+p+" 1024 nosync")
	k.ok(ulog.TypeResume, "f", 1, nil)
	k.ok(ulog.TypeFlush, "f", 1, regions(3, 77))
	img := readDirect(t, p, 1536)
	for _, r := range []int{3, 77} {
		if img[1024+r/8]&(1<<(r%8)) != 0 {
			t.Fatalf("region %d not marked on the device when FLUSH returned", r)
		}
	}
	before, _ := os.ReadFile(p)
	k.ok(ulog.TypeFlush, "f", 1, nil)
	after, _ := os.ReadFile(p)
	if string(before) != string(after) {
		t.Fatal("FLUSH with nothing changed wrote the device")
	}
	failWrites.Store("on", true)
	if got := k.call(ulog.TypeFlush, "f", 1, regions(4)); got.err != fakekernel.EIO {
		t.Fatalf("FLUSH with a failing device: %d, want -EIO", got.err)
	}
	if s := k.status(ulog.TypeStatusInfo, "f", 1); s != "3 clustered-disk "+p+" D" {
		t.Fatalf("status %q, want D", s)
	}
}

// Items 34-38: clear, set_region_sync, resync work, sync count, hint.
func TestItems34to38Resync(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	k.ctr("s", 1, "4096 clustered-core 1024") // 4 regions
	k.ok(ulog.TypeResume, "s", 1, nil)
	// 35: exactly 16 bytes, region in range.
	for _, data := range [][]byte{nil, regions(1), make([]byte, 24), ulog.AppendRegionSync(nil, 4, 1)} {
		if got := k.call(ulog.TypeSetRegionSync, "s", 1, data); got.err != fakekernel.EINVAL {
			t.Fatalf("SET_REGION_SYNC % x: %d", data, got.err)
		}
	}
	seen := map[uint64]bool{}
	for {
		i, r := k.pair(ulog.TypeGetResyncWork, "s", 1, nil)
		if i == 0 {
			if r != 0 {
				t.Fatalf("no work but r = %d, want 0", r)
			}
			break
		}
		// 36: never a region out of range; each once.
		if r >= 4 || seen[r] {
			t.Fatalf("resync work %d (seen %v)", r, seen)
		}
		seen[r] = true
		// 38: the hint never passes a region that may still be handed out.
		if _, hint := k.pair(ulog.TypeIsRemoteRecovering, "s", 1, regions(3)); hint > r {
			t.Fatalf("hint %d while region %d recovers", hint, r)
		}
		k.ok(ulog.TypeSetRegionSync, "s", 1, ulog.AppendRegionSync(nil, r, 1))
		k.ok(ulog.TypeClearRegion, "s", 1, regions(r))
		k.ok(ulog.TypeFlush, "s", 1, nil)
	}
	// 37: the count reaches the region count exactly.
	if n := k.u64(ulog.TypeGetSyncCount, "s", 1); n != 4 || len(seen) != 4 {
		t.Fatalf("sync count %d after %d regions recovered", n, len(seen))
	}
	if _, hint := k.pair(ulog.TypeIsRemoteRecovering, "s", 1, regions(0)); hint != 4 {
		t.Fatalf("hint %d when all recovered, want 4", hint)
	}
	// 34: clear sets the clean bit; mark clears it; a failed write
	// (set_region_sync 0) makes the region out of sync again.
	k.ok(ulog.TypeMarkRegion, "s", 1, regions(2))
	k.ok(ulog.TypeSetRegionSync, "s", 1, ulog.AppendRegionSync(nil, 2, 0))
	if k.inSync("s", 1, 2) || k.u64(ulog.TypeGetSyncCount, "s", 1) != 3 {
		t.Fatal("set_region_sync(2, 0) did not take the region out of sync")
	}
	k.ok(ulog.TypeClearRegion, "s", 1, regions(2))
	if !k.isClean("s", 1, 2) {
		t.Fatal("clear did not set the clean bit")
	}
	// 36: halted recovery returns {0, 0}.
	k.ok(ulog.TypePresuspend, "s", 1, nil)
	if i, r := k.pair(ulog.TypeGetResyncWork, "s", 1, nil); i != 0 || r != 0 {
		t.Fatalf("halted GET_RESYNC_WORK {%d, %d}", i, r)
	}
}

// Items 39-40: status strings, NUL included.
func TestItems39_40Status(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	p := logFile(t, 1<<20)
	k.ctr("c", 1, "131072 clustered-core 1024 nosync")
	k.ctr("d", 1, "131072 clustered-disk "+p+" 1024")
	for _, tc := range []struct {
		uuid string
		typ  ulog.RequestType
		want string
	}{
		{"c", ulog.TypeStatusInfo, "1 clustered-core"},
		{"c", ulog.TypeStatusTable, "clustered-core 1024 nosync "},
		{"d", ulog.TypeStatusInfo, "3 clustered-disk " + p + " A"},
		{"d", ulog.TypeStatusTable, "clustered-disk " + p + " 1024 "},
	} {
		if got := k.status(tc.typ, tc.uuid, 1); got != tc.want {
			t.Fatalf("%s %s: %q, want %q", tc.uuid, tc.typ, got, tc.want)
		}
	}
}

// Item 45: live reload: two luids of one uuid share a clustered-disk log
// device; CTR(new) … POSTSUSPEND(old) RESUME(new) DTR(old).
func TestItem45LiveReload(t *testing.T) {
	d := newDaemon(t)
	k := newKernel(t, d)
	p := logFile(t, 1<<20)
	ctr := "131072 clustered-disk " + p + " 1024"
	k.ctr("m", 0xA, ctr)
	k.ok(ulog.TypeResume, "m", 0xA, nil)
	for r := uint64(0); r < 128; r++ {
		k.ok(ulog.TypeSetRegionSync, "m", 0xA, ulog.AppendRegionSync(nil, r, 1))
		k.ok(ulog.TypeClearRegion, "m", 0xA, regions(r))
	}
	k.ok(ulog.TypeFlush, "m", 0xA, regions(17))
	k.ctr("m", 0xB, ctr) // the new table, loaded while the old is live
	k.ok(ulog.TypePresuspend, "m", 0xA, nil)
	k.ok(ulog.TypeMarkRegion, "m", 0xA, regions(18))
	k.ok(ulog.TypeFlush, "m", 0xA, nil)
	k.ok(ulog.TypeClearRegion, "m", 0xA, regions(17))
	k.ok(ulog.TypePostsuspend, "m", 0xA, nil)
	k.ok(ulog.TypeResume, "m", 0xB, nil)
	k.ok(ulog.TypeDtr, "m", 0xA, nil)
	if !k.isClean("m", 0xB, 17) || k.isClean("m", 0xB, 18) || k.u64(ulog.TypeGetSyncCount, "m", 0xB) != 127 {
		t.Fatal("the new instance did not take over the old one's state")
	}
	if got := k.call(ulog.TypeInSync, "m", 0xA, regions(1)); got.err != fakekernel.ESRCH {
		t.Fatalf("old instance still answers: %d", got.err)
	}
}

// slowGate blocks the first device write of its devices after stick
// until release.
type slowGate struct {
	armed   atomic.Bool
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func newSlowGate() *slowGate {
	return &slowGate{gate: make(chan struct{}), entered: make(chan struct{})}
}

// wrap makes dev one of g's devices.
func (g *slowGate) wrap(dev engine.Device) engine.Device { return &slowDevice{Device: dev, g: g} }

// stick arms the gate, sends r and waits until its write blocks on the
// device. A MARK of a disk log is made durable before its reply, so it is
// a request that waits on the device.
func (g *slowGate) stick(t *testing.T, k *kernel, r *ulog.Request) {
	t.Helper()
	g.armed.Store(true)
	k.send(r)
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s never reached the device", r.Type())
	}
}

// release lets the blocked write go on.
func (g *slowGate) release() { close(g.gate) }

// slowDevice is a device of a slowGate.
type slowDevice struct {
	engine.Device
	g *slowGate
}

func (s *slowDevice) Write(b []iouring.Block, sync bool) error {
	if s.g.armed.Load() {
		s.g.once.Do(func() { close(s.g.entered); <-s.g.gate })
	}
	return s.Device.Write(b, sync)
}

// failingDevice fails every write while fail holds "on".
type failingDevice struct {
	engine.Device
	fail *sync.Map
}

func (f *failingDevice) Write(b []iouring.Block, sync bool) error {
	if _, on := f.fail.Load("on"); on && len(b) > 0 {
		be := &iouring.BatchError{}
		for i, blk := range b {
			be.Writes = append(be.Writes, iouring.BlockError{Index: i, Off: blk.Off, Err: syscall.EIO})
		}
		return be
	}
	return f.Device.Write(b, sync)
}

var _ = errors.New
