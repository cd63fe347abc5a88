package main

import (
	"math"
	"regexp"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		line  string
		procs int
		ok    bool
		name  string
		iters int64
		m     map[string]float64
	}{
		{"BenchmarkFlush/regions=2^16/marks=32/impl=dlog-2   \t     100\t   1234567 ns/op\t  4096 bytes/flush", 2, true,
			"BenchmarkFlush/regions=2^16/marks=32/impl=dlog", 100, map[string]float64{"ns/op": 1234567, "bytes/flush": 4096}},
		// A name ending in a digit keeps it when GOMAXPROCS is 1 (no suffix).
		{"BenchmarkMarkClear/goroutines=1\t10\t1909 ns/op", 1, true, "BenchmarkMarkClear/goroutines=1", 10, map[string]float64{"ns/op": 1909}},
		{"BenchmarkMarkClear/goroutines=1-2\t10\t1909 ns/op", 2, true, "BenchmarkMarkClear/goroutines=1", 10, map[string]float64{"ns/op": 1909}},
		{"BenchmarkFlush/baseline=one-4k-write-2 \t 3 \t 2.6714e+05 ns/op\t4096 bytes/flush", 2, true, "BenchmarkFlush/baseline=one-4k-write", 3, map[string]float64{"ns/op": 267140, "bytes/flush": 4096}},
		{"BenchmarkUnixRoundTrip/transport/echo-2\t102508\t6345 ns/op\t32.15 MB/s\t0 B/op\t0 allocs/op", 2, true, "BenchmarkUnixRoundTrip/transport/echo", 102508,
			map[string]float64{"ns/op": 6345, "MB/s": 32.15, "B/op": 0, "allocs/op": 0}},
		{"BenchmarkMapping/baseline=shared-msync-2 \t 0 \t NaN ns/op", 2, false, "", 0, nil},
		{"BenchmarkX-2 \t 10 \t NaN ns/op", 2, false, "", 0, nil},
		{"BenchmarkX-2 \t 10 \t 5 B/op", 2, false, "", 0, nil}, // no ns/op
		{"goos: linux", 2, false, "", 0, nil},
		{"PASS", 2, false, "", 0, nil},
		{"--- FAIL: BenchmarkX", 2, false, "", 0, nil},
	} {
		r, ok := parseLine(tc.line, tc.procs)
		if ok != tc.ok {
			t.Errorf("%q: ok %v", tc.line, ok)
			continue
		}
		if !ok {
			continue
		}
		if r.Name != tc.name || r.Iters != tc.iters || len(r.Metrics) != len(tc.m) {
			t.Errorf("%q: %+v", tc.line, r)
		}
		for u, v := range tc.m {
			if r.Metrics[u] != v {
				t.Errorf("%q: %s = %v, want %v", tc.line, u, r.Metrics[u], v)
			}
		}
		if back, ok := parseLine(formatResult(r), 1); !ok || back.Name != r.Name || back.Metrics["ns/op"] != r.Metrics["ns/op"] {
			t.Errorf("formatResult(%+v) does not parse back: %q", r, formatResult(r))
		}
	}
}

// Ensure that the -test.bench pattern of a sub-benchmark matches it and
// nothing else, level by level, as the testing package splits it.
func TestSubPattern(t *testing.T) {
	p := subPattern("BenchmarkScan", "impl=avx2+vpopcntq/kernel")
	if p != `^BenchmarkScan$/^impl=avx2\+vpopcntq$/^kernel$` {
		t.Errorf("pattern %s", p)
	}
	matches := func(p, name string) bool {
		pl, nl := strings.Split(p, "/"), strings.Split(name, "/")
		if len(nl) < len(pl) {
			return false
		}
		for i := range pl {
			if !regexp.MustCompile(pl[i]).MatchString(nl[i]) {
				return false
			}
		}
		return true
	}
	for name, want := range map[string]bool{
		"BenchmarkScan/impl=avx2+vpopcntq/kernel":  true,
		"BenchmarkScan/impl=avx2+vpopcntq/summary": false,
		"BenchmarkScan/impl=go/kernel":             false,
		"BenchmarkScanX/impl=avx2+vpopcntq/kernel": false,
	} {
		if matches(p, name) != want {
			t.Errorf("%s on %s: %v", p, name, !want)
		}
	}
	if p := subPattern("BenchmarkFlush", "regions=2^16/marks=32/impl=dlog"); p != `^BenchmarkFlush$/^regions=2\^16$/^marks=32$/^impl=dlog$` {
		t.Errorf("pattern %s", p)
	}
}

const rawSample = `meta.count: 3
meta.cpus: 2
meta.commit: abc123
meta.date: 2026-01-01 00:00 UTC
pkg: bench
round: 1
procs: 2
BenchmarkFlush/regions=2^28/marks=32/impl=dlog	10	1e6 ns/op	131072 bytes/flush
BenchmarkFlush/regions=2^28/marks=32/baseline=kernel-strategy	10	2e7 ns/op	33555456 bytes/flush
BenchmarkFlush/regions=2^28/marks=32/baseline=one-4k-write	10	2e5 ns/op	4096 bytes/flush
BenchmarkMapping/impl=anon-odirect	10	200000 ns/op
fail: BenchmarkMapping/baseline=shared-msync: panic: runtime error: slice bounds out of range
pkg: bench
round: 2
procs: 2
BenchmarkFlush/regions=2^28/marks=32/baseline=one-4k-write	10	3e5 ns/op	4096 bytes/flush
BenchmarkFlush/regions=2^28/marks=32/baseline=kernel-strategy	10	3e7 ns/op	33555456 bytes/flush
BenchmarkFlush/regions=2^28/marks=32/impl=dlog	10	1.2e6 ns/op	131072 bytes/flush
fail: BenchmarkMapping/baseline=shared-msync: panic: runtime error: slice bounds out of range
pkg: bench
round: 3
procs: 2
BenchmarkFlush/regions=2^28/marks=32/impl=dlog	10	3e6 ns/op	131072 bytes/flush
BenchmarkFlush/regions=2^28/marks=32/baseline=kernel-strategy	10	1.5e7 ns/op	33555456 bytes/flush
pkg: daemon
round: 1
procs: 2
BenchmarkInSyncRoundTrip/baseline=echo	100	8000 ns/op
BenchmarkInSyncRoundTrip/impl=dlogd	100	8800 ns/op
meta.load-end: 1 1 1
`

func TestParseRawAndStats(t *testing.T) {
	d, err := parseRaw(strings.NewReader(rawSample))
	if err != nil {
		t.Fatal(err)
	}
	if d.Meta["count"] != "3" || d.Meta["load-end"] != "1 1 1" {
		t.Errorf("meta %v", d.Meta)
	}
	dlog := "bench BenchmarkFlush/regions=2^28/marks=32/impl=dlog"
	kern := "bench BenchmarkFlush/regions=2^28/marks=32/baseline=kernel-strategy"
	if n := len(d.Samples[dlog]); n != 3 {
		t.Fatalf("%d samples of dlog", n)
	}
	s := d.stat(dlog, "ns/op")
	if s.Median != 1.2e6 || s.Min != 1e6 || s.Max != 3e6 || s.N != 3 {
		t.Errorf("dlog stat %+v", s)
	}
	// Speed-ups round by round: 20, 25, 5.
	up := d.speedup(dlog, kern)
	if up.Median != 20 || up.Min != 5 || up.Max != 25 {
		t.Errorf("speed-up %+v", up)
	}
	// The floor ran in 2 rounds only: pairs exist only there.
	if up := d.speedup(dlog, "bench BenchmarkFlush/regions=2^28/marks=32/baseline=one-4k-write"); up.N != 2 {
		t.Errorf("floor pairs %d", up.N)
	}
	if f := d.Failures["bench BenchmarkMapping/baseline=shared-msync"]; len(f) != 2 || !strings.HasPrefix(f[1], "round 2: panic:") {
		t.Errorf("failures %q", f)
	}
	if d.Order[0] != dlog {
		t.Errorf("order %v", d.Order)
	}
}

func TestSummarize(t *testing.T) {
	s := summarize([]float64{5, 1, 4, 2, 3})
	if s.Median != 3 || s.Min != 1 || s.Max != 5 || s.Q1 != 2 || s.Q3 != 4 {
		t.Errorf("%+v", s)
	}
	if s := summarize([]float64{1, 2}); s.Median != 1.5 {
		t.Errorf("even median %v", s.Median)
	}
	if s := summarize(nil); s.ok() || !math.IsNaN(s.Median) {
		t.Errorf("empty %+v", s)
	}
}

func TestFormat(t *testing.T) {
	for got, want := range map[string]string{
		duration(812):      "812 ns",
		duration(1234):     "1.23 µs",
		duration(17.5e6):   "17.5 ms",
		duration(2e9):      "2 s",
		duration(1000):     "1 µs",
		bytesIEC(4096):     "4 KiB",
		bytesIEC(33555456): "32 MiB",
		bytesIEC(1536):     "1.5 KiB",
		bandwidth(4720):    "4.72 GB/s",
		sig(32.0):          "32",
		sig(0.0123):        "0.0123",
		ratioWords(summarize([]float64{5, 20, 25})):          "20× faster (5–25)",
		ratioWords(summarize([]float64{0.8, 0.9, 1.1, 1.2})): "no clear difference: speed-up 1 (0.8–1.2)",
		ratioWords(summarize([]float64{0.9, 1.1, 1.2, 1.3})): "1.15× faster (0.9–1.3)",
		ratioWords(summarize([]float64{0.25, 0.5, 0.8})):     "takes 2× as long (1.25–4)",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
