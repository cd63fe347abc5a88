//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// logSpec is the dirty log of a mirror under test: one of the kernel's
// own logs (core, disk) or a userspace log served by dlogd (or the bench's
// bare responder).
type logSpec struct {
	Type       string // core, disk, clustered-core, clustered-disk
	Integrated bool   // integrated_flush (userspace logs only)
}

func (l logSpec) Userspace() bool { return strings.HasPrefix(l.Type, "clustered-") }
func (l logSpec) Disk() bool      { return l.Type == "disk" || l.Type == "clustered-disk" }

// Label names the log for step names: "kernel core", "dlogd clustered-disk + integrated_flush".
func (l logSpec) Label() string {
	if !l.Userspace() {
		return "kernel " + l.Type
	}
	s := "dlogd " + l.Type
	if l.Integrated {
		s += " + integrated_flush"
	}
	return s
}

// mirrorDev is a dm-mirror under test: its table and the strings the
// kernel must print for it (docs/protocol.md §5).
type mirrorDev struct {
	spec     logSpec
	name     string
	uuid     string // userspace logs
	sectors  uint64
	region   uint64
	sync     string   // "", "nosync" or "sync"
	legs     []string // device paths for the table
	legMM    []string // the same as maj:min, as the kernel prints them
	logPath  string   // disk logs: the log device
	logMM    string
	features string // e.g. "1 handle_errors"
	dev      *dmDev
}

func (m *mirrorDev) regions() uint64 { return (m.sectors + m.region - 1) / m.region }

// full is "<regions>/<regions>".
func (m *mirrorDev) full() string { return fmt.Sprintf("%d/%d", m.regions(), m.regions()) }

// logArgs is the log part of the table. The kernel's core and disk logs
// get the log device as a path in the creation table (it prints maj:min);
// userspace logs get maj:min, as LVM writes it, since the kernel prints
// the userspace arguments back verbatim.
func (m *mirrorDev) logArgs(forCreate bool) string {
	syncArg := ""
	if m.sync != "" {
		syncArg = " " + m.sync
	}
	opt := 0
	if m.sync != "" {
		opt = 1
	}
	switch m.spec.Type {
	case "core":
		return fmt.Sprintf("core %d %d%s", 1+opt, m.region, syncArg)
	case "disk":
		dev := m.logMM
		if forCreate {
			dev = m.logPath
		}
		return fmt.Sprintf("disk %d %s %d%s", 2+opt, dev, m.region, syncArg)
	}
	args := []string{m.uuid}
	if m.spec.Integrated {
		args = append(args, "integrated_flush")
	}
	args = append(args, m.spec.Type)
	if m.spec.Type == "clustered-disk" {
		args = append(args, m.logMM)
	}
	args = append(args, fmt.Sprint(m.region))
	if m.sync != "" {
		args = append(args, m.sync)
	}
	return fmt.Sprintf("userspace %d %s", len(args), strings.Join(args, " "))
}

func (m *mirrorDev) legArgs(devs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", len(devs))
	for _, d := range devs {
		fmt.Fprintf(&b, " %s 0", d)
	}
	if m.features != "" {
		b.WriteString(" " + m.features)
	}
	return b.String()
}

// Table is the creation table.
func (m *mirrorDev) Table() string {
	return fmt.Sprintf("0 %d mirror %s %s", m.sectors, m.logArgs(true), m.legArgs(m.legs))
}

// WantTable is what dmsetup table must print.
func (m *mirrorDev) WantTable() string {
	return fmt.Sprintf("0 %d mirror %s %s", m.sectors, m.logArgs(false), m.legArgs(m.legMM))
}

// WantLogStatus is the log's part of the status line with the given
// device flag (A, D or F) for disk logs.
func (m *mirrorDev) WantLogStatus(flag string) string {
	switch m.spec.Type {
	case "core", "clustered-core":
		return "1 " + m.spec.Type
	}
	return fmt.Sprintf("3 %s %s %s", m.spec.Type, m.logMM, flag)
}

// WantStatus is what dmsetup status must print.
func (m *mirrorDev) WantStatus(ratio, health, flag string) string {
	return fmt.Sprintf("0 %d mirror %d %s %s 1 %s %s", m.sectors, len(m.legMM), strings.Join(m.legMM, " "), ratio, health, m.WantLogStatus(flag))
}

// create creates the mirror as a step and registers its removal.
func (m *mirrorDev) create(e *env, step string) {
	m.dev = e.dm(step+": "+m.Table(), m.name, m.Table())
}

// Note records a passing step that carries information only (timings,
// counts): got is what was measured.
func (s *S) Note(step, got string) {
	s.record(step, vmharness.StatusOK, "", got, "", 0)
}

// bgIO is I/O running in the background while a scenario does something
// else (kills the daemon, reloads the table).
type bgIO struct {
	done     chan struct{}
	err      error
	blocks   atomic.Int64 // completed blocks
	start    time.Time
	finished time.Time
}

// startWriter writes data at off in bs-sized O_DIRECT writes, in the
// background, counting completed writes.
func startWriter(path string, off int64, data []byte, bs int) *bgIO {
	b := &bgIO{done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(b.done)
		b.err = writeDirectCount(context.Background(), path, off, data, bs, &b.blocks)
		b.finished = time.Now()
	}()
	return b
}

// writesUnderWay starts writing data from the start of path in 4 KiB
// O_DIRECT writes, in the background, and waits (a step) until n of them
// are done. The writes must still be running then: what names the event
// they are to outlast.
func writesUnderWay(s *S, path string, data []byte, n int64, what string) *bgIO {
	w := startWriter(path, 0, data, 4096)
	s.Do(fmt.Sprintf("writes under way (4 KiB O_DIRECT, %d MiB)", len(data)/mib), stepTimeout, func(ctx context.Context) error {
		err := w.Reach(ctx, n)
		if errors.Is(err, errIOFinished) {
			return fmt.Errorf("the writer finished before %s (%w): make it longer", what, err)
		}
		return err
	})
	return w
}

// Done reports whether the I/O has finished.
func (b *bgIO) Done() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// errIOFinished: the background I/O finished before the point waited for.
var errIOFinished = errors.New("the background I/O finished")

// Reach waits until n blocks are done. It fails with errIOFinished if the
// I/O finishes first, and with the context's error if that ends first.
func (b *bgIO) Reach(ctx context.Context, n int64) error {
	for b.blocks.Load() < n {
		if b.Done() {
			return fmt.Errorf("%w after %d blocks (%v)", errIOFinished, b.blocks.Load(), b.err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d writes done: %w", b.blocks.Load(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Wait waits for the I/O to finish, up to the context's end.
func (b *bgIO) Wait(ctx context.Context) error {
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return fmt.Errorf("background I/O not finished after %.1f s (%d blocks done): %w", time.Since(b.start).Seconds(), b.blocks.Load(), ctx.Err())
	}
}

// timed runs fn and returns how long it took.
func timed(fn func()) time.Duration {
	t := time.Now()
	fn()
	return time.Since(t)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
