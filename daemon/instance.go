package daemon

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// maxQueued bounds the requests waiting for one log's worker. The kernel
// has at most a handful outstanding per log; beyond this a peer is
// flooding, and gets EAGAIN.
const maxQueued = 1024

// instance is one log the kernel constructed: a (uuid, luid) pair.
type instance struct {
	uuid string
	luid uint64
	ctr  string // the constructor string, to tell a reconnect from a new log
	log  engine.Log
	cfg  engine.Config
	// blockDev is the opened log device's "major:minor" when it is a block
	// device, for CTR replies ("" for a regular file or a core log); read
	// once, so that a resent CTR never waits on the log.
	blockDev string
	// noState says why the log has no state file though the daemon keeps
	// them (dlogd status shows it).
	noState string
	// mirrorChecked is set once Options.CheckMirror has been asked about
	// this log's mirror; mirrorWarning holds its answer when it has one.
	mirrorChecked atomic.Bool
	mirrorWarning atomic.Pointer[string]

	// refs counts requests using log outside the worker; DTR waits for it
	// to drain after setting dead, so Close never races a request.
	refs atomic.Int64
	dead atomic.Bool

	// The worker runs the requests that touch the disk (RESUME, FLUSH,
	// POSTSUSPEND) in arrival order, so that a slow device never holds up
	// the reader and its IN_SYNC answers; while a RESUME is queued, also
	// the requests that take the log's lock (PRESUSPEND, GET_RESYNC_WORK,
	// SET_REGION_SYNC, IS_REMOTE_RECOVERING), which would otherwise wait
	// on the reader for its device read.
	qmu     sync.Mutex
	qcond   sync.Cond
	queue   []job // pending jobs are queue[head:]
	head    int
	working bool // the worker is running a job
	// workingFlush: the job the worker runs is a MARK or a FLUSH.
	workingFlush bool
	closing      bool
	done         chan struct{}
	// resuming counts RESUMEs queued and not yet done: the engine holds
	// the log's lock across the device read, so the requests that take
	// that lock go to the worker meanwhile instead of blocking the reader.
	resuming atomic.Int32

	created  time.Time
	requests [ulog.MaxRequestType + 1]atomic.Uint64
	flushLat latencies
	phases   phaseTimes
}

// phaseTimes sums where the worker's FLUSHes and MARKs that wrote spent
// their time: waiting in the queue, in the engine (the leg flush, the
// writes and the cache flush: engine.Stats splits it), sending the reply.
type phaseTimes struct {
	n, queue, run, reply atomic.Int64
	inline               atomic.Int64 // flushes run on the receiving goroutine
	detached             atomic.Int64 // of them, run after it detached to write (queueOrRun)
}

func (p *phaseTimes) add(queue, run, reply time.Duration, inline, detached bool) {
	p.n.Add(1)
	if inline {
		p.inline.Add(1)
	}
	if detached {
		p.detached.Add(1)
	}
	p.queue.Add(int64(queue))
	p.run.Add(int64(run))
	p.reply.Add(int64(reply))
}

// Phases is phaseTimes as Status shows it.
type Phases struct {
	Flushes int64         `json:"flushes"`
	Queue   time.Duration `json:"queue_ns"`
	Run     time.Duration `json:"run_ns"`
	Reply   time.Duration `json:"reply_ns"`
	// Inline counts the flushes answered on the receiving goroutine,
	// without the hand-off to the worker.
	Inline int64 `json:"inline"`
	// Detached counts, of Inline, the disk flushes whose receiving
	// goroutine detached from the transport and did the I/O itself.
	Detached int64 `json:"detached"`
}

func (p *phaseTimes) snapshot() Phases {
	return Phases{Flushes: p.n.Load(), Queue: time.Duration(p.queue.Load()), Run: time.Duration(p.run.Load()), Reply: time.Duration(p.reply.Load()), Inline: p.inline.Load(), Detached: p.detached.Load()}
}

// job is a request handed to a worker: the request header without its
// payload, and where to answer.
type job struct {
	req  ulog.Request
	from transport.Peer
	at   time.Time
	// ctr is the constructor string of a CTR; reconnect tells a reconnect
	// CTR (sent with its NUL, with no reply capacity) from a table load.
	ctr       string
	reconnect bool
	// region and value are the arguments of a SET_REGION_SYNC or
	// IS_REMOTE_RECOVERING held behind a RESUME (their payload is gone).
	region, value uint64
	// flushed: a FLUSH found to have nothing to write (engine FlushNoIO),
	// answered without calling Flush.
	flushed bool
	// inline: run on the receiving goroutine (queueOrRun).
	inline bool
	// detached: inline, by a goroutine that detached from the transport
	// and took the worker's place (instance.claim) to do the I/O.
	detached bool
	// dg is a detached job's datagram, to Reattach before the reply.
	dg *transport.Datagram
}

func newInstance(uuid string, luid uint64, ctr string, l engine.Log) *instance {
	in := &instance{uuid: uuid, luid: luid, ctr: ctr, log: l, cfg: l.Config(), blockDev: l.State().BlockDevice, done: make(chan struct{}), created: time.Now()}
	in.qcond.L = &in.qmu
	return in
}

// acquire takes a reference for a request outside the worker; it fails
// once DTR has begun.
func (in *instance) acquire() bool {
	in.refs.Add(1)
	if in.dead.Load() {
		in.refs.Add(-1)
		return false
	}
	return true
}

func (in *instance) release() { in.refs.Add(-1) }

// enqueue hands j to the worker; false when the queue is full or closing.
func (in *instance) enqueue(j job) bool {
	in.qmu.Lock()
	defer in.qmu.Unlock()
	if in.closing || len(in.queue)-in.head >= maxQueued {
		return false
	}
	in.queue = append(in.queue, j)
	in.qcond.Signal()
	return true
}

// run is the worker loop; it returns when the queue is closed and empty.
func (in *instance) run(d *Daemon) {
	defer close(in.done)
	var buf []byte
	for {
		in.qmu.Lock()
		// working is set here only by a receiving goroutine that claimed
		// the worker's place (claim): its job runs first.
		for in.working || (in.head == len(in.queue) && !in.closing) {
			in.qcond.Wait()
		}
		if in.head == len(in.queue) {
			in.qmu.Unlock()
			return
		}
		j := in.queue[in.head]
		in.queue[in.head] = job{}
		in.head++
		if in.head == len(in.queue) {
			// Empty: start again at the front, keeping the capacity, so
			// that the steady state does not allocate.
			in.queue, in.head = in.queue[:0], 0
		}
		in.working = true
		t := j.req.Type()
		in.workingFlush = t == ulog.TypeFlush || t == ulog.TypeMarkRegion
		in.qmu.Unlock()
		buf = d.runJob(in, &j, buf[:0]) // clears working before the reply (unclaim)
	}
}

// claim takes the worker's place for one MARK or FLUSH run by the
// receiving goroutine (Daemon.queueOrRun) when nothing is queued or
// running: until unclaim, the worker runs nothing and jobs queue behind it.
func (in *instance) claim() bool {
	in.qmu.Lock()
	defer in.qmu.Unlock()
	if in.head != len(in.queue) || in.working || in.closing {
		return false
	}
	in.working, in.workingFlush = true, true
	return true
}

// unclaim gives the worker's place back when a job's work is done, before
// its reply: the job's claim (claimed), or the worker's own job. For a
// claim it wakes the worker if jobs queued meanwhile (or the log is
// closing).
func (in *instance) unclaim(claimed bool) {
	in.qmu.Lock()
	in.working, in.workingFlush = false, false
	if claimed && (in.head != len(in.queue) || in.closing) {
		in.qcond.Signal()
	}
	in.qmu.Unlock()
}

// idleButFlush reports whether the worker has nothing queued and runs at
// most a MARK's or FLUSH's flush (the engine's own lock orders a Flush
// with it: FlushNoIO says no while it runs).
func (in *instance) idleButFlush() bool {
	in.qmu.Lock()
	defer in.qmu.Unlock()
	return in.head == len(in.queue) && (!in.working || in.workingFlush) && !in.closing
}

// idle reports whether the worker has nothing queued or running.
func (in *instance) idle() bool {
	in.qmu.Lock()
	defer in.qmu.Unlock()
	return in.head == len(in.queue) && !in.working && !in.closing
}

// stop closes the queue and waits for the worker to finish what is queued.
func (in *instance) stop() {
	in.qmu.Lock()
	in.closing = true
	in.qcond.Broadcast()
	in.qmu.Unlock()
	<-in.done
}

// drain waits until no request outside the worker uses the log.
func (in *instance) drain() {
	for in.refs.Load() != 0 {
		time.Sleep(50 * time.Microsecond)
	}
}

// latencies keeps the last flush latency and a small window for a p99,
// and the bytes of the last flush and of all of them.
type latencies struct {
	mu        sync.Mutex
	last      time.Duration
	lastBytes uint64
	bytes     uint64
	window    [256]time.Duration
	n         int
}

func (l *latencies) add(d time.Duration, bytes uint64) {
	l.mu.Lock()
	l.last = d
	l.lastBytes = bytes
	l.bytes += bytes
	l.window[l.n%len(l.window)] = d
	l.n++
	l.mu.Unlock()
}

// snapshot returns the last latency, the 99th percentile of the window,
// the last flush's bytes and the bytes of every flush.
func (l *latencies) snapshot() (last, p99 time.Duration, lastBytes, bytes uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(l.n, len(l.window))
	if n == 0 {
		return 0, 0, 0, 0
	}
	s := make([]time.Duration, n)
	copy(s, l.window[:n])
	for i := 1; i < n; i++ { // insertion sort: n <= 256
		for k := i; k > 0 && s[k] < s[k-1]; k-- {
			s[k], s[k-1] = s[k-1], s[k]
		}
	}
	return l.last, s[(n*99)/100], l.lastBytes, l.bytes
}
