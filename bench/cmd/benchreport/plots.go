package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dlog-dev/dlog/internal/plot"
)

// chart is one PNG of the report.
type chart struct {
	file, title string
	bench       string // id of the benchmark whose section shows it
	render      func(*runData) (*plot.Canvas, error)
}

var charts = []chart{
	{"flush-latency.png", "flush latency against region count", "bench.BenchmarkFlush", flushLatency},
	{"flush-bytes.png", "bytes written per flush against region count", "bench.BenchmarkFlush", flushBytes},
	{"roundtrip.png", "round trips against bare echo servers", "daemon.BenchmarkInSyncRoundTrip", roundTrips},
	{"scan.png", "scan bandwidth against a plain memory read", "bitmap.BenchmarkScan", scanBandwidth},
	{"markclear.png", "mark/clear throughput against goroutines", "bitmap.BenchmarkMarkClear", markClear},
}

// point is the median of unit over the rounds of key, with its spread.
func point(data *runData, key, unit string, x float64, scale float64) (plot.Point, bool) {
	s := data.stat(key, unit)
	if !s.ok() {
		return plot.Point{}, false
	}
	return plot.Point{X: x, Y: s.Median * scale, Lo: s.Min * scale, Hi: s.Max * scale}, true
}

func pow2Label(v float64) string { return fmt.Sprintf("2^%d", int(math.Round(math.Log2(v)))) }

func bytesLabel(v float64) string { return strings.ReplaceAll(bytesIEC(v), " ", "") }

// flushSeries is one line of the flush plots.
func flushSeries(data *runData, name, sub string, marks int, unit string, dashed bool, col int) plot.Series {
	s := plot.Series{Name: name, Dashed: dashed, Color: plot.Palette[col]}
	b := suiteByID("bench.BenchmarkFlush")
	for _, c := range flushCases(b, data) {
		if c.marks != marks {
			continue
		}
		if p, ok := point(data, b.key(c.prefix()+sub), unit, math.Ldexp(1, c.bits), 1); ok {
			s.Points = append(s.Points, p)
		}
	}
	return s
}

func nonEmpty(ss ...plot.Series) []plot.Series {
	var out []plot.Series
	for _, s := range ss {
		if len(s.Points) > 0 {
			out = append(out, s)
		}
	}
	return out
}

func flushLatency(data *runData) (*plot.Canvas, error) {
	ch := &plot.LineChart{
		Title:    "Flush latency against log size (median, min-max bars)",
		Subtitle: "marks per flush fixed at 32 and at 1, random regions; preallocated file, O_DIRECT writes + fdatasync",
		X:        plot.Axis{Label: "regions in the log", Scale: plot.Log2, Format: pow2Label},
		Y:        plot.Axis{Label: "time per flush", Scale: plot.Log10, Format: durationASCII},
		Series: nonEmpty(
			flushSeries(data, "dlog, 32 marks", "impl=dlog", 32, "ns/op", false, 0),
			flushSeries(data, "dlog, 1 mark", "impl=dlog", 1, "ns/op", false, 2),
			flushSeries(data, "kernel strategy, 32 marks", "baseline=kernel-strategy", 32, "ns/op", true, 1),
			flushSeries(data, "kernel strategy, 1 mark", "baseline=kernel-strategy", 1, "ns/op", true, 4),
			flushSeries(data, "one 4 KiB write (floor)", "baseline=one-4k-write", 1, "ns/op", true, 6),
		),
	}
	c, _, err := ch.Render()
	return c, err
}

func flushBytes(data *runData) (*plot.Canvas, error) {
	ch := &plot.LineChart{
		Title:    "Bytes written per flush against log size",
		Subtitle: "marks per flush fixed at 32 and at 1; dlog writes the changed 4 KiB blocks, the kernel the whole bitmap",
		X:        plot.Axis{Label: "regions in the log", Scale: plot.Log2, Format: pow2Label},
		Y:        plot.Axis{Label: "bytes written per flush", Scale: plot.Log2, Format: bytesLabel},
		Series: nonEmpty(
			flushSeries(data, "dlog, 32 marks", "impl=dlog", 32, "bytes/flush", false, 0),
			flushSeries(data, "dlog, 1 mark", "impl=dlog", 1, "bytes/flush", false, 2),
			flushSeries(data, "kernel strategy", "baseline=kernel-strategy", 32, "bytes/flush", true, 1),
		),
	}
	c, _, err := ch.Render()
	return c, err
}

func roundTrips(data *runData) (*plot.Canvas, error) {
	type pair struct{ cat, base, subj string }
	pairs := []pair{
		{"dlogd IN_SYNC (unix)", "daemon BenchmarkInSyncRoundTrip/baseline=echo", "daemon BenchmarkInSyncRoundTrip/impl=dlogd"},
		{"transport (unix)", "transport BenchmarkUnixRoundTrip/bare/netpoll", "transport BenchmarkUnixRoundTrip/transport/reply"},
		{"transport (netlink)", "transport BenchmarkIntegrationNetlinkRoundTrip/bare/netpoll", "transport BenchmarkIntegrationNetlinkRoundTrip/transport/reply"},
	}
	base := plot.Series{Name: "bare echo server (baseline)", Color: plot.Palette[6]}
	subj := plot.Series{Name: "dlog", Color: plot.Palette[0]}
	var cats []string
	for _, p := range pairs {
		b, ok1 := point(data, p.base, "ns/op", 0, 1e-3)
		s, ok2 := point(data, p.subj, "ns/op", 0, 1e-3)
		if !ok1 || !ok2 {
			continue
		}
		cats = append(cats, p.cat)
		base.Points = append(base.Points, b)
		subj.Points = append(subj.Points, s)
	}
	ch := &plot.BarChart{
		Title:       "Request round trip against a bare echo (median, min-max bars)",
		Subtitle:    "one IN_SYNC request and its reply; echo: same socket, same frame sizes",
		Y:           plot.Axis{Label: "microseconds per round trip"},
		Categories:  cats,
		Series:      []plot.Series{base, subj},
		ValueFormat: func(v float64) string { return sig(v) },
	}
	c, _, err := ch.Render()
	return c, err
}

func scanBandwidth(data *runData) (*plot.Canvas, error) {
	s := plot.Series{Color: plot.Palette[0]}
	var cats []string
	for _, k := range data.Order {
		sub, ok := strings.CutPrefix(k, "bitmap BenchmarkScan/")
		if !ok || sub == "baseline=bitwise" {
			continue
		}
		p, ok := point(data, k, "MB/s", 0, 1e-3) // GB/s
		if !ok {
			continue
		}
		label := strings.NewReplacer("baseline=word-or", "memory read", "impl=", "", "+vpopcntq", "", "/", " ").Replace(sub)
		cats = append(cats, label)
		s.Points = append(s.Points, p)
	}
	ch := &plot.BarChart{
		Title:       "Scan of a sparse 2^30-bit (128 MiB) bitmap (median, min-max bars)",
		Subtitle:    "memory read: 8 words ORed at a time (baseline); kernel: find over every word; summary: NextSet, empty shards skipped",
		Y:           plot.Axis{Label: "GB/s of bitmap (log scale)", Scale: plot.Log10, Format: sig},
		Categories:  cats,
		Series:      []plot.Series{s},
		ValueFormat: sig,
	}
	c, _, err := ch.Render()
	return c, err
}

func markClear(data *runData) (*plot.Canvas, error) {
	meas := plot.Series{Name: "dlog bitmap (median, min-max)", Color: plot.Palette[0]}
	cpus, _ := strconv.Atoi(meta(data, "cpus"))
	ideal := plot.Series{Name: fmt.Sprintf("linear scaling up to %d CPUs", cpus), Color: plot.Palette[6], Dashed: true}
	var one float64
	for _, g := range []int{1, 2, 4} {
		s := data.stat(fmt.Sprintf("bitmap BenchmarkMarkClear/goroutines=%d", g), "ns/op")
		if !s.ok() {
			continue
		}
		// Pairs per second, in millions: the spread's ends swap.
		p := plot.Point{X: float64(g), Y: 1e3 / s.Median, Lo: 1e3 / s.Max, Hi: 1e3 / s.Min}
		meas.Points = append(meas.Points, p)
		if g == 1 {
			one = p.Y
		}
		if one > 0 {
			ideal.Points = append(ideal.Points, plot.Point{X: float64(g), Y: one * float64(min(g, max(cpus, 1)))})
		}
	}
	ch := &plot.LineChart{
		Title:    "Mark+clear throughput against goroutines",
		Subtitle: fmt.Sprintf("each goroutine in its own range of a 2^24-region tracked bitmap; this machine has %d CPUs", cpus),
		X:        plot.Axis{Label: "goroutines", Scale: plot.Log2, Format: func(v float64) string { return fmt.Sprint(int(math.Round(v))) }},
		Y:        plot.Axis{Label: "million mark+clear pairs per second"},
		Series:   nonEmpty(meas, ideal),
	}
	c, _, err := ch.Render()
	return c, err
}

func suiteByID(id string) *benchmark {
	for _, b := range suite {
		if b.id() == id {
			return b
		}
	}
	panic("benchreport: no benchmark " + id)
}
