package clustercheck

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Region-hash states of the kernel model (dm-region-hash.c's RH_*).
const (
	RHClean = iota
	RHDirty
	RHNosync
	RHRecovering
)

// Entry is the model's region-hash entry for one region: its state and
// the writes in flight to it.
type Entry struct{ State, Pending int }

// Log is what the kernel model asks of one node's log: the requests
// dm-raid1 makes through dm-log-userspace, each answered before the model
// goes on. An error stops the kernel (its log failed, or its node died).
type Log interface {
	// IsRemoteRecovering says whether another node recovers r, and the
	// new resync hint.
	IsRemoteRecovering(r uint64) (recovering bool, hint uint64, err error)
	InSync(r uint64) (bool, error)
	// MarkRegion and ClearRegion may be held until the next Flush, as
	// dm-log-userspace holds them.
	MarkRegion(r uint64) error
	ClearRegion(r uint64) error
	Flush() error
	// GetResyncWork hands out a region to recover; ok false when there
	// is none.
	GetResyncWork() (r uint64, ok bool, err error)
	// Recovered reports r resynchronised: SET_REGION_SYNC r 1, then
	// CLEAR_REGION r.
	Recovered(r uint64) error
	SyncCount() (uint64, error)
}

// Kernel models one node's dm-raid1 over its log: IS_REMOTE_RECOVERING
// before a write above the hint, IN_SYNC for a new region-hash entry, mark
// and flush before the write is issued, clear after it completes, one
// recovery at a time, the hint rules of dm-log-userspace. It reports every
// write, clear and recovery to its Checker. One goroutine steps it, as
// dm-raid1's single worker does.
type Kernel struct {
	Node int // the Checker's number for this node
	Log  Log
	N    uint64 // regions
	Rng  *rand.Rand
	C    *Checker
	// CopyTime is the longest pause between the start and the end of a
	// recovery (the copy); Idle the longest idle step.
	CopyTime, Idle time.Duration
	// Sequential is the percentage of writes that go to the region after
	// the last one written (a sequential writer); the others go to a
	// random region.
	Sequential int

	// Hint is the resync hint: regions below it are known in sync.
	Hint    uint64
	Entries map[uint64]*Entry

	lastWrite uint64
	inflight  []uint64
	toClear   []uint64
	recov     int64 // region being recovered, -1 if none
}

// NewKernel returns node's kernel over l, with n regions and a random
// source seeded with seed.
func NewKernel(node int, l Log, n, seed uint64, c *Checker) *Kernel {
	return &Kernel{Node: node, Log: l, N: n, Rng: rand.New(rand.NewPCG(seed, uint64(node))), C: c,
		Entries: map[uint64]*Entry{}, recov: -1}
}

// Step does one random kernel action: a write, a write completing, the
// state-update pass (clears, then a flush), a step of recovery, a look at
// the sync count, or nothing for a while.
func (k *Kernel) Step() error {
	switch p := k.Rng.IntN(100); {
	case p < 40:
		r := k.Rng.Uint64N(k.N)
		if k.Sequential > 0 && k.Rng.IntN(100) < k.Sequential { // no draw otherwise: seeded runs keep their sequence
			r = (k.lastWrite + 1) % k.N
		}
		k.lastWrite = r
		return k.write(r)
	case p < 65:
		if len(k.inflight) > 0 {
			k.completeOne(k.Rng.IntN(len(k.inflight)))
		}
	case p < 75:
		if len(k.toClear) > 0 {
			return k.clearPass()
		}
	case p < 92:
		if k.recov >= 0 {
			return k.finishRecovery()
		}
		if k.Hint >= k.N {
			return nil
		}
		r, ok, err := k.Log.GetResyncWork()
		if err != nil || !ok {
			return err
		}
		e := k.Entries[r]
		if e == nil {
			e = &Entry{}
			k.Entries[r] = e
		}
		e.State = RHRecovering
		k.recov = int64(r)
	case p < 97:
		n, err := k.Log.SyncCount()
		if err != nil {
			return err
		}
		if n >= k.N {
			k.Hint = k.N
		}
	default:
		if k.Idle > 0 {
			time.Sleep(time.Duration(k.Rng.Int64N(int64(k.Idle))))
		}
	}
	return nil
}

// write issues a write to r: requeued while another node recovers r,
// delayed while this one does, marked and flushed first when r is clean.
func (k *Kernel) write(r uint64) error {
	if r >= k.Hint {
		rec, h, err := k.Log.IsRemoteRecovering(r)
		if err != nil {
			return err
		}
		k.Hint = h
		if rec {
			return nil // requeued
		}
	}
	e := k.Entries[r]
	if e == nil {
		in, err := k.Log.InSync(r)
		if err != nil {
			return err
		}
		e = &Entry{State: RHNosync}
		if in {
			e.State = RHClean
		} else {
			k.C.Note(r, fmt.Sprintf("node %d NOSYNC entry: hint %d", k.Node, k.Hint))
		}
		k.Entries[r] = e
	}
	if e.State == RHRecovering {
		return nil // delayed until the recovery ends
	}
	marked := e.State == RHClean
	if marked {
		e.State = RHDirty
		if err := k.Log.MarkRegion(r); err != nil {
			return err
		}
		if err := k.Log.Flush(); err != nil {
			return err
		}
		k.C.Flushed()
	}
	e.Pending++
	k.C.Issue(k.Node, r, marked)
	k.inflight = append(k.inflight, r)
	return nil
}

// Drain completes every write and recovery in flight, then clears and
// flushes.
func (k *Kernel) Drain() error {
	for len(k.inflight) > 0 {
		k.completeOne(0)
	}
	if k.recov >= 0 {
		if err := k.finishRecovery(); err != nil {
			return err
		}
	}
	return k.clearPass()
}

func (k *Kernel) completeOne(i int) {
	r := k.inflight[i]
	k.inflight = slices.Delete(k.inflight, i, i+1)
	k.C.Complete(k.Node, r)
	e := k.Entries[r]
	e.Pending--
	if e.Pending == 0 && e.State == RHDirty {
		e.State = RHClean
		k.toClear = append(k.toClear, r)
	}
}

func (k *Kernel) clearPass() error {
	for _, r := range k.toClear {
		if e := k.Entries[r]; e != nil && e.State == RHClean && e.Pending == 0 {
			k.C.Cleared(k.Node, r)
			if err := k.Log.ClearRegion(r); err != nil {
				return err
			}
			delete(k.Entries, r)
		}
	}
	k.toClear = k.toClear[:0]
	return k.Log.Flush()
}

// finishRecovery recovers the region handed out, once its writes are done.
func (k *Kernel) finishRecovery() error {
	r := uint64(k.recov)
	if e := k.Entries[r]; e != nil && e.Pending > 0 {
		return nil // quiescing
	}
	k.C.StartRecovery(k.Node, r)
	if k.CopyTime > 0 {
		time.Sleep(time.Duration(k.Rng.Int64N(int64(k.CopyTime)))) // the copy
	}
	k.C.EndRecovery(k.Node, r)
	if err := k.Log.Recovered(r); err != nil {
		return err
	}
	k.C.Cleared(k.Node, r)
	delete(k.Entries, r)
	k.recov = -1
	return nil
}
