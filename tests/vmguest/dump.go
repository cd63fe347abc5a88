package main

import (
	"bytes"
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// ParseLogfmt splits one line of log/slog's TextHandler output
// (key=value pairs, values quoted with Go syntax when they hold spaces,
// quotes or '=') into a map. It returns an error for an unterminated quote.
func ParseLogfmt(line string) (map[string]string, error) {
	m := make(map[string]string)
	s := strings.TrimSpace(line)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		sp := strings.IndexByte(s, ' ')
		if eq < 0 || (sp >= 0 && sp < eq) {
			// a bare word: keep it as a key without a value
			w := s
			if sp >= 0 {
				w, s = s[:sp], strings.TrimLeft(s[sp:], " ")
			} else {
				s = ""
			}
			m[w] = ""
			continue
		}
		key := s[:eq]
		s = s[eq+1:]
		if strings.HasPrefix(s, `"`) {
			end := -1
			for i := 1; i < len(s); i++ {
				if s[i] == '\\' {
					i++
					continue
				}
				if s[i] == '"' {
					end = i
					break
				}
			}
			if end < 0 {
				return m, fmt.Errorf("logfmt: unterminated quote after %s= in %q", key, line)
			}
			v, err := strconv.Unquote(s[:end+1])
			if err != nil {
				return m, fmt.Errorf("logfmt: %s=%s: %v", key, s[:end+1], err)
			}
			m[key] = v
			s = strings.TrimLeft(s[end+1:], " ")
			continue
		}
		if sp := strings.IndexByte(s, ' '); sp >= 0 {
			m[key], s = s[:sp], strings.TrimLeft(s[sp:], " ")
		} else {
			m[key], s = s, ""
		}
	}
	return m, nil
}

// DumpLog is one log in dlogd's SIGUSR1 state dump.
type DumpLog struct {
	UUID, LUID, Ctr, Phase, Status string
	Regions, InSync, Dirty         uint64
	Recovering, Flushes            uint64
	Requests                       map[string]uint64 // by request type name, e.g. "IN_SYNC"
	Group                          map[string]uint64 // a cluster log's group counters, e.g. "taken_back"; empty for others
	Fields                         map[string]string // everything, raw
}

// Dump is a parsed state dump: its header fields and its logs.
type Dump struct {
	Header map[string]string // logs, malformed, unknown_log, errors, busy
	Logs   []DumpLog
}

// ByUUID returns the dump's logs with that uuid.
func (d Dump) ByUUID(uuid string) []DumpLog {
	var out []DumpLog
	for _, l := range d.Logs {
		if l.UUID == uuid {
			out = append(out, l)
		}
	}
	return out
}

// TotalRequests sums a log's request counters.
func (l DumpLog) TotalRequests() uint64 {
	var n uint64
	for _, v := range l.Requests {
		n += v
	}
	return n
}

// RequestDelta returns after's counters minus before's, by type (types
// with no change are left out).
func RequestDelta(before, after map[string]uint64) map[string]uint64 {
	d := make(map[string]uint64)
	for k, v := range after {
		if v > before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

// FormatCounts prints request counters in a stable order, largest first:
// "IN_SYNC=512 FLUSH=512 MARK_REGION=256".
func FormatCounts(m map[string]uint64) string {
	keys := vmharness.ByCount(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// completeLines is b up to its last newline: a log file read while the
// daemon writes to it can end in part of a line (seen under load: a dump
// line cut inside a quoted value failed to parse).
func completeLines(b []byte) string {
	return string(b[:bytes.LastIndexByte(b, '\n')+1])
}

// ParseDlogdDump finds the last complete state dump in text (dlogd's log
// output) and parses it. complete is false when the last "state dump"
// line is not yet followed by as many "log" lines as it announced (the
// daemon is still writing it). Lines of other messages may interleave.
func ParseDlogdDump(text string) (d Dump, complete bool, err error) {
	lines := strings.Split(text, "\n")
	start := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], `msg="state dump"`) {
			start = i
			break
		}
	}
	if start < 0 {
		return Dump{}, false, nil
	}
	hdr, err := ParseLogfmt(lines[start])
	if err != nil {
		return Dump{}, false, err
	}
	want, err := strconv.Atoi(hdr["logs"])
	if err != nil {
		return Dump{}, false, fmt.Errorf("dlogd dump: logs=%q in %q", hdr["logs"], lines[start])
	}
	d.Header = hdr
	for _, line := range lines[start+1:] {
		if len(d.Logs) == want {
			break
		}
		if !strings.Contains(line, " msg=log ") {
			continue
		}
		f, err := ParseLogfmt(line)
		if err != nil {
			return d, false, err
		}
		l := DumpLog{UUID: f["uuid"], LUID: f["luid"], Ctr: f["ctr"], Phase: f["phase"], Status: f["status"],
			Requests: map[string]uint64{}, Group: map[string]uint64{}, Fields: f}
		for k, p := range map[string]*uint64{"regions": &l.Regions, "in_sync": &l.InSync, "dirty": &l.Dirty, "recovering": &l.Recovering, "flushes": &l.Flushes} {
			if v, ok := f[k]; ok {
				if *p, err = strconv.ParseUint(v, 10, 64); err != nil {
					return d, false, fmt.Errorf("dlogd dump: %s=%q in %q", k, v, line)
				}
			}
		}
		for key, m := range map[string]map[string]uint64{"requests": l.Requests, "group": l.Group} {
			for _, kv := range strings.Fields(f[key]) {
				k, v, ok := strings.Cut(kv, "=")
				n, err := strconv.ParseUint(v, 10, 64)
				if !ok || err != nil {
					return d, false, fmt.Errorf("dlogd dump: %s item %q in %q", key, kv, line)
				}
				m[k] = n
			}
		}
		d.Logs = append(d.Logs, l)
	}
	return d, len(d.Logs) == want, nil
}

// phaseFields are the dump's flush-path timers (durations) and their
// labels in PhaseDelta's summary, in the order of the flush path.
var phaseFields = []struct{ key, label string }{
	{"phase_queue", "queue"},
	{"leg_flush_time", "leg flush"},
	{"write_time", "write+cache flush"},
	{"phase_run", "engine"},
	{"phase_reply", "reply"},
}

// PhaseDelta summarizes where the flushes between two dumps of one log
// spent their time, per flush that wrote: "12 flushes: queue 10µs, leg
// flush 1.2ms (12 of them), write+cache flush 400µs, engine 1.7ms, reply
// 50µs". The engine time holds the leg flush and the write.
func PhaseDelta(before, after DumpLog) (string, error) {
	count := func(key string) (int64, error) {
		a, err := strconv.ParseInt(cmp.Or(after.Fields[key], "0"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("dlogd dump: %s=%q", key, after.Fields[key])
		}
		b, err := strconv.ParseInt(cmp.Or(before.Fields[key], "0"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("dlogd dump: %s=%q", key, before.Fields[key])
		}
		return a - b, nil
	}
	n, err := count("phase_flushes")
	if err != nil {
		return "", err
	}
	if n <= 0 {
		return "no flushes", nil
	}
	legs, err := count("leg_flushes")
	if err != nil {
		return "", err
	}
	parts := []string{fmt.Sprintf("%d flushes, each:", n)}
	for _, f := range phaseFields {
		a, err := time.ParseDuration(cmp.Or(after.Fields[f.key], "0s"))
		if err != nil {
			return "", fmt.Errorf("dlogd dump: %s=%q: %v", f.key, after.Fields[f.key], err)
		}
		b, err := time.ParseDuration(cmp.Or(before.Fields[f.key], "0s"))
		if err != nil {
			return "", fmt.Errorf("dlogd dump: %s=%q: %v", f.key, before.Fields[f.key], err)
		}
		p := fmt.Sprintf("%s %v", f.label, ((a - b) / time.Duration(n)).Round(time.Microsecond))
		if f.key == "leg_flush_time" {
			p += fmt.Sprintf(" (%d leg flushes)", legs)
		}
		parts = append(parts, p)
	}
	if inline, err := count("phase_inline"); err != nil {
		return "", err
	} else if inline > 0 {
		p := fmt.Sprintf("%d answered without the hand-off", inline)
		if detached, err := count("phase_detached"); err != nil {
			return "", err
		} else if detached > 0 {
			p += fmt.Sprintf(" (%d of them writing, on a receiver that detached)", detached)
		}
		parts = append(parts, p)
	}
	return parts[0] + " " + strings.Join(parts[1:], ", "), nil
}
