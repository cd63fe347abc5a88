//go:build linux

package main

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// instState is the kernel's view of one log instance (one luid).
type instState int

const (
	stConstructed instState = iota // CTR done
	stRunning                      // RESUME sent (the kernel goes on even if it failed)
	stPresuspended
	stSuspended
)

func (s instState) String() string {
	return [...]string{"constructed", "running", "presuspended", "suspended"}[s]
}

// instance is one (uuid, luid) the kernel constructed.
type instance struct {
	luid uint64
	ctr  string
	st   instState
}

// live reports whether the kernel does I/O through the instance.
func (in *instance) live() bool { return in != nil && (in.st == stRunning || in.st == stPresuspended) }

// Special roles of disk logs in fault episodes.
const (
	roleNone        = ""
	roleFull        = "full"        // log file on a small tmpfs
	roleVanishLoop  = "vanish-loop" // log on a loop device whose file can shrink to nothing
	roleVanishFiles = "vanish-file" // plain file log, replaced or removed in an episode
)

// soakLog is one mirror's log as the kernel sees it, and the bookkeeping
// of what must be dirty.
type soakLog struct {
	idx        int
	name       string // "L03" in messages
	uuid       string
	disk       bool
	nosync     bool // clustered-core ... nosync
	integrated bool // the table has integrated_flush: marks ride in FLUSH
	regionSize uint64
	regions    uint64
	dev        string // the CTR device argument (disk)
	path       string // the file or device behind it (disk)
	role       string
	ctr        string
	owner      int // the client that marks, clears and resyncs it

	// life is held for reading by steps that do I/O through the live
	// instance and for writing by steps that change the instances
	// (suspend, reload, deactivate).
	life sync.RWMutex

	mu   sync.Mutex // guards everything below
	live *instance  // the instance I/O goes through; nil while deactivated
	next *instance  // a reload's new instance, constructed, not resumed
	// mustDirty holds every region whose mark an acknowledged FLUSH made
	// durable and for which no CLEAR has been sent since (disk logs).
	mustDirty map[uint64]struct{}
	// marked holds the regions the kernel has marked and not yet cleared
	// (writes in flight, in dm-raid1's region hash).
	marked map[uint64]struct{}
	// epoch counts the events that lose marks not yet flushed (a reconnect
	// of this log); marks count only if their FLUSH acknowledgement comes
	// in the same generation and epoch as their MARK reply.
	epoch uint64
	// expectEIO: an episode is failing the device on purpose.
	expectEIO bool
	// degraded: the device failed in this daemon's life (status D or F is
	// expected until the next reload).
	degraded bool
	hot      []uint64
	// nextLife is when the next suspend, reload or reactivation may come:
	// they are rare next to writes in a real system.
	nextLife time.Time
}

// lifecycleDue reports whether a lifecycle step may run now, and if so
// sets the time of the next one (every/2 to 3*every/2 later).
func (l *soakLog) lifecycleDue(rng *rand.Rand, every time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Before(l.nextLife) {
		return false
	}
	l.nextLife = now.Add(every/2 + time.Duration(rng.Int64N(int64(every)+1)))
	return true
}

func newSoakLog(idx int, disk bool, rng *rand.Rand) *soakLog {
	l := &soakLog{
		idx:       idx,
		name:      fmt.Sprintf("L%02d", idx),
		disk:      disk,
		mustDirty: map[uint64]struct{}{},
		marked:    map[uint64]struct{}{},
	}
	// An LVM-like uuid: "LVM-" and 64 characters.
	const hexd = "0123456789abcdef"
	b := []byte("LVM-")
	for range 64 {
		b = append(b, hexd[rng.IntN(16)])
	}
	l.uuid = string(b)
	return l
}

// setGeometry picks the mirror size and the hot regions (the working set
// the workload writes to).
func (l *soakLog) setGeometry(regionSize, regions uint64, rng *rand.Rand) {
	l.regionSize, l.regions = regionSize, regions
	hot := map[uint64]bool{}
	for len(hot) < 96 {
		hot[rng.Uint64N(regions)] = true
	}
	l.hot = slices.Sorted(maps.Keys(hot))
	target := regions * regionSize
	switch {
	case l.disk:
		l.ctr = fmt.Sprintf("%d clustered-disk %s %d", target, l.dev, regionSize)
	case l.nosync:
		l.ctr = fmt.Sprintf("%d clustered-core %d nosync", target, regionSize)
	default:
		l.ctr = fmt.Sprintf("%d clustered-core %d", target, regionSize)
	}
}

func (l *soakLog) kind() string {
	switch {
	case l.disk && l.role != roleNone:
		return "clustered-disk/" + l.role
	case l.disk:
		return "clustered-disk"
	case l.nosync:
		return "clustered-core/nosync"
	}
	return "clustered-core"
}

func (l *soakLog) bumpEpoch() {
	l.mu.Lock()
	l.epoch++
	l.mu.Unlock()
}

// tag identifies the generation and epoch a reply came in.
type tag struct{ gen, epoch uint64 }

func (l *soakLog) tagNow(gen uint64) tag {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tag{gen, l.epoch}
}

// acked records marks made durable by an acknowledged FLUSH.
func (l *soakLog) acked(rs []uint64) {
	if !l.disk {
		return
	}
	l.mu.Lock()
	for _, r := range rs {
		l.mustDirty[r] = struct{}{}
	}
	l.mu.Unlock()
}

// clearing is called before a CLEAR is sent: from then on the region may
// be clean.
func (l *soakLog) clearing(rs []uint64) {
	l.mu.Lock()
	for _, r := range rs {
		delete(l.mustDirty, r)
		delete(l.marked, r)
	}
	l.mu.Unlock()
}

func (l *soakLog) setMarked(rs []uint64) {
	l.mu.Lock()
	for _, r := range rs {
		l.marked[r] = struct{}{}
	}
	l.mu.Unlock()
}

// mustDirtyList is a sorted snapshot of mustDirty.
func (l *soakLog) mustDirtyList() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(maps.Keys(l.mustDirty))
}

func (l *soakLog) stillMustDirty(r uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.mustDirty[r]
	return ok
}

// lost records that region r's mark was found lost: it is reported once,
// not again at every later restart.
func (l *soakLog) lost(r uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.mustDirty, r)
}

// unmarkedHot picks up to n hot regions the kernel has not marked.
func (l *soakLog) unmarkedHot(rng *rand.Rand, n int) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []uint64
	for range 4 * n {
		r := l.hot[rng.IntN(len(l.hot))]
		if _, ok := l.marked[r]; ok {
			continue
		}
		dup := false
		for _, x := range out {
			dup = dup || x == r
		}
		if !dup {
			out = append(out, r)
		}
		if len(out) == n {
			break
		}
	}
	return out
}

// someMarked picks up to n marked regions (writes that completed).
func (l *soakLog) someMarked(rng *rand.Rand, n int) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []uint64
	for r := range l.marked {
		if len(out) == n {
			break
		}
		if rng.IntN(2) == 0 {
			out = append(out, r)
		}
	}
	return out
}

func (l *soakLog) isMarked(r uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.marked[r]
	return ok
}

// liveInst returns the live instance, or nil.
func (l *soakLog) liveInst() *instance {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live.live() {
		return l.live
	}
	return nil
}

// instances counts the instances the kernel has constructed.
func (l *soakLog) instances() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	if l.live != nil {
		n++
	}
	if l.next != nil {
		n++
	}
	return n
}

func (l *soakLog) setState(in *instance, st instState) {
	l.mu.Lock()
	in.st = st
	l.mu.Unlock()
}

func (l *soakLog) expectingEIO() (expect, degraded bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expectEIO, l.degraded
}

func (l *soakLog) setEpisode(expect, degraded bool) {
	l.mu.Lock()
	l.expectEIO, l.degraded = expect, degraded
	l.mu.Unlock()
}
