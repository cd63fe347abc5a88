package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/internal/plot"
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
	// The latency plot: dlog's 2^28 point in the first palette colour.
	f, err := os.Open(filepath.Join(dir, "flush-latency.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	c, err := flushLatency(d)
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != c.Bounds() {
		t.Errorf("png %v, canvas %v", img.Bounds(), c.Bounds())
	}
	var blue bool
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y && !blue; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if p := plot.Palette[0]; uint8(r>>8) == p.R && uint8(g>>8) == p.G && uint8(bb>>8) == p.B {
				blue = true
				break
			}
		}
	}
	if !blue {
		t.Error("no dlog series in the latency plot")
	}
}
