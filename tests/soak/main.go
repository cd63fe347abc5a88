//go:build linux

// Command dlog-soak is dlogd's soak campaign: for a set duration it plays
// the kernel for several logs at once over dlogd's unix transport, from
// several concurrent client connections, while it injects faults at random
// instants, and it checks after every restart and every resume of a disk
// log that no acknowledged mark was lost.
//
// It runs dlogd (the binary named by --dlogd, built by `make build`) as a
// separate process on --transport unix:DIR/dlogd.sock with its own pidfile,
// and drives the logs the way dm-raid1 and dm-log-userspace do
// (docs/protocol.md §3, §6): CTR, GET_REGION_SIZE, RESUME; writes as MARK +
// FLUSH or as integrated FLUSH-with-marks, later CLEAR (+ FLUSH, or lazily);
// resync through GET_RESYNC_WORK, SET_REGION_SYNC, CLEAR, FLUSH; IN_SYNC,
// IS_REMOTE_RECOVERING, GET_SYNC_COUNT, STATUS_INFO; PRESUSPEND,
// POSTSUSPEND, RESUME cycles; live reloads with a second luid of the same
// uuid (CTR(new) ... POSTSUSPEND(old) RESUME(new) DTR(old)); deactivation
// and re-activation. A client waits --patience for a reply, then resends
// with a new seq, as the kernel does after 15 s. After a restart it replays
// the kernel's reconnect (CTR with its trailing NUL, RESUME) when a request
// gets -ESRCH.
//
// The faults: kill -9 and restart; SIGTERM twice (graceful restart);
// SIGSTOP for longer than the patience, then SIGCONT; daemon runs with EIO
// on writes and cache flushes, and runs with torn writes
// (DLOG_FAULTIO, internal/testutil/faultio), where the daemon is killed right after
// the first -EIO of a tear (a power loss) and restarted without faults; a
// log device growing full (a log file on a small tmpfs whose blocks are
// unallocated while the filesystem is full); a log device vanishing (the
// loop device under a log shrinks to nothing, or the log file is replaced).
//
// The invariant, after every restart (dlogd restores every log, core
// logs included, from its state directory) and every resume of a disk
// log: every mark acknowledged by a successful FLUSH reply, and not
// cleared since the CLEAR was sent, reads dirty (IS_CLEAN 0). A mark
// acknowledged by MARK_REGION whose FLUSH only succeeded after a restart
// is not counted as acknowledged (without integrated_flush the kernel
// would take it as durable only through that FLUSH); the report counts
// these separately. A newly constructed clustered-core log must read
// fresh: nothing in sync (all of it for nosync). Replies are checked as
// the kernel checks them (seq, sizes, errno range) plus the value ranges
// of docs/conformance.md §3.
//
// At the end it prints one line of figures (and a short table): requests
// served, restarts survived, faults injected by kind, marks checked, marks
// lost (must be 0), and dlogd's peaks in each half of the run: RSS,
// threads and open files from /proc/PID, goroutines from the Go runtime's
// dump when a crash is a SIGQUIT instead of a SIGKILL (RSS, goroutines and
// files must be flat). SIGUSR1 state dumps are compared with the logs the
// kernel holds. A line of progress comes every --progress. It exits 1 if
// anything failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const (
	exitFail  = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: dlog-soak [flags]

Soaks dlogd (run as a separate process on a unix transport) with a random
multi-log kernel workload from several clients while injecting faults; see
the package documentation (go doc ./tests/soak) for the details.

flags:
`

func run(args []string, stdout, stderr io.Writer) int {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("dlog-soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to soak")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent kernel client connections")
	fs.IntVar(&cfg.Logs, "logs", cfg.Logs, "logs served at once (clustered-disk and clustered-core)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed (0: from the clock; printed)")
	fs.StringVar(&cfg.Dlogd, "dlogd", cfg.Dlogd, "the dlogd binary (make build)")
	fs.StringVar(&cfg.Dir, "dir", cfg.Dir, "work directory: socket, pidfile, log files, dlogd's log (default: a new temporary directory, removed on success)")
	fs.StringVar(&cfg.Report, "report", cfg.Report, "also write the report to this file")
	fs.DurationVar(&cfg.Patience, "patience", cfg.Patience, "a client's read deadline before it resends (the kernel's is 15 s)")
	fs.DurationVar(&cfg.FaultEvery, "fault-every", cfg.FaultEvery, "mean time between faults")
	fs.StringVar(&cfg.Faults, "faults", cfg.Faults, "fault kinds to inject (comma-separated, or \"none\")")
	fs.DurationVar(&cfg.Progress, "progress", cfg.Progress, "progress line interval")
	fs.DurationVar(&cfg.Think, "think", cfg.Think, "mean pause of a client between steps (0: none)")
	fs.DurationVar(&cfg.LifeEvery, "life-every", cfg.LifeEvery, "mean time between suspends, reloads and reactivations of one log")
	fs.BoolVar(&cfg.Mlock, "mlock", cfg.Mlock, "let dlogd lock its memory (its default); false passes --no-mlock")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level of the soak driver (debug, info, warn, error)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dlog-soak: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		fmt.Fprintf(stderr, "dlog-soak: --log-level %q: want debug, info, warn or error\n", cfg.LogLevel)
		return exitUsage
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Out = stdout
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "dlog-soak: %v\n", err)
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := Run(ctx, cfg)
	if err != nil {
		cfg.Logger.Error("soak could not run", "err", err, "after", time.Since(start).Round(time.Second))
		return exitFail
	}
	if !res.Pass() {
		return exitFail
	}
	return 0
}
