//go:build linux

package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// The demo's narrator shows the narration lines (cut wherever the console
// writes split them, cleaned of CRs) without their prefix, flags a failed
// step, collects the proved claims and drops the rest of the console.
func TestNarrator(t *testing.T) {
	var out strings.Builder
	n := &narrator{w: &out, start: time.Now()}
	n.Line = n.line
	io.WriteString(n, "[    1.0] kernel boot noise\r\nvmguest: demo| create the mir")
	io.WriteString(n, "ror\r\nvmguest: demo| PROVED: marks reach the disk\nvmguest: [x] FAIL step one\nvmguest: demo| tail")
	n.Flush()
	got := out.String()
	for _, want := range []string{"] create the mirror\n", "] => proved: marks reach the disk\n", "] !! [x] FAIL step one\n", "] tail\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "boot noise") || strings.Contains(got, "\r") {
		t.Errorf("output shows console noise:\n%q", got)
	}
	if len(n.proved) != 1 || n.proved[0] != "marks reach the disk" {
		t.Errorf("proved = %q", n.proved)
	}
}
