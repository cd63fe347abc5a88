package daemon_test

import (
	"testing"
	"time"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/ulog"
)

// slowResync is a core log whose GetResyncWork blocks until released, as a
// cluster log's waits for its group; it asks to be answered by the worker.
type slowResync struct {
	engine.Log
	release chan struct{}
}

func (s *slowResync) QueueResyncWork() bool { return true }

func (s *slowResync) GetResyncWork() (uint64, bool, error) {
	<-s.release
	return s.Log.GetResyncWork()
}

// TestOpenInstanceAndQueuedResyncWork: OpenInstance gets the log's uuid and
// luid, and a log that implements QueuedResyncWork has its GET_RESYNC_WORK
// answered by the worker, with the right payload, while IN_SYNC is still
// answered at once.
func TestOpenInstanceAndQueuedResyncWork(t *testing.T) {
	var gotUUID string
	var gotLUID uint64
	release := make(chan struct{})
	d := newDaemon(t, daemon.Options{OpenInstance: func(uuid string, luid uint64, c engine.Config, o engine.Options) (engine.Log, error) {
		gotUUID, gotLUID = uuid, luid
		l, err := engine.Open(c, o)
		if err != nil {
			return nil, err
		}
		return &slowResync{Log: l, release: release}, nil
	}})
	k := newKernel(t, d)
	if r := k.ctr("hook", 7, "8192 clustered-core 1024"); r.err != 0 {
		t.Fatalf("CTR: %d", r.err)
	}
	if gotUUID != "hook" || gotLUID != 7 {
		t.Fatalf("OpenInstance got %q/%d", gotUUID, gotLUID)
	}
	k.ok(ulog.TypeResume, "hook", 7, nil)
	work := k.request(ulog.TypeGetResyncWork, "hook", 7, nil)
	k.send(work)
	// The reader is free while GET_RESYNC_WORK waits on the worker.
	if k.inSync("hook", 7, 0) {
		t.Fatal("region 0 in sync before any resync")
	}
	time.AfterFunc(20*time.Millisecond, func() { close(release) })
	r := k.finish(work)
	i, region, err := ulog.Pair(r.data)
	if r.err != 0 || err != nil || i != 1 || region != 0 {
		t.Fatalf("GET_RESYNC_WORK from the worker: err %d, %d %d %v", r.err, i, region, err)
	}
}
