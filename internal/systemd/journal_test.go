package systemd

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

// entry is what journald records from one line of a stdout/stderr stream.
type entry struct {
	priority int
	message  string
}

// readStream parses a stream as journald does with level_prefix on (its
// default): each line is an entry; a leading "<N>", N a single digit 0-7,
// is the entry's PRIORITY and is removed; a line without one gets the
// stream's default priority, info (6).
func readStream(t *testing.T, r io.Reader) []entry {
	t.Helper()
	var out []entry
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		e := entry{priority: 6, message: line}
		if len(line) >= 3 && line[0] == '<' && line[2] == '>' && line[1] >= '0' && line[1] <= '7' {
			e.priority, _ = strconv.Atoi(line[1:2])
			e.message = line[3:]
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Ensure that each record reaches the journal as one entry with its
// level's syslog priority (so `journalctl -p warning` shows warnings and
// errors), without a time of its own, through WithAttrs and WithGroup,
// and with a message that holds newlines kept on one line.
func TestJournalPriorities(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
	log.Debug("d", "k", 1)
	log.Info("i")
	log.Warn("w")
	log.Error("e")
	log.With("uuid", "u1").WithGroup("g").Warn("grouped", "k", "v")
	log.Error("two\nlines")
	log.Log(context.Background(), slog.LevelError+4, "above error")
	log.Log(context.Background(), slog.LevelDebug-4, "below debug")

	got := readStream(t, &buf)
	want := []entry{
		{7, "level=DEBUG msg=d k=1"},
		{6, "level=INFO msg=i"},
		{4, "level=WARN msg=w"},
		{3, "level=ERROR msg=e"},
		{4, "level=WARN msg=grouped uuid=u1 g.k=v"},
		{3, `level=ERROR msg="two\nlines"`},
		{3, "level=ERROR+4 msg=\"above error\""},
		{7, "level=DEBUG-4 msg=\"below debug\""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// Filtered as journalctl -p warning does: priority <= 4.
	var warn []string
	for _, e := range got {
		if e.priority <= 4 {
			warn = append(warn, e.message)
		}
	}
	if len(warn) != 5 || strings.Contains(strings.Join(warn, ""), "INFO") {
		t.Errorf("-p warning would show %q", warn)
	}
}

// Ensure that the handler's level still filters.
func TestJournalLevel(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	log.Info("hidden")
	log.Warn("shown")
	if got := buf.String(); got != "<4>level=WARN msg=shown\n" {
		t.Errorf("got %q", got)
	}
}
