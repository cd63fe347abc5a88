// Package manpage turns dlog's help texts into a troff man page, so that
// `dlogd --help`, `dlogd COMMAND --help` and dlogd.8 come from the same
// words and cannot drift apart.
//
// A help text is a sequence of sections: a heading in capitals at column
// 0, then a body indented by 4 spaces. In a body, blocks are separated by
// blank lines, and each block is one of:
//
//   - a paragraph: lines at the body's indent, filled by troff;
//   - tagged paragraphs: a line at the body's indent (the tag: an option,
//     a signal) followed by lines indented 4 more (its description);
//   - a two-column list: "TAG   description" lines, with 3 or more
//     spaces between, continuation lines indented to the description;
//   - a literal block: lines indented more than the body (examples), and
//     every block of SYNOPSIS and EXAMPLES, set as they are.
//
// The first text of a Page is the program's own; its NAME becomes the
// page's NAME. Every further text is a command ("dlogd serve - ..."): it
// becomes a section of its own, its sections subsections. The sections
// of Extra (man-only matter: FILES, ...) follow, and SEE ALSO comes last.
package manpage

import (
	"fmt"
	"regexp"
	"strings"
)

// Page is a man page to render.
type Page struct {
	// Name and Section make the title line (.TH NAME SECTION).
	Name    string
	Section int
	// Source and Manual fill the footer and header of the title line.
	Source, Manual string
	// Texts are help texts: the program's first, then its commands'.
	Texts []string
	// Extra is more text in the same format, rendered after the
	// commands and before SEE ALSO.
	Extra string
}

// section is a heading and the lines of its body, unindented by 4.
type section struct {
	heading string
	body    []string
}

// parse splits a help text into sections.
func parse(text string) ([]section, error) {
	var out []section
	for n, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		line = strings.TrimRight(line, " \t")
		switch {
		case line == "":
			if len(out) > 0 {
				out[len(out)-1].body = append(out[len(out)-1].body, "")
			}
		case line[0] != ' ':
			out = append(out, section{heading: line})
		case len(out) == 0:
			return nil, fmt.Errorf("manpage: line %d: text before the first heading: %q", n+1, line)
		case !strings.HasPrefix(line, "    "):
			return nil, fmt.Errorf("manpage: line %d: body not indented by 4 spaces: %q", n+1, line)
		default:
			out[len(out)-1].body = append(out[len(out)-1].body, line[4:])
		}
	}
	return out, nil
}

// blocks splits a body at blank lines.
func blocks(body []string) [][]string {
	var out [][]string
	var cur []string
	for _, l := range body {
		if l == "" {
			if cur != nil {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, l)
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

func indent(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

// twoCol matches a "TAG   description" line.
var twoCol = regexp.MustCompile(`^(\S(?:.*?\S)?)\s{3,}(\S.*)$`)

// escape makes text safe for troff: backslashes, dashes (as minus signs,
// so that options can be copied), and a leading dot or quote.
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// quoteArg quotes a macro argument.
func quoteArg(s string) string {
	return `"` + strings.ReplaceAll(escape(s), `"`, `\(dq`) + `"`
}

// renderBody writes the blocks of one section's body.
func renderBody(sb *strings.Builder, heading string, body []string) {
	literalSection := heading == "SYNOPSIS" || heading == "EXAMPLES"
	for i, b := range blocks(body) {
		switch {
		case literalSection || indent(b[0]) > 0:
			if i > 0 || !literalSection {
				sb.WriteString(".PP\n")
			}
			if !literalSection {
				sb.WriteString(".RS 4\n")
			}
			sb.WriteString(".nf\n")
			base := indent(b[0])
			for _, l := range b {
				sb.WriteString(escape(l[min(base, indent(l)):]) + "\n")
			}
			sb.WriteString(".fi\n")
			if !literalSection {
				sb.WriteString(".RE\n")
			}
		case len(b) > 1 && indent(b[1]) >= 4 && !twoCol.MatchString(b[0]):
			for _, l := range b {
				if indent(l) == 0 {
					sb.WriteString(".TP\n.B " + escape(l) + "\n")
				} else {
					sb.WriteString(escape(strings.TrimSpace(l)) + "\n")
				}
			}
		case twoCol.MatchString(b[0]):
			for _, l := range b {
				if m := twoCol.FindStringSubmatch(l); m != nil && indent(l) == 0 {
					sb.WriteString(".TP\n.B " + escape(m[1]) + "\n" + escape(m[2]) + "\n")
				} else {
					sb.WriteString(escape(strings.TrimSpace(l)) + "\n")
				}
			}
		default:
			sb.WriteString(".PP\n")
			for _, l := range b {
				sb.WriteString(escape(l) + "\n")
			}
		}
	}
}

// nameLine returns the one line of a NAME section.
func nameLine(secs []section) (string, error) {
	for _, s := range secs {
		if s.heading == "NAME" {
			return strings.TrimSpace(strings.Join(strings.Fields(strings.Join(s.body, " ")), " ")), nil
		}
	}
	return "", fmt.Errorf("manpage: no NAME section")
}

// Render renders p as a man page (troff, man macros).
func Render(p Page) (string, error) {
	if len(p.Texts) == 0 {
		return "", fmt.Errorf("manpage: no text")
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, ".\\\" Generated from the help texts of %s; do not edit.\n", p.Name)
	fmt.Fprintf(&sb, ".TH %s %d \"\" %s %s\n", strings.ToUpper(p.Name), p.Section, quoteArg(p.Source), quoteArg(p.Manual))
	main, err := parse(p.Texts[0])
	if err != nil {
		return "", err
	}
	var seeAlso *section
	for i, s := range main {
		switch s.heading {
		case "SEE ALSO":
			seeAlso = &main[i]
			continue
		case "NAME":
			name, _ := nameLine(main)
			prog, desc, _ := strings.Cut(name, " - ")
			sb.WriteString(".SH NAME\n" + escape(prog) + ` \- ` + escape(desc) + "\n")
			continue
		}
		sb.WriteString(".SH " + quoteArg(s.heading) + "\n")
		renderBody(&sb, s.heading, s.body)
	}
	for _, text := range p.Texts[1:] {
		secs, err := parse(text)
		if err != nil {
			return "", err
		}
		name, err := nameLine(secs)
		if err != nil {
			return "", err
		}
		cmd, desc, _ := strings.Cut(name, " - ")
		sb.WriteString(".SH " + quoteArg(strings.ToUpper(cmd)) + "\n")
		sb.WriteString(".PP\n.B " + escape(cmd) + "\n" + `\- ` + escape(desc) + "\n")
		for _, s := range secs {
			if s.heading == "NAME" {
				continue
			}
			sb.WriteString(".SS " + quoteArg(s.heading) + "\n")
			renderBody(&sb, s.heading, s.body)
		}
	}
	if p.Extra != "" {
		secs, err := parse(p.Extra)
		if err != nil {
			return "", err
		}
		for _, s := range secs {
			sb.WriteString(".SH " + quoteArg(s.heading) + "\n")
			renderBody(&sb, s.heading, s.body)
		}
	}
	if seeAlso != nil {
		sb.WriteString(".SH \"SEE ALSO\"\n")
		renderBody(&sb, seeAlso.heading, seeAlso.body)
	}
	return sb.String(), nil
}
