package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// Options configure a Daemon.
type Options struct {
	// Logger receives the daemon's log; nil means slog.Default().
	Logger *slog.Logger
	// PID is the nlmsg_pid of replies (the daemon's netlink port id). The
	// kernel does not look at it.
	PID uint32
	// Engine are the options every log is opened with (Logger is
	// replaced by the daemon's).
	Engine engine.Options
	// Open opens a log; nil means engine.Open. Tests interpose here.
	Open func(engine.Config, engine.Options) (engine.Log, error)
	// OpenInstance, when set, is used instead of Open and also gets the
	// log's identity: the uuid and luid the kernel names it by. A
	// cluster-coherent log needs the uuid to find its peers on other nodes
	// (package cluster names its group after it).
	OpenInstance func(uuid string, luid uint64, c engine.Config, o engine.Options) (engine.Log, error)
	// StateDir, when set, keeps every log's in-memory state in a file
	// there, so that a restarted daemon serves the kernel's logs as they
	// were (see Restore). dlogd uses a directory on /run.
	StateDir string
	// LiveUUIDs, when set, tells Restore which log uuids the kernel's
	// device-mapper tables still name (dlogd asks dmsetup): a state file
	// whose log the kernel destroyed while no daemon ran is dropped
	// instead of restored. ok=false means "cannot tell": everything is
	// restored.
	LiveUUIDs func() (uuids map[string]bool, ok bool)
	// FlushLegs, when set, is called with a disk log's uuid when an
	// instance of it is opened, and returns what that instance calls
	// before it writes an image that records clears: its Flush must flush
	// the volatile cache of every leg of the mirror whose table names that
	// uuid (the instance's table, which never changes), and its Close is
	// called when the instance is closed, before the DTR is answered. The
	// kernel's own disk log has dm-raid1 do this (its flush callback), and
	// dm-log-userspace passes no such callback to a daemon. Marks never
	// wait for it. When it fails, the clears are not persisted: every
	// region is marked dirty and clears are ignored until the log is
	// constructed again (the kernel's flush_failed), and the log says why.
	// dlogd sets a LegFlusher's ForLog.
	FlushLegs func(uuid string) LegFlush
	// CheckMirror, when set, is asked once per log, after its first
	// successful RESUME and off the request path, what is unsafe about the
	// mirror that uses it; a non-empty answer is logged once as a warning
	// and shown by Status. dlogd sets LegFlusher.CheckMirror, which warns of
	// a mirror table without handle_errors.
	CheckMirror func(uuid string) string
	// Observer, when set, is told how long every request took and what
	// every flush cost (dlogd's metrics). It is called on the request path
	// and must not block or allocate.
	Observer Observer
}

// Observer receives the daemon's measurements.
type Observer interface {
	// Request reports a request answered after d, with errno (0 or
	// negative) in its reply.
	Request(t ulog.RequestType, d time.Duration, errno int32)
	// Flush reports a FLUSH or POSTSUSPEND the worker ran: how long the
	// engine took, the bytes it wrote, and its error.
	Flush(d time.Duration, bytes uint64, err error)
}

// QueuedResyncWork is implemented by a log whose GetResyncWork may wait: a
// cluster log waits for its group to agree on a hand-out. When
// QueueResyncWork reports true, the daemon answers GET_RESYNC_WORK for that
// log from the log's worker, as it does FLUSH, so that the reader (and the
// IN_SYNC answers of every other log) never waits for it.
type QueuedResyncWork interface {
	QueueResyncWork() bool
}

// Counters are the daemon-wide counts (Daemon.Counters).
type Counters struct {
	Requests   [ulog.MaxRequestType + 1]uint64 // by request type
	Malformed  uint64                          // requests the codec answered with an error
	UnknownLog uint64                          // requests for a (uuid, luid) not served
	Errors     uint64                          // replies with a non-zero error
	Busy       uint64                          // requests refused with EAGAIN (queue full)
}

// Daemon serves dm-log-userspace requests for any number of logs. It is a
// transport.Handler: give it to a Transport's Serve.
type Daemon struct {
	opts Options
	log  *slog.Logger

	// table maps uuid to luid to instance. It is copied on every CTR and
	// DTR and read without a lock by every request.
	table atomic.Pointer[table]
	tmu   sync.Mutex // serialises table writers

	// cd* run CTR and DTR, one at a time, off the reader goroutines.
	cdMu     sync.Mutex
	cdCond   sync.Cond
	cdQ      []job
	cdStop   bool
	cdDone   chan struct{}
	bufs     sync.Pool
	warnedV  atomic.Bool
	changed  chan struct{} // signalled when the number of logs changes
	counters counters
}

type table map[string]map[uint64]*instance

// counters are the daemon-wide request and error counts.
type counters struct {
	requests  [ulog.MaxRequestType + 1]atomic.Uint64
	malformed atomic.Uint64 // requests the codec answered with an error
	unknown   atomic.Uint64 // requests for a (uuid, luid) we do not have
	errors    atomic.Uint64 // replies with a non-zero error
	busy      atomic.Uint64 // requests refused with EAGAIN (queue full)
}

// New returns a Daemon with no logs. Close stops it.
func New(opts Options) *Daemon {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Open == nil {
		opts.Open = engine.Open
	}
	d := &Daemon{opts: opts, log: opts.Logger, cdDone: make(chan struct{}), changed: make(chan struct{}, 1)}
	d.cdCond.L = &d.cdMu
	d.table.Store(&table{})
	d.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	go d.ctrDtrLoop()
	return d
}

// Serve serves t until ctx is done or t is closed.
func (d *Daemon) Serve(ctx context.Context, t transport.Transport) error {
	return t.Serve(ctx, d)
}

// lookup finds a log by the request's (uuid, luid) without allocating.
func (d *Daemon) lookup(r *ulog.Request) *instance {
	byLUID := (*d.table.Load())[string(r.UUIDBytes())]
	if byLUID == nil {
		return nil
	}
	return byLUID[r.LUID]
}

// Handle handles one datagram from a transport. It blocks on disk I/O
// only after detaching from the transport (a single-node disk log's MARK
// or writing FLUSH run in place of an idle worker, queueOrRun), so the
// transport goes on receiving: other requests that need the disk are
// queued to their log's worker, CTR and DTR to the CTR/DTR worker;
// everything else is answered at once.
//
// dg is decoded already, by the transport's admission check
// (transport.Datagram.Decode); a fault the codec wants answered
// (dg.Err) is answered here.
func (d *Daemon) Handle(dg *transport.Datagram, from transport.Peer) {
	bp := d.bufs.Get().(*[]byte)
	out := (*bp)[:0]
	defer func() { *bp = out[:0]; d.bufs.Put(bp) }()

	if fe := dg.Err; fe != nil {
		d.counters.malformed.Add(1)
		d.log.Warn("malformed request", "from", from.String(), "action", fe.Action.String(), "seq", fe.Seq, "err", fe.Err)
		if out = fe.AppendReply(out, &dg.Frame, d.opts.PID); len(out) > 0 {
			d.send(from, out)
		}
		return
	}
	req := &dg.Frame.Req
	t := req.Type()
	d.counters.requests[t].Add(1)
	var start time.Time
	if d.opts.Observer != nil {
		start = time.Now()
	}
	if !req.KnownVersion() && !d.warnedV.Swap(true) {
		d.log.Warn("kernel speaks a newer dm-log-userspace protocol than dlogd knows; serving it as version 3", "version", req.Version)
	}
	switch t {
	case ulog.TypeCtr, ulog.TypeDtr:
		j := job{req: *req, from: from, at: time.Now()}
		j.req.Data = nil
		if t == ulog.TypeCtr {
			s, err := ulog.CtrString(req.Data)
			if err != nil {
				d.reply(from, req, -int32(ulog.EINVAL), nil, &out)
				d.log.Warn("CTR with a malformed constructor string", "uuid", string(req.UUIDBytes()), "err", err)
				return
			}
			j.ctr = s
			j.reconnect = len(req.Data) > 0 && req.Data[len(req.Data)-1] == 0
		}
		d.queueCtrDtr(j)
		return
	}
	in := d.lookup(req)
	if in == nil || !in.acquire() {
		// A request for a log we do not have: after a daemon restart the
		// kernel still has it. ESRCH makes the kernel replay CTR and RESUME
		// and retry (docs/protocol.md §1.6); DTR of an unknown log is an error.
		d.counters.unknown.Add(1)
		if t == ulog.TypeDtr {
			d.reply(from, req, -int32(ulog.EINVAL), nil, &out)
			return
		}
		// The kernel takes the data_size of any reply, error or not, as
		// the capacity of its next try (dm-log-userspace-transfer.c
		// fill_pkg), and retries with it after the reconnect. An empty
		// -ESRCH reply would leave it no room for the 8 or 16 bytes of the
		// real answer ("Insufficient space to receive package"), and an
		// IN_SYNC failing that way sends a write to one leg only. So the
		// error carries zeros of the size the answer will have.
		var room [ulog.PairLen]byte
		n, fixed := ulog.ReplyCapacity(t)
		if !fixed || t == ulog.TypeCtr {
			n = 0
		}
		d.reply(from, req, -int32(ulog.ESRCH), room[:min(n, len(room))], &out)
		return
	}
	defer in.release()
	in.requests[t].Add(1)
	if errno, answered := d.serve(in, dg, from, &out); answered && d.opts.Observer != nil {
		d.opts.Observer.Request(t, time.Since(start), errno)
	}
}

// Counters returns the daemon-wide counts.
func (d *Daemon) Counters() Counters {
	var c Counters
	for t := range c.Requests {
		c.Requests[t] = d.counters.requests[t].Load()
	}
	c.Malformed = d.counters.malformed.Load()
	c.UnknownLog = d.counters.unknown.Load()
	c.Errors = d.counters.errors.Load()
	c.Busy = d.counters.busy.Load()
	return c
}

// serve answers a request for a known log, or queues it to the log's
// worker. It returns the errno it answered with, and false when the
// request was queued (the worker answers it).
func (d *Daemon) serve(in *instance, dg *transport.Datagram, from transport.Peer, out *[]byte) (int32, bool) {
	req := &dg.Frame.Req
	l := in.log
	var pl [ulog.PairLen]byte
	payload := pl[:0]
	var errno int32
	switch req.Type() {
	case ulog.TypeGetRegionSize:
		payload = ulog.AppendUint64(payload, l.RegionSize())
	case ulog.TypeIsClean, ulog.TypeInSync, ulog.TypeIsRemoteRecovering:
		r, err := ulog.Region(req.Data)
		if err != nil || r >= l.RegionCount() {
			errno = -int32(ulog.EINVAL)
			break
		}
		switch req.Type() {
		case ulog.TypeIsClean:
			v, err := l.IsClean(r)
			errno, payload = errnoOf(err), ulog.AppendBool(payload, v)
		case ulog.TypeInSync:
			v, err := l.InSync(r)
			errno, payload = errnoOf(err), ulog.AppendBool(payload, v)
		default:
			if in.resuming.Load() > 0 {
				return d.queueArgs(in, req, from, out, r, 0)
			}
			rec, hint, err := l.IsRemoteRecovering(r)
			errno, payload = errnoOf(err), ulog.AppendPair(payload, b2i(rec), hint)
		}
	case ulog.TypeMarkRegion, ulog.TypeClearRegion:
		regions, err := d.regions(in, req.Data)
		if err != nil {
			errno = -int32(ulog.EINVAL)
			break
		}
		for i := range regions.Len() {
			if req.Type() == ulog.TypeMarkRegion {
				err = l.MarkRegion(regions.At(i))
			} else {
				err = l.ClearRegion(regions.At(i))
			}
			if err != nil {
				break
			}
		}
		errno = errnoOf(err)
		if errno == 0 && req.Type() == ulog.TypeMarkRegion {
			// A mark is made durable (the log's Flush) before it is
			// acknowledged, not only at the FLUSH that follows: if the
			// daemon died in between, the kernel would reconnect, replay
			// CTR and RESUME, send the FLUSH to the new daemon, and write
			// to regions whose marks nobody had. The FLUSH then finds
			// nothing left to do, so a write batch still costs one sync
			// (one cluster round trip for a cluster core log; nothing for
			// a core log, whose Flush is free).
			return d.queueOrRun(in, dg, from, out)
		}
	case ulog.TypeFlush:
		// Integrated flush (protocol v3): the marks travel in the FLUSH.
		// They are applied here, in arrival order, and made durable by the
		// worker before it replies.
		if len(req.Data) > 0 {
			regions, err := d.regions(in, req.Data)
			if err != nil {
				errno = -int32(ulog.EINVAL)
				break
			}
			for i := range regions.Len() {
				l.MarkRegion(regions.At(i))
			}
		}
		return d.queueOrRun(in, dg, from, out)
	case ulog.TypeResume:
		in.resuming.Add(1)
		errno, answered := d.queue(in, req, from, out)
		if answered {
			in.resuming.Add(-1)
		}
		return errno, answered
	case ulog.TypePostsuspend:
		return d.queue(in, req, from, out)
	case ulog.TypePresuspend:
		if in.resuming.Load() > 0 {
			return d.queue(in, req, from, out)
		}
		errno = errnoOf(l.Presuspend())
	case ulog.TypeGetResyncWork:
		if q, ok := l.(QueuedResyncWork); (ok && q.QueueResyncWork()) || in.resuming.Load() > 0 {
			return d.queue(in, req, from, out)
		}
		r, ok, err := l.GetResyncWork()
		errno = errnoOf(err)
		if !ok {
			r = 0
		}
		payload = ulog.AppendPair(payload, b2i(ok), r)
	case ulog.TypeSetRegionSync:
		r, v, err := ulog.SetRegionSync(req.Data)
		if err != nil || r >= l.RegionCount() {
			errno = -int32(ulog.EINVAL)
			break
		}
		if in.resuming.Load() > 0 {
			return d.queueArgs(in, req, from, out, r, uint64(v))
		}
		errno = errnoOf(l.SetRegionSync(r, v != 0))
	case ulog.TypeGetSyncCount:
		payload = ulog.AppendUint64(payload, l.SyncCount())
	case ulog.TypeStatusInfo, ulog.TypeStatusTable:
		st := engine.StatusInfo
		if req.Type() == ulog.TypeStatusTable {
			st = engine.StatusTable
		}
		var text [512]byte
		payload = ulog.AppendCString(text[:0], l.Status(st))
	}
	if errno != 0 {
		payload = nil
	}
	d.reply(from, req, errno, payload, out)
	return errno, true
}

// regions validates a MARK, CLEAR or FLUSH payload: a multiple of 8 bytes,
// 8 to 332 of them, every region in range. A batch with any bad region is
// rejected whole (docs/conformance.md item 31).
func (d *Daemon) regions(in *instance, data []byte) (ulog.RegionList, error) {
	rl, err := ulog.Regions(data)
	if err != nil {
		return nil, err
	}
	n := in.log.RegionCount()
	for i := range rl.Len() {
		if rl.At(i) >= n {
			return nil, fmt.Errorf("region %d of %d", rl.At(i), n)
		}
	}
	return rl, nil
}

// queueOrRun runs a MARK or FLUSH at once, on the receiving goroutine,
// when nothing is ahead of it, instead of handing it to the log's worker:
// the hand-off and the worker's wake-up cost more than the flush of a core
// log, and made up the disk log's queue phase (docs/performance.md). The
// reader is the only goroutine that queues this log's requests and
// applies its marks and clears, so an idle worker stays idle until this
// returns and arrival order holds. With Options.OpenInstance (dlogd
// --cluster) the log may be a cluster log, whose flush goes round the
// cluster: it runs here only when its FlushNoIO says it has nothing to do,
// and is queued otherwise. Without it:
//   - a core log's flush costs nothing: run when the worker is idle;
//   - a disk log's FLUSH with nothing to write (engine FlushNoIO: the FLUSH
//     after a MARK, whose write the MARK made durable) is answered when
//     nothing is queued; nothing can become dirty between the check and
//     the reply;
//   - any other disk flush runs here too when the worker is idle and the
//     transport can go on receiving without this goroutine
//     (Datagram.Detach): this goroutine takes the worker's place for the
//     log (instance.claim), so requests for the log that arrive meanwhile
//     queue behind it, and it does the I/O and sends the reply itself.
//     The reader never blocks on a disk: another reader receives meanwhile.
func (d *Daemon) queueOrRun(in *instance, dg *transport.Datagram, from transport.Peer, out *[]byte) (int32, bool) {
	req := &dg.Frame.Req
	j := job{req: *req, from: from, at: time.Now(), inline: true}
	j.req.Data = nil
	if d.opts.OpenInstance != nil {
		// The log may be a cluster log, whose flush goes round the
		// cluster: run it here only when it has nothing to do (a FLUSH
		// after a MARK, a MARK of a region still marked).
		if nf, ok := in.log.(noIOFlusher); ok && in.idleButFlush() && nf.FlushNoIO() {
			j.flushed = true
			*out = d.runJob(in, &j, (*out)[:0])
			return 0, false
		}
		return d.queue(in, req, from, out)
	}
	if !in.cfg.Disk() {
		if !in.idle() {
			return d.queue(in, req, from, out)
		}
		*out = d.runJob(in, &j, (*out)[:0])
		return 0, false // answered by runJob, which told the Observer
	}
	// The worker may still be finishing the MARK before this FLUSH (its
	// reply is out, its flush done): FlushNoIO orders with it.
	if nf, ok := in.log.(noIOFlusher); ok && req.Type() == ulog.TypeFlush && in.idleButFlush() && nf.FlushNoIO() {
		j.flushed = true
		*out = d.runJob(in, &j, (*out)[:0])
		return 0, false
	}
	if !in.claim() {
		return d.queue(in, req, from, out)
	}
	if !dg.Detach() {
		in.unclaim(true)
		return d.queue(in, req, from, out)
	}
	// From here on this goroutine is the log's worker, not the reader;
	// runJob gives both places back before the reply (done).
	j.detached, j.dg = true, dg
	*out = d.runJob(in, &j, (*out)[:0])
	return 0, false
}

// queue hands a disk request to the log's worker, or answers EAGAIN when
// the worker is swamped (the kernel resends at once).
func (d *Daemon) queue(in *instance, req *ulog.Request, from transport.Peer, out *[]byte) (int32, bool) {
	return d.queueArgs(in, req, from, out, 0, 0)
}

// queueArgs is queue for a request whose decoded arguments the worker
// needs (the payload is not kept).
func (d *Daemon) queueArgs(in *instance, req *ulog.Request, from transport.Peer, out *[]byte, region, value uint64) (int32, bool) {
	j := job{req: *req, from: from, at: time.Now(), region: region, value: value}
	j.req.Data = nil
	if !in.enqueue(j) {
		d.counters.busy.Add(1)
		d.again(from, req, out)
		return -int32(ulog.EAGAIN), true
	}
	return 0, false
}

// LegFlush flushes the legs of one log instance's mirror (Options.FlushLegs).
type LegFlush interface {
	Flush() error
	Close() error
}

// withLegs is an engine log that closes its LegFlush after itself.
type withLegs struct {
	engine.Log
	legs LegFlush
}

// noIOFlusher is a log that can tell a Flush with nothing to write
// (engine's disk log, and cluster's logs: FlushNoIO).
type noIOFlusher interface{ FlushNoIO() bool }

// FlushNoIO forwards to the log: the legs are flushed only with clears,
// which a Flush with nothing to write has none of.
func (l withLegs) FlushNoIO() bool {
	nf, ok := l.Log.(noIOFlusher)
	return ok && nf.FlushNoIO()
}

// GroupCounters forwards to the log: nil when it has no group.
func (l withLegs) GroupCounters() map[string]uint64 {
	if g, ok := l.Log.(groupCounters); ok {
		return g.GroupCounters()
	}
	return nil
}

func (l withLegs) Close() error {
	err := l.Log.Close()
	l.legs.Close()
	return err
}

// runJob executes a queued disk request on the log's worker.
func (d *Daemon) runJob(in *instance, j *job, buf []byte) []byte {
	var err error
	var pl [ulog.PairLen]byte
	var payload []byte
	start := time.Now()
	before := in.log.Stats().BytesWritten
	switch j.req.Type() {
	case ulog.TypeGetResyncWork:
		r, ok, werr := in.log.GetResyncWork()
		if err = werr; !ok {
			r = 0
		}
		payload = ulog.AppendPair(pl[:0], b2i(ok), r)
	case ulog.TypeFlush, ulog.TypeMarkRegion:
		if !j.flushed {
			err = in.log.Flush()
		}
	case ulog.TypeResume:
		err = in.log.Resume()
		in.resuming.Add(-1)
	case ulog.TypePostsuspend:
		err = in.log.Postsuspend()
	case ulog.TypePresuspend:
		err = in.log.Presuspend()
	case ulog.TypeSetRegionSync:
		err = in.log.SetRegionSync(j.region, j.value != 0)
	case ulog.TypeIsRemoteRecovering:
		rec, hint, werr := in.log.IsRemoteRecovering(j.region)
		err = werr
		payload = ulog.AppendPair(pl[:0], b2i(rec), hint)
	}
	took := time.Since(start)
	// A MARK's flush counts when it wrote something: a core log's costs
	// nothing and would only dilute the figures.
	timed := false
	if t := j.req.Type(); t == ulog.TypeFlush || t == ulog.TypePostsuspend || t == ulog.TypeMarkRegion {
		if bytes := in.log.Stats().BytesWritten - before; t != ulog.TypeMarkRegion || bytes > 0 {
			timed = true
			in.flushLat.add(took, bytes)
			if d.opts.Observer != nil {
				d.opts.Observer.Flush(took, bytes, err)
			}
		}
	}
	if err != nil {
		d.log.Error("request failed", "type", j.req.Type().String(), "uuid", in.uuid, "luid", fmt.Sprintf("%#x", in.luid), "err", err)
	}
	errno := errnoOf(err)
	if errno != 0 {
		payload = nil
	}
	if !j.inline || j.detached {
		// The I/O is done: the reply needs neither the worker's place nor
		// a reader's, and on one CPU its sendto can wait long behind the
		// kernel work it wakes (docs/performance.md): the next request of
		// the log may run meanwhile.
		in.unclaim(j.detached)
	}
	if j.detached {
		j.dg.Reattach()
	}
	sent := time.Now()
	d.reply(j.from, &j.req, errno, payload, &buf)
	if timed {
		in.phases.add(start.Sub(j.at), took, time.Since(sent), j.inline, j.detached)
	}
	if d.opts.Observer != nil {
		d.opts.Observer.Request(j.req.Type(), time.Since(j.at), errno)
	}
	if j.req.Type() == ulog.TypeResume && errno == 0 && d.opts.CheckMirror != nil && in.mirrorChecked.CompareAndSwap(false, true) {
		go d.checkMirror(in)
	}
	return buf
}

// checkMirror asks Options.CheckMirror about in's mirror and keeps the
// answer for Status.
func (d *Daemon) checkMirror(in *instance) {
	if w := d.opts.CheckMirror(in.uuid); w != "" {
		in.mirrorWarning.Store(&w)
		d.log.Warn(w, "uuid", in.uuid, "luid", fmt.Sprintf("%#x", in.luid))
	}
}

// reply sends a full reply to req; out is scratch space.
func (d *Daemon) reply(to transport.Peer, req *ulog.Request, errno int32, payload []byte, out *[]byte) {
	if errno != 0 {
		d.counters.errors.Add(1)
	}
	*out = ulog.AppendReply((*out)[:0], req, d.opts.PID, errno, payload)
	d.send(to, *out)
}

// again asks the kernel to resend req: the ack-only form, matched by the
// request's seq, because only that form leaves the caller's reply space
// as it was (docs/protocol.md §1.4 item 5). A full-form -EAGAIN with no data
// would shrink it to 0, and the resent GET_RESYNC_WORK or table-load CTR
// would fail with -ENOSPC.
func (d *Daemon) again(to transport.Peer, req *ulog.Request, out *[]byte) {
	d.counters.errors.Add(1)
	*out = ulog.AppendAck((*out)[:0], req.Seq, d.opts.PID, uint32(ulog.EAGAIN))
	d.send(to, *out)
}

func (d *Daemon) send(to transport.Peer, b []byte) {
	if err := to.Send(b); err != nil {
		d.log.Warn("reply not sent", "to", to.String(), "err", err)
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
