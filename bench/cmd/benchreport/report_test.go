package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/internal/testutil/chart"
)

// Ensure that the report states the medians, spreads, baselines and
// ratios of the raw results, lists the failures, and draws the plots it
// has data for.
func TestWriteReport(t *testing.T) {
	d, dir, files := report(t, rawSample)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if got := strings.Join(names, " "); got != "flush-latency.png flush-bytes.png roundtrip.png results.md README-table.md" {
		t.Errorf("files %s", got)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	for _, want := range []string{
		"| 2^28 (32 MiB) | 32 | 1.2 ms (1 ms – 3 ms) | 20 ms (15 ms – 30 ms) | 20× [5–25] | 250 µs | 128 KiB | 32 MiB |",
		"| `impl=dlogd` | 8.8 µs | 8.8 µs – 8.8 µs | `baseline=echo` | 8 µs | 0.909× [0.909–0.909] |",
		"| `baseline=echo` | 8 µs | 8 µs – 8 µs | (the baseline) | – | – |",
		"**`baseline=shared-msync` failed** in 2 of 3 rounds (no figure above comes from a failed run): round 1, 2: `panic: runtime error: slice bounds out of range`",
		"![flush latency against region count](flush-latency.png)",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), "BenchmarkScan") {
		t.Error("results.md has a section for a benchmark that did not run")
	}
	table, _ := os.ReadFile(filepath.Join(dir, "README-table.md"))
	for _, want := range []string{
		"| flush of 32 marks, 2^28 regions (32 MiB bitmap) | 1.2 ms, 128 KiB written | kernel's whole-bitmap flush: 20 ms, 32 MiB written | 20× faster (5–25) |",
		"| IN_SYNC round trip through dlogd (unix socket) | 8.8 µs | bare echo server: 8 µs | takes 1.1× as long (1.1–1.1) |",
		"commit abc123",
	} {
		if !strings.Contains(string(table), want) {
			t.Errorf("README-table.md lacks %q:\n%s", want, table)
		}
	}
	// The plots decode at the chart size, with each series' colour where
	// its data is: the latency plot's 2^28 points (medians 1.2 ms, 20 ms,
	// 250 us), the round trip's two bars (8 us, 8.8 us).
	f := render(t, d, flushLatency, roundTrips)
	latency, rt := f[0], f[1]
	checkPixels(t, dir, []pixel{
		{"flush-latency.png", latency, 1 << 28, 1.2e6, chart.Palette[0]},
		{"flush-latency.png", latency, 1 << 28, 2e7, chart.Palette[1]},
		{"flush-latency.png", latency, 1 << 28, 2.5e5, chart.Palette[6]},
		{"roundtrip.png", rt, -0.2, 4, chart.Palette[6]},
		{"roundtrip.png", rt, 0.2, 8.4, chart.Palette[0]},
	})
}

// report writes the report of raw into a new directory.
func report(t *testing.T, raw string) (*runData, string, []string) {
	t.Helper()
	d, err := parseRaw(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := writeReport(dir, suite, d)
	if err != nil {
		t.Fatal(err)
	}
	return d, dir, files
}

// render draws the charts of d.
func render(t *testing.T, d *runData, charts ...func(*runData) (*chart.Frame, error)) []*chart.Frame {
	t.Helper()
	var out []*chart.Frame
	for _, c := range charts {
		f, err := c(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// pixel is where a chart's data should have put its colour.
type pixel struct {
	file  string
	f     *chart.Frame
	x, y  float64
	color color.RGBA
}

// checkPixels checks that each chart file in dir decodes at the chart size
// and has the colour at each data point.
func checkPixels(t *testing.T, dir string, checks []pixel) {
	t.Helper()
	for _, c := range checks {
		img := decodePNG(t, filepath.Join(dir, c.file))
		if b := img.Bounds(); b.Dx() != chartW || b.Dy() != chartH || b != c.f.Bounds() {
			t.Errorf("%s is %v, want %dx%d", c.file, b, chartW, chartH)
		}
		p := c.f.Pixel(c.x, c.y)
		if got := rgbaAt(img, p); got != c.color {
			t.Errorf("%s at (%g, %g), pixel %v: %v, want %v", c.file, c.x, c.y, p, got, c.color)
		}
	}
}

func rgbaAt(img image.Image, p image.Point) color.RGBA {
	r, g, b, _ := img.At(p.X, p.Y).RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0xff}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// Ensure that the scan and mark/clear plots decode at the chart size with
// their data where it belongs: the scan bars on a log axis (29 and 1432
// GB/s), the mark/clear median on 2 goroutines (1e3/34.2 million pairs/s)
// and the linear scaling from one (2 x 1e3/65).
func TestScanAndMarkClearPlots(t *testing.T) {
	var raw strings.Builder
	raw.WriteString("meta.cpus: 2\n")
	for r := 1; r <= 3; r++ {
		f := 1 + 0.05*float64(r-2)
		fmt.Fprintf(&raw, "pkg: bitmap\nround: %d\nprocs: 2\n", r)
		fmt.Fprintf(&raw, "BenchmarkScan/baseline=word-or\t10\t%g ns/op\t%g MB/s\n", 4.63e6/f, 29000*f)
		fmt.Fprintf(&raw, "BenchmarkScan/impl=go/summary\t10\t%g ns/op\t%g MB/s\n", 93.7e3/f, 1432000*f)
		fmt.Fprintf(&raw, "BenchmarkMarkClear/goroutines=1\t10\t%g ns/op\n", 65*f)
		fmt.Fprintf(&raw, "BenchmarkMarkClear/goroutines=2\t10\t%g ns/op\n", 34.2*f)
	}
	d, dir, files := report(t, raw.String())
	if len(files) != 4 || filepath.Base(files[0]) != "scan.png" || filepath.Base(files[1]) != "markclear.png" {
		t.Fatalf("files %v", files)
	}
	f := render(t, d, scanBandwidth, markClear)
	scan, mc := f[0], f[1]
	checkPixels(t, dir, []pixel{
		{"scan.png", scan, 0, 20, chart.Palette[0]},   // memory read, below its top (29)
		{"scan.png", scan, 1, 1000, chart.Palette[0]}, // summary, below 1432
		{"markclear.png", mc, 2, 1e3 / 34.2, chart.Palette[0]},
		{"markclear.png", mc, 2, 2e3 / 65, chart.Palette[6]}, // linear scaling from one goroutine
	})
	// Above the memory read's bar (29 GB/s) is background.
	if got := rgbaAt(decodePNG(t, filepath.Join(dir, "scan.png")), scan.Pixel(0, 60)); got != (color.RGBA{0xff, 0xff, 0xff, 0xff}) {
		t.Errorf("scan.png: the memory read bar reaches 60 GB/s")
	}
}
