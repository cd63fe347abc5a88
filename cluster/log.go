package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlog-dev/dlog/engine"
)

// Options configure the cluster logs of one daemon.
type Options struct {
	// Messenger reaches the cluster engine; required.
	Messenger Messenger
	// Logger receives notable events; nil means slog.Default().
	Logger *slog.Logger
	// JoinTimeout bounds how long RESUME waits for the group's state
	// (default 60 s). On expiry RESUME fails; the log answers its kernel
	// as a log that has nothing in sync until a later RESUME succeeds.
	JoinTimeout time.Duration
	// WorkTimeout bounds how long GET_RESYNC_WORK holds its answer while
	// a proposal of this member is open and nothing is granted to it yet
	// (default DefaultWorkTimeout: about one vote round trip). With no
	// proposal open (everything left is granted to others, vetoed or
	// held) it answers "no work" at once. dm-raid1's single worker runs
	// every read and write of the mirror after its recovery step, so a
	// held answer holds the mirror's I/O: keep it short. A region granted
	// later is handed out at the kernel's next request, which Wake
	// provokes.
	WorkTimeout time.Duration
	// Wake, when set, makes the kernel of the mirror whose log has this
	// uuid ask GET_RESYNC_WORK again (dlogd: a 4 KiB read of the mirror,
	// which the userspace log queues to dm-raid1's worker). It is called
	// when a region is granted to this member after its kernel was
	// answered "no work": dm-raid1 asks again only when I/O or a finished
	// recovery wakes its worker. At most one call runs at a time, at most
	// every 250 ms, never while the log is suspended or presuspended;
	// it runs on its own goroutine. Without it an idle mirror resyncs
	// only what its kernel finds granted when it asks.
	Wake func(ctx context.Context, uuid string) error
	// Reserve is how long an IS_REMOTE_RECOVERING answer of 0 keeps its
	// region from being handed out elsewhere (default 5 s): the kernel
	// marks and flushes in the same worker pass, microseconds later.
	Reserve time.Duration
	// MaxSlots bounds the slots used on a clustered-disk device (default
	// and maximum MaxSlots).
	MaxSlots int
	// GrantWait bounds how long a FLUSH holds a newly marked region that
	// another member holds for recovery (default 5 s). That member's
	// SET_REGION_SYNC comes from its kernel's single mirror worker, which
	// may itself be held in a FLUSH on a region this node recovers: after
	// GrantWait the FLUSH taints the region (the other member's recovery
	// of it is discarded: it stays out of sync) and answers.
	GrantWait time.Duration
	// FenceConfirm confirms that a node whose member departed without
	// LEAVING is fenced (its kernel cannot write any more): nil error
	// means confirmed. dlogd's --fence-confirm runs a command (say,
	// stonith_admin --history). Until a departed node is confirmed, or
	// its dlogd rejoins, nothing is resynchronised (docs/design/cluster.md,
	// "Fencing").
	FenceConfirm func(ctx context.Context, node uint32) error
	// FenceTimeout, when FenceConfirm is nil, takes a node that has been
	// out of the cluster membership for this long as fenced (opt-in; it
	// trusts that a node gone from the membership has stopped writing,
	// which only fencing guarantees). It needs a Group that reports node
	// membership (NodeView).
	FenceTimeout time.Duration
	// Restart, when set, suspends and resumes the mirror whose log has
	// this uuid (dlogd: through device-mapper; --no-self-resume turns it
	// off). It is called once the fencing rule lets a departed node's
	// regions be resynced, on a node whose kernel saw the mirror fully in
	// sync: such a kernel never asks for resync work again until it is
	// resumed. It runs on its own goroutine; the suspend's requests come
	// back to this log.
	Restart func(ctx context.Context, uuid string) error
	// ClearLinger, when positive, holds back this node's CLEAR of a
	// region it marked for that long: a MARK of the same region meanwhile
	// needs no new mark (clustered-core: no cluster message to wait for;
	// clustered-disk: no slot write), which is what a sequential writer
	// does to every region it crosses (the kernel clears a region each
	// time its writes drain and marks it again at the next write). A held
	// clear only over-reports: the region stays marked in the group a
	// little longer (a crash resyncs it). It is released at the first
	// FLUSH after ClearLinger, at once when another member asks to
	// recover the region, and at suspend and close. 0 holds none, as the
	// kernel's logs; dlogd uses DefaultClearLinger.
	ClearLinger time.Duration
	// MarkAhead, when positive (and ClearLinger too), marks the next
	// MarkAhead regions along with a region a sequential writer enters
	// (a new mark of the region after the last one marked): they travel
	// in the same FLUSH (clustered-core: the same cluster message;
	// clustered-disk: the same slot write), so the writer waits for the
	// group once every MarkAhead+1 regions, not at every region. Only
	// regions in sync and not marked are marked ahead. A mark ahead is
	// held as a held clear is (for 1+markAheadHold ClearLingers: the
	// writer needs time to get there): the writer's MARK of it needs
	// nothing, and one the writer does not reach is cleared. It only
	// over-reports: after a crash up to MarkAhead more regions resync.
	// dlogd uses DefaultMarkAhead.
	MarkAhead int
}

// DefaultMarkAhead is dlogd's Options.MarkAhead.
const DefaultMarkAhead = 7

// markAheadHold is how many ClearLingers longer than a held clear a mark
// ahead is held before it is cleared unused: the writer reaches the last
// of MarkAhead regions only after MarkAhead regions' worth of writes
// (dlogd: 4 s in all, and 7 regions of 512 KiB at 4 MiB/s take 0.9 s).
const markAheadHold = 3

// DefaultClearLinger is dlogd's Options.ClearLinger.
const DefaultClearLinger = time.Second

// DefaultWorkTimeout is Options.WorkTimeout's default: a vote round trip
// over corosync under load, and short enough that the mirror's I/O queued
// behind a held GET_RESYNC_WORK barely notices.
const DefaultWorkTimeout = 200 * time.Millisecond

// NodeView is implemented by a Group that reports the cluster's node
// membership (corosync's, not the group's: a node whose dlogd died is
// still a member).
type NodeView interface {
	NodeMember(node uint32) bool
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.JoinTimeout <= 0 {
		o.JoinTimeout = 60 * time.Second
	}
	if o.WorkTimeout <= 0 {
		o.WorkTimeout = DefaultWorkTimeout
	}
	if o.Reserve <= 0 {
		o.Reserve = 5 * time.Second
	}
	if o.GrantWait <= 0 {
		o.GrantWait = 5 * time.Second
	}
	if o.MaxSlots <= 0 || o.MaxSlots > MaxSlots {
		o.MaxSlots = MaxSlots
	}
}

// ErrNoState is returned by Resume when the group's state did not arrive.
var ErrNoState = errors.New("cluster: no state from the group")

// Opener returns the daemon's log opener: clustered-core and
// clustered-disk logs become cluster logs over o.Messenger; core and disk
// logs are opened by engine.Open exactly as without a cluster.
func Opener(o Options) func(uuid string, luid uint64, c engine.Config, eo engine.Options) (engine.Log, error) {
	o.defaults()
	return func(uuid string, luid uint64, c engine.Config, eo engine.Options) (engine.Log, error) {
		if !c.Clustered() {
			return engine.Open(c, eo)
		}
		l, err := Open(uuid, c, eo, o)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
}

// GroupName is the CPG group of a log uuid: "dlogd:" and the uuid (cut to
// 127 bytes with a hash of the rest if longer).
func GroupName(uuid string) string {
	name := "dlogd:" + uuid
	if len(name) > 127 {
		h := uint32(2166136261)
		for i := 0; i < len(name); i++ {
			h = (h ^ uint32(name[i])) * 16777619
		}
		name = fmt.Sprintf("%s#%08x", name[:118], h)
	}
	return name
}

// event is a group event as delivered.
type event struct {
	cc      bool
	from    MemberID
	msg     []byte
	members []MemberID
	left    []MemberID
	joined  []MemberID
}

// Log is a cluster-coherent dirty log (see the package doc).
type Log struct {
	cfg   engine.Config
	eopts engine.Options
	opts  Options
	log   *slog.Logger
	n     uint64
	core  bool
	name  string
	codec codec

	// Local state of this node, answered without the group.
	mine     bits          // this node's own marks
	promised atomic.Uint64 // highest in_sync_hint this node's kernel may hold
	halted   atomic.Bool
	running  atomic.Bool
	closed   atomic.Bool

	raw  *rawDev    // clustered-disk: the shared device
	geo  geometry   // clustered-disk
	slot engine.Log // clustered-disk: this member's slot, while resumed

	pmu                sync.Mutex // guards the new marks and clears, slot, slotErr
	newMarks, newClear []uint64
	linger             map[uint64]time.Time // clears held back (Options.ClearLinger): region -> when its CLEAR came (a mark ahead: later)
	lastMarked         uint64               // the region of the last MARK plus one (Options.MarkAhead), 0 if none
	markedAhead        atomic.Uint64        // regions marked ahead (Info)
	slotErr            error                // clustered-disk: the slot failed to open at the last resume
	flushing           int                  // Flush calls past taking the new marks and clears, not returned (FlushNoIO)
	flushFailed        atomic.Bool          // a FLUSH failed since the last resume: status 'D'

	// syncp is st.sync, for the readers that take no lock; nover is
	// len(override), so that IN_SYNC takes mu only while one is pending.
	syncp atomic.Pointer[bits]
	nover atomic.Int32

	// mu guards everything below and the replicated state.
	mu   sync.Mutex
	cond sync.Cond
	st   *state
	// Local, not replicated:
	me        MemberID
	group     Group
	status    uint8      // stUnsynced, stSynced, stRetired
	cur       []MemberID // current membership
	round     map[MemberID]uint8
	resolved  bool
	queue     []event // events since our join, while unsynced
	assembly  map[MemberID]*stateAsm
	replaying bool
	seq       uint64               // last sequence number sent
	delivered uint64               // highest own sequence number delivered
	override  map[uint64]bool      // own SET_REGION_SYNC not yet delivered
	reserved  map[uint64]time.Time // IS_REMOTE_RECOVERING answered 0
	ns        map[uint64]bool      // regions this node's kernel may hold NOSYNC
	prio      []uint64
	// Give-back (docs/design/cluster.md, "Give-back"):
	interest      map[uint64]time.Time // regions this node's kernel was told are recovering: when
	wantSent      map[uint64]time.Time // WANTs this member sent: when
	started       map[uint64]bool      // granted regions GET_RESYNC_WORK handed to this node's kernel, not reported
	hurry         map[uint64]bool      // started regions a peer's kernel waits to write: reported at once (giveBack)
	givenBack     map[uint64]bool      // granted regions this member gave back (RELEASE sent, not delivered)
	wanted        map[uint64]wantedBy  // regions of this member's open proposal a peer's kernel wants: the proposal's id and the wanter
	cursor        uint64
	skipped       map[uint64]bool
	lastReset     time.Time
	propID        uint64
	myProp        uint64 // id of our open proposal, 0 if none
	vetoed        map[uint64]bool
	merging       map[int]bool
	fencing       map[uint32]bool // nodes whose fence confirmation runs
	tookOver      map[uint32]bool // nodes confirmed fenced in this member's state since a member of theirs was last synced (heal)
	holdWarned    bool            // minorityHold was logged
	rejoining     bool            // demoted (quorum lost) while running: marks to re-establish
	restartWanted bool            // a node was confirmed fenced, or this member rejoined: restart the mirror if its kernel will not ask for work
	restarting    bool            // an Options.Restart goroutine runs (restartMirror)
	stalled       bool            // GET_RESYNC_WORK answered "no work": the kernel asks again only when woken (maybeWake)
	waking        bool            // an Options.Wake call runs
	lastWake      time.Time       // when the last Options.Wake call started
	wakeFails     int             // Options.Wake calls failed in a row
	keepHint      bool            // this member took over a departed member's kernel: the resume keeps promised (its kernel reconnected and kept its in_sync_hint)
	uuid          string
	rejoinSeq     uint64 // clustered-core: seq of the last re-established MARKS
	failed        error  // fatal group condition (split brain, expelled)
	founded       bool
	leavingAt     uint64 // seq of our LEAVING, 0 if none
	resumeWanted  bool
	roundNo       uint64 // membership changes seen
	foundIntent   uint64 // seq of our founding intent in this round, 0 if none
	intentSeen    bool   // foundIntent was delivered in this round
	resumeWaiting bool
	loopDone      chan struct{}
	events        []event
	evcond        sync.Cond
	evstop        bool
	sendq         [][]byte
	reports       []uint64    // in-sync reports not multicast yet (events.go, report)
	carry         []uint64    // regions out of sync when this member last left (keepOutOfSync)
	reportTimer   *time.Timer // sends reports at the latest reportDelay after the first
	sendcond      sync.Cond
	sendStop      bool
	sendDone      chan struct{}
	stats         struct{ sent, recv, malformed, proposals, grants, vetoes, merges, yields, wakes, givenBack, wantsSent, takenBack uint64 }
	opened        time.Time // CTR: the origin of the debug timeline (trace)
}

// trace logs one step of the log's timeline at debug level, with the
// milliseconds since CTR: the join, the hand-out and the kernel's resync
// requests (docs/design/cluster.md, "Idle resync timeline").
func (l *Log) trace(what string, args ...any) {
	if !l.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	l.log.Debug("trace "+what, append([]any{"ms", time.Since(l.opened).Milliseconds(), "me", l.me.String()}, args...)...)
}

type stateAsm struct {
	id   uint64
	buf  []byte
	next uint64
}

// Open constructs a cluster log (CTR). It checks that the cluster engine
// is reachable and, for clustered-disk, opens the log device; it joins no
// group (that is RESUME's job, docs/protocol.md §3.1 CTR).
func Open(uuid string, c engine.Config, eo engine.Options, o Options) (*Log, error) {
	o.defaults()
	if o.Messenger == nil {
		return nil, fmt.Errorf("%w: no cluster transport configured", ErrUnreachable)
	}
	if eo.Logger == nil {
		eo.Logger = o.Logger
	}
	if _, err := engine.ParseArgs(c.TargetLen, c.Type, argsOf(c)); err != nil {
		return nil, err
	}
	if err := o.Messenger.Check(); err != nil {
		return nil, fmt.Errorf("%s log %s needs %s: %w", c.Type, uuid, o.Messenger.Name(), err)
	}
	n := c.RegionCount()
	l := &Log{
		cfg: c, eopts: eo, opts: o, n: n, core: !c.Disk(), name: GroupName(uuid), uuid: uuid, opened: time.Now(),
		codec:    codec{n: n, rs: c.RegionSize},
		log:      eo.Logger.With("cluster", o.Messenger.Name()),
		mine:     newBits(n, false),
		override: map[uint64]bool{}, reserved: map[uint64]time.Time{}, ns: map[uint64]bool{},
		interest: map[uint64]time.Time{}, wantSent: map[uint64]time.Time{}, started: map[uint64]bool{}, hurry: map[uint64]bool{}, givenBack: map[uint64]bool{}, wanted: map[uint64]wantedBy{},
		skipped: map[uint64]bool{}, vetoed: map[uint64]bool{}, merging: map[int]bool{}, fencing: map[uint32]bool{}, tookOver: map[uint32]bool{},
		assembly: map[MemberID]*stateAsm{}, linger: map[uint64]time.Time{},
	}
	l.cond.L = &l.mu
	l.evcond.L = &l.mu
	l.sendcond.L = &l.mu
	if c.Disk() {
		dev, info, err := engine.OpenDevice(c.Device, eo)
		if err != nil {
			return nil, err
		}
		if eo.WrapDevice != nil {
			dev = eo.WrapDevice(dev)
		}
		g, err := geometryOf(n, info, o.MaxSlots)
		if err != nil {
			dev.Close()
			return nil, fmt.Errorf("%w: %s: %v", engine.ErrDevice, info.Path, err)
		}
		if g.nslots < 1 {
			dev.Close()
			return nil, fmt.Errorf("%w: log device %s too small for a cluster log: need %d bytes for the image and one node's slot (%d more per node), have %d",
				engine.ErrDeviceTooSmall, info.Path, g.need(1), g.slotSize, info.Size)
		}
		l.raw = &rawDev{dev: dev, info: info, g: g}
		l.geo = g
		l.log.Info("cluster disk log opened", "device", info.Path, "buf_size", g.bufSize, "slots", g.nslots, "slot_size", g.slotSize)
	}
	l.setState(newState(n, l.core, l.geo.nslots))
	l.trace("ctr", "regions", n)
	return l, nil
}

func argsOf(c engine.Config) []string {
	s := c.String()
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
			}
			start = -1
		} else if start < 0 {
			start = i
		}
	}
	return out[1:]
}

// QueueResyncWork tells the daemon that GetResyncWork may wait for the
// group (daemon.QueuedResyncWork).
func (l *Log) QueueResyncWork() bool { return true }

func (l *Log) Type() string          { return l.cfg.Type }
func (l *Log) Config() engine.Config { return l.cfg }
func (l *Log) RegionSize() uint64    { return uint64(l.cfg.RegionSize) }
func (l *Log) RegionCount() uint64   { return l.n }

func (l *Log) check(r uint64) error {
	if l.closed.Load() {
		return engine.ErrClosed
	}
	if r >= l.n {
		return fmt.Errorf("%w: region %d, log has %d", engine.ErrRegionRange, r, l.n)
	}
	return nil
}

// ---- requests answered locally ----

// IsClean: not marked by this node and in sync in the cluster.
func (l *Log) IsClean(r uint64) (bool, error) {
	if err := l.check(r); err != nil {
		return false, err
	}
	return !l.mine.Test(r) && l.syncp.Load().Test(r), nil
}

// InSync answers from the cluster's sync bits, except where the kernel
// would write without asking IS_REMOTE_RECOVERING (below the hint it
// holds, or just after an answer of 0): there it answers 1, so that the
// write goes to every leg with a mark, never to the default leg only
// (docs/design/cluster.md, "The latch").
func (l *Log) InSync(r uint64) (bool, error) {
	if err := l.check(r); err != nil {
		return false, err
	}
	if !l.running.Load() {
		return false, nil
	}
	if l.syncp.Load().Test(r) {
		if l.nover.Load() == 0 {
			return true, nil
		}
		l.mu.Lock()
		v, ok := l.override[r]
		l.mu.Unlock()
		return !ok || v, nil
	}
	if r < l.promised.Load() {
		return true, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if v, ok := l.override[r]; ok {
		return v, nil
	}
	if t, ok := l.reserved[r]; ok && time.Now().Before(t) {
		return true, nil
	}
	return false, nil
}

func (l *Log) MarkRegion(r uint64) error {
	if err := l.check(r); err != nil {
		return err
	}
	l.pmu.Lock()
	defer l.pmu.Unlock()
	sequential := r > 0 && l.lastMarked == r // the writer went on from the last region it marked
	l.lastMarked = r + 1
	if _, held := l.linger[r]; held {
		// Its clear was held back, or it was marked ahead: r is
		// marked everywhere already.
		delete(l.linger, r)
		return nil
	}
	if l.mine.Set(r) {
		l.markLocked(r)
		if sequential {
			l.markAhead(r)
		}
	}
	return nil
}

// markLocked records a new mark of r, set in mine, for the next Flush;
// pmu is held.
func (l *Log) markLocked(r uint64) {
	l.newMarks = append(l.newMarks, r)
	if s := l.slot; s != nil {
		s.MarkRegion(r)
	}
}

// markAhead marks up to Options.MarkAhead regions after r, those in sync
// and not marked, with r (Options.MarkAhead); pmu is held.
func (l *Log) markAhead(r uint64) {
	if l.opts.MarkAhead <= 0 || l.opts.ClearLinger <= 0 || !l.running.Load() || l.halted.Load() {
		return
	}
	sync := l.syncp.Load()
	until := time.Now().Add(markAheadHold * l.opts.ClearLinger)
	for x := r + 1; x <= r+uint64(l.opts.MarkAhead) && x < l.n; x++ {
		if !sync.Test(x) || !l.mine.Set(x) {
			continue
		}
		l.markLocked(x)
		l.linger[x] = until
		l.markedAhead.Add(1)
	}
}

func (l *Log) ClearRegion(r uint64) error {
	if err := l.check(r); err != nil {
		return err
	}
	l.pmu.Lock()
	defer l.pmu.Unlock()
	if l.opts.ClearLinger > 0 && l.mine.Test(r) {
		if _, held := l.linger[r]; !held {
			l.linger[r] = time.Now()
		}
		return nil
	}
	l.clearLocked(r)
	return nil
}

// clearLocked removes this node's mark of r: from its slot's image
// (clustered-disk) or, at the next FLUSH, from the group (clustered-core);
// pmu is held.
func (l *Log) clearLocked(r uint64) {
	delete(l.linger, r)
	if l.mine.Clear(r) {
		l.newClear = append(l.newClear, r)
		if s := l.slot; s != nil {
			s.ClearRegion(r)
		}
	}
}

// releaseLingering makes the held clears real that are older than
// Options.ClearLinger, or all of them; pmu is held.
func (l *Log) releaseLingering(all bool) {
	now := time.Now()
	for r, at := range l.linger {
		if all || l.lingerOver(at, now) {
			l.clearLocked(r)
		}
	}
}

// lingerOver reports whether a clear held since at (a mark ahead: a time
// to come) is due for release at now.
func (l *Log) lingerOver(at, now time.Time) bool {
	return now.Sub(at) >= l.opts.ClearLinger
}

// releaseFor releases a held clear of r at once, because another member
// asks to recover r: for clustered-core the clear is multicast now, ahead
// of this member's vote; mu and pmu are held.
func (l *Log) releaseFor(r uint64) {
	if _, held := l.linger[r]; !held {
		return
	}
	delete(l.linger, r)
	if !l.mine.Clear(r) {
		return
	}
	if s := l.slot; s != nil {
		s.ClearRegion(r) // on the device at the slot's next flush; over-reports until then
	}
	if l.core && l.group != nil {
		l.send(func(seq uint64) []byte { return l.codec.marks(seq, nil, []uint64{r}) })
	}
}

// Flush makes this node's marks durable: clustered-disk in its own slot
// (changed blocks and one cache flush, as the single-node disk log);
// clustered-core in the group, by one ordered message that must come back
// before the answer. Then it waits while any newly marked region is being
// handed out to another node.
func (l *Log) Flush() error {
	if l.closed.Load() {
		return engine.ErrClosed
	}
	err := l.flush()
	if err != nil && l.running.Load() {
		l.flushFailed.Store(true)
	}
	return err
}

func (l *Log) flush() error {
	l.mu.Lock()
	if l.running.Load() && !l.halted.Load() && l.hasNewMarks() {
		// Without quorum, acknowledge no mark the quorate side cannot
		// see: hold the answer until this member is back with the
		// group's state (never, if this node is fenced).
		for l.failed == nil && l.group != nil && !l.closed.Load() && !l.acknowledging() {
			l.waitUntil(time.Now().Add(quorumPoll))
		}
	}
	failed := l.failed
	l.mu.Unlock()
	if failed != nil && l.running.Load() {
		return fmt.Errorf("%w: not in the log's group: %v", engine.ErrIO, failed)
	}
	l.pmu.Lock()
	l.releaseLingering(l.halted.Load()) // a suspend or close releases every held clear
	slot, slotErr := l.slot, l.slotErr
	// The two refusals below leave the new marks and clears queued.
	if slot == nil && !l.core && l.running.Load() {
		// No slot: the marks would be persisted nowhere.
		l.pmu.Unlock()
		return fmt.Errorf("%w: this node's slot on the log device is not open: %v", engine.ErrIO, slotErr)
	}
	if len(l.newMarks) > 0 && !l.running.Load() {
		// Suspended (POSTSUSPEND came) and not resumed, yet the kernel
		// writes: its RESUME was lost (a receive queue overrun; the
		// kernel sends it once). No group or slot holds these marks:
		// fail the FLUSH rather than acknowledge them, and restart the
		// mirror so that its next RESUME reaches this log.
		l.pmu.Unlock()
		l.mu.Lock()
		l.restartMirror("a FLUSH with new marks came to a suspended log: the kernel's RESUME was lost; restarting the mirror")
		l.mu.Unlock()
		return fmt.Errorf("%w: the log is suspended (its RESUME never arrived): marks not persisted", engine.ErrIO)
	}
	marks, clears := l.newMarks, l.newClear
	l.newMarks, l.newClear = nil, nil
	l.flushing++
	l.pmu.Unlock()
	defer func() {
		l.pmu.Lock()
		l.flushing--
		l.pmu.Unlock()
	}()
	if !l.core {
		if slot != nil {
			if err := slot.Flush(); err != nil {
				return err
			}
		}
	} else if len(marks)+len(clears) > 0 && l.running.Load() {
		if err := l.sendMarks(marks, clears); err != nil {
			l.pmu.Lock()
			l.newMarks = append(l.newMarks, marks...)
			l.newClear = append(l.newClear, clears...)
			l.pmu.Unlock()
			return err
		}
	}
	return l.holdFor(marks)
}

// FlushNoIO reports whether a Flush now would send nothing, write
// nothing and wait for nothing, without doing any of it and without
// blocking: no mark or clear since the last Flush took them (none held
// back by ClearLinger due for release), no other Flush still making its
// marks durable, the group not failed, and for clustered-disk a slot
// whose own Flush would write nothing. When it returns true every mark
// made before the call is already as durable as a Flush would make it
// (delivered to the group, or in the slot on the device), so the daemon
// answers the FLUSH at once, on the goroutine that received it: a
// sequential writer's FLUSHes, and its MARKs of a region whose clear was
// held back, skip the hand-off to the log's worker.
func (l *Log) FlushNoIO() bool {
	if l.closed.Load() || !l.mu.TryLock() {
		return false
	}
	failed := l.failed
	l.mu.Unlock()
	if failed != nil && l.running.Load() {
		return false // Flush fails
	}
	if !l.pmu.TryLock() {
		return false
	}
	defer l.pmu.Unlock()
	if l.flushing > 0 || len(l.newMarks)+len(l.newClear) > 0 || l.lingerDue(l.halted.Load()) {
		return false
	}
	if l.core {
		return true
	}
	if l.slot == nil {
		return !l.running.Load()
	}
	nf, ok := l.slot.(interface{ FlushNoIO() bool })
	return ok && nf.FlushNoIO()
}

// lingerDue reports whether releaseLingering(all) would release a held
// clear; pmu is held.
func (l *Log) lingerDue(all bool) bool {
	if all {
		return len(l.linger) > 0
	}
	now := time.Now()
	for _, at := range l.linger {
		if l.lingerOver(at, now) {
			return true
		}
	}
	return false
}

func (l *Log) hasNewMarks() bool {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	return len(l.newMarks) > 0
}

// sendMarks multicasts marks and clears and, when there are marks, waits
// for their delivery back to this member.
func (l *Log) sendMarks(marks, clears []uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Send each region's last state only: a CLEAR then a MARK of r in one
	// batch (dm_rh_update_states' clear, then do_writes' FLUSH [r]) must
	// not reach the group as mark-then-clear (a message's marks apply
	// before its clears), and a mark ahead released by a vote (releaseFor,
	// under mu too) must not be sent after its CLEAR.
	marks = slices.DeleteFunc(slices.Clone(marks), func(r uint64) bool { return !l.mine.Test(r) })
	clears = slices.DeleteFunc(slices.Clone(clears), func(r uint64) bool { return l.mine.Test(r) })
	var last uint64
	hadMarks := len(marks) > 0
	for len(marks)+len(clears) > 0 {
		m := marks[:min(len(marks), maxList)]
		c := clears[:min(len(clears), maxList-len(m))]
		marks, clears = marks[len(m):], clears[len(c):]
		last = l.send(func(seq uint64) []byte { return l.codec.marks(seq, m, c) })
	}
	if !hadMarks {
		return nil
	}
	for l.delivered < last {
		if l.failed != nil || l.group == nil {
			return fmt.Errorf("%w: marks not confirmed by the group: %v", engine.ErrIO, l.failedErr())
		}
		l.cond.Wait()
	}
	return nil
}

func (l *Log) failedErr() error {
	if l.failed != nil {
		return l.failed
	}
	return ErrLeft
}

// holdFor waits while another member holds any of marks for recovery, up
// to Options.GrantWait; then it taints the regions still held (their
// recovery is discarded) and returns once the taints are delivered, so
// the write that follows cannot be undone by that recovery's report.
func (l *Log) holdFor(marks []uint64) error {
	if len(marks) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	deadline := time.Now().Add(l.opts.GrantWait)
	held := func(r uint64) bool {
		id, ok := l.st.lockedBy(r)
		return ok && id != l.me && l.group != nil && l.failed == nil && l.mine.Test(r)
	}
	for _, r := range marks {
		for held(r) && time.Now().Before(deadline) {
			l.waitUntil(deadline)
		}
	}
	var last uint64
	for _, r := range marks {
		if held(r) && !l.st.tainted[r] {
			l.log.Warn("a FLUSH waited too long for another node's recovery of a region it writes: that recovery is discarded", "region", r)
			last = l.send(func(seq uint64) []byte { return l.codec.taint(seq, r) })
		}
	}
	for last != 0 && l.delivered < last {
		if l.failed != nil || l.group == nil {
			return fmt.Errorf("%w: taint not confirmed by the group: %v", engine.ErrIO, l.failedErr())
		}
		l.cond.Wait()
	}
	return nil
}

func (l *Log) Presuspend() error {
	if l.closed.Load() {
		return engine.ErrClosed
	}
	l.halted.Store(true)
	l.mu.Lock()
	l.cond.Broadcast() // a held GET_RESYNC_WORK answers
	l.mu.Unlock()
	return nil
}

// IsRemoteRecovering reports a region out of sync as recovering (the
// kernel delays the write until it is resynced, by whichever node) and
// reserves an in-sync region for this node's imminent write.
func (l *Log) IsRemoteRecovering(r uint64) (bool, uint64, error) {
	if err := l.check(r); err != nil {
		return false, 0, err
	}
	if !l.running.Load() {
		return true, 0, nil
	}
	if l.halted.Load() {
		// Presuspended: writes still arrive (the kernel presuspends
		// before it blocks I/O) and recovery has stopped, so no write
		// waits; the kernel latches hint n. Record it: IN_SYNC then
		// answers 1, so every such write is marked and goes to every
		// leg, and this node's vote and held FLUSH keep it apart from a
		// peer's resync of the region.
		l.promise(l.n)
		return false, l.n, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	hint := l.n
	if c, ok := l.st.sync.NextClear(0); ok {
		hint = c
	}
	rec := !l.st.sync.Test(r)
	if v, ok := l.override[r]; ok {
		rec = !v
	}
	now := time.Now()
	if rec {
		hint = min(hint, r)
		if len(l.prio) < 1024 && !slices.Contains(l.prio, r) {
			l.prio = append(l.prio, r)
		}
		l.interest[r] = now.Add(interestTTL)
		pruneBefore(l.interest, now, 4096)
		if x, locked := l.st.lockedBy(r); locked && x != l.me {
			l.want(r, now)
		}
	} else {
		l.reserved[r] = now.Add(l.opts.Reserve)
		pruneBefore(l.reserved, now, 4096)
	}
	l.promise(hint)
	return rec, hint, nil
}

// Give-back: a region another member holds for recovery and this node's
// kernel waits to write is wanted from its holder (a WANT, at most once per
// wantEvery per region while the kernel keeps asking); a holder whose
// kernel was not handed it yet gives it back (RELEASE), and this member
// proposes it first and hands it to its kernel first, so that the write
// waits for one vote and one region's copy, not for the holder's batch
// (docs/design/cluster.md, "Give-back"). interestTTL is how long a
// kernel's IS_REMOTE_RECOVERING answered 1 counts as its interest (the
// kernel asks again every 200-450 ms while the write waits).
const (
	wantEvery   = time.Second
	interestTTL = 2 * time.Second
)

// pruneBefore drops the entries of m that expired before now once m holds
// more than max of them.
func pruneBefore(m map[uint64]time.Time, now time.Time, max int) {
	if len(m) <= max {
		return
	}
	for k, t := range m {
		if now.After(t) {
			delete(m, k)
		}
	}
}

// want multicasts a WANT of r, held by another member, unless one went
// less than wantEvery ago; mu is held.
func (l *Log) want(r uint64, now time.Time) {
	if t, ok := l.wantSent[r]; ok && now.Before(t) {
		return
	}
	// A region given back while this member could not take it would be
	// held by nobody: no WANT unless this member may propose it now.
	if l.status != stSynced || l.group == nil || l.failed != nil || l.halted.Load() || !l.group.Quorate() || !l.canTake(l.me) {
		return // (halted: this kernel's recovery has stopped: it could not use the region)
	}
	if l.send(func(seq uint64) []byte { return l.codec.want(seq, r) }) == 0 {
		return
	}
	l.wantSent[r] = now.Add(wantEvery)
	pruneBefore(l.wantSent, now, 4096)
	l.stats.wantsSent++
	l.trace("want sent", "region", r)
}

// wants reports whether this node's kernel waits to write r; mu is held.
func (l *Log) wants(r uint64) bool {
	t, ok := l.interest[r]
	return ok && time.Now().Before(t)
}

// wantedBy is a region of this member's open proposal that a peer's
// kernel wants: the proposal, and the wanter.
type wantedBy struct {
	prop uint64
	by   MemberID
}

// canTake reports whether x could take a region given back to it now:
// nothing is unfenced (no proposal is granted while a node is), x is
// synced and its grant has room. Decided from replicated state when a
// WANT of x, or the grant of a proposal x wanted a region of, is applied,
// so every member agrees on whether a give-back happens; mu is held.
func (l *Log) canTake(x MemberID) bool {
	st := l.st
	return len(st.unfenced) == 0 && st.isSynced(x) && len(st.grants[x]) < maxBatch
}

// giveBack gives back r, wanted by the peer by, if this member holds it
// and its kernel was not handed it: a RELEASE, after which the region is
// no longer work here. A region of this member's open proposal is given
// back when it is granted; mu is held.
func (l *Log) giveBack(r uint64, by MemberID) {
	if l.replaying {
		return
	}
	if l.started[r] {
		// Its copy may be running here: kept, but its report goes the
		// moment it is made, not in the next batch (report).
		l.hurry[r] = true
		return
	}
	if l.givenBack[r] {
		return
	}
	if !slices.Contains(l.st.grants[l.me], r) {
		if p := l.st.pending[l.me]; p != nil && slices.Contains(p.regions, r) && len(l.wanted) < maxBatch {
			l.wanted[r] = wantedBy{prop: p.id, by: by}
		}
		return
	}
	if _, reported := l.override[r]; reported {
		if slices.Contains(l.reports, r) {
			l.sendReports() // copied already: the waiting write needs only the report
		}
		return
	}
	if l.send(func(seq uint64) []byte { return l.codec.release(seq, r) }) == 0 {
		return
	}
	l.givenBack[r] = true
	l.stats.givenBack++
	l.trace("given back", "region", r)
}

func (l *Log) promise(h uint64) {
	for {
		p := l.promised.Load()
		if h <= p || l.promised.CompareAndSwap(p, h) {
			return
		}
	}
}

// SyncCount is the cluster's count of regions in sync.
func (l *Log) SyncCount() uint64 {
	if l.closed.Load() || !l.running.Load() {
		return 0
	}
	c := l.syncp.Load().Count()
	if c >= l.n {
		l.promise(l.n)
	}
	return c
}

// SetRegionSync records a resync outcome (or a failed write) in the group.
// This node answers with the new value at once; the others when the
// message arrives.
func (l *Log) SetRegionSync(r uint64, inSync bool) error {
	if err := l.check(r); err != nil {
		return err
	}
	if inSync && !l.core && l.eopts.FlushCallback != nil {
		// The kernel's copy to the other legs completed, maybe only into
		// a volatile cache. Once reported, the region may be written as
		// in sync into the shared image (a merge, the clean point): flush
		// this node's legs first, as the kernel's disk log does before it
		// persists what a recovery pass cleaned. Legs that cannot be
		// flushed: the recovery is reported failed, the region stays out
		// of sync.
		if err := l.eopts.FlushCallback(); err != nil {
			l.log.Error("mirror legs not flushed after a recovery: the region stays out of sync", "region", r, "err", err)
			inSync = false
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trace("set_region_sync", "region", r, "in_sync", inSync)
	started, hurry := l.started[r], l.hurry[r]
	delete(l.started, r)
	delete(l.hurry, r)
	if inSync {
		delete(l.interest, r)
	}
	if !inSync && !started {
		// A failed write (dm_rh_mark_nosync; a failed recovery is of a
		// region the kernel was handed, even if r is granted to this
		// member): the kernel keeps the region NOSYNC in its region
		// hash until this node recovers it; only this node may resync
		// it.
		l.ns[r] = true
	} else if inSync {
		// This node's kernel recovered r: its region-hash entry is
		// clean again, and others may resync r when it next goes out
		// of sync.
		delete(l.ns, r)
	}
	if l.group == nil || l.status != stSynced {
		return nil
	}
	l.override[r] = inSync
	l.nover.Store(int32(len(l.override)))
	if inSync {
		l.report(r)
		if hurry {
			l.sendReports() // a peer's kernel waits to write r
		}
		return nil
	}
	l.send(func(seq uint64) []byte { return l.codec.sync(seq, r, inSync) })
	return nil
}

// ---- resync hand-out ----

// Resync hand-out batches: a member proposes its fair share of the
// regions left, up to maxBatch (the VOTE mask's width) at once, and
// proposes the next batch when no more than resyncLow of its granted
// regions are left to hand to its kernel, so that dm-raid1, which
// recovers one region at a time, finds the next region granted already.
const resyncLow = 12

// GetResyncWork hands this node's kernel the next region of its grant,
// proposing the next batch to the group when the grant runs low
// (docs/design/cluster.md, "Hand-out"). With nothing granted it proposes
// and holds the answer while that proposal is open, up to
// Options.WorkTimeout (about one vote round trip): dm-raid1 runs the
// mirror's reads and writes on the same worker after this request, so a
// longer hold stalls the mirror's I/O. With no proposal open (every
// region left is granted to another member, vetoed or held) it answers
// "no work" at once; a region granted to this member later wakes the
// kernel (Options.Wake, maybeWake), which then asks again.
func (l *Log) GetResyncWork() (uint64, bool, error) {
	if l.closed.Load() {
		return 0, false, engine.ErrClosed
	}
	if l.halted.Load() || !l.running.Load() {
		return 0, false, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	deadline := time.Now().Add(l.opts.WorkTimeout)
	for {
		// A granted region whose SET_REGION_SYNC is on its way is not
		// work any more, and no obstacle to the next proposal: the
		// group delivers this member's SYNC before its PROPOSE (one
		// sender's messages keep their order).
		work := l.unreported()
		if len(work) > 0 {
			l.stalled = false
			// A region this node's kernel waits to write goes first.
			i := max(0, slices.IndexFunc(work, l.wants))
			r := work[i]
			l.started[r] = true
			if len(work)-1 <= resyncLow || l.wantsFree() {
				l.proposeBatch()
			}
			l.trace("get_resync_work", "region", r, "granted_left", len(work)-1)
			return r, true, nil
		}
		if l.failed != nil || l.halted.Load() || l.closed.Load() {
			return 0, false, nil
		}
		// From here on the kernel is told "no work" and sleeps until
		// I/O or a wake (maybeWake) runs its worker again.
		if l.group == nil || (l.status != stSynced && !l.rejoining) || l.st.sync.Count() >= l.n {
			l.stalled = true
			l.trace("get_resync_work none", "synced", l.status == stSynced, "in_sync", l.st.sync.Count())
			return 0, false, nil
		}
		l.proposeBatch()
		if l.myProp == 0 || !time.Now().Before(deadline) {
			// Nothing proposable now, or the vote takes longer than
			// the hold: the open proposal stays, the event loop
			// proposes again as obstacles go, and a region granted
			// later wakes the kernel.
			l.stalled = true
			l.trace("get_resync_work none", "proposal_open", l.myProp != 0, "in_sync", l.st.sync.Count())
			return 0, false, nil
		}
		// Wait for the vote, or for the group's state to change (a
		// veto, a region released).
		l.waitUntil(deadline)
	}
}

// wakeEvery is the shortest interval between two Options.Wake calls of a
// log; wakeBackoff bounds the wait after failed calls.
const (
	wakeEvery   = 250 * time.Millisecond
	wakeBackoff = 5 * time.Second
)

// maybeWake wakes this node's kernel (Options.Wake) when it was answered
// "no work" and a region is granted to this member now, and proposes the
// next batch for a sleeping kernel when none is granted, so that the
// grant exists when the woken kernel asks. It runs after every event and
// on the quorum poll (vetoes and reservations lapse with time); mu is
// held.
func (l *Log) maybeWake() {
	if !l.stalled || l.opts.Wake == nil || l.status != stSynced || l.group == nil || l.failed != nil ||
		!l.running.Load() || l.halted.Load() || l.closed.Load() || l.replaying {
		return
	}
	if l.st.sync.Count() >= l.n || l.promised.Load() >= l.n {
		// Nothing to resync, or the kernel latched full sync: it does
		// not ask for work until it is resumed (maybeRestart).
		return
	}
	if len(l.unreported()) == 0 {
		l.proposeBatch()
		return
	}
	wait := wakeEvery
	if l.wakeFails > 0 {
		wait = min(wakeBackoff, wakeEvery<<min(l.wakeFails, 5))
	}
	if l.waking || time.Since(l.lastWake) < wait {
		return // the quorum poll comes back
	}
	l.stalled = false
	l.waking = true
	l.lastWake = time.Now()
	l.stats.wakes++
	l.trace("wake")
	wake, uuid := l.opts.Wake, l.uuid
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := wake(ctx, uuid)
		cancel()
		l.mu.Lock()
		defer l.mu.Unlock()
		l.waking = false
		if err == nil {
			l.wakeFails = 0
			return
		}
		// The kernel may still sleep: try again later.
		l.stalled = true
		l.wakeFails++
		if l.wakeFails == 1 {
			l.log.Warn("cannot wake the mirror's kernel to resync its granted regions; retrying", "err", err)
		} else {
			l.log.Debug("cannot wake the mirror's kernel", "err", err, "failures", l.wakeFails)
		}
	}()
}

// unreported returns the regions granted to this member that it has not
// reported (no SET_REGION_SYNC of them since) nor given back; mu is held.
func (l *Log) unreported() []uint64 {
	var out []uint64
	for _, r := range l.st.grants[l.me] {
		if _, reported := l.override[r]; !reported && !l.givenBack[r] {
			out = append(out, r)
		}
	}
	return out
}

// wantsFree reports whether this node's kernel waits to write a region
// that is out of sync and held by nobody (given back to it): proposed at
// once, not after this member's grant runs low; mu is held.
func (l *Log) wantsFree() bool {
	for _, r := range l.prio {
		if _, locked := l.st.lockedBy(r); !locked && !l.st.sync.Test(r) && l.wants(r) {
			return true
		}
	}
	return false
}

// proposeBatch proposes the next batch of regions unless a proposal of
// this member is open; mu is held.
func (l *Log) proposeBatch() {
	if l.myProp != 0 || l.status != stSynced || l.group == nil || l.failed != nil || !l.group.Quorate() {
		return
	}
	rs := l.candidates(l.batchSize())
	if len(rs) == 0 {
		return
	}
	l.propID++
	id := l.propID
	l.myProp = id
	l.stats.proposals++
	l.trace("propose sent", "id", id, "regions", len(rs))
	l.send(func(seq uint64) []byte { return l.codec.propose(seq, id, rs) })
}

// batchSize is how many regions this member proposes at once: its fair
// share of what is left to resync (the out-of-sync regions over the
// synced members, at most maxBatch) less what it holds already, at least
// one, and never more than maxBatch held. Two idle members of a fresh log
// each take half of it (up to maxBatch) in their first vote: every vote
// and report is a corosync message, and under emulation each one costs
// the mirrors' copies CPU (docs/design/cluster.md, "Idle resync
// timeline"). The next batch, proposed before the grant runs out, tops
// the holding up to the share again, so a member whose kernel asks first
// does not take the others' part of a small log. mu is held.
func (l *Log) batchSize() int {
	left := l.n - l.st.sync.Count()
	held := len(l.st.grants[l.me])
	share := int(min(uint64(maxBatch), max(1, left/uint64(max(1, len(l.st.synced()))))))
	return min(max(1, share-held), maxBatch-held)
}

// waitUntil waits on cond once, woken at the latest at t; mu is held.
func (l *Log) waitUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.AfterFunc(d, func() { l.mu.Lock(); l.cond.Broadcast(); l.mu.Unlock() })
	l.cond.Wait()
	tm.Stop()
}

// candidates picks up to k regions to propose: regions this node's kernel
// asked about first, then the sync bits from the cursor round to it (each
// member's cursor starts at its own share of the log, so that members
// propose different regions); mu is held.
func (l *Log) candidates(k int) []uint64 {
	if len(l.st.unfenced) > 0 || k <= 0 {
		return nil // nothing is handed out (docs/design/cluster.md, "Fencing")
	}
	var out []uint64
	free := func(r uint64) bool {
		if l.st.sync.Test(r) || l.skipped[r] || slices.Contains(out, r) {
			return false
		}
		_, locked := l.st.lockedBy(r)
		return !locked
	}
	for len(l.prio) > 0 && len(out) < k {
		r := l.prio[0]
		l.prio = l.prio[1:]
		if free(r) {
			out = append(out, r)
		}
	}
	for pass := 0; pass < 2 && len(out) < k; pass++ {
		start := min(l.cursor, l.n)
		for _, span := range [2][2]uint64{{start, l.n}, {0, start}} {
			for r := span[0]; r < span[1] && len(out) < k; r++ {
				c, ok := l.st.sync.NextClear(r)
				if !ok || c >= span[1] {
					break
				}
				r = c
				l.cursor = c + 1
				if free(c) {
					out = append(out, c)
				}
			}
			if len(out) == k {
				break
			}
		}
		if len(out) > 0 || time.Since(l.lastReset) < time.Second {
			break
		}
		// Everything left was vetoed or held: try again, at most once a
		// second.
		l.resetCursor()
	}
	return out
}

// resetCursor forgets the skipped regions and puts the cursor at the
// start of this member's share of the log: with k synced members, member
// i (in ID order) starts at i*n/k; mu is held.
func (l *Log) resetCursor() {
	l.cursor = 0
	if ids := l.st.synced(); len(ids) > 1 {
		if i := slices.Index(ids, l.me); i > 0 {
			l.cursor = l.n * uint64(i) / uint64(len(ids))
		}
	}
	clear(l.skipped)
	l.lastReset = time.Now()
}

// ---- status ----

func (l *Log) Status(t engine.StatusType) string {
	if l.closed.Load() {
		return ""
	}
	c := l.cfg
	if t == engine.StatusInfo {
		if !c.Disk() {
			return "1 " + c.Type
		}
		io, fl := l.Failed()
		return fmt.Sprintf("3 %s %s %c", c.Type, l.raw.info.Name, engine.DeviceFlag(c.Type, io, fl))
	}
	var s string
	if c.Disk() {
		s = fmt.Sprintf("%s %s %d ", c.Type, l.raw.info.Name, c.RegionSize)
	} else {
		s = fmt.Sprintf("%s %d ", c.Type, c.RegionSize)
	}
	if c.Sync != engine.SyncDefault {
		s += c.Sync.String() + " "
	}
	if c.BlockOnError {
		s += "block_on_error "
	}
	return s
}

// Failed reports the log's device failures: the slot's, a slot that did
// not open, and any FLUSH that failed (cluster-side too), so that status
// shows 'D' and not 'A'.
func (l *Log) Failed() (bool, bool) {
	l.pmu.Lock()
	s, serr := l.slot, l.slotErr
	l.pmu.Unlock()
	io, fl := serr != nil, l.flushFailed.Load()
	if s != nil {
		sio, sfl := s.Failed()
		io, fl = io || sio, fl || sfl
	}
	return io, fl
}

func (l *Log) Stats() engine.Stats {
	l.pmu.Lock()
	s := l.slot
	l.pmu.Unlock()
	if s == nil {
		return engine.Stats{}
	}
	return s.Stats()
}

func (l *Log) State() engine.State {
	s := engine.State{Type: l.cfg.Type, Regions: l.n, RegionSize: uint64(l.cfg.RegionSize)}
	switch {
	case l.closed.Load():
		s.Phase = "closed"
		return s
	case l.running.Load() && l.halted.Load():
		s.Phase = "presuspended"
	case l.running.Load():
		s.Phase = "running"
	default:
		s.Phase = "suspended"
	}
	s.Halted = l.halted.Load()
	s.InSync = l.syncp.Load().Count()
	s.Dirty = l.mine.Count()
	l.mu.Lock()
	s.Recovering = uint64(len(l.unreported()))
	s.Cursor = l.cursor
	l.mu.Unlock()
	s.IOFailed, s.FlushFailed = l.Failed()
	s.Stats = l.Stats()
	if l.raw != nil {
		s.Device = l.raw.info.Name
		if l.raw.info.Block {
			s.BlockDevice = l.raw.info.Name
		}
	}
	return s
}

// Info describes the log's place in its group, for tests and status.
type Info struct {
	Me       MemberID
	Synced   bool
	Members  []MemberID
	Server   MemberID
	Grants   map[MemberID][]uint64
	InSync   uint64
	Slot     int
	Founded  bool
	Sent     uint64
	Received uint64
	Bad      uint64
	Merges   uint64
	// Proposals and Granted count this member's resync proposals and the
	// proposals of it that were granted (wholly or in part).
	Proposals, Granted uint64
	// Wakes counts the Options.Wake calls made.
	Wakes uint64
	// GivenBack counts the granted regions this member gave back to a
	// peer's waiting write (RELEASE).
	GivenBack uint64
	// WantsSent counts the WANTs this member multicast for its kernel's
	// waiting writes, and TakenBack the regions a peer gave back while
	// this member's kernel waited to write them (proposed first here):
	// the writer's side of GivenBack.
	WantsSent, TakenBack uint64
	// MarkedAhead counts the regions marked ahead of a sequential writer
	// (Options.MarkAhead).
	MarkedAhead uint64
}

// Info returns the log's group view.
func (l *Log) Info() Info {
	l.mu.Lock()
	defer l.mu.Unlock()
	in := Info{Me: l.me, Synced: l.status == stSynced, Members: slices.Clone(l.cur), Grants: map[MemberID][]uint64{},
		InSync: l.st.sync.Count(), Slot: -1, Founded: l.founded, Sent: l.stats.sent, Received: l.stats.recv, Bad: l.stats.malformed, Merges: l.stats.merges,
		Proposals: l.stats.proposals, Granted: l.stats.grants, Wakes: l.stats.wakes, GivenBack: l.stats.givenBack, WantsSent: l.stats.wantsSent, TakenBack: l.stats.takenBack, MarkedAhead: l.markedAhead.Load()}
	for k, v := range l.st.grants {
		in.Grants[k] = slices.Clone(v)
	}
	if s := l.st.synced(); len(s) > 0 {
		in.Server = s[0]
	}
	if m := l.st.members[l.me]; m != nil {
		in.Slot = m.slot
	}
	return in
}

// GroupCounters are the counters of the log's work with its group that
// dlogd's state dump shows (daemon's groupCounters), by name.
func (l *Log) GroupCounters() map[string]uint64 {
	in := l.Info()
	return map[string]uint64{"sent": in.Sent, "received": in.Received, "proposals": in.Proposals, "granted": in.Granted,
		"wakes": in.Wakes, "given_back": in.GivenBack, "wants_sent": in.WantsSent, "taken_back": in.TakenBack,
		"marked_ahead": in.MarkedAhead}
}

func (l *Log) setState(st *state) {
	l.st = st
	l.syncp.Store(&st.sync)
}

// crash stops the log as a killed process stops: no more events, no
// goroutine wakes to act, every waiting call returns. Tests use it.
func (l *Log) crash() {
	l.mu.Lock()
	l.failed = errors.New("cluster: killed")
	l.evstop, l.sendStop = true, true
	l.evcond.Broadcast()
	l.sendcond.Broadcast()
	l.cond.Broadcast()
	l.mu.Unlock()
	l.running.Store(false)
	l.closed.Store(true)
}
