package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/internal/control"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// defaultPidfile is dlogd serve's pidfile; the control socket and the
// state directory default to its directory.
const defaultPidfile = "/run/dlogd.pid"

// Status is what the control socket's "status" command returns.
type Status struct {
	Build     build              `json:"build"`
	Version   string             `json:"version"`
	PID       int                `json:"pid"`
	Transport string             `json:"transport"`
	Uptime    time.Duration      `json:"uptime_ns"`
	Requests  map[string]uint64  `json:"requests"`
	Counters  daemon.Counters    `json:"counters"`
	Wire      transport.Stats    `json:"transport_stats"`
	Logs      []daemon.LogStatus `json:"logs"`
}

func statusOf(d *daemon.Daemon, t transport.Transport, started time.Time) Status {
	c := d.Counters()
	b := currentBuild()
	s := Status{Build: b, Version: b.Version, PID: os.Getpid(), Transport: t.String(), Uptime: time.Since(started), Requests: map[string]uint64{},
		Counters: c, Wire: t.Stats(), Logs: d.Status()}
	for typ := ulog.TypeCtr; typ <= ulog.MaxRequestType; typ++ {
		if n := c.Requests[typ]; n > 0 {
			s.Requests[typ.String()] = n
		}
	}
	return s
}

const helpStatus = `NAME
    dlogd status - show what a running dlogd serves

SYNOPSIS
    dlogd status [--pidfile PATH | --control PATH] [--json]

DESCRIPTION
    Asks the dlogd listening on the control socket (default /run/dlogd.ctl,
    mode 0600; only root and dlogd's own user are answered) for every log it
    serves and prints one line per log: uuid, luid, type, log device,
    regions, regions in sync, dirty and recovering, flushes, the bytes the
    flushes wrote to the log device, the last flush (bytes and time) and
    the 99th-percentile flush time, and the requests received by type.
    Then the daemon's version and totals. The writes of a resume (the
    whole image) are not flushes: they are in the JSON's state.stats.

OPTIONS
    --pidfile PATH   ask the dlogd started with this --pidfile: its control
                     socket is dlogd.ctl in the same directory
    --control PATH   the daemon's control socket (dlogd serve --control)
    --json           the full state as JSON, for scripts; "version" is the
                     daemon's

EXIT STATUS
    0 when the daemon answered, 1 when it could not be reached.
`

func status(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dlogd status", flag.ContinueOnError)
	path := fs.String("control", "", "")
	pidfile := fs.String("pidfile", "", "")
	asJSON := fs.Bool("json", false, "")
	if code, ok := parseFlags(fs, args, helpStatus, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "dlogd status", "unexpected argument %q (status takes options only)", fs.Arg(0))
	}
	switch {
	case *path != "" && *pidfile != "":
		return usageError(stderr, "dlogd status", "--pidfile and --control name the same socket: give one")
	case *pidfile != "":
		*path = besidePidfile(*pidfile, "dlogd.ctl")
	case *path == "":
		*path = besidePidfile(defaultPidfile, "dlogd.ctl")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := control.Query(ctx, *path, "status")
	if err != nil {
		fmt.Fprintf(stderr, "dlogd status: %v\n", err)
		return 1
	}
	if *asJSON {
		var v any
		json.Unmarshal(raw, &v)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(v)
		return 0
	}
	var s Status
	if err := json.Unmarshal(raw, &s); err != nil {
		fmt.Fprintf(stderr, "dlogd status: the daemon's answer does not parse: %v\n", err)
		return 1
	}
	printStatus(stdout, s)
	return 0
}

func printStatus(w io.Writer, s Status) {
	version := s.Version
	if version == "" {
		version = "(unknown version)"
	}
	fmt.Fprintf(w, "dlogd %s, pid %d on %s, up %s, %d log(s)\n\n", version, s.PID, s.Transport, s.Uptime.Round(time.Second), len(s.Logs))
	if len(s.Logs) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "UUID\tLUID\tTYPE\tDEVICE\tSTATE\tREGIONS\tIN SYNC\tDIRTY\tRECOVERING\tFLUSHES\tFLUSHED\tLAST FLUSH\tP99 FLUSH\tSTATUS")
		for _, l := range s.Logs {
			dev := l.State.Device
			if dev == "" {
				dev = "-"
			}
			last := "-"
			if l.LastFlush != 0 {
				last = bytesString(l.LastFlushBytes) + " in " + durString(l.LastFlush)
			}
			fmt.Fprintf(tw, "%s\t%#x\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n",
				l.UUID, l.LUID, l.State.Type, dev, l.State.Phase, l.State.Regions, l.State.InSync, l.State.Dirty,
				l.State.Recovering, l.State.Stats.Flushes, bytesString(l.FlushBytes),
				last, durString(l.P99Flush), l.StatusInfo)
		}
		tw.Flush()
		fmt.Fprintln(w)
		for _, l := range s.Logs {
			fmt.Fprintf(w, "requests %s/%#x: %s\n", l.UUID, l.LUID, counts(l.Requests))
		}
		for _, l := range s.Logs {
			if l.Warning != "" {
				fmt.Fprintf(w, "warning %s/%#x: %s\n", l.UUID, l.LUID, l.Warning)
			}
		}
	}
	fmt.Fprintf(w, "requests total: %s\n", counts(s.Requests))
	fmt.Fprintf(w, "malformed %d, unknown log %d, error replies %d, busy %d; transport: received %d, dropped %d, overruns %d, send errors %d\n",
		s.Counters.Malformed, s.Counters.UnknownLog, s.Counters.Errors, s.Counters.Busy,
		s.Wire.Received, s.Wire.Dropped(), s.Wire.Overruns, s.Wire.SendErrors)
}

func counts(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}

func durString(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(time.Microsecond).String()
}

func bytesString(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
