//go:build linux

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"
)

// env creates the devices a scenario (or part) uses and registers their
// cleanup, so a failed step never leaves a device behind for the next
// scenario of the same boot.
type env struct {
	s   *S
	tag string // prefix for file and device names, unique per scenario part
	n   int
}

func newEnv(s *S, tag string) *env { return &env{s: s, tag: tag} }

const (
	stepTimeout = 30 * time.Second
	syncTimeout = 2 * time.Minute
)

// loop attaches a zero-filled sparse file in /tmp as a loop device.
func (e *env) loop(what string, size int64, blockSize int) *Loop {
	e.n++
	file := filepath.Join("/tmp", fmt.Sprintf("%s-%d.img", e.tag, e.n))
	var l *Loop
	e.s.Do(fmt.Sprintf("loop device for %s (%d KiB, %d-byte sectors)", what, size>>10, blockSize), stepTimeout, func(ctx context.Context) error {
		var err error
		l, err = attachLoop(file, size, blockSize)
		return err
	})
	e.s.Defer("detach "+l.Dev+" ("+what+")", stepTimeout, func(ctx context.Context) error { return l.Detach() })
	logCmd("# %s: %s on %s (%s)", what, l.Dev, l.File, l.MajMin())
	return l
}

// dmDev is a device-mapper device the scenario created.
type dmDev struct {
	Name, Path, MajMin string
	done               func()
}

// dm creates a device with a one-line table and registers its removal.
func (e *env) dm(step, name, table string) *dmDev {
	d := &dmDev{Name: name, Path: "/dev/mapper/" + name}
	d.done = e.s.Defer("remove "+name, stepTimeout, func(ctx context.Context) error {
		if ok, err := dmExists(ctx, name); err != nil || !ok {
			return err
		}
		return dmRemove(ctx, name)
	})
	e.s.Do(step, stepTimeout, func(ctx context.Context) error { return dmCreate(ctx, name, table) })
	mm, err := devMajMin(d.Path)
	if err != nil {
		e.s.Fail(step, "a block device at "+d.Path, err.Error(), "")
	}
	d.MajMin = mm
	return d
}

// zero creates a zero-target device: reads return zeros, writes are
// dropped. Used as mirror legs where only the log matters: no memory, no copying.
func (e *env) zero(name string, sectors uint64) *dmDev {
	return e.dm(fmt.Sprintf("zero device %s (%d sectors)", name, sectors), name, fmt.Sprintf("0 %d zero", sectors))
}

// delayTable delays writes (and flushes, which dm-delay's 6-argument form
// treats as writes) to dev by ms milliseconds; reads go straight through.
func delayTable(dev string, sectors uint64, ms int) string {
	return fmt.Sprintf("0 %d delay %s 0 0 %s 0 %d", sectors, dev, dev, ms)
}

// remove removes the device as a step of its own.
func (d *dmDev) remove(s *S, step string) {
	s.Do(step, stepTimeout, func(ctx context.Context) error { return dmRemove(ctx, d.Name) })
	d.done()
}

// pattern returns n deterministic pseudo-random bytes.
func pattern(seed uint64, n int) []byte {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// ratio reads the mirror's <in_sync>/<regions>.
func ratio(name string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		m, err := mirrorStatus(ctx, name)
		return m.Ratio(), err
	}
}

func syncWait(name string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return waitSync(ctx, name) }
}

func status(name string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return dmStatus(ctx, name) }
}

func table(name string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return dmTable(ctx, name) }
}

func state(name string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return dmState(ctx, name) }
}

func md5Of(path string, off int64, n int) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return md5Direct(path, off, n) }
}

// readLogImage reads the first buf_size bytes of a disk log device.
func readLogImage(l *Loop, regions uint64) ([]byte, error) {
	return readDirect(l.Dev, 0, LogBufSize(regions, l.BlockSize))
}
