package vmharness

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Step outcomes.
const (
	StatusOK   = "ok"
	StatusFail = "fail"
	// StatusSkip marks a step that could not run for a reason outside the
	// test (for example dlogd not built yet); Reason says why.
	StatusSkip = "skip"
)

// Step is one named step of one scenario, as the guest recorded it.
type Step struct {
	Scenario string  `json:"scenario"`
	Step     string  `json:"step"`
	Status   string  `json:"status"`
	Expected string  `json:"expected,omitempty"`
	Got      string  `json:"got,omitempty"`
	Detail   string  `json:"detail,omitempty"`
	Seconds  float64 `json:"duration_s"`
}

// OK reports whether the step passed.
func (s Step) OK() bool { return s.Status == StatusOK }

// String is the one-line form used in test failures:
// "scenario X, step Y: expected E, got G".
func (s Step) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s, step %s: ", s.Scenario, s.Step)
	switch s.Status {
	case StatusOK:
		fmt.Fprintf(&b, "ok (%.2f s)", s.Seconds)
	case StatusSkip:
		fmt.Fprintf(&b, "skipped: %s", s.Detail)
	default:
		fmt.Fprintf(&b, "expected %s, got %s", quoteOr(s.Expected, "success"), quoteOr(s.Got, "failure"))
		if s.Detail != "" {
			fmt.Fprintf(&b, " (%s)", s.Detail)
		}
	}
	return b.String()
}

// quoteOr quotes s when it has surrounding or inner spaces that matter, and
// stands in def for an empty string.
func quoteOr(s, def string) string {
	if s == "" {
		return def
	}
	if strings.ContainsAny(s, " \t\n") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// Golden describes one disk-log image the kernel wrote; it is also the JSON
// sidecar stored next to the image (engine/testdata/kernel/<name>.json).
type Golden struct {
	Name             string `json:"name"`
	Table            string `json:"table"`
	TargetSectors    uint64 `json:"target_sectors"`
	RegionSize       uint64 `json:"region_size"`
	RegionCount      uint64 `json:"region_count"`
	LogicalBlockSize int    `json:"logical_block_size"`
	BufSize          int    `json:"buf_size"`
	Status           string `json:"status"`
	SyncCount        uint64 `json:"sync_count"`
	Description      string `json:"description"`
	// Captured says when the image was read: "after remove" (the kernel's
	// final flush at postsuspend) or "while active".
	Captured string `json:"captured"`
	Kernel   string `json:"kernel"`
	SHA256   string `json:"sha256"`
}

// Report is report.json, the guest's account of a boot.
type Report struct {
	Kernel    string   `json:"kernel"`
	Cmdline   string   `json:"cmdline"`
	Scenarios []string `json:"scenarios"`
	Steps     []Step   `json:"steps"`
	Goldens   []Golden `json:"goldens,omitempty"`
	// Complete is set when the guest ran every scenario and shut down on its
	// own; false means it was cut short (watchdog, crash).
	Complete bool `json:"complete"`
	// Watchdog holds the reason when the guest's watchdog fired.
	Watchdog string `json:"watchdog,omitempty"`
	// UptimeStart and UptimeEnd are the guest's /proc/uptime at the start of
	// the driver and when the report was written.
	UptimeStart float64 `json:"uptime_start_s"`
	UptimeEnd   float64 `json:"uptime_end_s"`
}

// ReportFile is the name of the report in the results archive.
const ReportFile = "report.json"

// ParseReport decodes report.json.
func ParseReport(b []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("vmharness: %s: %w", ReportFile, err)
	}
	for i, s := range r.Steps {
		switch s.Status {
		case StatusOK, StatusFail, StatusSkip:
		default:
			return nil, fmt.Errorf("vmharness: %s: step %d (%s/%s) has status %q", ReportFile, i, s.Scenario, s.Step, s.Status)
		}
	}
	return &r, nil
}

// Failures returns the failed steps in order.
func (r *Report) Failures() []Step {
	var f []Step
	for _, s := range r.Steps {
		if s.Status == StatusFail {
			f = append(f, s)
		}
	}
	return f
}

// ByScenario groups the steps by scenario, keeping their order. Scenarios
// are listed in order of first appearance.
func (r *Report) ByScenario() (names []string, steps map[string][]Step) {
	steps = make(map[string][]Step)
	for _, s := range r.Steps {
		if _, ok := steps[s.Scenario]; !ok {
			names = append(names, s.Scenario)
		}
		steps[s.Scenario] = append(steps[s.Scenario], s)
	}
	return names, steps
}

// Summary is a one-line count, e.g. "41 ok, 1 failed, 2 skipped".
func (r *Report) Summary() string {
	var ok, fail, skip int
	for _, s := range r.Steps {
		switch s.Status {
		case StatusOK:
			ok++
		case StatusFail:
			fail++
		case StatusSkip:
			skip++
		}
	}
	return fmt.Sprintf("%d ok, %d failed, %d skipped", ok, fail, skip)
}
