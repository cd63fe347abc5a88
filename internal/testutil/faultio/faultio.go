// Package faultio is a fault-injecting layer under a log device, for tests
// and the soak campaign: it fails reads, writes and cache flushes with EIO
// on command or at random, and tears writes (only a prefix of a block's
// sectors reaches the device) to simulate power loss in the middle of a
// flush. After a tear the device is dead: every later call fails, as if the
// machine had stopped, until the test reopens the real device.
//
// It wraps an engine.Device (the engine's tests are in package
// engine_test, so they can use it).
package faultio

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/iouring"
)

// Device is the log device the engine writes through.
type Device = engine.Device

// ErrDead is returned by every call after a torn write.
var ErrDead = errors.New("faultio: device dead after a torn write (simulated power loss)")

// Faults says what to inject. Set fields before or between calls; the
// layer consumes the counters as it goes. Safe for concurrent use through
// its methods.
type Faults struct {
	mu sync.Mutex
	// FailReads fails the next N reads with EIO.
	FailReads int
	// FailWrites fails the next N block writes with EIO (the blocks are
	// not written).
	FailWrites int
	// FailSyncs fails the next N cache flushes with EIO.
	FailSyncs int
	// TearNext tears the next write batch: blocks are written in full, in
	// part (a prefix of SectorSize-byte sectors) or not at all, at random,
	// and then the device dies.
	TearNext bool
	// WriteErrorRate, SyncErrorRate, TearRate are per-call probabilities
	// of the same faults, drawn from Rand.
	WriteErrorRate, SyncErrorRate, TearRate float64
	// SectorSize is the tear granularity; 0 means 512.
	SectorSize int
	// Rand drives the random choices; nil means a fixed seed.
	Rand *rand.Rand
	// HoldReads, when not nil, holds every read until it is closed: a
	// device as slow as the test needs. HeldReads counts the reads
	// waiting on it.
	HoldReads chan struct{}
	held      int

	dead bool
	// Counters of what was injected.
	Injected Counts
}

// Counts tally the faults injected.
type Counts struct {
	ReadErrors, WriteErrors, SyncErrors, Tears int
}

// Wrap interposes f on d.
func Wrap(d Device, f *Faults) Device {
	if f.Rand == nil {
		f.Rand = rand.New(rand.NewPCG(1, 1))
	}
	return &device{d: d, f: f}
}

// Dead reports whether a tear has killed the device.
func (f *Faults) Dead() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dead
}

// HeldReads returns how many reads are waiting on HoldReads.
func (f *Faults) HeldReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}

// Snapshot returns the counters.
func (f *Faults) Snapshot() Counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Injected
}

type device struct {
	d Device
	f *Faults
}

func (x *device) ReadAt(p []byte, off int64) (int, error) {
	f := x.f
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		return 0, ErrDead
	}
	if f.FailReads > 0 {
		f.FailReads--
		f.Injected.ReadErrors++
		f.mu.Unlock()
		return 0, fmt.Errorf("faultio: read at %d: %w", off, syscall.EIO)
	}
	if hold := f.HoldReads; hold != nil {
		f.held++
		f.mu.Unlock()
		<-hold
		f.mu.Lock()
		f.held--
	}
	f.mu.Unlock()
	return x.d.ReadAt(p, off)
}

func (x *device) Write(blocks []iouring.Block, sync bool) error {
	f := x.f
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		return ErrDead
	}
	if f.TearNext || (f.TearRate > 0 && f.Rand.Float64() < f.TearRate) {
		f.TearNext = false
		f.dead = true
		f.Injected.Tears++
		sector := f.SectorSize
		if sector == 0 {
			sector = 512
		}
		var torn []iouring.Block
		for _, b := range blocks {
			switch f.Rand.IntN(3) {
			case 0: // lost
			case 1: // whole
				torn = append(torn, b)
			case 2: // a prefix of its sectors
				if n := len(b.Buf) / sector; n > 1 {
					torn = append(torn, iouring.Block{Off: b.Off, Buf: b.Buf[:f.Rand.IntN(n-1)*sector+sector]})
				}
			}
		}
		f.mu.Unlock()
		x.d.Write(torn, false)
		return ErrDead
	}
	var good []iouring.Block
	var idx []int
	var be iouring.BatchError
	for i, b := range blocks {
		fail := f.FailWrites > 0 || (f.WriteErrorRate > 0 && f.Rand.Float64() < f.WriteErrorRate)
		if fail {
			if f.FailWrites > 0 {
				f.FailWrites--
			}
			f.Injected.WriteErrors++
			be.Writes = append(be.Writes, iouring.BlockError{Index: i, Off: b.Off, Err: fmt.Errorf("faultio: write at %d: %w", b.Off, syscall.EIO)})
			continue
		}
		good = append(good, b)
		idx = append(idx, i)
	}
	failSync := sync && (f.FailSyncs > 0 || (f.SyncErrorRate > 0 && f.Rand.Float64() < f.SyncErrorRate))
	if failSync {
		if f.FailSyncs > 0 {
			f.FailSyncs--
		}
		f.Injected.SyncErrors++
	}
	f.mu.Unlock()
	err := x.d.Write(good, sync && !failSync)
	var inner *iouring.BatchError
	if errors.As(err, &inner) {
		for _, w := range inner.Writes {
			w.Index = idx[w.Index]
			be.Writes = append(be.Writes, w)
		}
		be.Sync = inner.Sync
	} else if err != nil {
		return err
	}
	if failSync {
		be.Sync = fmt.Errorf("faultio: fdatasync: %w", syscall.EIO)
	}
	if len(be.Writes) > 0 || be.Sync != nil {
		return &be
	}
	return nil
}

func (x *device) Sync() error {
	f := x.f
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		return ErrDead
	}
	if f.FailSyncs > 0 || (f.SyncErrorRate > 0 && f.Rand.Float64() < f.SyncErrorRate) {
		if f.FailSyncs > 0 {
			f.FailSyncs--
		}
		f.Injected.SyncErrors++
		f.mu.Unlock()
		return fmt.Errorf("faultio: fdatasync: %w", syscall.EIO)
	}
	f.mu.Unlock()
	return x.d.Sync()
}

func (x *device) Close() error { return x.d.Close() }
