package main

import (
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
	d, err := parseRaw(strings.NewReader(rawSample))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := writeReport(dir, suite, d)
	if err != nil {
		t.Fatal(err)
	}
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
	latency, err := flushLatency(d)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := roundTrips(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file  string
		f     *chart.Frame
		x, y  float64
		color color.RGBA
	}{
		{"flush-latency.png", latency, 1 << 28, 1.2e6, chart.Palette[0]},
		{"flush-latency.png", latency, 1 << 28, 2e7, chart.Palette[1]},
		{"flush-latency.png", latency, 1 << 28, 2.5e5, chart.Palette[6]},
		{"roundtrip.png", rt, -0.2, 4, chart.Palette[6]},
		{"roundtrip.png", rt, 0.2, 8.4, chart.Palette[0]},
	} {
		img := decodePNG(t, filepath.Join(dir, c.file))
		if b := img.Bounds(); b.Dx() != chartW || b.Dy() != chartH || b != c.f.Bounds() {
			t.Errorf("%s is %v, want %dx%d", c.file, b, chartW, chartH)
		}
		p := c.f.Pixel(c.x, c.y)
		r, g, b, _ := img.At(p.X, p.Y).RGBA()
		if got := (color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0xff}); got != c.color {
			t.Errorf("%s at (%g, %g), pixel %v: %v, want %v", c.file, c.x, c.y, p, got, c.color)
		}
	}
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
