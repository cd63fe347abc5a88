package main

import (
	"fmt"
	"log/slog"

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
func clusterOpener(kind string, log *slog.Logger) (func(string, uint64, engine.Config, engine.Options) (engine.Log, error), error) {
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
		return cluster.Opener(cluster.Options{Transport: t, Logger: log}), nil
	}
	return nil, fmt.Errorf("unknown cluster engine (want corosync or none)")
}
