//go:build faultinject

package main

import (
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/internal/testutil/faultio"
)

// faultInjection wraps every disk log device in the faults that
// DLOG_FAULTIO names (internal/testutil/faultio). It exists only in a
// dlogd built with -tags faultinject, for the soak campaign; the shipped
// binary has no such code.
func faultInjection(log *slog.Logger) (func(engine.Device) engine.Device, error) {
	spec := os.Getenv("DLOG_FAULTIO")
	if spec == "" {
		return nil, nil
	}
	sp, err := faultio.ParseSpec(spec)
	if err != nil {
		return nil, fmt.Errorf("DLOG_FAULTIO: %w", err)
	}
	var n atomic.Int64
	log.Warn("FAULT INJECTION ENABLED: disk log devices will fail on purpose (DLOG_FAULTIO); never use this in production", "spec", sp.String())
	return func(d engine.Device) engine.Device {
		return faultio.Wrap(d, sp.Faults(int(n.Add(1))))
	}, nil
}
