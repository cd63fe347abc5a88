package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Ensure that a report drawn from raw results keeps them beside it, and
// that it can be drawn again from that copy alone.
func TestRunKeepsRaw(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "elsewhere.txt")
	if err := os.WriteFile(raw, []byte(rawSample), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report")
	var stderr bytes.Buffer
	if code := run([]string{"-from", raw, "-out", out}, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
	kept, err := os.ReadFile(filepath.Join(out, "raw.txt"))
	if err != nil || string(kept) != rawSample {
		t.Fatalf("raw.txt beside the report: %v, %d bytes of %d", err, len(kept), len(rawSample))
	}
	first, _ := os.ReadFile(filepath.Join(out, "results.md"))
	png1, _ := os.ReadFile(filepath.Join(out, "flush-latency.png"))
	stderr.Reset()
	if code := run([]string{"-from", filepath.Join(out, "raw.txt"), "-out", out}, &stderr); code != 0 {
		t.Fatalf("again from the copy: exit %d: %s", code, &stderr)
	}
	again, _ := os.ReadFile(filepath.Join(out, "results.md"))
	png2, _ := os.ReadFile(filepath.Join(out, "flush-latency.png"))
	if len(first) == 0 || !bytes.Equal(first, again) || len(png1) == 0 || !bytes.Equal(png1, png2) {
		t.Error("the report drawn again from raw.txt differs")
	}
	if strings.Contains(stderr.String(), "raw.txt\n") {
		t.Errorf("raw.txt copied onto itself: %s", &stderr)
	}
}

// Ensure that -vm draws the committed VM benchmark results into the PNG
// beside the JSON.
func TestRunVMChart(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "vm-results.json"))
	if err != nil {
		t.Fatal(err)
	}
	js := filepath.Join(t.TempDir(), "vm-results.json")
	if err := os.WriteFile(js, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{"-vm", js}, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
	img := decodePNG(t, strings.TrimSuffix(js, ".json")+".png")
	if img.Bounds().Dx() != 1200 || img.Bounds().Dy() < 600 {
		t.Errorf("vm chart is %v", img.Bounds())
	}
	if err := os.WriteFile(js, []byte(`{"runs":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"-vm", js}, &stderr); code == 0 {
		t.Error("-vm drew a chart of no runs")
	}
}
