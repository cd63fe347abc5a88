package ktrace

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// EnvPath is the environment variable that, when set, overrides where Path
// looks for the trace.
const EnvPath = "DLOG_KERNEL_TRACE"

// Path returns the location of kernel-trace.txt: $DLOG_KERNEL_TRACE if set,
// else ../shared/kernel-trace.txt relative to the module root, found by
// walking up from the working directory (a test's package directory) to
// the directory holding go.mod. It fails with ErrNotFound if the file is
// not there; the project must not depend on it outside tests.
func Path() (string, error) {
	if p := os.Getenv(EnvPath); p != "" {
		if _, err := os.Stat(p); err != nil {
			return p, fmt.Errorf("ktrace: $%s: %w: %w", EnvPath, ErrNotFound, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("ktrace: %w: %w", ErrNotFound, err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("ktrace: no go.mod above the working directory: %w", ErrNotFound)
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "kernel-trace.txt")
	if _, err := os.Stat(p); err != nil {
		return p, fmt.Errorf("ktrace: %w: %w", ErrNotFound, err)
	}
	return p, nil
}

// Load parses the kernel trace for a test. It skips the test, saying why,
// when the trace is absent, and fails it when the trace does not parse.
func Load(t testing.TB) []Entry {
	t.Helper()
	p, err := Path()
	if err != nil {
		t.Skipf("skipping: %v (the trace lives in ../shared next to the repository; set $%s to point elsewhere)", err, EnvPath)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatalf("ktrace: %v", err)
	}
	defer f.Close()
	entries, err := Parse(f)
	if err != nil {
		t.Fatalf("ktrace: %s: %v", p, err)
	}
	return entries
}
