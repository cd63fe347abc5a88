package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// updateGolden rewrites testdata/cli/*.golden from what dlogd prints now.
var updateGolden = flag.Bool("update-golden", false, "write testdata/cli/*.golden")

// Ensure that every message a user meets on the command line is the one in
// testdata/cli: a usage error is the error and a one-line hint, never the
// whole manual; inspect's text output names its fields unambiguously
// ("dirty regions: 1", "dirty ranges:  5-5"), explains a 0-byte device and
// confirms where the PNG went. Each golden file holds the exit status,
// then stdout and stderr; paths under the test's temporary directory are
// written as $TMP.
func TestCLIGolden(t *testing.T) {
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty.img")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(tmp, "heat.png")
	inflight := kernelImagePath("inflight-write-128")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no-command", nil},
		{"unknown-command", []string{"bogus"}},
		{"version-extra", []string{"version", "now"}},
		{"serve-unknown-option", []string{"serve", "--nope"}},
		{"serve-single-dash", []string{"serve", "-nope"}},
		{"serve-missing-value", []string{"serve", "--pidfile"}},
		{"serve-bad-bool", []string{"serve", "--force=maybe"}},
		{"serve-argument", []string{"serve", "extra"}},
		{"serve-log-level", []string{"serve", "--log-level", "loud"}},
		{"serve-metrics-remote", []string{"serve", "--metrics", "0.0.0.0:9100"}},
		{"serve-bad-duration", []string{"serve", "--clear-delay", "soon"}},
		{"serve-bad-rcvbuf", []string{"serve", "--rcvbuf", "-1"}},
		{"status-argument", []string{"status", "now"}},
		{"status-both-sockets", []string{"status", "--pidfile", "/run/a.pid", "--control", "/run/b.ctl"}},
		{"status-unreachable", []string{"status", "--pidfile", filepath.Join(tmp, "none", "dlogd.pid")}},
		{"adopt-no-name", []string{"adopt"}},
		{"adopt-two-names", []string{"adopt", "a", "b"}},
		{"adopt-both-sockets", []string{"adopt", "m0", "--pidfile", "/run/a.pid", "--control", "/run/b.ctl"}},
		{"adopt-no-dlogd", []string{"adopt", "m0", "--pidfile", filepath.Join(tmp, "none", "dlogd.pid")}},
		{"release-option", []string{"release", "m0", "--pidfile", "/run/dlogd.pid"}},
		{"inspect-no-device", []string{"inspect"}},
		{"inspect-two-devices", []string{"inspect", "a", "b"}},
		{"inspect-unknown-option", []string{"inspect", "--nope", "a"}},
		{"inspect-png-no-value", []string{"inspect", "a", "--png"}},
		{"inspect-max-ranges", []string{"inspect", "a", "--max-ranges", "-1"}},
		{"inspect-empty", []string{"inspect", empty}},
		{"inspect-inflight", []string{"inspect", inflight}},
		{"inspect-inflight-png", []string{"inspect", inflight, "--png", png}},
		{"inspect-inflight-json-png", []string{"inspect", inflight, "--json", "--png", png, "--max-ranges", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			got := goldenText(code, out.String(), errb.String(), tmp)
			path := filepath.Join("testdata", "cli", tc.name+".golden")
			want, ok := golden(t, path, got, *updateGolden, "go test ./cmd/dlogd -run TestCLIGolden -update-golden")
			if ok && got != want {
				t.Errorf("dlogd %s:\n--- got\n%s--- want (%s)\n%s", strings.Join(tc.args, " "), got, path, want)
			}
		})
	}
}

// goldenText is a golden file's content.
func goldenText(code int, stdout, stderr, tmp string) string {
	r := strings.NewReplacer(tmp, "$TMP")
	return "exit " + strconv.Itoa(code) + "\n-- stdout --\n" + r.Replace(stdout) + "-- stderr --\n" + r.Replace(stderr)
}

// Ensure that --version, -V and version print one line naming the
// version, the Go release and the platform, on stdout with exit 0.
func TestVersion(t *testing.T) {
	re := regexp.MustCompile(`^dlogd \S+ \((revision [0-9a-f]{1,12}(\+modified)?, )?go[0-9][^,]*, [a-z0-9]+/[a-z0-9]+\)\n$`)
	for _, arg := range []string{"--version", "-V", "version"} {
		var out, errb bytes.Buffer
		if code := run([]string{arg}, &out, &errb); code != 0 || errb.Len() > 0 || !re.MatchString(out.String()) {
			t.Errorf("dlogd %s: exit %d, stdout %q, stderr %q", arg, code, out.String(), errb.String())
		}
	}
	b := build{Version: "v1.2.3", Revision: "0123456789abcdef", Modified: true, GoVersion: "go1.26.0", Platform: "linux/amd64"}
	if got, want := b.String(), "dlogd v1.2.3 (revision 0123456789ab+modified, go1.26.0, linux/amd64)"; got != want {
		t.Errorf("build.String() = %q, want %q", got, want)
	}
}

// golden writes got to path and returns false when update is set; else it
// returns the committed file to compare got with, and true. writer says
// what writes the file, for when it is missing.
func golden(t *testing.T, path, got string, update bool, writer string) (string, bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return "", false
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (%s writes it)", err, writer)
	}
	return string(want), true
}
