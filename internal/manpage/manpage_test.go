package manpage_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/internal/manpage"
)

const mainText = `NAME
    prog - does things (a test)

SYNOPSIS
    prog run [--flag X]
    prog --help

DESCRIPTION
    First paragraph, filled
    over two lines with a \backslash and -dashes.

        0 2097152 mirror \
            literal example

    .starts with a dot

COMMANDS
    run       run it (see prog run --help)
    other     more

SEE ALSO
    dmsetup(8)
`

const cmdText = `NAME
    prog run - run it

OPTIONS
    --flag X
        What the flag does,
        on two lines.
    --other
        Another.

CMIRRORD OPTIONS
    -f, --foreground   dlogd always runs in the foreground; use
                       Type=simple.
    -h, --help         --help.
`

func render(t *testing.T) string {
	t.Helper()
	out, err := manpage.Render(manpage.Page{Name: "prog", Section: 8, Source: "dlog", Manual: "System Manager's Manual",
		Texts: []string{mainText, cmdText}, Extra: "FILES\n    /run/x\n        A file.\n"})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRender(t *testing.T) {
	out := render(t)
	for _, want := range []string{
		".TH PROG 8 \"\" \"dlog\" \"System Manager's Manual\"\n",
		".SH NAME\nprog \\- does things (a test)\n",
		".SH \"SYNOPSIS\"\n.nf\nprog run [\\-\\-flag X]\nprog \\-\\-help\n.fi\n",
		".PP\nFirst paragraph, filled\nover two lines with a \\ebackslash and \\-dashes.\n",
		".RS 4\n.nf\n0 2097152 mirror \\e\n    literal example\n.fi\n.RE\n",
		"\\&.starts with a dot\n",
		".TP\n.B run\nrun it (see prog run \\-\\-help)\n",
		".SH \"PROG RUN\"\n.PP\n.B prog run\n\\- run it\n",
		".SS \"OPTIONS\"\n.TP\n.B \\-\\-flag X\nWhat the flag does,\non two lines.\n.TP\n.B \\-\\-other\nAnother.\n",
		".TP\n.B \\-f, \\-\\-foreground\ndlogd always runs in the foreground; use\nType=simple.\n",
		".SH \"FILES\"\n.TP\n.B /run/x\nA file.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// SEE ALSO comes last, after the commands and the extra sections.
	if i, j := strings.Index(out, `.SH "SEE ALSO"`), strings.Index(out, `.SH "FILES"`); i < j || !strings.HasSuffix(out, ".PP\ndmsetup(8)\n") {
		t.Errorf("SEE ALSO not last:\n%s", out)
	}
}

func TestRenderErrors(t *testing.T) {
	for _, texts := range [][]string{
		nil,
		{"  badly indented\n"},
		{"NAME\n  two spaces\n"},
		{mainText, "OPTIONS\n    --x\n"}, // a command without NAME
	} {
		if _, err := manpage.Render(manpage.Page{Name: "p", Section: 8, Texts: texts}); err == nil {
			t.Errorf("%q: no error", texts)
		}
	}
}

// Ensure that groff reads the page without a warning, and shows its words.
func TestGroff(t *testing.T) {
	if _, err := exec.LookPath("groff"); err != nil {
		t.Skip("no groff")
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-P-cbou", "-ww", "-rLL=100n")
	cmd.Stdin = strings.NewReader(render(t))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("groff: %v: %s", err, stderr.String())
	}
	text := stdout.String()
	for _, want := range []string{"prog - does things", "--flag X", "0 2097152 mirror \\", "dlogd always runs in the foreground"} {
		if !strings.Contains(text, want) {
			t.Errorf("groff output lacks %q:\n%s", want, text)
		}
	}
}
