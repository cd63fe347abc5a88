package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseLogfmt(t *testing.T) {
	got, err := ParseLogfmt(`time=2026-11-25T17:59:17.691Z level=INFO msg="state dump" logs=2 ctr="131072 clustered-core 1024" empty="" bare q="a \"b\" c"`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"time": "2026-11-25T17:59:17.691Z", "level": "INFO", "msg": "state dump", "logs": "2",
		"ctr": "131072 clustered-core 1024", "empty": "", "bare": "", "q": `a "b" c`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if _, err := ParseLogfmt(`msg="open`); err == nil {
		t.Error("unterminated quote accepted")
	}
}

const sampleDump = `time=T level=INFO msg="dlogd serving" transport=netlink pid=7
time=T level=INFO msg="state dump" logs=1 malformed=0 unknown_log=0 errors=0 busy=0
time=T level=INFO msg=log uuid=old luid=0x1 ctr="131072 clustered-core 1024" phase=running regions=128 in_sync=128 dirty=0 requests=CTR=1
time=T level=INFO msg="state dump" logs=2 malformed=0 unknown_log=3 errors=0 busy=0
time=T level=INFO msg=log uuid=dlog-vm-ucore luid=0xff3dda563fde8400 ctr="131072 clustered-core 1024" phase=running regions=128 in_sync=120 dirty=8 recovering=1 cursor=121 halted=false status="1 clustered-core" flushes=0 bytes_written=0 last_flush=0s p99_flush=0s requests="IN_SYNC=12 FLUSH=4 CTR=1" group="given_back=0 taken_back=3 wants_sent=4"
time=T level=WARN msg="CTR for an existing log: reconnect, keeping its state" uuid=x
`

func TestParseDlogdDump(t *testing.T) {
	d, complete, err := ParseDlogdDump(sampleDump)
	if err != nil || complete {
		t.Fatalf("half-written dump: complete=%v err=%v", complete, err)
	}
	full := sampleDump + `time=T level=INFO msg=log uuid=dlog-vm-ucore luid=0x2 ctr="131072 clustered-core 1024" phase=constructed regions=128 in_sync=0 dirty=128 requests=CTR=1`
	d, complete, err = ParseDlogdDump(full)
	if err != nil || !complete {
		t.Fatalf("complete=%v err=%v", complete, err)
	}
	if d.Header["unknown_log"] != "3" || len(d.Logs) != 2 {
		t.Fatalf("%+v", d)
	}
	l := d.Logs[0]
	if l.UUID != "dlog-vm-ucore" || l.LUID != "0xff3dda563fde8400" || l.InSync != 120 || l.Dirty != 8 || l.Recovering != 1 ||
		l.Status != "1 clustered-core" || l.Phase != "running" || l.Requests["IN_SYNC"] != 12 || l.TotalRequests() != 17 {
		t.Errorf("%+v", l)
	}
	if g := l.Group; len(g) != 3 || g["taken_back"] != 3 || g["wants_sent"] != 4 || len(d.Logs[1].Group) != 0 {
		t.Errorf("group counters %v and %v; want taken_back 3, wants_sent 4, given_back 0, and none", g, d.Logs[1].Group)
	}
	if _, _, err := ParseDlogdDump(strings.Replace(full, "taken_back=3", "taken_back=x", 1)); err == nil {
		t.Error("a malformed group counter accepted")
	}
	if n := len(d.ByUUID("dlog-vm-ucore")); n != 2 {
		t.Errorf("ByUUID: %d", n)
	}
	if _, complete, _ := ParseDlogdDump("no dump here"); complete {
		t.Error("no dump reported complete")
	}
	// A log read while a dump line is half written: the cut line is not
	// parsed (it would fail on its open quote), the dump is incomplete.
	cut := full[:len(full)-len(`024" phase=constructed regions=128 in_sync=0 dirty=128 requests=CTR=1`)]
	if _, complete, err := ParseDlogdDump(completeLines([]byte(sampleDump + "\n" + cut))); err != nil || complete {
		t.Errorf("dump with a half-written last line: complete=%v err=%v, want incomplete and no error", complete, err)
	}
	if _, _, err := ParseDlogdDump(sampleDump + "\n" + cut); err == nil {
		t.Error("the cut line parsed without completeLines: the test no longer shows the failure")
	}
}

func TestRequestDelta(t *testing.T) {
	d := RequestDelta(map[string]uint64{"IN_SYNC": 2, "FLUSH": 5}, map[string]uint64{"IN_SYNC": 10, "FLUSH": 5, "MARK_REGION": 4})
	if got := FormatCounts(d); got != "IN_SYNC=8 MARK_REGION=4" {
		t.Errorf("%q", got)
	}
}

func TestPhaseDelta(t *testing.T) {
	line := func(s string) DumpLog {
		f, err := ParseLogfmt(s)
		if err != nil {
			t.Fatal(err)
		}
		return DumpLog{Fields: f}
	}
	before := line(`phase_flushes=2 phase_queue=20µs phase_run=2ms phase_reply=100µs write_time=1ms leg_flushes=1 leg_flush_time=500µs`)
	after := line(`phase_flushes=6 phase_queue=60µs phase_run=10ms phase_reply=300µs write_time=5ms leg_flushes=5 leg_flush_time=2.5ms`)
	got, err := PhaseDelta(before, after)
	want := "4 flushes, each: queue 10µs, leg flush 500µs (4 leg flushes), write+cache flush 1ms, engine 2ms, reply 50µs"
	if err != nil || got != want {
		t.Errorf("PhaseDelta = %q, %v; want %q", got, err, want)
	}
	inlineAfter := line(`phase_flushes=6 phase_inline=3 phase_queue=60µs phase_run=10ms phase_reply=300µs write_time=5ms leg_flushes=5 leg_flush_time=2.5ms`)
	got, err = PhaseDelta(before, inlineAfter)
	want += ", 3 answered without the hand-off"
	if err != nil || got != want {
		t.Errorf("PhaseDelta with inline flushes = %q, %v; want %q", got, err, want)
	}
	detachedAfter := line(`phase_flushes=6 phase_inline=3 phase_detached=2 phase_queue=60µs phase_run=10ms phase_reply=300µs write_time=5ms leg_flushes=5 leg_flush_time=2.5ms`)
	got, err = PhaseDelta(before, detachedAfter)
	want += " (2 of them writing, on a receiver that detached)"
	if err != nil || got != want {
		t.Errorf("PhaseDelta with detached flushes = %q, %v; want %q", got, err, want)
	}
	if got, err := PhaseDelta(after, after); err != nil || got != "no flushes" {
		t.Errorf("no flushes between: %q, %v", got, err)
	}
	if _, err := PhaseDelta(before, line(`phase_flushes=3 phase_queue=banana`)); err == nil {
		t.Error("a malformed duration was accepted")
	}
}
