package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is dlogd's version, set at link time by the Makefile
// (-ldflags "-X main.version=..."). When empty, the module version the Go
// toolchain recorded is used.
var version string

// build describes the running binary: `dlogd --version`, the status
// answer and the dlogd_build_info metric.
type build struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func currentBuild() build {
	b := build{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

// String is the line `dlogd --version` prints.
func (b build) String() string {
	var extra []string
	if b.Revision != "" {
		r := b.Revision
		if len(r) > 12 {
			r = r[:12]
		}
		if b.Modified {
			r += "+modified"
		}
		extra = append(extra, "revision "+r)
	}
	extra = append(extra, b.GoVersion, b.Platform)
	return fmt.Sprintf("dlogd %s (%s)", b.Version, strings.Join(extra, ", "))
}
