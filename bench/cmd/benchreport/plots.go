package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dlog-dev/dlog/internal/testutil/chart"
	"gonum.org/v1/plot"
)

// figure is one PNG of the report.
type figure struct {
	file, title string
	bench       string // id of the benchmark whose section shows it
	render      func(*runData) (*chart.Frame, error)
}

// Size of every chart in pixels.
const chartW, chartH = 960, 600

var figures = []figure{
	{"flush-latency.png", "flush latency against region count", "bench.BenchmarkFlush", flushLatency},
	{"flush-bytes.png", "bytes written per flush against region count", "bench.BenchmarkFlush", flushBytes},
	{"roundtrip.png", "round trips against bare echo servers", "daemon.BenchmarkInSyncRoundTrip", roundTrips},
	{"scan.png", "scan bandwidth against a plain memory read", "bitmap.BenchmarkScan", scanBandwidth},
	{"markclear.png", "mark/clear throughput against goroutines", "bitmap.BenchmarkMarkClear", markClear},
}

// point is the median of unit over the rounds of key, with its spread.
func point(data *runData, key, unit string, x float64, scale float64) (chart.Point, bool) {
	s := data.stat(key, unit)
	if !s.ok() {
		return chart.Point{}, false
	}
	return chart.Point{X: x, Y: s.Median * scale, Lo: s.Min * scale, Hi: s.Max * scale}, true
}

func pow2Label(v float64) string { return fmt.Sprintf("2^%d", int(math.Round(math.Log2(v)))) }

func bytesLabel(v float64) string { return strings.ReplaceAll(bytesIEC(v), " ", "") }

// flushSeries is one line of the flush plots.
func flushSeries(data *runData, name, sub string, marks int, unit string, dashed bool, col int) chart.Series {
	s := chart.Series{Name: name, Dashed: dashed, Color: chart.Palette[col]}
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

func nonEmpty(ss ...chart.Series) []chart.Series {
	var out []chart.Series
	for _, s := range ss {
		if len(s.Points) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// lineChart draws series over a log2 x axis of region counts.
func lineChart(title, subtitle, yLabel string, y plot.Ticker, series []chart.Series) (*chart.Frame, error) {
	p := chart.New(title, subtitle, chartW)
	p.X.Label.Text = "regions in the log"
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, chart.LogTicks{Base: 2, Format: pow2Label}
	p.Y.Label.Text = yLabel
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, y
	if err := chart.AddLines(p, series...); err != nil {
		return nil, err
	}
	return chart.Render(p, chartW, chartH), nil
}

// flushLine is one line of the flush plots: the sub-benchmarks named sub
// at a number of marks per flush, in palette colour col.
type flushLine struct {
	name, sub string
	marks     int
	dashed    bool
	col       int
}

// dlogLines are dlog's lines, in both flush plots.
var dlogLines = []flushLine{
	{"dlog, 32 marks", "impl=dlog", 32, false, 0},
	{"dlog, 1 mark", "impl=dlog", 1, false, 2},
}

// flushChart plots unit of the flush sub-benchmarks against region count.
func flushChart(data *runData, title, subtitle, yLabel string, y plot.Ticker, unit string, lines []flushLine) (*chart.Frame, error) {
	var series []chart.Series
	for _, l := range lines {
		series = append(series, flushSeries(data, l.name, l.sub, l.marks, unit, l.dashed, l.col))
	}
	return lineChart(title, subtitle, yLabel, y, nonEmpty(series...))
}

func flushLatency(data *runData) (*chart.Frame, error) {
	return flushChart(data, "Flush latency against log size (median, min-max bars)",
		"marks per flush fixed at 32 and at 1, random regions; preallocated file, O_DIRECT writes + fdatasync",
		"time per flush", chart.LogTicks{Base: 10, Format: duration}, "ns/op",
		append(dlogLines[:len(dlogLines):len(dlogLines)],
			flushLine{"kernel strategy, 32 marks", "baseline=kernel-strategy", 32, true, 1},
			flushLine{"kernel strategy, 1 mark", "baseline=kernel-strategy", 1, true, 4},
			flushLine{"one 4 KiB write (floor)", "baseline=one-4k-write", 1, true, 6}))
}

func flushBytes(data *runData) (*chart.Frame, error) {
	return flushChart(data, "Bytes written per flush against log size",
		"marks per flush fixed at 32 and at 1; dlog writes the changed 4 KiB blocks, the kernel the whole bitmap",
		"bytes written per flush", chart.LogTicks{Base: 2, Format: bytesLabel}, "bytes/flush",
		append(dlogLines[:len(dlogLines):len(dlogLines)],
			flushLine{"kernel strategy", "baseline=kernel-strategy", 32, true, 1}))
}

// barChart draws grouped bars, each labelled with its value.
func barChart(title, subtitle, yLabel string, log bool, cats []string, series []chart.Series) (*chart.Frame, error) {
	p := chart.New(title, subtitle, chartW)
	p.Y.Label.Text = yLabel
	if log {
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, chart.LogTicks{Base: 10, Format: sig}
	}
	if err := chart.AddBars(p, cats, series, sig); err != nil {
		return nil, err
	}
	return chart.Render(p, chartW, chartH), nil
}

func roundTrips(data *runData) (*chart.Frame, error) {
	type pair struct{ cat, base, subj string }
	pairs := []pair{
		{"dlogd IN_SYNC (unix)", "daemon BenchmarkInSyncRoundTrip/baseline=echo", "daemon BenchmarkInSyncRoundTrip/impl=dlogd"},
		{"transport (unix)", "transport BenchmarkUnixRoundTrip/bare/netpoll", "transport BenchmarkUnixRoundTrip/transport/reply"},
		{"transport (netlink)", "transport BenchmarkIntegrationNetlinkRoundTrip/bare/netpoll", "transport BenchmarkIntegrationNetlinkRoundTrip/transport/reply"},
	}
	base := chart.Series{Name: "bare echo server (baseline)", Color: chart.Palette[6]}
	subj := chart.Series{Name: "dlog", Color: chart.Palette[0]}
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
	return barChart("Request round trip against a bare echo (median, min-max bars)",
		"one IN_SYNC request and its reply; echo: same socket, same frame sizes",
		"microseconds per round trip", false, cats, []chart.Series{base, subj})
}

func scanBandwidth(data *runData) (*chart.Frame, error) {
	s := chart.Series{Color: chart.Palette[0]}
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
	return barChart("Scan of a sparse 2^30-bit (128 MiB) bitmap (median, min-max bars)",
		"memory read: 8 words ORed at a time (baseline); kernel: find over every word; summary: NextSet, empty shards skipped",
		"GB/s of bitmap (log scale)", true, cats, []chart.Series{s})
}

func markClear(data *runData) (*chart.Frame, error) {
	meas := chart.Series{Name: "dlog bitmap (median, min-max)", Color: chart.Palette[0]}
	cpus, _ := strconv.Atoi(meta(data, "cpus"))
	ideal := chart.Series{Name: fmt.Sprintf("linear scaling up to %d CPUs", cpus), Color: chart.Palette[6], Dashed: true}
	var one float64
	for _, g := range []int{1, 2, 4} {
		s := data.stat(fmt.Sprintf("bitmap BenchmarkMarkClear/goroutines=%d", g), "ns/op")
		if !s.ok() {
			continue
		}
		// Pairs per second, in millions: the spread's ends swap.
		p := chart.Point{X: float64(g), Y: 1e3 / s.Median, Lo: 1e3 / s.Max, Hi: 1e3 / s.Min}
		meas.Points = append(meas.Points, p)
		if g == 1 {
			one = p.Y
		}
		if one > 0 {
			ideal.Points = append(ideal.Points, chart.Point{X: float64(g), Y: one * float64(min(g, max(cpus, 1)))})
		}
	}
	p := chart.New("Mark+clear throughput against goroutines",
		fmt.Sprintf("each goroutine in its own range of a 2^24-region tracked bitmap; this machine has %d CPUs", cpus), chartW)
	p.X.Label.Text = "goroutines"
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, chart.LogTicks{Base: 2, Format: func(v float64) string { return fmt.Sprint(int(math.Round(v))) }}
	p.Y.Label.Text = "million mark+clear pairs per second"
	if err := chart.AddLines(p, nonEmpty(meas, ideal)...); err != nil {
		return nil, err
	}
	p.Y.Min = 0
	return chart.Render(p, chartW, chartH), nil
}

func suiteByID(id string) *benchmark {
	for _, b := range suite {
		if b.id() == id {
			return b
		}
	}
	panic("benchreport: no benchmark " + id)
}
