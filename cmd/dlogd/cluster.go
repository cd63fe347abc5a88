package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/dlog-dev/dlog/cluster"
	"github.com/dlog-dev/dlog/cluster/cpg"
	"github.com/dlog-dev/dlog/engine"
)

// clusterOpener returns the daemon's OpenInstance for --cluster: nil (every
// log opened as without a cluster) for "" or "none"; for "corosync",
// clustered-core and clustered-disk logs become cluster-coherent logs whose
// group is their uuid's CPG group (package cluster), and core and disk logs
// stay single-node. An unreachable corosync does not stop dlogd: CTR of a
// clustered log fails with the reason until corosync answers.
func clusterOpener(kind string, fc fencing, log *slog.Logger) (func(string, uint64, engine.Config, engine.Options) (engine.Log, error), error) {
	switch kind {
	case "", "none":
		return nil, nil
	case "corosync":
		t := cpg.New(log)
		if err := t.Check(); err != nil {
			log.Warn("corosync is not reachable now: CTR of clustered logs fails until it is", "err", err)
		} else {
			log.Info("cluster mode: clustered-core and clustered-disk logs are coordinated over corosync CPG")
		}
		o := cluster.Options{Messenger: t, Logger: log, FenceTimeout: fc.timeout, ClearLinger: cluster.DefaultClearLinger, MarkAhead: cluster.DefaultMarkAhead, Wake: wakeMirror}
		if !fc.noSelfResume {
			o.Restart = restartMirror
		}
		if fc.command != "" {
			o.FenceConfirm = fc.confirm
		} else if fc.timeout <= 0 {
			log.Warn("no --fence-confirm: a node whose dlogd departs without leaving keeps its regions from resync until its dlogd rejoins")
		}
		return cluster.Opener(o), nil
	}
	return nil, fmt.Errorf("unknown cluster engine (want corosync or none)")
}

// fencing is --fence-confirm, --fence-timeout and --no-self-resume.
type fencing struct {
	command      string
	timeout      time.Duration
	noSelfResume bool
}

// confirm runs the --fence-confirm command through sh -c, with %n replaced
// by the node id and DLOG_FENCE_NODE set to it: exit status 0 confirms the
// node fenced.
func (fc fencing) confirm(ctx context.Context, node uint32) error {
	id := strconv.FormatUint(uint64(node), 10)
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", strings.ReplaceAll(fc.command, "%n", id))
	cmd.Env = append(os.Environ(), "DLOG_FENCE_NODE="+id)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("--fence-confirm for node %s: %w: %s", id, err, strings.TrimSpace(string(out)))
	}
	return nil
}
