package daemon_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
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

// slowFlush is a log whose Flush blocks until released, as a cluster
// log's waits for its group, and whose FlushNoIO says what noIO holds.
type slowFlush struct {
	engine.Log
	noIO    atomic.Bool
	flushes atomic.Int64
	release chan struct{}
}

func (s *slowFlush) FlushNoIO() bool { return s.noIO.Load() }

func (s *slowFlush) Flush() error {
	s.flushes.Add(1)
	<-s.release
	return s.Log.Flush()
}

// TestOpenInstanceFlushInlineOnlyWithoutIO: with OpenInstance (dlogd
// --cluster) a MARK or FLUSH is answered on the receiving goroutine, with
// no Flush call, only when the log's FlushNoIO says it has nothing to do
// (a cluster log's FLUSH after its MARK); otherwise it goes to the log's
// worker, and the reader stays free while the flush waits for the group.
func TestOpenInstanceFlushInlineOnlyWithoutIO(t *testing.T) {
	var sf *slowFlush
	d := newDaemon(t, daemon.Options{OpenInstance: func(uuid string, luid uint64, c engine.Config, o engine.Options) (engine.Log, error) {
		l, err := engine.Open(c, o)
		if err != nil {
			return nil, err
		}
		sf = &slowFlush{Log: l, release: make(chan struct{})}
		return sf, nil
	}})
	k := newKernel(t, d)
	if r := k.ctr("cl", 1, "8192 clustered-core 1024"); r.err != 0 {
		t.Fatalf("CTR: %d", r.err)
	}
	k.ok(ulog.TypeResume, "cl", 1, nil)

	sf.noIO.Store(true)
	for _, typ := range []ulog.RequestType{ulog.TypeMarkRegion, ulog.TypeFlush} {
		var data []byte
		if typ == ulog.TypeMarkRegion {
			data = regions(3)
		}
		r := k.request(typ, "cl", 1, data)
		k.send(r)
		if len(k.p.Replies) == 0 {
			t.Fatalf("%v with nothing to flush was not answered before Handle returned", typ)
		}
		if rep := k.finish(r); rep.err != 0 {
			t.Fatalf("%v: err %d", typ, rep.err)
		}
	}
	if n := sf.flushes.Load(); n != 0 {
		t.Fatalf("Flush called %d times for requests whose FlushNoIO was true", n)
	}

	sf.noIO.Store(false)
	f := k.request(ulog.TypeFlush, "cl", 1, regions(5))
	k.send(f)
	if len(k.p.Replies) != 0 {
		t.Fatal("a FLUSH with something to flush was answered before its Flush returned")
	}
	if k.isClean("cl", 1, 5) { // the reader is free meanwhile
		t.Fatal("region 5 clean after its integrated FLUSH arrived")
	}
	time.AfterFunc(20*time.Millisecond, func() { close(sf.release) })
	if rep := k.finish(f); rep.err != 0 {
		t.Fatalf("FLUSH from the worker: err %d", rep.err)
	}
	if n := sf.flushes.Load(); n != 1 {
		t.Fatalf("Flush called %d times, want 1", n)
	}
}

// groupLog is a core log with a cluster log's group counters.
type groupLog struct {
	engine.Log
}

func (groupLog) GroupCounters() map[string]uint64 {
	return map[string]uint64{"taken_back": 1, "given_back": 2}
}

// TestGroupCountersInStatusAndDump: a log kept with a group has its group
// counters in Status and in the state dump's "group" field, sorted by
// name, a disk log whose mirror's legs the daemon flushes too (it wraps
// the log: the first VM run showed clustered-disk logs without them); a
// plain log has none.
func TestGroupCountersInStatusAndDump(t *testing.T) {
	var out bytes.Buffer
	d := newDaemon(t, daemon.Options{Logger: slog.New(slog.NewTextHandler(&out, nil)),
		FlushLegs: func(string) daemon.LegFlush { return legFunc(func() error { return nil }) },
		OpenInstance: func(uuid string, luid uint64, c engine.Config, o engine.Options) (engine.Log, error) {
			l, err := engine.Open(c, o)
			if err != nil || uuid == "plain" {
				return l, err
			}
			return groupLog{Log: l}, nil
		}})
	k := newKernel(t, d)
	for u, ctr := range map[string]string{"grp": "8192 clustered-core 1024", "grpdisk": "131072 clustered-disk " + logFile(t, 1<<20) + " 1024", "plain": "8192 clustered-core 1024"} {
		if r := k.ctr(u, 1, ctr); r.err != 0 {
			t.Fatalf("CTR %s: %d", u, r.err)
		}
	}
	st := d.Status()
	if len(st) != 3 || st[2].UUID != "plain" || st[2].Group != nil {
		t.Fatalf("Status = %+v; want grp, grpdisk and plain with no group", st)
	}
	for _, s := range st[:2] {
		if s.Group["given_back"] != 2 || s.Group["taken_back"] != 1 {
			t.Fatalf("%s: group %v; want given_back 2, taken_back 1", s.UUID, s.Group)
		}
	}
	d.Dump()
	if s := out.String(); strings.Count(s, `group="given_back=2 taken_back=1"`) != 2 || !strings.Contains(s, `group=""`) {
		t.Fatalf("dump without the group counters:\n%s", s)
	}
}
