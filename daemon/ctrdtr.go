package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/ulog"
)

// queueCtrDtr queues a CTR or DTR for the CTR/DTR worker.
func (d *Daemon) queueCtrDtr(j job) {
	d.cdMu.Lock()
	defer d.cdMu.Unlock()
	if d.cdStop {
		var out []byte
		d.again(j.from, &j.req, &out)
		return
	}
	d.cdQ = append(d.cdQ, j)
	d.cdCond.Signal()
}

// ctrDtrLoop runs CTR and DTR one at a time: they open and close devices
// and change the table, and are rare.
func (d *Daemon) ctrDtrLoop() {
	defer close(d.cdDone)
	var buf []byte
	for {
		d.cdMu.Lock()
		for len(d.cdQ) == 0 && !d.cdStop {
			d.cdCond.Wait()
		}
		if len(d.cdQ) == 0 {
			d.cdMu.Unlock()
			return
		}
		j := d.cdQ[0]
		d.cdQ = d.cdQ[1:]
		d.cdMu.Unlock()
		var errno int32
		if j.req.Type() == ulog.TypeCtr {
			buf, errno = d.ctr(&j, buf[:0])
		} else {
			buf, errno = d.dtr(&j, buf[:0])
		}
		if d.opts.Observer != nil {
			d.opts.Observer.Request(j.req.Type(), time.Since(j.at), errno)
		}
	}
}

// ctr constructs a log (docs/protocol.md §3 CTR, docs/conformance.md items 20-25).
func (d *Daemon) ctr(j *job, buf []byte) ([]byte, int32) {
	req := &j.req
	uuid := string(req.UUIDBytes())
	lg := d.log.With("uuid", uuid, "luid", fmt.Sprintf("%#x", req.LUID))
	if old := d.lookup(req); old != nil {
		if old.ctr == j.ctr {
			// The log exists: the kernel's reconnect after a daemon
			// restart (its CTR ends in a NUL and offers no reply space),
			// or its resend of a table-load CTR whose reply was late or
			// lost, answered as the first one was: the kernel registers
			// the device it names.
			if j.reconnect {
				lg.Info("CTR for an existing log: reconnect, keeping its state", "ctr", j.ctr)
			} else {
				lg.Info("CTR for an existing log: the kernel resent it, answering as the first", "ctr", j.ctr)
			}
			d.reply(j.from, req, 0, ctrDevice(j, old, lg), &buf)
			return buf, 0
		}
		// Same (uuid, luid), different table: the kernel reused the
		// address of a log whose DTR we never saw.
		lg.Warn("CTR replaces a stale log with the same uuid and luid", "old", old.ctr, "new", j.ctr)
		d.destroy(old)
	}
	cfg, err := engine.ParseCtr(j.ctr)
	if err != nil {
		lg.Error("CTR rejected", "ctr", j.ctr, "err", err)
		d.reply(j.from, req, -int32(ulog.EINVAL), nil, &buf)
		return buf, -int32(ulog.EINVAL)
	}
	l, noState, err := d.open(uuid, req.LUID, j.ctr, cfg, lg)
	if err != nil {
		lg.Error("CTR failed", "ctr", j.ctr, "err", err)
		d.reply(j.from, req, errnoOf(err), nil, &buf)
		return buf, errnoOf(err)
	}
	in := newInstance(uuid, req.LUID, j.ctr, l)
	in.noState = noState
	d.add(in)
	lg.Info("log constructed", "ctr", j.ctr, "type", cfg.Type, "regions", cfg.RegionCount(), "region_size", cfg.RegionSize)
	d.reply(j.from, req, 0, ctrDevice(j, in, lg), &buf)
	return buf, 0
}

// ctrDevice is the payload of a successful CTR reply. A version-2+ kernel
// passes it to dm_get_device and holds the device while the table lives
// (DM_TABLE_DEPS); when that fails it drops the log without a DTR. So it
// is the opened block device's "major:minor", which the kernel can always
// resolve, and nothing for a regular file (the kernel cannot hold one) or
// a core log. Not on the reconnect CTR, which offers no room for it.
func ctrDevice(j *job, in *instance, lg *slog.Logger) []byte {
	if j.reconnect || !j.req.CtrDeviceAllowed() {
		return nil
	}
	if in.blockDev == "" {
		if in.cfg.Disk() {
			lg.Info("log device is not a block device: the kernel is given none to hold", "device", in.cfg.Device)
		}
		return nil
	}
	return ulog.AppendCString(nil, in.blockDev)
}

// open opens the engine log for (uuid, luid), with its state file when the
// daemon keeps state. noState says why a log that should have a state file
// was opened without one.
func (d *Daemon) open(uuid string, luid uint64, ctr string, cfg engine.Config, lg *slog.Logger) (l engine.Log, noState string, err error) {
	opts := d.opts.Engine
	opts.Logger = lg
	if d.opts.FlushLegs != nil && cfg.Disk() {
		legs := d.opts.FlushLegs(uuid)
		opts.FlushCallback = legs.Flush
		defer func() {
			if err != nil {
				legs.Close()
			} else {
				l = withLegs{l, legs}
			}
		}()
	}
	openWith := func(opts engine.Options) (engine.Log, error) {
		if d.opts.OpenInstance != nil {
			return d.opts.OpenInstance(uuid, luid, cfg, opts)
		}
		return d.opts.Open(cfg, opts)
	}
	if d.opts.StateDir == "" {
		l, err = openWith(opts)
		return l, "", err
	}
	opts.StateFile = d.statePath(uuid, luid)
	opts.StateLabel = stateLabel(uuid, luid, ctr)
	err = os.MkdirAll(d.opts.StateDir, 0o700)
	if err == nil {
		if l, err = openWith(opts); !errors.Is(err, engine.ErrState) {
			return l, "", err
		}
	}
	// A state directory that cannot be used must not fail a mirror: serve
	// the log without one (it will not survive a restart of dlogd).
	lg.Error("log kept without a state file: it will not survive a restart of dlogd", "dir", d.opts.StateDir, "err", err)
	opts.StateFile, opts.StateLabel = "", ""
	l, oerr := openWith(opts)
	return l, "no state file in " + d.opts.StateDir + ": " + err.Error(), oerr
}

// add starts in's worker and puts it in the table.
func (d *Daemon) add(in *instance) {
	go in.run(d)
	d.tmu.Lock()
	// Copy on write at both levels: readers hold the old maps without a
	// lock (a live reload adds a second luid to a uuid in use).
	t := d.cloneTable()
	m := maps.Clone(t[in.uuid])
	if m == nil {
		m = map[uint64]*instance{}
	}
	m[in.luid] = in
	t[in.uuid] = m
	d.table.Store(&t)
	d.tmu.Unlock()
	d.notify()
}

// dtr destroys a log (docs/protocol.md §3 DTR).
func (d *Daemon) dtr(j *job, buf []byte) ([]byte, int32) {
	in := d.lookup(&j.req)
	if in == nil {
		d.log.Warn("DTR for an unknown log", "uuid", string(j.req.UUIDBytes()), "luid", fmt.Sprintf("%#x", j.req.LUID))
		d.reply(j.from, &j.req, -int32(ulog.EINVAL), nil, &buf)
		return buf, -int32(ulog.EINVAL)
	}
	err := d.destroy(in)
	d.log.Info("log destroyed", "uuid", in.uuid, "luid", fmt.Sprintf("%#x", in.luid))
	d.reply(j.from, &j.req, errnoOf(err), nil, &buf)
	return buf, errnoOf(err)
}

// destroy removes in from the table, lets its worker finish what is
// queued, waits for requests in flight, and closes the log.
func (d *Daemon) destroy(in *instance) error {
	d.tmu.Lock()
	t := d.cloneTable()
	if m := t[in.uuid]; m != nil && m[in.luid] == in {
		m = maps.Clone(m)
		delete(m, in.luid)
		if len(m) == 0 {
			delete(t, in.uuid)
		} else {
			t[in.uuid] = m
		}
	}
	d.table.Store(&t)
	d.tmu.Unlock()
	in.dead.Store(true)
	in.drain()
	in.stop()
	err := in.log.Close()
	if errors.Is(err, engine.ErrClosed) {
		err = nil
	}
	if d.opts.StateDir != "" {
		os.Remove(d.statePath(in.uuid, in.luid))
	}
	d.notify()
	return err
}

// cloneTable copies the top level of the table; callers hold tmu.
func (d *Daemon) cloneTable() table {
	return maps.Clone(*d.table.Load())
}

func (d *Daemon) notify() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// Changed is signalled (without blocking the daemon) whenever a log is
// constructed or destroyed.
func (d *Daemon) Changed() <-chan struct{} { return d.changed }

// InUse is the number of logs the daemon serves.
func (d *Daemon) InUse() int {
	n := 0
	for _, m := range *d.table.Load() {
		n += len(m)
	}
	return n
}

// instances lists every log.
func (d *Daemon) instances() []*instance {
	var out []*instance
	for _, m := range *d.table.Load() {
		for _, in := range m {
			out = append(out, in)
		}
	}
	return out
}

// Persist flushes every log that is live, so that the disk logs hold every
// mark and clear received so far. Used before the daemon exits.
func (d *Daemon) Persist() error {
	var errs []error
	for _, in := range d.instances() {
		if !in.acquire() {
			continue
		}
		if err := in.log.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("log %s/%#x: %w", in.uuid, in.luid, err))
		}
		in.release()
	}
	return errors.Join(errs...)
}

// Close stops the CTR/DTR worker and the logs' workers after they finish
// what is queued, persists and closes every log. Requests arriving after
// Close get EAGAIN or ESRCH.
func (d *Daemon) Close(ctx context.Context) error {
	d.cdMu.Lock()
	d.cdStop = true
	d.cdCond.Broadcast()
	d.cdMu.Unlock()
	select {
	case <-d.cdDone:
	case <-ctx.Done():
		return fmt.Errorf("daemon: close: CTR/DTR worker still busy: %w", ctx.Err())
	}
	var errs []error
	for _, in := range d.instances() {
		in.dead.Store(true)
		in.drain()
		in.stop()
		// Close flushes a live disk log.
		if err := in.log.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			errs = append(errs, fmt.Errorf("log %s/%#x: %w", in.uuid, in.luid, err))
		}
	}
	d.table.Store(&table{})
	return errors.Join(errs...)
}

// LogStatus describes one served log.
type LogStatus struct {
	UUID      string            `json:"uuid"`
	LUID      uint64            `json:"luid"`
	Ctr       string            `json:"ctr"`
	State     engine.State      `json:"state"`
	Requests  map[string]uint64 `json:"requests"`
	LastFlush time.Duration     `json:"last_flush_ns"`
	P99Flush  time.Duration     `json:"p99_flush_ns"`
	// LastFlushBytes and FlushBytes are what the latest flush, and every
	// flush, wrote to the log device: the writes of RESUME (the whole
	// image) are not flushes and are left out.
	LastFlushBytes uint64        `json:"last_flush_bytes"`
	FlushBytes     uint64        `json:"flush_bytes"`
	Age            time.Duration `json:"age_ns"`
	// Phases sums where the FLUSHes (and MARKs that wrote) spent their
	// time in the daemon; State.Stats splits their engine time further.
	Phases     Phases `json:"phases"`
	StatusInfo string `json:"status_info"`
	// Group holds a cluster log's counters of its work with its group
	// (messages, resync proposals, give-backs), by name; nil for others.
	Group map[string]uint64 `json:"group,omitempty"`
	// Warning says what is wrong with how the log is kept, "" when nothing
	// is: a log without a state file in the daemon's state directory, a
	// mirror without handle_errors (Options.CheckMirror).
	Warning string `json:"warning,omitempty"`
}

// groupCounters is a log kept with a group (cluster.Log): its counters,
// for status and the state dump.
type groupCounters interface {
	GroupCounters() map[string]uint64
}

// Status describes every log, sorted by uuid and luid.
func (d *Daemon) Status() []LogStatus {
	var out []LogStatus
	for _, in := range d.instances() {
		if !in.acquire() {
			continue
		}
		s := LogStatus{UUID: in.uuid, LUID: in.luid, Ctr: in.ctr, State: in.log.State(),
			Requests: map[string]uint64{}, Age: time.Since(in.created), StatusInfo: in.log.Status(engine.StatusInfo)}
		if g, ok := in.log.(groupCounters); ok {
			s.Group = g.GroupCounters()
		}
		in.release()
		var warnings []string
		if why := cmp.Or(in.noState, s.State.StateFileError); why != "" {
			warnings = append(warnings, why+"; the log will not survive a restart of dlogd")
		}
		if w := in.mirrorWarning.Load(); w != nil {
			warnings = append(warnings, *w)
		}
		s.Warning = strings.Join(warnings, "; ")
		for t := ulog.TypeCtr; t <= ulog.MaxRequestType; t++ {
			if n := in.requests[t].Load(); n > 0 {
				s.Requests[t.String()] = n
			}
		}
		s.LastFlush, s.P99Flush, s.LastFlushBytes, s.FlushBytes = in.flushLat.snapshot()
		s.Phases = in.phases.snapshot()
		out = append(out, s)
	}
	sortStatus(out)
	return out
}

func sortStatus(s []LogStatus) {
	for i := 1; i < len(s); i++ {
		for k := i; k > 0 && (s[k].UUID < s[k-1].UUID || (s[k].UUID == s[k-1].UUID && s[k].LUID < s[k-1].LUID)); k-- {
			s[k], s[k-1] = s[k-1], s[k]
		}
	}
}

// Dump writes every log's state to the log output at Info (cmirrord's
// SIGUSR1 debug dump).
func (d *Daemon) Dump() {
	st := d.Status()
	d.log.Info("state dump", "logs", len(st), "malformed", d.counters.malformed.Load(),
		"unknown_log", d.counters.unknown.Load(), "errors", d.counters.errors.Load(), "busy", d.counters.busy.Load())
	for _, s := range st {
		d.log.Info("log", "uuid", s.UUID, "luid", fmt.Sprintf("%#x", s.LUID), "ctr", s.Ctr, "phase", s.State.Phase,
			"regions", s.State.Regions, "in_sync", s.State.InSync, "dirty", s.State.Dirty, "recovering", s.State.Recovering,
			"cursor", s.State.Cursor, "halted", s.State.Halted, "status", s.StatusInfo,
			"flushes", s.State.Stats.Flushes, "bytes_written", s.State.Stats.BytesWritten,
			"last_flush", s.LastFlush, "p99_flush", s.P99Flush,
			"phase_flushes", s.Phases.Flushes, "phase_queue", s.Phases.Queue, "phase_run", s.Phases.Run, "phase_reply", s.Phases.Reply, "phase_inline", s.Phases.Inline, "phase_detached", s.Phases.Detached,
			"write_time", s.State.Stats.WriteTime, "syncs", s.State.Stats.Syncs,
			"leg_flushes", s.State.Stats.LegFlushes, "leg_flush_time", s.State.Stats.LegFlushTime,
			"requests", counts(s.Requests), "group", counts(s.Group))
	}
}

// counts formats named counters as "name=value" pairs, sorted by name,
// separated by spaces.
func counts(m map[string]uint64) string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
