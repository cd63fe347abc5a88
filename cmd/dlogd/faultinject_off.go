//go:build !faultinject

package main

import (
	"log/slog"
	"os"

	"github.com/dlog-dev/dlog/engine"
)

// faultInjection is off in the shipped dlogd: DLOG_FAULTIO is ignored
// (with a warning, so a test that expected faults sees why none came).
func faultInjection(log *slog.Logger) (func(engine.Device) engine.Device, error) {
	if os.Getenv("DLOG_FAULTIO") != "" {
		log.Warn("DLOG_FAULTIO is set but this dlogd was built without fault injection (-tags faultinject); ignored")
	}
	return nil, nil
}
