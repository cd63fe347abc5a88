package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/internal/control"
	"github.com/dlog-dev/dlog/internal/metrics"
	"github.com/dlog-dev/dlog/internal/systemd"
	"github.com/dlog-dev/dlog/transport"
)

type serveFlags struct {
	transport     string
	pidfile       string
	control       string
	stateDir      string
	metrics       string
	metricsRemote bool
	logLevel      string
	force         bool
	noMlock       bool
	ioFall        bool
	clearDelay    time.Duration
	rcvbuf        int
	cluster       string
	fenceConfirm  string
	fenceTimeout  time.Duration
	noSelfResume  bool
	poll          time.Duration
	netpoll       bool
	receivers     int
}

func serve(args []string, stdout, stderr io.Writer) int {
	var f serveFlags
	fs := flag.NewFlagSet("dlogd serve", flag.ContinueOnError)
	fs.StringVar(&f.transport, "transport", "netlink", "")
	fs.StringVar(&f.pidfile, "pidfile", defaultPidfile, "")
	fs.StringVar(&f.control, "control", "", "")
	fs.StringVar(&f.stateDir, "state-dir", "", "")
	fs.StringVar(&f.metrics, "metrics", "", "")
	fs.BoolVar(&f.metricsRemote, "metrics-remote", false, "")
	fs.StringVar(&f.logLevel, "log-level", "info", "")
	fs.BoolVar(&f.force, "force", false, "")
	fs.BoolVar(&f.noMlock, "no-mlock", false, "")
	fs.BoolVar(&f.ioFall, "io-fallback", false, "")
	fs.DurationVar(&f.clearDelay, "clear-delay", 0, "")
	fs.IntVar(&f.rcvbuf, "rcvbuf", 0, "")
	fs.StringVar(&f.cluster, "cluster", "", "")
	fs.StringVar(&f.fenceConfirm, "fence-confirm", "", "")
	fs.DurationVar(&f.fenceTimeout, "fence-timeout", 0, "")
	fs.BoolVar(&f.noSelfResume, "no-self-resume", false, "")
	fs.DurationVar(&f.poll, "poll", 0, "")
	fs.BoolVar(&f.netpoll, "netpoll", false, "")
	fs.IntVar(&f.receivers, "receivers", transport.DefaultReceivers, "")
	if code, ok := parseFlags(fs, args, helpServe, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "dlogd serve", "unexpected argument %q (serve takes options only)", fs.Arg(0))
	}
	if f.rcvbuf < 0 {
		return usageError(stderr, "dlogd serve", "--rcvbuf %d: want a size in bytes (0: the default)", f.rcvbuf)
	}
	if f.poll < 0 || f.poll > transport.MaxPoll {
		return usageError(stderr, "dlogd serve", "--poll %v: want a duration from 0 (off) to %v", f.poll, transport.MaxPoll)
	}
	if f.receivers < 1 || f.receivers > transport.MaxReceivers {
		return usageError(stderr, "dlogd serve", "--receivers %d: want 1 to %d", f.receivers, transport.MaxReceivers)
	}
	if f.control == "" {
		f.control = besidePidfile(f.pidfile, "dlogd.ctl")
	}
	if f.metrics != "" && !f.metricsRemote {
		if err := checkLoopback(f.metrics); err != nil {
			return usageError(stderr, "dlogd serve", "--metrics %s: %v (add --metrics-remote to serve metrics beyond this host)", f.metrics, err)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usageError(stderr, "dlogd serve", "--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	log := newLogger(stderr, level)
	if n := procsFloor(os.Getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0)); n > 0 {
		runtime.GOMAXPROCS(n)
	}
	openLog, err := clusterOpener(f.cluster, fencing{f.fenceConfirm, f.fenceTimeout, f.noSelfResume}, log)
	if err != nil {
		return usageError(stderr, "dlogd serve", "--cluster %q: %v", f.cluster, err)
	}
	// Catch the signals first: one that arrives while the daemon starts
	// must get the daemon's handling, not the default action.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)

	lock, err := lockPidfile(f.pidfile)
	if errors.Is(err, errLocked) {
		log.Error("another log daemon (dlogd or cmirrord) is running; not starting a second one (both would answer the kernel)", "pidfile", f.pidfile, "err", err)
		return exitUsage
	}
	if err != nil {
		log.Error("cannot create the pidfile; use --pidfile to choose another place", "pidfile", f.pidfile, "err", err)
		return 1
	}
	defer lock.release()
	// A cmirrord serving the kernel. Not when its pidfile is our own:
	// closing any descriptor of a file drops this process's fcntl locks
	// on it.
	if f.transport == "netlink" && f.pidfile != cmirrordPidfile {
		if pid, held := pidfileHeld(cmirrordPidfile); held {
			log.Error("cmirrord is running; stop it first (both would answer the kernel's log requests)", "pidfile", cmirrordPidfile, "pid", pid)
			return exitUsage
		}
	}

	if !f.noMlock {
		if err := lockMemory(); err != nil {
			log.Warn("could not lock memory; a page fault under memory pressure could now wait on a mirror this daemon serves (use --no-mlock to silence)", "err", err)
		}
	}

	t, err := transport.Listen(f.transport, transport.Options{Logger: log, RcvBuf: f.rcvbuf, Poll: pollSetting(f.poll, runtime.NumCPU(), log), NetpollWait: f.netpoll, Receivers: f.receivers})
	if err != nil {
		log.Error("cannot listen", "transport", f.transport, "err", err)
		return 1
	}
	eopts := engine.Options{IOFallback: f.ioFall, ClearDelay: f.clearDelay}
	if eopts.WrapDevice, err = faultInjection(log); err != nil {
		log.Error("bad DLOG_FAULTIO", "err", err)
		t.Close()
		return exitUsage
	}
	var m *metrics.Metrics
	var obs daemon.Observer
	if f.metrics != "" {
		m = metrics.New()
		obs = m.Observer()
	}
	stateDir := f.stateDir
	switch stateDir {
	case "":
		stateDir = besidePidfile(f.pidfile, "dlogd")
	case "none":
		stateDir = ""
	}
	dopts := daemon.Options{Logger: log, Engine: eopts, Observer: obs, OpenInstance: openLog, StateDir: stateDir, LiveUUIDs: liveUUIDs}
	if f.transport == "netlink" {
		// The kernel's mirrors: flush their legs before persisting clears
		// (#13). Over the unix transport no mirror stands behind a log.
		legs := daemon.NewLegFlusher()
		legs.IOFallback = f.ioFall
		defer legs.Close()
		dopts.FlushLegs = legs.ForLog
		dopts.CheckMirror = legs.CheckMirror
	}
	d := daemon.New(dopts)
	started := time.Now()
	if n, err := d.Restore(); err != nil {
		log.Error("cannot use the state directory; logs will not survive a restart of dlogd", "dir", stateDir, "err", err)
	} else if n > 0 {
		log.Info("logs restored from the state directory (dlogd was restarted while the kernel still had them)", "logs", n, "dir", stateDir)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx, t) }()

	if f.control != "" && f.control != "none" {
		ctl, err := control.Listen(f.control, log)
		if err != nil {
			log.Warn("no control socket: dlogd status will not reach this daemon", "err", err)
		} else {
			defer ctl.Close()
			var prof profiler
			go ctl.Serve(ctx, func(ctx context.Context, cmd string) (any, error) {
				switch {
				case cmd == "status":
					return statusOf(d, t, started), nil
				case strings.HasPrefix(cmd, "profile "):
					dur, dir, err := parseProfileCommand(cmd)
					if err != nil {
						return nil, err
					}
					log.Info("profiling on request", "seconds", dur.Seconds(), "dir", dir)
					return prof.take(ctx, dur, dir)
				}
				return nil, fmt.Errorf("unknown command %q (want status or profile)", cmd)
			})
		}
	}
	if m != nil {
		b := currentBuild()
		m.BuildInfo(b.Version, b.Revision, b.GoVersion)
		m.Attach(d, t, mirrorName)
		ln, err := net.Listen("tcp", f.metrics)
		if err != nil {
			log.Error("cannot serve metrics", "addr", f.metrics, "err", err)
			cancel()
			d.Close(context.Background())
			t.Close()
			return 1
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", m.Handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("serving Prometheus metrics", "addr", ln.Addr().String(), "path", "/metrics")
	}

	// Ready: the transport is bound, the state restored, the control
	// socket and the metrics listen. Only now is the pid written.
	if err := lock.writePID(); err != nil {
		log.Error("cannot write the pidfile", "pidfile", f.pidfile, "err", err)
		cancel()
		d.Close(context.Background())
		t.Close()
		return 1
	}
	log.Info("dlogd serving", "transport", t.String(), "pid", os.Getpid(), "pidfile", f.pidfile)
	// Type=notify: systemd starts what is ordered after dlogd (the
	// activation of mirrors whose logs it serves) only now.
	notify(log, "READY=1\nSTATUS=serving on "+t.String())

	exitWhenIdle := false
	code := 0
loop:
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR1, syscall.SIGUSR2:
				d.Dump()
				continue
			}
			if err := d.Persist(); err != nil {
				log.Error("persisting logs failed", "err", err)
			}
			n := d.InUse()
			switch {
			case n == 0:
				log.Info("stopping", "signal", sig.String())
				break loop
			case f.force || exitWhenIdle:
				log.Warn("stopping while logs are in use: their mirrors wait until a daemon runs again, then reconnect", "signal", sig.String(), "logs", n)
				break loop
			default:
				exitWhenIdle = true
				log.Warn("logs exist; refusing to exit: the mirrors would hang. dlogd exits when the last log is removed; send the signal again (or use --force) to exit now", "signal", sig.String(), "logs", n)
			}
		case <-d.Changed():
			if exitWhenIdle && d.InUse() == 0 {
				log.Info("last log removed; stopping as asked")
				break loop
			}
		case err := <-served:
			if err != nil {
				log.Error("transport failed", "err", err)
				code = 1
			}
			break loop
		}
	}
	notify(log, "STOPPING=1")
	cancel()
	closeCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	if err := d.Close(closeCtx); err != nil {
		log.Error("closing logs", "err", err)
		code = 1
	}
	t.Close()
	log.Info("dlogd stopped")
	return code
}

// procsFloor returns the GOMAXPROCS dlogd sets for itself, or 0 to leave
// the runtime's: 2 where the runtime chose 1 (one CPU online), unless the
// GOMAXPROCS environment variable asks for a number.
//
// With one P, a goroutine in a system call longer than a sysmon tick
// (20 µs; every reply is, because sendto runs the kernel's answer to it)
// loses its P: sysmon hands it to another thread, which finds nothing to
// do and parks in epoll_wait, and the reader, back from its call, waits
// for a P and a thread wake-up. Under emulation that took a third of the
// requests of a 4 KiB write run, and the threads' churn ran on the one CPU
// the kernel's side needs (docs/performance.md). With a second, idle P,
// sysmon leaves a system call its P for 10 ms, and stops waking every
// 20 µs. The second P costs nothing when idle: the daemon's goroutines
// block in system calls or wait, they do not compete for CPU.
func procsFloor(env string, procs int) int {
	if env != "" || procs >= 2 {
		return 0
	}
	return 2
}

// pollSetting is the busy-poll the transport gets for --poll d on a
// machine where ncpu CPUs are ours: none on one CPU, where the spinning
// reader would only keep the kernel's side of the request from running
// (docs/performance.md), which it says in the log.
func pollSetting(d time.Duration, ncpu int, log *slog.Logger) time.Duration {
	if d > 0 && ncpu < 2 {
		log.Warn("--poll ignored: only one CPU is online for dlogd, and busy-polling there would hold off the kernel work that sends the next request", "poll", d)
		return 0
	}
	return d
}

// newLogger logs to stderr: with each line's syslog priority when stderr
// is the journal systemd gave the service (JOURNAL_STREAM), plain text
// with the time anywhere else.
func newLogger(stderr io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if f, ok := stderr.(*os.File); ok && systemd.OnJournal(f, os.Getenv("JOURNAL_STREAM")) {
		return slog.New(systemd.NewHandler(stderr, opts))
	}
	return slog.New(slog.NewTextHandler(stderr, opts))
}

// notify tells systemd (NOTIFY_SOCKET, with Type=notify) the daemon's
// state; a failure is logged, not fatal.
func notify(log *slog.Logger, state string) {
	if err := systemd.Notify(os.Getenv("NOTIFY_SOCKET"), state); err != nil {
		log.Warn("cannot notify systemd", "err", err)
	}
}

// besidePidfile is the default path of a file named name: in the
// pidfile's directory, so that a second dlogd started with its own
// --pidfile keeps its state and its control socket apart from the first's.
func besidePidfile(pidfile, name string) string {
	return filepath.Join(filepath.Dir(pidfile), name)
}

// checkLoopback refuses a metrics address that listens beyond this host.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("not a loopback address")
	}
	return nil
}
