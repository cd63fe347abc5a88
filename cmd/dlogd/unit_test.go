package main

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unitDirectives reads a systemd unit: section.key -> every value given
// (space-separated lists split).
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not a directive: %q", path, line)
			}
			d[section+"."+k] = append(d[section+"."+k], strings.Fields(v)...)
		}
	}
	return d
}

// Ensure that the unit keeps the boot and shutdown order of LVM2's
// dmeventd and cmirrord units (docs in the unit): no default
// dependencies, started before storage is activated and mounted, stopped
// at shutdown after it; Type=notify, which the daemon honours (READY=1,
// TestSystemdNotifyAndJournal); never chosen by the OOM killer.
// systemd-analyze verify (make unit-check) checks the syntax.
func TestUnitOrder(t *testing.T) {
	d := unitDirectives(t, filepath.Join("..", "..", "packaging", "dlogd.service"))
	for key, want := range map[string][]string{
		"Unit.DefaultDependencies": {"no"},
		"Unit.Before":              {"local-fs-pre.target", "remote-fs-pre.target", "lvm2-monitor.service", "blk-availability.service", "shutdown.target"},
		"Unit.Conflicts":           {"shutdown.target", "cmirrord.service"},
		"Unit.After":               {"systemd-modules-load.service"},
		"Service.Type":             {"notify"},
		"Service.OOMScoreAdjust":   {"-1000"},
		"Install.WantedBy":         {"sysinit.target"},
	} {
		for _, w := range want {
			if !slices.Contains(d[key], w) {
				t.Errorf("%s lacks %s (has %q)", key, w, d[key])
			}
		}
	}
	for _, key := range []string{"Unit.Requires", "Unit.Wants", "Service.PIDFile"} {
		if len(d[key]) > 0 {
			t.Errorf("%s=%q: the unit must not have it", key, d[key])
		}
	}
}
