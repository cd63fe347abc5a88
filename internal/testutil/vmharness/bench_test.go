package vmharness

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"slices"
	"strings"
	"testing"
)

func sampleBench() *BenchResults {
	r := &BenchResults{Kernel: "6.1.0-test", Rounds: 3, Bytes: 16 << 20,
		Configs: []string{"kernel core", BenchKernelDisk, BenchBare, BenchDlogdCore, BenchDlogdDisk}}
	perWrite := map[string]float64{"kernel core": 0.4, BenchKernelDisk: 1.0, BenchBare: 8.0, BenchDlogdCore: 8.4, BenchDlogdDisk: 9.6}
	for round := 1; round <= 3; round++ {
		for _, c := range r.Configs {
			var req map[string]uint64
			if strings.Contains(c, "clustered") {
				req = map[string]uint64{"IN_SYNC": 8192, "FLUSH": 8192, "MARK_REGION": 4096, "CLEAR_REGION": 4096}
			}
			var flushes uint64
			if c == BenchDlogdDisk {
				flushes = 8192
			}
			r.Runs = append(r.Runs,
				BenchRun{Config: c, Round: round, Op: "write 4K", Seconds: perWrite[c] * (0.8 + 0.1*float64(round)), Requests: req, DiskFlushes: flushes, P99Flush: "1.2ms"},
				BenchRun{Config: c, Round: round, Op: "write 1M", Seconds: 0.2},
				BenchRun{Config: c, Round: round, Op: "read 4K", Seconds: perWrite[c] / 3},
				BenchRun{Config: c, Round: round, Op: "read 1M", Seconds: 0.5})
		}
		// cmirrord moves 1 MiB only: 256 writes of 30 ms.
		r.Runs = append(r.Runs, BenchRun{Config: cmirrordUDPU, Round: round, Op: "write 4K", Seconds: 7.68, Bytes: 1 << 20})
	}
	r.Configs = append(r.Configs, cmirrordUDPU)
	return r
}

var cmirrordUDPU = fmt.Sprintf(BenchCmirrord, "clustered-core", "udpu")

func TestBenchStats(t *testing.T) {
	st := sampleBench().Stats()
	w := st[BenchBare]["write 4K"]
	if w.N != 3 || w.Median != 8.0 || w.Min >= w.Median || w.Max <= w.Median {
		t.Errorf("bare 4K writes: %+v", w)
	}
	if w.RoundTrips != 6 {
		t.Errorf("round trips per write %v, want 6", w.RoundTrips)
	}
	if st["kernel core"]["write 4K"].RoundTrips != 0 {
		t.Error("a kernel log has no round trips")
	}
}

func TestBenchMarkdown(t *testing.T) {
	md := sampleBench().Markdown("2026-11-25", "test host")
	mustContain(t, md,
		"| bare responder (clustered-core) | 0.20 (0.20–0.20) | 8.00 (7.20–8.80) |",
		"| 1.95 | 8.00x | 1.00x | 6.00 |",
		"| cmirrord clustered-core, corosync udpu | – | 7.68 (7.68–7.68) | – | – | 30.00 | 122.88x | 15.36x | – |",
		"(dlogd clustered-disk − clustered-core) / (kernel disk − kernel core) per 4 KiB write, 0.293 ms / 0.146 ms: 2.00 (target ≤ 1.50) — **missed**",
		"dlogd clustered-core / the bare responder (same requests), 2.051 ms / 1.953 ms: 1.05 (target ≤ 1.00) — **missed**",
		"cmirrord clustered-core over corosync udpu: 30.00 ms per 4 KiB write, dlogd clustered-core 2.05 ms: dlogd is 14.6x faster",
		"| 1 | cmirrord clustered-core, corosync udpu | write 4K | 7.680 | 1 |",
		"6.00 requests per 4 KiB write (FLUSH 2.00, IN_SYNC 2.00, CLEAR_REGION 1.00, MARK_REGION 1.00)",
		"| 3 | dlogd clustered-disk | read 1M | 0.500 | 16 |",
		"Bitmap writes to the log device: 2.00 per 4 KiB write; dlogd's p99 flush latency 1.2ms.",
	)
}

// mustContain fails the test for each of wants that report lacks.
func mustContain(t *testing.T, report string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

// Ensure that the VM benchmark chart decodes at the laid-out size, draws
// every configuration's bar in its colour where its value says, in the
// order of the configurations (first on top), and labels each bar.
func TestRenderChart(t *testing.T) {
	r := sampleBench()
	b, err := r.ChartPNG()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	panels := r.BenchChart()
	img, frames, err := renderChart(r.ChartTitle(), panels)
	if err != nil {
		t.Fatal(err)
	}
	want := image.Rect(0, 0, chartWidth, 60+len(panels)*(len(r.Configs)*barPixels+panelExtra))
	if dec.Bounds() != want || img.Bounds() != want {
		t.Errorf("png %v, image %v, want %v", dec.Bounds(), img.Bounds(), want)
	}
	for k, pn := range panels {
		f := frames[k]
		n := len(pn.Labels)
		for i, v := range pn.Values {
			if v == 0 {
				continue // no bar: the configuration has no such run
			}
			y := float64(n - 1 - i)
			if got := rgbaAt(dec, f.Pixel(v/2, y)); got != barColor[i] {
				t.Errorf("panel %d, %s: bar middle is %v, want %v", k, pn.Labels[i], got, barColor[i])
			}
			if got := rgbaAt(dec, f.Pixel(v*1.02, y)); got == barColor[i] {
				t.Errorf("panel %d, %s: bar runs past its value %g", k, pn.Labels[i], v)
			}
			// Its value, in text, right of the bar.
			at := f.Pixel(v, y)
			if !hasInk(dec, image.Rect(at.X+4, at.Y-8, at.X+80, at.Y+8)) {
				t.Errorf("panel %d, %s: no value label", k, pn.Labels[i])
			}
		}
	}
	if _, err := RenderChart("empty", nil); err == nil {
		t.Error("a chart without panels rendered")
	}
}

func rgbaAt(img image.Image, p image.Point) color.RGBA {
	r, g, b, a := img.At(p.X, p.Y).RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}

// hasInk reports whether r holds dark (text) pixels: the text is
// anti-aliased, so not every glyph has a pixel of pure black.
func hasInk(img image.Image, r image.Rectangle) bool {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if c := rgbaAt(img, image.Pt(x, y)); c.R < 80 && c.G < 80 && c.B < 80 {
				return true
			}
		}
	}
	return false
}

// Ensure that request types come largest count first, equal counts by name.
func TestByCount(t *testing.T) {
	m := map[string]uint64{"MARK_REGION": 4, "IN_SYNC": 8, "FLUSH": 8, "CLEAR_REGION": 4, "RESUME": 1}
	want := []string{"FLUSH", "IN_SYNC", "CLEAR_REGION", "MARK_REGION", "RESUME"}
	for range 5 { // map order varies from call to call
		if got := ByCount(m); !slices.Equal(got, want) {
			t.Fatalf("ByCount = %v, want %v", got, want)
		}
	}
	if got := ByCount(nil); len(got) != 0 {
		t.Errorf("ByCount(nil) = %v, want none", got)
	}
}
