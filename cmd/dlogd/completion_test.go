package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// complete runs the bash completion in packaging/ on the words of a
// command line whose last word is being completed, and returns its
// candidates.
func complete(t *testing.T, words ...string) []string {
	t.Helper()
	script := filepath.Join("..", "..", "packaging", "dlogd.bash-completion")
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + w + "'"
	}
	prog := "source " + script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
		strconv.Itoa(len(words)-1) + "\n_dlogd 2>/dev/null\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	out, err := exec.Command("bash", "--norc", "--noprofile", "-c", prog).Output()
	if err != nil {
		t.Fatalf("bash completion %q: %v", words, err)
	}
	return strings.Fields(string(out))
}

// synopsisOptions are the --options a help text's SYNOPSIS lists.
func synopsisOptions(help string) []string {
	syn := help[strings.Index(help, "SYNOPSIS"):strings.Index(help, "DESCRIPTION")]
	opts := regexp.MustCompile(`--[a-z][a-z-]*`).FindAllString(syn, -1)
	opts = append(opts, "--help")
	slices.Sort(opts)
	return slices.Compact(opts)
}

// Ensure that each command's SYNOPSIS lists every option its OPTIONS
// section describes.
func TestSynopsisListsEveryOption(t *testing.T) {
	for cmd, help := range map[string]string{"serve": helpServe, "status": helpStatus, "inspect": helpInspect} {
		opts := help[strings.Index(help, "\nOPTIONS"):]
		described := regexp.MustCompile(`(?m)^\s+(--[a-z][a-z-]*)`).FindAllStringSubmatch(opts, -1)
		if len(described) == 0 {
			t.Fatalf("dlogd %s: no options described", cmd)
		}
		syn := synopsisOptions(help)
		for _, m := range described {
			if !slices.Contains(syn, m[1]) {
				t.Errorf("dlogd %s: %s is described under OPTIONS but missing from the SYNOPSIS", cmd, m[1])
			}
		}
	}
}

// Ensure that the bash completion offers every command and every option
// of each command's synopsis, and the values an option takes.
func TestBashCompletion(t *testing.T) {
	if got := complete(t, "dlogd", ""); !slices.Contains(got, "serve") || !slices.Contains(got, "status") || !slices.Contains(got, "inspect") || !slices.Contains(got, "--version") {
		t.Errorf("commands: %q", got)
	}
	for cmd, help := range map[string]string{"serve": helpServe, "status": helpStatus, "profile": helpProfile, "inspect": helpInspect, "adopt": helpAdopt, "release": helpRelease} {
		got := complete(t, "dlogd", cmd, "--")
		slices.Sort(got)
		if want := synopsisOptions(help); !slices.Equal(got, want) {
			t.Errorf("dlogd %s --<TAB>: %q, want the synopsis's %q", cmd, got, want)
		}
	}
	if got := complete(t, "dlogd", "serve", "--log-level", ""); !slices.Equal(got, []string{"debug", "info", "warn", "error"}) {
		t.Errorf("--log-level values: %q", got)
	}
	if got := complete(t, "dlogd", "--no-mlock", "serve", "--cluster", "c"); !slices.Equal(got, []string{"corosync"}) {
		t.Errorf("--cluster values: %q", got)
	}
}
