//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/ulog"
)

// Sizes of the log devices.
const (
	logFileSize  = 1 << 20 // every file-backed log
	fullFsSize   = 1 << 20 // the tmpfs the "full" log lives on
	fullFileSize = 128 << 10
	loopFileSize = 1 << 20
)

// soak is one soak run.
type soak struct {
	cfg     Config
	log     *slog.Logger
	dir     string
	sock    string
	pidfile string
	sp      *spawner
	tap     *logTap
	seqs    fakekernel.Seqs
	luids   atomic.Uint64
	st      stats
	res     resources
	start   time.Time
	rng     *rand.Rand // the fault injector's

	// gate is held for reading by every workload step and for writing by
	// the check after a restart, so that the check sees the logs at rest.
	gate sync.RWMutex

	gmu     sync.Mutex
	cur     *generation
	changed chan struct{} // closed and replaced when cur changes

	logs    []*soakLog
	faults  map[string]bool
	skipped map[string]string
	inj     *kclient // the fault injector's and checker's kernel context

	// host fault material
	fullDir  string
	loop     *loopDev
	fullLog  *soakLog
	loopLog  *soakLog
	fileLogs []*soakLog

	pausing atomic.Bool // a SIGSTOP is in progress (the watchdog waits)

	fmu      sync.Mutex
	failures []string
	nfail    int
	abort    context.CancelFunc
}

// Run runs a soak with cfg until its duration has passed or ctx is done.
// The error is for a soak that could not run at all; a soak that found
// faults returns a Result that does not Pass.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	faults, _ := cfg.faultSet()
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	s := &soak{cfg: cfg, log: cfg.Logger, faults: faults, skipped: map[string]string{}, changed: make(chan struct{})}
	s.rng = rand.New(rand.NewPCG(cfg.Seed, 0xfa17))
	s.luids.Store(0xffff8881_0a000000)
	if _, err := os.Stat(cfg.Dlogd); err != nil {
		return nil, fmt.Errorf("dlogd binary %s: %w (run make build, or pass --dlogd)", cfg.Dlogd, err)
	}
	tempDir := false
	if s.dir = cfg.Dir; s.dir == "" {
		d, err := os.MkdirTemp("", "dlog-soak-")
		if err != nil {
			return nil, fmt.Errorf("work directory: %w", err)
		}
		s.dir, tempDir = d, true
	} else if err := logDir(s.dir); err != nil {
		return nil, err
	}
	// dlogd opens the log devices by these paths, whatever its cwd.
	if abs, err := filepath.Abs(s.dir); err == nil {
		s.dir = abs
	}
	s.sock = under(s.dir, "dlogd.sock")
	s.pidfile = under(s.dir, "dlogd.pid")
	var err error
	if s.tap, err = newLogTap(under(s.dir, "dlogd.log")); err != nil {
		return nil, err
	}
	defer s.tap.close()
	s.sp = newSpawner()
	defer s.sp.close()
	s.log.Info("soak starting", "seed", cfg.Seed, "duration", cfg.Duration, "clients", cfg.Clients, "logs", cfg.Logs,
		"patience", cfg.Patience, "fault_every", cfg.FaultEvery, "faults", cfg.Faults, "dir", s.dir, "dlogd", cfg.Dlogd)

	defer s.teardownHost()
	if err := s.setupLogs(); err != nil {
		return nil, err
	}
	res, err := s.run(ctx)
	if err != nil {
		return nil, err
	}
	if tempDir && res.Pass() && !cfg.KeepDir {
		s.teardownHost()
		os.RemoveAll(s.dir)
	} else {
		s.log.Info("work directory kept", "dir", s.dir, "dlogd_log", under(s.dir, "dlogd.log"))
	}
	return res, nil
}

// setupLogs makes the log devices and the model of every log: every
// fourth log is clustered-core (the second of them nosync), the others
// clustered-disk on files; one disk log lives on a small tmpfs (the
// "full" fault) and one on a loop device (the "vanish" fault) when the
// host allows.
func (s *soak) setupLogs() error {
	rng := rand.New(rand.NewPCG(s.cfg.Seed, 0x10c5))
	if err := os.MkdirAll(under(s.dir, "logs"), 0o755); err != nil {
		return fmt.Errorf("logs directory: %w", err)
	}
	root := os.Geteuid() == 0
	if s.faults[faultFull] {
		// The mount point is outside the work directory, so that a soak
		// killed before it could unmount never leaves a directory that
		// rm -rf cannot remove.
		if !root {
			s.skipped[faultFull] = "needs root to mount a small tmpfs"
		} else if d, err := os.MkdirTemp("", "dlog-soak-full-"); err != nil {
			s.skipped[faultFull] = err.Error()
		} else if err := mountTmpfs(d, fullFsSize); err != nil {
			s.skipped[faultFull] = err.Error()
			os.Remove(d)
		} else {
			s.fullDir = d
		}
	}
	cores := 0
	for i := range s.cfg.Logs {
		isCore := i%4 == 3 || (s.cfg.Logs < 4 && i == s.cfg.Logs-1)
		l := newSoakLog(i, !isCore, rng)
		l.owner = i % s.cfg.Clients
		l.integrated = i%2 == 1
		regionSize := uint64(1) << (1 + rng.IntN(10)) // 2 .. 1024 sectors
		regions := uint64(4096 + rng.IntN(28673))     // a one- to two-block image
		switch {
		case isCore:
			cores++
			l.nosync = cores == 2
		case l.disk && s.fullDir != "" && s.fullLog == nil:
			l.role = roleFull
			l.path = under(s.fullDir, l.name+".img")
			if err := makeFile(l.path, fullFileSize); err != nil {
				return err
			}
			l.dev = l.path
			regions = 65536 // a 9 KiB image: blocks 1 and 2 hold only bits
			s.fullLog = l
		case l.disk && s.faults[faultVanis] && s.loopLog == nil && root && s.loop == nil && s.skipped[faultVanis+"-loop"] == "":
			lp, err := attachLoop(under(s.dir, l.name+".loop.img"), loopFileSize)
			if err != nil {
				s.skipped[faultVanis+"-loop"] = err.Error()
				s.log.Warn("no loop device: the vanish fault only replaces files", "err", err)
				l.path = under(s.dir, "logs", l.name+".img")
				l.dev = l.path
				if err := makeFile(l.path, logFileSize); err != nil {
					return err
				}
				s.fileLogs = append(s.fileLogs, l)
				break
			}
			s.loop = lp
			l.role = roleVanishLoop
			l.path = lp.Dev
			l.dev = lp.MajMin()
			s.loopLog = l
		default:
			if l.disk {
				l.path = under(s.dir, "logs", l.name+".img")
				l.dev = l.path
				if err := makeFile(l.path, logFileSize); err != nil {
					return err
				}
				s.fileLogs = append(s.fileLogs, l)
			}
		}
		l.setGeometry(regionSize, regions, rng)
		s.logs = append(s.logs, l)
		s.log.Debug("log", "name", l.name, "kind", l.kind(), "uuid", l.uuid, "ctr", l.ctr, "owner", l.owner, "integrated_flush", l.integrated)
	}
	if s.faults[faultVanis] && len(s.fileLogs) == 0 && s.loopLog == nil {
		s.skipped[faultVanis] = "no log to make vanish"
	}
	if !root && s.faults[faultVanis] {
		s.skipped[faultVanis+"-loop"] = "needs root for a loop device"
	}
	return nil
}

func (s *soak) teardownHost() {
	if s.loop != nil {
		if err := s.loop.Detach(); err != nil {
			s.log.Warn("loop device", "err", err)
		}
		s.loop = nil
	}
	if s.fullDir != "" {
		if err := unmount(s.fullDir); err != nil {
			s.log.Warn("tmpfs", "err", err)
		} else {
			os.Remove(s.fullDir)
		}
		s.fullDir = ""
	}
}

// fail records a failure of the soak.
func (s *soak) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.fmu.Lock()
	s.nfail++
	if len(s.failures) < 40 {
		s.failures = append(s.failures, msg)
	}
	s.fmu.Unlock()
	s.log.Error("FAILURE", "what", msg)
}

func (s *soak) failed() int {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.nfail
}

// current is the current generation.
func (s *soak) current() *generation {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	return s.cur
}

func (s *soak) currentAndChanged() (*generation, <-chan struct{}) {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	return s.cur, s.changed
}

func (s *soak) install(g *generation) {
	s.gmu.Lock()
	s.cur = g
	close(s.changed)
	s.changed = make(chan struct{})
	s.gmu.Unlock()
}

// newLUID is a kernel-like address of a new log context.
func (s *soak) newLUID() uint64 { return s.luids.Add(0x1c0) }

// onEIO judges a -EIO reply: expected in runs with device faults and from
// a device an episode is failing; a failure otherwise.
func (s *soak) onEIO(g *generation, l *soakLog, typ ulog.RequestType) {
	switch g.mode.name {
	case "tear":
		s.st.tearEIO.Add(1)
		select {
		case g.tear <- struct{}{}:
		default:
		}
	case "eio":
		s.st.eioRun.Add(1)
	default:
		if expect, _ := l.expectingEIO(); expect {
			s.st.episodeEIO.Add(1)
			return
		}
		s.fail("unexpected -EIO for %s on %s (%s) in a run without faults (dlogd says: %s)", typ, l.name, l.kind(), s.tap.lastMatching(l.uuid))
	}
}

func (s *soak) normalMode() runMode {
	return runMode{name: "normal", fallback: s.rng.IntN(4) == 0}
}

// spawn starts a dlogd in mode; its generation is not ready yet.
func (s *soak) spawn(ctx context.Context, n uint64, mode runMode) (*generation, error) {
	s.tap.mark("starting generation %d: %s", n, mode)
	p, err := startDaemon(ctx, s.sp, s.cfg.Dlogd, s.sock, s.pidfile, s.cfg.Mlock, mode, s.cfg.ExtraEnv, s.tap)
	if err != nil {
		return nil, err
	}
	g := &generation{n: n, sock: s.sock, proc: p, mode: mode, ready: make(chan struct{}), tear: make(chan struct{}, 1)}
	s.log.Debug("dlogd started", "generation", n, "pid", p.pid, "mode", mode.String())
	return g, nil
}

// restart stops the current dlogd (how: kill9, term, or dead when it
// already exited), starts the next in mode, checks every log while the
// workload waits, and lets the workload go on.
func (s *soak) restart(ctx context.Context, how string, mode runMode) error {
	old := s.current()
	old.proc.expected.Store(true)
	s.tap.mark("%s of generation %d (pid %d)", how, old.n, old.proc.pid)
	switch how {
	case "kill9":
		old.proc.signal(syscall.SIGKILL)
	case "quit":
		// A crash too, and the Go runtime's dump of every goroutine.
		old.proc.signal(syscall.SIGQUIT)
	case "term":
		// dlogd refuses the first signal while logs are in use (and
		// persists them); the second makes it exit at once.
		old.proc.signal(syscall.SIGTERM)
		time.Sleep(100 * time.Millisecond)
		old.proc.signal(syscall.SIGTERM)
	}
	select {
	case <-old.proc.done:
	case <-time.After(30 * time.Second):
		s.fail("dlogd generation %d did not exit within 30 s of %s", old.n, how)
		old.proc.signal(syscall.SIGKILL)
		<-old.proc.done
	}
	switch how {
	case "term":
		if code := old.proc.exitCode(); code == 66 {
			s.fail("dlogd generation %d exited with 66 after SIGTERM twice: its race detector found a data race (see the DATA RACE failure)", old.n)
		} else if code != 0 {
			s.fail("dlogd generation %d exited with %d after SIGTERM twice, want 0", old.n, code)
		}
	case "quit":
		if n := s.tap.quitGoroutines(); n > 0 {
			s.res.addGoroutines(s.half(), n)
		} else {
			s.log.Warn("no goroutine dump after SIGQUIT", "generation", old.n)
		}
	}
	g, err := s.spawn(ctx, old.n+1, mode)
	if err != nil {
		return fmt.Errorf("restart after %s: %w", how, err)
	}
	s.install(g)
	s.inj.close() // its connection was to the old daemon
	s.gate.Lock()
	if s.cfg.sabotage != nil {
		s.cfg.sabotage(ctx, s)
	}
	err = s.checkAll(ctx, g)
	s.gate.Unlock()
	close(g.ready)
	if err != nil {
		return err
	}
	s.st.restarts.Add(1)
	return nil
}

// checkAll runs after a restart, before the workload goes on: for every
// live log, every acknowledged mark must read dirty. dlogd restores its
// logs from its state directory, core logs included; a log it could not
// restore answers -ESRCH and the kernel reconnects it first.
func (s *soak) checkAll(ctx context.Context, g *generation) error {
	for _, l := range s.logs {
		in := l.liveInst()
		if in == nil {
			continue
		}
		s.inj.doing.Store("checking " + l.name)
		// A log dlogd did not restore gets -ESRCH here, and the kernel
		// reconnects it.
		if _, err := s.inj.syncCount(ctx, l, in); err != nil {
			return fmt.Errorf("check after restart, log %s: %w", l.name, err)
		}
		if err := s.inj.checkDirty(ctx, l, in, fmt.Sprintf("restart into generation %d", g.n)); err != nil {
			return fmt.Errorf("check after restart, log %s: %w", l.name, err)
		}
	}
	s.inj.doing.Store("idle")
	return nil
}

// run is the soak proper.
func (s *soak) run(parent context.Context) (*Result, error) {
	ctx, abort := context.WithCancel(parent)
	defer abort()
	s.abort = abort
	s.start = time.Now()
	s.inj = newClient(s, "injector", rand.New(rand.NewPCG(s.cfg.Seed, 0x1a1)), true)
	defer s.inj.close()

	g, err := s.spawn(ctx, 1, s.normalMode())
	if err != nil {
		return nil, err
	}
	s.install(g)
	close(g.ready)
	// Activate every log: CTR, GET_REGION_SIZE, STATUS_INFO, RESUME.
	for _, l := range s.logs {
		l.life.Lock()
		s.gate.RLock()
		_, err := s.inj.activate(ctx, l)
		s.gate.RUnlock()
		l.life.Unlock()
		if err != nil {
			s.stopDaemon()
			return nil, fmt.Errorf("activating %s: %w", l.describe(), err)
		}
	}

	var bg sync.WaitGroup
	stopBg := make(chan struct{})
	bg.Add(2)
	go func() { defer bg.Done(); s.sampler(stopBg) }()
	go func() { defer bg.Done(); s.progress(ctx, stopBg) }()

	// The workload.
	stopClients := make(chan struct{})
	var cw sync.WaitGroup
	var clients []*kclient
	for i := range s.cfg.Clients {
		c := newClient(s, fmt.Sprintf("client%d", i), rand.New(rand.NewPCG(s.cfg.Seed, uint64(i)+1)), false)
		clients = append(clients, c)
		var owned []*soakLog
		for _, l := range s.logs {
			if l.owner == i {
				owned = append(owned, l)
			}
		}
		cw.Add(1)
		go func() {
			defer cw.Done()
			defer c.close()
			c.loop(ctx, stopClients, owned, s.logs)
		}()
	}

	// Faults until the time is up.
	deadline := time.Now().Add(s.cfg.Duration)
	runErr := s.injectFaults(ctx, deadline)

	// Wind down: the clients finish their steps.
	if runErr != nil {
		abort() // the soak cannot go on: nobody will start a daemon for them
	}
	close(stopClients)
	done := make(chan struct{})
	go func() { cw.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		for _, c := range clients {
			s.fail("%s did not finish its step within 2 minutes: %v", c.name, c.doing.Load())
		}
		abort()
		<-done
	}
	if runErr == nil && ctx.Err() == nil {
		runErr = s.finish(ctx)
	}
	close(stopBg)
	bg.Wait()
	if runErr != nil && ctx.Err() == nil {
		s.fail("%v", runErr)
	}
	if ctx.Err() != nil && parent.Err() != nil {
		s.fail("interrupted after %v", time.Since(s.start).Round(time.Second))
	}
	s.stopDaemon()
	for _, a := range s.tap.alarmLines() {
		s.fail("dlogd: %s", a)
	}
	return s.result(), nil
}

// stopDaemon kills the current dlogd if it still runs.
func (s *soak) stopDaemon() {
	g := s.current()
	if g == nil || g.proc.exited() {
		return
	}
	g.proc.expected.Store(true)
	g.proc.signal(syscall.SIGKILL)
	<-g.proc.done
}

// injectFaults picks a fault at random instants until the deadline.
func (s *soak) injectFaults(ctx context.Context, deadline time.Time) error {
	schedule := s.cfg.Schedule
	var kinds []string
	total := 0
	for _, k := range allFaults {
		if s.faults[k] && s.skipped[k] == "" {
			kinds = append(kinds, k)
			total += faultWeights[k]
		}
	}
	for {
		wait := time.Duration(s.rng.ExpFloat64() * float64(s.cfg.FaultEvery))
		wait = max(wait, s.cfg.FaultEvery/5)
		left := time.Until(deadline)
		if wait >= left {
			wait = left
		}
		g := s.current()
		select {
		case <-ctx.Done():
			return nil
		case <-g.proc.done:
			if !g.proc.expected.Load() {
				s.fail("dlogd generation %d (pid %d, %s) died on its own: %v; %s", g.n, g.proc.pid, g.mode, g.proc.err, s.tap.lastAlarm())
				if err := s.restart(ctx, "dead", s.normalMode()); err != nil {
					return err
				}
			}
			continue
		case <-time.After(wait):
		}
		if time.Now().After(deadline) || len(kinds) == 0 {
			if len(kinds) == 0 && time.Now().Before(deadline) {
				continue
			}
			return nil
		}
		x := s.rng.IntN(total)
		kind := kinds[0]
		for _, k := range kinds {
			if x -= faultWeights[k]; x < 0 {
				kind = k
				break
			}
		}
		for len(schedule) > 0 {
			k := schedule[0]
			schedule = schedule[1:]
			if s.faults[k] && s.skipped[k] == "" {
				kind = k
				break
			}
		}
		s.log.Debug("fault", "kind", kind, "generation", g.n)
		var err error
		switch kind {
		case faultKill9:
			how := "kill9"
			if s.rng.IntN(3) == 0 {
				how = "quit"
			}
			err = s.restart(ctx, how, s.normalMode())
			s.st.fault("crash-" + how)
		case faultTerm:
			if err = s.audit(ctx); err == nil {
				err = s.restart(ctx, "term", s.normalMode())
			}
		case faultStop:
			err = s.pause(ctx)
		case faultEIO:
			err = s.eioRun(ctx, deadline)
		case faultTear:
			err = s.tearRun(ctx, deadline)
		case faultFull:
			err = s.fullEpisode(ctx)
		case faultVanis:
			err = s.vanishEpisode(ctx)
		}
		s.st.fault(kind)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if g := s.current(); g.proc.exited() && !g.proc.expected.Load() {
				// dlogd crashed under the fault: a failure, and the soak
				// goes on with a new daemon.
				s.fail("dlogd generation %d (pid %d) died on its own during fault %s: %v; %s", g.n, g.proc.pid, kind, g.proc.err, s.tap.lastAlarm())
				if err := s.restart(ctx, "dead", s.normalMode()); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("fault %s: %w", kind, err)
		}
	}
}

// sleepUntil sleeps d, or less if ctx ends or the deadline comes.
func sleepUntil(ctx context.Context, d time.Duration, deadline time.Time) {
	d = min(d, time.Until(deadline))
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (s *soak) uniform(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

// pause stops dlogd for longer than a client's patience: the clients time
// out and resend with new seqs; after SIGCONT the old requests are
// answered (and ignored) and the resends too.
func (s *soak) pause(ctx context.Context) error {
	g := s.current()
	d := time.Duration(float64(s.cfg.Patience) * (1.5 + 1.5*s.rng.Float64()))
	t0 := s.st.req.Timeouts.Load()
	s.pausing.Store(true)
	defer s.pausing.Store(false)
	s.tap.mark("SIGSTOP for %v", d)
	if err := g.proc.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	if err := g.proc.signal(syscall.SIGCONT); err != nil {
		return err
	}
	r0 := s.st.req.Requests.Load()
	limit := time.Now().Add(2*s.cfg.Patience + 10*time.Second)
	for s.st.req.Requests.Load() < r0+uint64(s.cfg.Clients) && time.Now().Before(limit) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if s.st.req.Requests.Load() < r0+uint64(s.cfg.Clients) && ctx.Err() == nil {
		s.fail("no replies within %v after SIGCONT (generation %d)", 2*s.cfg.Patience+10*time.Second, g.n)
	}
	s.st.note(faultStop, "stopped %v (patience %v): %d client timeouts and resends", d.Round(time.Millisecond), s.cfg.Patience, s.st.req.Timeouts.Load()-t0)
	return nil
}

// eioRun restarts dlogd with EIO injected on writes and cache flushes of
// every log device for a few seconds, then restarts it without.
func (s *soak) eioRun(ctx context.Context, deadline time.Time) error {
	p := 0.01 + 0.04*s.rng.Float64()
	mode := runMode{name: "eio", faultio: fmt.Sprintf("write=%.3f,sync=%.3f,seed=%d", p, p, s.rng.Uint64()), fallback: s.rng.IntN(3) == 0}
	e0 := s.st.eioRun.Load()
	if err := s.restart(ctx, "kill9", mode); err != nil {
		return err
	}
	sleepUntil(ctx, s.uniform(s.cfg.FaultEvery*6/10, s.cfg.FaultEvery*16/10), deadline)
	if err := s.restart(ctx, "kill9", s.normalMode()); err != nil {
		return err
	}
	s.st.note(faultEIO, "%s: %d -EIO replies, then kill -9 and a clean restart", mode.faultio, s.st.eioRun.Load()-e0)
	return nil
}

// tearRun restarts dlogd with torn writes; the first -EIO reply means a
// write was torn and the device is dead, as after a power loss: dlogd is
// killed at once and restarted without faults, and the check follows.
func (s *soak) tearRun(ctx context.Context, deadline time.Time) error {
	mode := runMode{name: "tear", faultio: fmt.Sprintf("tear=%.3f,seed=%d", 0.005+0.02*s.rng.Float64(), s.rng.Uint64()), fallback: s.rng.IntN(3) == 0}
	if err := s.restart(ctx, "kill9", mode); err != nil {
		return err
	}
	g := s.current()
	limit := min(s.uniform(s.cfg.FaultEvery*8/10, s.cfg.FaultEvery*2), time.Until(deadline))
	torn := false
	select {
	case <-g.tear:
		torn = true
	case <-ctx.Done():
	case <-time.After(max(limit, 0)):
	}
	if err := s.restart(ctx, "kill9", s.normalMode()); err != nil {
		return err
	}
	if torn {
		s.st.fault("tear-power-loss")
		s.st.note(faultTear, "%s: a write was torn; kill -9 at the first -EIO, restart, nothing lost", mode.faultio)
	} else {
		s.st.note(faultTear, "%s: no tear within the run", mode.faultio)
	}
	return nil
}

// lifecycle runs f on l as a lifecycle step of the injector.
func (s *soak) lifecycle(l *soakLog, f func() error) error {
	l.life.Lock()
	defer l.life.Unlock()
	s.gate.RLock()
	defer s.gate.RUnlock()
	return f()
}

// reloadInj reloads (or activates) l as the injector; it returns the
// CTR's error.
func (s *soak) reloadInj(ctx context.Context, l *soakLog) (int32, error) {
	var ctrErr int32
	err := s.lifecycle(l, func() error {
		var err error
		ctrErr, err = s.inj.reloadOrActivate(ctx, l)
		return err
	})
	return ctrErr, err
}

// deviceFlag asks a disk log's STATUS_INFO and returns its device flag.
func (s *soak) deviceFlag(ctx context.Context, l *soakLog) (byte, error) {
	l.life.RLock()
	defer l.life.RUnlock()
	s.gate.RLock()
	defer s.gate.RUnlock()
	in := l.liveInst()
	if in == nil {
		return 0, nil
	}
	res, d, err := s.inj.do(ctx, l, in, ulog.TypeStatusInfo, nil)
	if err != nil || res != 0 {
		return 0, err
	}
	st := strings.TrimRight(string(d), "\x00")
	if st == "" {
		return 0, nil
	}
	return st[len(st)-1], nil
}

// awaitFailure waits until l's device has failed visibly: an -EIO reply or
// status D or F. It reports what it saw.
func (s *soak) awaitFailure(ctx context.Context, l *soakLog, e0 uint64, d time.Duration) (eio bool, flag byte, err error) {
	limit := time.Now().Add(d)
	for time.Now().Before(limit) && ctx.Err() == nil {
		if flag, err = s.deviceFlag(ctx, l); err != nil {
			return false, 0, err
		}
		eio = s.st.episodeEIO.Load() > e0
		if eio && flag != 'A' {
			return eio, flag, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return eio, flag, nil
}

// reloadAfterEpisode reloads l (a new instance on the device, which is
// what clears D) and checks its status is A again.
func (s *soak) reloadAfterEpisode(ctx context.Context, l *soakLog, kind string) error {
	ctrErr, err := s.reloadInj(ctx, l)
	if err != nil {
		return err
	}
	if ctrErr != 0 {
		s.fail("%s: the reload of %s after the device came back failed: CTR %d (dlogd says: %s)", kind, l.name, ctrErr, s.tap.lastMatching(l.uuid, "CTR"))
		return nil
	}
	l.setEpisode(false, false)
	flag, err := s.deviceFlag(ctx, l)
	if err != nil {
		return err
	}
	if flag != 'A' {
		s.fail("%s: %s shows status %c after the reload, want A", kind, l.name, flag)
	}
	return nil
}

// fullEpisode: the filesystem under the "full" log's file fills up while
// some of the file's blocks are unallocated (as a thin device runs out of
// space): flushes get -EIO and the status shows D; space is freed, the log
// is reloaded and must show A with every acknowledged mark still dirty.
func (s *soak) fullEpisode(ctx context.Context) error {
	l := s.fullLog
	l.setEpisode(true, true)
	e0 := s.st.episodeEIO.Load()
	// Blocks 1 and 2 of the image hold only bits; the holes read as zeros
	// (dirty), and writing them needs space the filesystem no longer has.
	var filled int64
	for i := range 2 {
		if err := punchHole(l.path, 4096, 8192); err != nil {
			return err
		}
		n, err := fill(under(s.fullDir, fmt.Sprintf("filler%d", i)))
		if err != nil {
			return err
		}
		filled += n
	}
	eio, flag, err := s.awaitFailure(ctx, l, e0, 8*time.Second)
	if err != nil {
		return err
	}
	for i := range 2 {
		os.Remove(under(s.fullDir, fmt.Sprintf("filler%d", i)))
	}
	if err := s.reloadAfterEpisode(ctx, l, faultFull); err != nil {
		return err
	}
	s.st.note(faultFull, "filled %d KiB: %d -EIO replies, status %c (%s); space freed, reload: status A, marks intact",
		filled>>10, s.st.episodeEIO.Load()-e0, flag, shortMsg(s.tap.lastMatching(l.uuid, "log device failed")))
	if !eio {
		s.log.Warn("full: no -EIO reply while the filesystem was full (the workload did not touch the holes)", "log", l.name)
	}
	return nil
}

// vanishEpisode makes a log device disappear: the loop device under a log
// shrinks to nothing (every I/O fails), or a log file is removed, replaced
// by an empty one, or by one too small. A reload while it is gone must
// fail with a clear message; once a device is back, a reload succeeds
// (with a fresh log: the old content is gone). Other logs lose nothing.
func (s *soak) vanishEpisode(ctx context.Context) error {
	variants := []string{"replace", "remove", "shrink"}
	if s.loopLog != nil {
		variants = append(variants, "loop", "loop")
	}
	if len(s.fileLogs) == 0 {
		variants = variants[3:]
	}
	v := variants[s.rng.IntN(len(variants))]
	if v == "loop" {
		return s.vanishLoop(ctx)
	}
	l := s.fileLogs[s.rng.IntN(len(s.fileLogs))]
	l.setEpisode(true, false)
	var err error
	switch v {
	case "replace":
		err = replaceFile(l.path, logFileSize)
	case "remove":
		err = os.Remove(l.path)
	case "shrink":
		err = replaceFile(l.path, 512)
	}
	if err != nil {
		return err
	}
	msg := "none"
	if v != "replace" {
		// While the file is gone or too small a reload must be refused.
		ctrErr, err := s.reloadInj(ctx, l)
		if err != nil {
			return err
		}
		msg = s.tap.lastMatching(l.uuid, "CTR failed")
		// docs/conformance.md item 23: -EINVAL for a CTR that cannot use
		// its device.
		if ctrErr != fakekernel.EINVAL {
			s.fail("vanish(%s): reload of %s with its file %s: CTR gave %d, want %d (dlogd says: %s)", v, l.name,
				map[string]string{"remove": "removed", "shrink": "replaced by a 512-byte one"}[v], ctrErr, fakekernel.EINVAL, msg)
		}
		if err := replaceFile(l.path, logFileSize); err != nil {
			return err
		}
	}
	if err := s.reloadAfterEpisode(ctx, l, faultVanis); err != nil {
		return err
	}
	s.st.fault("vanish-" + v)
	if v == "replace" {
		s.st.note(faultVanis, "file replaced (%s): dlogd kept writing the file it opened at CTR; the reload opened the new one: fresh log (all dirty), status A", l.name)
	} else {
		s.st.note(faultVanis, "file %s (%s): reload refused with: %s; file back, reload: fresh log (all dirty), status A", v, l.name, shortMsg(msg))
	}
	return nil
}

// vanishLoop shrinks the loop device under a log to nothing.
func (s *soak) vanishLoop(ctx context.Context) error {
	l := s.loopLog
	l.setEpisode(true, true)
	e0 := s.st.episodeEIO.Load()
	if err := s.loop.vanish(); err != nil {
		return err
	}
	eio, flag, err := s.awaitFailure(ctx, l, e0, 8*time.Second)
	if err != nil {
		return err
	}
	ctrErr, err := s.reloadInj(ctx, l)
	if err != nil {
		return err
	}
	msg := s.tap.lastMatching(l.uuid, "CTR failed")
	if ctrErr != fakekernel.EINVAL {
		s.fail("vanish(loop): reload of %s on an empty device: CTR gave %d, want %d (too small) (dlogd says: %s)", l.name, ctrErr, fakekernel.EINVAL, msg)
	}
	if err := s.loop.restore(); err != nil {
		return err
	}
	if err := s.reloadAfterEpisode(ctx, l, faultVanis); err != nil {
		return err
	}
	s.st.fault("vanish-loop")
	s.st.note(faultVanis, "loop %s (%s) shrunk to 0: -EIO %v, status %c; reload refused with: %s; device back, reload: status A",
		s.loop.Dev, l.name, eio, flag, shortMsg(msg))
	return nil
}

// shortMsg trims a dlogd log line to its message and error.
func shortMsg(line string) string {
	if line == "" {
		return "(nothing logged)"
	}
	var parts []string
	for _, k := range []string{"msg=", "err="} {
		if i := strings.Index(line, k); i >= 0 {
			v := line[i+len(k):]
			if strings.HasPrefix(v, `"`) {
				if j := strings.Index(v[1:], `"`); j >= 0 {
					v = v[:j+2]
				}
			} else if j := strings.IndexByte(v, ' '); j >= 0 {
				v = v[:j]
			}
			parts = append(parts, k+v)
		}
	}
	return strings.Join(parts, " ")
}

// half is the half of the run we are in (0 or 1).
func (s *soak) half() int {
	if time.Since(s.start) > s.cfg.Duration/2 {
		return 1
	}
	return 0
}

// sampler reads dlogd's RSS, threads and open files every second.
func (s *soak) sampler(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		g := s.current()
		if g == nil || g.proc.exited() || time.Since(g.proc.started) < time.Second {
			continue
		}
		ps, err := sampleProc(g.proc.pid)
		if err != nil {
			continue
		}
		s.res.add(s.half(), ps)
	}
}

// progress logs a line every Progress, and watches for a stalled soak.
func (s *soak) progress(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(s.cfg.Progress)
	defer t.Stop()
	last := s.st.req.Requests.Load()
	stalled := 0
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		req := s.st.req.Requests.Load()
		faults, _ := s.st.faultCounts()
		var fk []string
		for _, k := range allFaults {
			if faults[k] > 0 {
				fk = append(fk, fmt.Sprintf("%s=%d", k, faults[k]))
			}
		}
		g := s.current()
		ps, _ := sampleProc(g.proc.pid)
		s.log.Info("progress", "elapsed", time.Since(s.start).Round(time.Second), "requests", req,
			"rate", fmt.Sprintf("%.0f/s", float64(req-last)/s.cfg.Progress.Seconds()), "restarts", s.st.restarts.Load(),
			"faults", strings.Join(fk, ","), "marks_checked", s.st.marksChecked.Load(), "marks_lost", s.st.marksLost.Load(),
			"generation", g.n, "mode", g.mode.name, "rss", mib(ps.rssKiB), "threads", ps.threads, "fds", ps.fds, "failures", s.failed())
		if req == last && !s.pausing.Load() {
			stalled++
		} else {
			stalled = 0
		}
		last = req
		if stalled*int(s.cfg.Progress/time.Second) >= 60 {
			s.fail("no request answered for %v", time.Duration(stalled)*s.cfg.Progress)
			s.fail("injector: %v", s.inj.doing.Load())
			s.abort()
			return
		}
	}
}

// audit stops the workload between steps and compares the number of logs
// in dlogd's SIGUSR1 state dump with the instances the kernel holds: a log
// dlogd kept after its DTR, or lost, shows here.
func (s *soak) audit(ctx context.Context) error {
	s.gate.Lock()
	defer s.gate.Unlock()
	g := s.current()
	want := 0
	for _, l := range s.logs {
		want += l.instances()
	}
	seq := s.tap.dumpSeq.Load()
	if err := g.proc.signal(syscall.SIGUSR1); err != nil {
		return err
	}
	for i := 0; i < 250 && s.tap.dumpSeq.Load() == seq && ctx.Err() == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if s.tap.dumpSeq.Load() == seq {
		s.fail("dlogd generation %d did not answer SIGUSR1 with a state dump within 5 s", g.n)
		return nil
	}
	if n := s.tap.dumpLogs.Load(); n != int64(want) {
		var ls []string
		for _, l := range s.logs {
			ls = append(ls, l.describe())
		}
		s.fail("dlogd's state dump shows %d logs, the kernel holds %d instances: %s", n, want, strings.Join(ls, "; "))
	}
	s.st.audits.Add(1)
	return nil
}

// finish ends the soak: a last kill -9 and check, a state dump whose log
// count must match the kernel's, then SIGTERM and the deactivation of
// every log, after which dlogd must exit 0 by itself.
func (s *soak) finish(ctx context.Context) error {
	if err := s.restart(ctx, "quit", runMode{name: "normal"}); err != nil {
		return err
	}
	g := s.current()
	want := 0
	for _, l := range s.logs {
		want += l.instances()
	}
	seq := s.tap.dumpSeq.Load()
	g.proc.signal(syscall.SIGUSR1)
	for i := 0; i < 100 && s.tap.dumpSeq.Load() == seq; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	// After the restart only the logs the check reconnected exist.
	live := 0
	for _, l := range s.logs {
		if l.liveInst() != nil {
			live++
		}
	}
	if n := s.tap.dumpLogs.Load(); s.tap.dumpSeq.Load() == seq {
		s.fail("dlogd did not answer SIGUSR1 with a state dump")
	} else if n != int64(live) {
		s.fail("dlogd's state dump shows %d logs, the kernel has %d live (%d instances)", n, live, want)
	}
	g.proc.expected.Store(true)
	g.proc.signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	if g.proc.exited() {
		s.fail("dlogd exited on SIGTERM with logs in use (exit %d)", g.proc.exitCode())
		return nil
	}
	for _, l := range s.logs {
		in := l.liveInst()
		if in == nil {
			continue
		}
		err := s.lifecycle(l, func() error {
			for _, typ := range []ulog.RequestType{ulog.TypePresuspend, ulog.TypePostsuspend, ulog.TypeDtr} {
				res, err := s.inj.direct(ctx, l, in, typ)
				if err != nil {
					return err
				}
				if res != 0 {
					s.fail("deactivation of %s: %s failed with %d", l.name, typ, res)
				}
			}
			l.mu.Lock()
			l.live = nil
			l.mu.Unlock()
			return nil
		})
		if err != nil {
			return fmt.Errorf("final deactivation of %s: %w", l.name, err)
		}
	}
	select {
	case <-g.proc.done:
		if code := g.proc.exitCode(); code != 0 {
			s.fail("dlogd exited %d after SIGTERM and the last DTR, want 0", code)
		}
	case <-time.After(15 * time.Second):
		s.fail("dlogd did not exit within 15 s of the last DTR after SIGTERM")
	}
	return nil
}

// result gathers the figures.
func (s *soak) result() *Result {
	r := &Result{
		Seed:       s.cfg.Seed,
		Elapsed:    time.Since(s.start),
		Requests:   s.st.req.Requests.Load(),
		Restarts:   s.st.restarts.Load(),
		MarksAcked: s.st.marksAcked.Load(),
		Checked:    s.st.marksChecked.Load(),
		Lost:       s.st.marksLost.Load(),
		CoreChecks: s.st.coreChecks.Load(),
		Skipped:    map[string]string{},
	}
	r.Faults, r.Notes = s.st.faultCounts()
	for k, v := range s.skipped {
		if !strings.Contains(k, "-") {
			r.Skipped[k] = v
		}
	}
	if why, ok := s.skipped[faultVanis+"-loop"]; ok && s.faults[faultVanis] {
		r.Notes[faultVanis] += " (loop variant skipped: " + why + ")"
	}
	r.Peaks, r.Samples = s.res.snapshot()
	r.Goroutines, r.Dumps = s.res.goroutines()
	// Per log at most two instances (a worker each), per connection a
	// reader, and the runtime's and daemon's own.
	bound := 2*2*s.cfg.Logs + 2*(s.cfg.Clients+1) + 40
	for _, b := range flat(r.Peaks, r.Samples, r.Goroutines, r.Dumps, bound) {
		s.fail("dlogd resources not flat: %s", b)
	}
	r.Extra = map[string]uint64{
		"client timeouts (resent)":          s.st.req.Timeouts.Load(),
		"stale replies ignored":             s.st.req.Stale.Load(),
		"-EAGAIN replies (resent)":          s.st.req.EAGAIN.Load(),
		"reconnects (CTR+NUL, RESUME)":      s.st.reconnects.Load(),
		"reloads":                           s.st.reloads.Load(),
		"activations":                       s.st.activations.Load(),
		"-EIO replies, eio runs":            s.st.eioRun.Load(),
		"-EIO replies, tear runs":           s.st.tearEIO.Load(),
		"-EIO replies, full/vanish devices": s.st.episodeEIO.Load(),
		"MARK_REGION acks lost with a restart before their FLUSH (kernel hazard, not counted)": s.st.marksDropped.Load(),
		"tears (power loss)": uint64(r.Faults["tear-power-loss"]),
	}
	r.Extra["state dump audits (logs in dlogd = instances in the kernel)"] = s.st.audits.Load()
	for k, v := range r.Faults {
		if !slices.Contains(allFaults, k) && k != "tear-power-loss" {
			r.Extra["fault variant "+k] = uint64(v)
		}
	}
	s.fmu.Lock()
	r.Failures = append([]string(nil), s.failures...)
	r.NFailures = s.nfail
	s.fmu.Unlock()
	r.Line = r.line()
	r.write(s.cfg.Out)
	if s.cfg.Report != "" {
		f, err := os.Create(s.cfg.Report)
		if err != nil {
			s.log.Error("cannot write the report", "file", s.cfg.Report, "err", err)
		} else {
			r.write(f)
			f.Close()
		}
	}
	lvl := slog.LevelInfo
	if !r.Pass() {
		lvl = slog.LevelError
	}
	s.log.Log(context.Background(), lvl, "soak done", "pass", r.Pass(), "seed", r.Seed, "failures", r.NFailures)
	return r
}
