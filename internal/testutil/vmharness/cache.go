package vmharness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Kernel is one cached kernel: what scripts/vm/deps.sh leaves under
// build/vm/<version>/.
type Kernel struct {
	Version    string // e.g. 6.1.0-56-amd64
	Dir        string
	Vmlinuz    string
	BaseInitrd string // initrd-base.cpio.gz: busybox, dmsetup + libs, modules
	Package    string // the contents of .complete: "<package> <debian version>"
}

// ErrNoKernel means the cache has no complete kernel: run make deps.
var ErrNoKernel = errors.New("no cached VM kernel: run 'make deps' (scripts/vm/deps.sh)")

// DepsScript is the path of the set-up script relative to the repository root.
const DepsScript = "scripts/vm/deps.sh"

// FindKernel returns the cached kernel named by version, or by the cache's
// "current" file when version is empty.
func FindKernel(cacheDir, version string) (*Kernel, error) {
	if version == "" {
		b, err := os.ReadFile(filepath.Join(cacheDir, "current"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w (no %s)", ErrNoKernel, filepath.Join(cacheDir, "current"))
			}
			return nil, fmt.Errorf("vmharness: %w", err)
		}
		version = strings.TrimSpace(string(b))
	}
	if version == "" || strings.ContainsAny(version, "/\\") || version == "." || version == ".." {
		return nil, fmt.Errorf("vmharness: invalid kernel version %q in the cache", version)
	}
	k := &Kernel{
		Version:    version,
		Dir:        filepath.Join(cacheDir, version),
		Vmlinuz:    filepath.Join(cacheDir, version, "vmlinuz"),
		BaseInitrd: filepath.Join(cacheDir, version, "initrd-base.cpio.gz"),
	}
	done, err := os.ReadFile(filepath.Join(k.Dir, ".complete"))
	if err != nil {
		return nil, fmt.Errorf("%w (kernel %s: %s is incomplete)", ErrNoKernel, version, k.Dir)
	}
	k.Package = strings.TrimSpace(string(done))
	for _, f := range []string{k.Vmlinuz, k.BaseInitrd} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%w (%v)", ErrNoKernel, err)
		}
	}
	return k, nil
}

// EnsureKernel returns the cached kernel, running scripts/vm/deps.sh from
// repoRoot first when the cache (repoRoot/build/vm unless cacheDir is set)
// has none. The script's output goes to out.
func EnsureKernel(ctx context.Context, repoRoot, cacheDir string, out io.Writer) (*Kernel, error) {
	if cacheDir == "" {
		cacheDir = filepath.Join(repoRoot, "build", "vm")
	}
	if k, err := FindKernel(cacheDir, ""); err == nil {
		return k, nil
	} else if !errors.Is(err, ErrNoKernel) {
		return nil, err
	}
	script := filepath.Join(repoRoot, DepsScript)
	fmt.Fprintf(out, "vmharness: no cached kernel in %s: running %s\n", cacheDir, script)
	cmd := exec.CommandContext(ctx, "sh", script)
	cmd.Env = append(os.Environ(), "DLOG_VM_CACHE="+cacheDir)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("vmharness: %s failed: %w (its output is above)", DepsScript, err)
	}
	return FindKernel(cacheDir, "")
}
