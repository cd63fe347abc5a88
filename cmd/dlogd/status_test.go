package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/ulog"
)

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// dlogd status and --metrics against a running daemon with two logs.
func TestStatusAndMetrics(t *testing.T) {
	dir := t.TempDir()
	ctl := filepath.Join(dir, "dlogd.ctl")
	addr := freePort(t)
	p := start(t, dir, "--control", ctl, "--metrics", addr)
	c := dial(t, p.sock)
	dev := filepath.Join(dir, "log.img")
	writeZeros(t, dev, 1<<20)
	c.must(ulog.TypeCtr, "st-core", 1, []byte("131072 clustered-core 1024 nosync"))
	c.must(ulog.TypeCtr, "st-disk", 2, []byte("131072 clustered-disk "+dev+" 1024"))
	c.must(ulog.TypeResume, "st-core", 1, nil)
	c.must(ulog.TypeResume, "st-disk", 2, nil)
	c.must(ulog.TypeFlush, "st-core", 1, ulog.AppendUint64(nil, 5))
	c.must(ulog.TypeFlush, "st-disk", 2, ulog.AppendUint64(nil, 5))
	c.must(ulog.TypeInSync, "st-core", 1, ulog.AppendUint64(nil, 5))

	var out, errb bytes.Buffer
	if code := run([]string{"status", "--control", ctl}, &out, &errb); code != 0 {
		t.Fatalf("dlogd status: exit %d: %s", code, errb.String())
	}
	text := out.String()
	for _, want := range []string{"2 log(s)", "st-core", "st-disk", "clustered-disk", dev, "running", "IN_SYNC=1", "3 clustered-disk " + dev + " A"} {
		if !strings.Contains(text, want) {
			t.Errorf("status output lacks %q:\n%s", want, text)
		}
	}
	out.Reset()
	if code := run([]string{"status", "--control", ctl, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("dlogd status --json: exit %d", code)
	}
	var s Status
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("status --json does not parse: %v\n%s", err, out.String())
	}
	if len(s.Logs) != 2 || s.Logs[0].UUID != "st-core" || s.Logs[1].State.Dirty != 128 || s.Logs[0].State.Dirty != 1 || s.Logs[0].State.InSync != 128 {
		t.Fatalf("status --json: %+v", s.Logs)
	}
	if s.Logs[1].State.Stats.BytesWritten == 0 || s.Logs[1].Requests["FLUSH"] != 1 {
		t.Fatalf("disk log counters: %+v", s.Logs[1])
	}
	// The flush figures describe the flushes: the bytes the clear wrote at
	// FLUSH, not the whole image RESUME wrote before it.
	c.must(ulog.TypeMarkRegion, "st-disk", 2, ulog.AppendUint64(nil, 7))
	c.must(ulog.TypeClearRegion, "st-disk", 2, ulog.AppendUint64(nil, 7))
	c.must(ulog.TypeFlush, "st-disk", 2, nil)
	out.Reset()
	if code := run([]string{"status", "--control", ctl, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("dlogd status --json: exit %d", code)
	}
	s = Status{}
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if l := s.Logs[1]; l.LastFlushBytes == 0 || l.FlushBytes < l.LastFlushBytes || l.FlushBytes >= l.State.Stats.BytesWritten || l.LastFlush == 0 {
		t.Fatalf("disk log flush: last %d bytes in %v, all flushes %d bytes, log device %d bytes", l.LastFlushBytes, l.LastFlush, l.FlushBytes, l.State.Stats.BytesWritten)
	}
	if s.Version == "" || s.Version != s.Build.Version || s.Build.GoVersion == "" {
		t.Fatalf("status --json version %q, build %+v", s.Version, s.Build)
	}
	out.Reset()
	if code := run([]string{"status", "--control", ctl}, &out, &errb); code != 0 {
		t.Fatalf("dlogd status: exit %d", code)
	}
	if text := out.String(); !strings.Contains(text, "dlogd "+s.Version+", pid ") || !strings.Contains(text, bytesString(s.Logs[1].LastFlushBytes)+" in ") {
		t.Errorf("status text lacks the version or the last flush's bytes:\n%s", text)
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"dlogd_logs 2",
		`dlogd_requests_total{type="FLUSH"} 3`,
		`dlogd_log_dirty_regions{name="",type="clustered-core",uuid="st-core"} 1`,
		`dlogd_flush_duration_seconds_count 3`,
		`dlogd_transport_dropped_total{reason="foreign_sender"} 0`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Unreachable daemon: a clear error, exit 1.
	errb.Reset()
	if code := run([]string{"status", "--control", filepath.Join(dir, "nope")}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "is dlogd running") {
		t.Fatalf("status without a daemon: exit %d, %q", code, errb.String())
	}
}

// Ensure that the control socket defaults beside the pidfile: two dlogds
// started with their own pidfiles answer on their own sockets, and
// status --pidfile reaches each.
func TestControlBesidePidfile(t *testing.T) {
	var pids []int
	for range 2 {
		dir := t.TempDir()
		p := start(t, dir)
		var out, errb bytes.Buffer
		if code := run([]string{"status", "--pidfile", filepath.Join(dir, "dlogd.pid"), "--json"}, &out, &errb); code != 0 {
			t.Fatalf("status --pidfile: exit %d: %s", code, errb.String())
		}
		var s Status
		if err := json.Unmarshal(out.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		if s.PID != p.cmd.Process.Pid {
			t.Fatalf("status --pidfile %s answered by pid %d, want %d", dir, s.PID, p.cmd.Process.Pid)
		}
		pids = append(pids, s.PID)
	}
	if pids[0] == pids[1] {
		t.Fatalf("both pidfiles reached pid %d", pids[0])
	}
}

func TestMetricsLoopbackOnly(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--metrics", "0.0.0.0:9342"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--metrics-remote") {
		t.Fatalf("non-loopback --metrics: exit %d, %q", code, errb.String())
	}
}

func writeZeros(t *testing.T, path string, n int) {
	t.Helper()
	if err := writeFile(path, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
}
