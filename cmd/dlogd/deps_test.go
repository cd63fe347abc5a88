package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestShippedBinaryHasNoTestCode checks that dlogd, as users build it
// (with or without corosync), links no harness, fake or fault-injection
// package and no file named as a fake: those live under internal/testutil,
// tests/, bench/ or in _test.go files, and fault injection exists only
// under -tags faultinject. Nor does it link the benchmark charts' plotting
// library (gonum.org/v1/plot and what it brings) or the old hand-made chart
// engine (internal/plot): the heat map of `dlogd inspect --png` is raw
// pixels through image/png.
func TestShippedBinaryHasNoTestCode(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	for _, tags := range []string{"", "corosync"} {
		args := []string{"list", "-deps", "-f", "{{.ImportPath}}|{{join .GoFiles \",\"}}|{{join .CgoFiles \",\"}}"}
		if tags != "" {
			args = append(args, "-tags", tags)
		}
		out, err := exec.Command(goBin, append(args, "github.com/dlog-dev/dlog/cmd/dlogd")...).CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		ours := 0
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			path, files, _ := strings.Cut(line, "|")
			for _, bad := range []string{"gonum.org/", "git.sr.ht/~sbinet/gg", "codeberg.org/go-latex/", "codeberg.org/go-pdf/", "github.com/ajstarks/svgo"} {
				if strings.HasPrefix(path, bad) {
					t.Errorf("tags %q: dlogd links the plotting package %s", tags, path)
				}
			}
			if !strings.HasPrefix(path, "github.com/dlog-dev/dlog") {
				continue
			}
			ours++
			rel := strings.TrimPrefix(path, "github.com/dlog-dev/dlog")
			for _, bad := range []string{"/internal/testutil", "/tests/", "/bench", "/internal/plot"} {
				if strings.HasPrefix(rel+"/", bad+"/") || strings.HasPrefix(rel, bad) {
					t.Errorf("tags %q: dlogd links the test-only package %s", tags, path)
				}
			}
			for _, f := range strings.FieldsFunc(files, func(r rune) bool { return r == ',' || r == '|' }) {
				if strings.Contains(strings.ToLower(f), "fake") || strings.Contains(f, "faultinject") && !strings.HasSuffix(f, "_off.go") {
					t.Errorf("tags %q: dlogd compiles the test-only file %s/%s", tags, path, f)
				}
			}
		}
		if ours < 5 {
			t.Fatalf("tags %q: go list named only %d of dlog's packages; the check saw nothing", tags, ours)
		}
	}
}
