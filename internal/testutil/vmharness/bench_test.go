package vmharness

import (
	"bytes"
	"image/png"
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
	}
	return r
}

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
	for _, want := range []string{
		"| bare responder (clustered-core) | 0.20 (0.20–0.20) | 8.00 (7.20–8.80) |",
		"| 8.00x | 1.00x | 6.00 |",
		"dlogd clustered-core vs the bare responder, 4 KiB writes: 1.05 (target ≤ 1.10) — **met**",
		"dlogd clustered-disk vs the bare responder, 4 KiB writes: 1.20 (target ≤ 1.30) — **met**",
		"6.00 requests per 4 KiB write (FLUSH 2.00, IN_SYNC 2.00, CLEAR_REGION 1.00, MARK_REGION 1.00)",
		"| 3 | dlogd clustered-disk | read 1M | 0.500 |",
		"Bitmap writes to the log device: 2.00 per 4 KiB write; dlogd's p99 flush latency 1.2ms.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestRenderChart(t *testing.T) {
	b, err := RenderChart("DLOG VMBENCH", sampleBench().BenchChart())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if w := img.Bounds().Dx(); w != 1200 {
		t.Errorf("width %d", w)
	}
	// Some ink of the bare responder's bar colour.
	found := false
	for y := 0; y < img.Bounds().Dy() && !found; y++ {
		for x := 0; x < img.Bounds().Dx(); x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if r>>8 == 200 && g>>8 == 140 && b>>8 == 40 {
				found = true
				break
			}
		}
	}
	if !found {
		t.Error("no bar drawn in the bare responder's colour")
	}
	for r := range font5x7 {
		for _, row := range font5x7[r] {
			if len(row) != glyphW {
				t.Errorf("glyph %q has a row of %d", r, len(row))
			}
		}
	}
}
