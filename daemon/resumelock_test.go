package daemon_test

import (
	"testing"
	"time"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/internal/testutil/faultio"
	"github.com/dlog-dev/dlog/internal/testutil/poll"
	"github.com/dlog-dev/dlog/ulog"
)

// While one log's RESUME waits on its slow device (it holds the log's lock
// for the read), that log's own lock-taking requests (PRESUSPEND,
// GET_RESYNC_WORK, SET_REGION_SYNC, IS_REMOTE_RECOVERING) must not stop
// the single reader: they wait on their log, and another log's IN_SYNC is
// answered at once (#13 item 5).
func TestResumeIOHoldsNoOtherLog(t *testing.T) {
	faults := &faultio.Faults{}
	d := newDaemon(t, daemon.Options{Engine: engine.Options{
		WrapDevice: func(dev engine.Device) engine.Device { return faultio.Wrap(dev, faults) },
	}})
	k := newKernel(t, d)
	dev := logFile(t, 1<<20)
	k.ctr("slow", 1, "131072 clustered-disk "+dev+" 1024")
	k.ctr("other", 2, "131072 clustered-core 1024 nosync")
	k.ok(ulog.TypeResume, "other", 2, nil)

	faults.HoldReads = make(chan struct{})
	released := false
	release := func() {
		if !released {
			released = true
			close(faults.HoldReads)
		}
	}
	t.Cleanup(release)
	resume := k.request(ulog.TypeResume, "slow", 1, nil)
	k.send(resume)
	poll.Until(t, "the RESUME to read its device", 10*time.Second, time.Millisecond, func() bool { return faults.HeldReads() > 0 })
	// The resuming log's requests, as the kernel's mirror daemon sends
	// them, each from the reader.
	reqs := []*ulog.Request{
		k.request(ulog.TypeGetResyncWork, "slow", 1, nil),
		k.request(ulog.TypeSetRegionSync, "slow", 1, ulog.AppendRegionSync(nil, 5, 1)),
		k.request(ulog.TypeIsRemoteRecovering, "slow", 1, regions(7)),
		k.request(ulog.TypePresuspend, "slow", 1, nil),
	}
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		for _, r := range reqs {
			k.send(r)
		}
	}()
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		release()
		t.Fatal("the reader is stuck behind the RESUME's device read")
	}
	// Another log is served meanwhile.
	start := time.Now()
	if !k.inSync("other", 2, 3) {
		t.Fatal("other log: region 3 not in sync")
	}
	t.Logf("another log's IN_SYNC answered in %v while the RESUME's read was held", time.Since(start))
	if faults.HeldReads() == 0 {
		t.Fatal("the RESUME finished early: the test proves nothing")
	}
	release()
	if got := k.finish(resume); got.err != 0 {
		t.Fatalf("RESUME: %d", got.err)
	}
	// The held requests are answered after it, as if they came after it.
	if got := k.finish(reqs[0]); got.err != 0 {
		t.Fatalf("GET_RESYNC_WORK: %d", got.err)
	} else if i, r, _ := ulog.Pair(got.data); i != 1 || r != 0 {
		t.Fatalf("GET_RESYNC_WORK after the resume of a fresh log: %d %d, want region 0", i, r)
	}
	for _, r := range reqs[1:] {
		if got := k.finish(r); got.err != 0 {
			t.Fatalf("%s: %d", r.Type(), got.err)
		}
	}
	if !k.inSync("slow", 1, 5) {
		t.Fatal("SET_REGION_SYNC held behind the RESUME was lost")
	}
	// PRESUSPEND, held last, halted recovery.
	if i, _ := k.pair(ulog.TypeGetResyncWork, "slow", 1, nil); i != 0 {
		t.Fatal("resync work handed out after PRESUSPEND")
	}
}
