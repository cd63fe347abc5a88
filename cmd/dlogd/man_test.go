package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/internal/manpage"
)

// updateMan rewrites packaging/dlogd.8: `make man` runs this test with it.
var updateMan = flag.Bool("update-man", false, "write packaging/dlogd.8 from the help texts")

var manPath = filepath.Join("..", "..", "packaging", "dlogd.8")

// manPage renders dlogd.8 from the help texts (main, then each command's)
// and the man-only sections of packaging/man-extra.txt.
func manPage(t *testing.T) string {
	t.Helper()
	extra, err := os.ReadFile(filepath.Join("..", "..", "packaging", "man-extra.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := manpage.Render(manpage.Page{
		Name: "dlogd", Section: 8, Source: "dlog", Manual: "System Manager's Manual",
		Texts: []string{helpMain, helpServe, helpInspect, helpStatus, helpProfile, helpAdopt, helpRelease},
		Extra: string(extra),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Ensure that the committed man page is the one the help texts make, so
// that --help and dlogd.8 never drift; `make man` regenerates it.
func TestManPage(t *testing.T) {
	page := manPage(t)
	committed, ok := golden(t, manPath, page, *updateMan, "make man")
	if ok && committed != page {
		t.Errorf("packaging/dlogd.8 is out of date with the help texts: run make man")
	}
}

// Ensure that the man page renders without warnings and covers every
// option of dlogd and of cmirrord (docs/protocol.md §7.1 and the README's
// table): each has its equivalent or the reason it is not needed.
func TestManPageCoverage(t *testing.T) {
	page := manPage(t)
	text := page
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8", "-P-cbou", "-ww", "-rLL=200n")
		cmd.Stdin = strings.NewReader(page)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Fatalf("groff: %v: %s", err, stderr.String())
		}
		text = stdout.String()
	}
	for _, want := range []string{
		// dlogd's own options and commands.
		"--transport netlink|unix:PATH", "--pidfile PATH", "--log-level", "--force", "--no-mlock", "--io-fallback",
		"DLOGD SERVE", "DLOGD INSPECT", "DLOGD STATUS", "--json", "--png FILE", "--max-ranges N",
		// cmirrord's, and what replaces them.
		"-f, --foreground", "-h, --help", "daemonizing", "syslog", "/run/cmirrord.pid",
		"exit status 2 (lockfile)", "SIGUSR1, SIGUSR2", "Type=forking", "corosync", "Restart=on-abort",
		"SIGQUIT",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the man page does not mention %q", want)
		}
	}
}
