//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Fault kinds, as --faults names them and the report counts them.
const (
	faultKill9 = "kill9"  // SIGKILL, restart, reconnect, check
	faultTerm  = "term"   // SIGTERM twice (persist, exit), restart, check
	faultStop  = "stop"   // SIGSTOP longer than the patience, SIGCONT
	faultEIO   = "eio"    // a daemon run with EIO on writes and cache flushes
	faultTear  = "tear"   // a daemon run with torn writes; power loss at the first -EIO
	faultFull  = "full"   // a log file's filesystem full under unallocated blocks
	faultVanis = "vanish" // a log device shrinks to nothing or is replaced
)

var allFaults = []string{faultKill9, faultTerm, faultStop, faultEIO, faultTear, faultFull, faultVanis}

// faultWeights is how often each kind is picked, relative to the others.
var faultWeights = map[string]int{
	faultKill9: 30, faultTerm: 6, faultStop: 14, faultEIO: 14, faultTear: 12, faultFull: 12, faultVanis: 12,
}

// Config is one soak run.
type Config struct {
	Duration   time.Duration
	Clients    int
	Logs       int
	Seed       uint64
	Dlogd      string
	Dir        string
	Report     string
	Patience   time.Duration
	FaultEvery time.Duration
	Faults     string
	Progress   time.Duration
	Think      time.Duration
	LifeEvery  time.Duration
	Mlock      bool
	LogLevel   string

	// Logger receives progress and events; Out the final report.
	Logger *slog.Logger
	Out    io.Writer
	// KeepDir keeps a temporary Dir even when the soak passes.
	KeepDir bool
	// ExtraEnv is added to dlogd's environment (tests).
	ExtraEnv []string
	// Schedule lists fault kinds injected first, in order, before the
	// random choice takes over (tests use it to cover every kind).
	Schedule []string
	// sabotage, when set, runs after each restart before the check, with
	// the workload stopped: the self-test of the checker uses it to lose
	// a mark behind the model's back.
	sabotage func(context.Context, *soak)
}

// DefaultConfig is `make soak`'s configuration.
func DefaultConfig() Config {
	return Config{
		Duration:   10 * time.Minute,
		Clients:    4,
		Logs:       8,
		Dlogd:      "bin/dlogd",
		Patience:   2 * time.Second,
		FaultEvery: 5 * time.Second,
		Faults:     strings.Join(allFaults, ","),
		Progress:   10 * time.Second,
		Think:      time.Millisecond,
		LifeEvery:  2 * time.Second,
		Mlock:      true,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Duration < 5*time.Second:
		return fmt.Errorf("--duration %v: at least 5s", c.Duration)
	case c.Clients < 1 || c.Clients > 64:
		return fmt.Errorf("--clients %d: 1 to 64", c.Clients)
	case c.Logs < 2 || c.Logs > 256:
		return fmt.Errorf("--logs %d: 2 to 256 (one clustered-core and one clustered-disk at least)", c.Logs)
	case c.Patience < 100*time.Millisecond:
		return fmt.Errorf("--patience %v: at least 100ms", c.Patience)
	case c.FaultEvery < 100*time.Millisecond:
		return fmt.Errorf("--fault-every %v: at least 100ms", c.FaultEvery)
	case c.Dlogd == "":
		return fmt.Errorf("--dlogd: name the dlogd binary (make build makes bin/dlogd)")
	}
	if c.LifeEvery <= 0 {
		c.LifeEvery = 2 * time.Second
	}
	if c.Progress <= 0 {
		c.Progress = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	_, err := c.faultSet()
	return err
}

// faultSet parses Faults.
func (c *Config) faultSet() (map[string]bool, error) {
	set := map[string]bool{}
	if c.Faults == "none" || c.Faults == "" {
		return set, nil
	}
	for _, f := range strings.Split(c.Faults, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(allFaults, f) {
			return nil, fmt.Errorf("--faults: unknown kind %q (want some of %s, or none)", f, strings.Join(allFaults, ","))
		}
		set[f] = true
	}
	return set, nil
}
