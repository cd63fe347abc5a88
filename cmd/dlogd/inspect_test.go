package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/header"
	logimage "github.com/dlog-dev/dlog/internal/inspect"
)

func kernelImagePath(name string) string {
	return filepath.Join("..", "..", "engine", "testdata", "kernel", name+".img")
}

func runInspect(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"inspect"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// Ensure that every image the kernel wrote is shown with its exact counts
// and ranges (engine/testdata/kernel/README.md).
func TestInspectKernelImages(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
	}{
		{"synced-128", []string{"nr_regions:    128 (the device holds up to 4096)", "clean regions: 128", "dirty regions: 0 (0.00%)", "dirty ranges:  none"}},
		{"nosync-100", []string{"nr_regions:    100 ", "clean regions: 100", "dirty regions: 0 (0.00%)"}},
		{"grow-128-to-256-resyncing", []string{"nr_regions:    256 ", "clean regions: 128", "dirty regions: 128 (50.00%)", "dirty ranges:  128-255"}},
		{"shrink-256-to-100", []string{"nr_regions:    100 ", "clean regions: 100", "dirty ranges:  none"}},
		{"lbs4096-128", []string{"(regular file, 4096 bytes, ", "nr_regions:    128 (the device holds up to 24576)", "clean regions: 128"}},
		{"large-nosync-65536", []string{"nr_regions:    65536 (the device holds up to 65536)", "clean regions: 65536", "dirty regions: 0 (0.00%)"}},
		{"large-grow-65536-to-100000-resyncing", []string{"nr_regions:    100000 ", "clean regions: 65536", "dirty regions: 34464 (34.46%)", "dirty ranges:  65536-99999"}},
		{"inflight-write-128", []string{"magic:         0x4d695272 ", "version:       2", "clean regions: 127", "dirty regions: 1 (0.78%)", "dirty ranges:  5-5\n"}},
		{"forcesync-128-resyncing", []string{"clean regions: 0", "dirty regions: 128 (100.00%)", "dirty ranges:  0-127"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runInspect(t, kernelImagePath(tc.name))
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			for _, l := range tc.lines {
				if !strings.Contains(out, l) {
					t.Errorf("output lacks %q:\n%s", l, out)
				}
			}
		})
	}
}

// engineImage writes a disk log with dlog's engine: nr regions, all clean
// (nosync), then the given regions marked and flushed.
func engineImage(t *testing.T, nr uint64, marks []uint64) string {
	t.Helper()
	bs, err := header.BufSize(nr, 512)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "dlog.img")
	if err := os.WriteFile(p, make([]byte, bs), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := engine.ParseCtr(fmt.Sprintf("%d disk 3 %s 2 nosync", 2*nr, p))
	if err != nil {
		t.Fatal(err)
	}
	l, err := engine.Open(c, engine.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	for _, r := range marks {
		if err := l.MarkRegion(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Ensure that images dlog's engine writes read the same way, and that
// inspect writes nothing.
func TestInspectEngineImage(t *testing.T) {
	p := engineImage(t, 100000, []uint64{3, 64, 65, 200, 201, 202, 203, 99999})
	before, _ := os.ReadFile(p)
	st0, _ := os.Stat(p)
	code, out, errs := runInspect(t, p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, l := range []string{"nr_regions:    100000 ", "clean regions: 99992", "dirty regions: 8 (0.01%)", "dirty ranges:  3-3, 64-65, 200-203, 99999-99999"} {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
	after, _ := os.ReadFile(p)
	st1, _ := os.Stat(p)
	if sha256.Sum256(before) != sha256.Sum256(after) || !st0.ModTime().Equal(st1.ModTime()) {
		t.Error("inspect changed the image")
	}
}

func TestInspectJSON(t *testing.T) {
	code, out, errs := runInspect(t, "--json", kernelImagePath("grow-128-to-256-resyncing"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// Every key, exactly, with its value: a key missing, added or renamed
	// fails as a wrong value does. Numbers compare as the text written.
	want := map[string]any{
		"path":                  kernelImagePath("grow-128-to-256-resyncing"),
		"size":                  json.Number("1536"),
		"magic":                 "0x4d695272",
		"version":               json.Number("2"),
		"nr_regions":            json.Number("256"),
		"capacity":              json.Number("4096"),
		"regions":               json.Number("256"),
		"clean":                 json.Number("128"),
		"dirty":                 json.Number("128"),
		"dirty_fraction":        json.Number("0.5"),
		"dirty_range_count":     json.Number("1"),
		"dirty_ranges_complete": true,
		"dirty_ranges":          []any{[]any{json.Number("128"), json.Number("255")}},
		"dirty_ranges_text":     "128-255",
	}
	var got map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("json:\n got %v\nwant %v", got, want)
	}
}

// Ensure that --png writes the heat map: the size the renderer lays out,
// the known dirty cell red, a clean one green, the legend present.
func TestInspectPNG(t *testing.T) {
	img := kernelImagePath("inflight-write-128")
	out := filepath.Join(t.TempDir(), "heat.png")
	// Flags after the device work too.
	code, stdout, errs := runInspect(t, img, "--png", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(stdout, "dirty ranges:  5-5\n") {
		t.Errorf("text output missing with --png:\n%s", stdout)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pic, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(img)
	res, err := logimage.Read(bytes.NewReader(b), int64(len(b)), logimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hm := logimage.RenderHeatMap(res, img)
	if pic.Bounds() != hm.Bounds() {
		t.Fatalf("png %v, want %v", pic.Bounds(), hm.Bounds())
	}
	pix := func(i int) [3]uint32 {
		c := hm.Cell(i)
		r, g, b, _ := pic.At((c.Min.X+c.Max.X)/2, (c.Min.Y+c.Max.Y)/2).RGBA()
		return [3]uint32{r >> 8, g >> 8, b >> 8}
	}
	rgb := func(c interface{ RGBA() (r, g, b, a uint32) }) [3]uint32 {
		r, g, b, _ := c.RGBA()
		return [3]uint32{r >> 8, g >> 8, b >> 8}
	}
	if pix(5) != rgb(logimage.ColorDirty) || pix(6) != rgb(logimage.ColorClean) {
		t.Errorf("cell 5 %v, cell 6 %v", pix(5), pix(6))
	}
	var legendClean bool
	for y := hm.Legend.Min.Y; y < hm.Legend.Max.Y; y++ {
		for x := hm.Legend.Min.X; x < hm.Legend.Max.X; x++ {
			r, g, b, _ := pic.At(x, y).RGBA()
			if [3]uint32{r >> 8, g >> 8, b >> 8} == rgb(logimage.ColorClean) {
				legendClean = true
			}
		}
	}
	if !legendClean {
		t.Error("no legend in the picture")
	}
}

// Ensure that a corrupt or foreign header is refused with the reason, and
// no heat map is written.
func TestInspectRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hdr := func(version uint32, nr uint64, size int) []byte {
		b := make([]byte, size)
		header.Header{Magic: header.Magic, Version: version, NrRegions: nr}.Encode(b)
		return b
	}
	for _, tc := range []struct {
		path string
		want string
	}{
		{write("zero", make([]byte, 4096)), "not a dirty log: magic 0x00000000, want 0x4d695272 (a fresh or foreign device)"},
		{write("v3", hdr(3, 128, 1536)), "unsupported disk log version: version 3"},
		{write("toolarge", hdr(2, 1<<20, 1536)), "nr_regions larger than the device can hold: nr_regions 1048576, but 1536 bytes hold at most 4096 regions"},
		{write("short", hdr(2, 128, 1536)[:12]), "truncated image: 12 bytes, a disk log header is 16"},
		{write("nobitmap", hdr(2, 128, 1536)[:512]), "truncated image: 512 bytes, the bitmap starts at byte 1024"},
		{filepath.Join(dir, "missing"), "no such file or directory"},
	} {
		heat := filepath.Join(dir, "heat.png")
		code, out, errs := runInspect(t, tc.path, "--png", heat)
		if code != 1 || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %q", tc.path, code, out, errs, tc.want)
		}
		if _, err := os.Stat(heat); err == nil {
			t.Errorf("%s: heat map written for a refused image", tc.path)
		}
	}
}

func TestInspectUsage(t *testing.T) {
	img := kernelImagePath("synced-128")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "dlogd inspect - read a disk log image"},
		{nil, 2, "missing the log DEVICE or FILE to read"},
		{[]string{img, img}, 2, "got 2 arguments"},
		{[]string{"--nope", img}, 2, "unknown option --nope"},
		{[]string{img, "--max-ranges", "-1"}, 2, "--max-ranges -1"},
		{[]string{img, "--png"}, 2, "option needs a value: --png"},
	} {
		code, out, errs := runInspect(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("inspect %v: exit %d, output %q; want %d and %q", tc.args, code, out+errs, tc.code, tc.want)
		}
	}
	var out, errb bytes.Buffer
	run([]string{"--help"}, &out, &errb)
	if !strings.Contains(out.String(), "inspect   read a disk log image (see dlogd inspect --help)") {
		t.Error("dlogd --help does not list inspect")
	}
}

// Ensure that --max-ranges bounds the ranges shown and says how many
// there are.
func TestInspectMaxRanges(t *testing.T) {
	marks := make([]uint64, 0, 50)
	for i := uint64(0); i < 50; i++ {
		marks = append(marks, i*10)
	}
	p := engineImage(t, 1000, marks)
	code, out, _ := runInspect(t, "--max-ranges", "3", p)
	if code != 0 || !strings.Contains(out, "dirty ranges:  0-0, 10-10, 20-20, ... (3 of 50 ranges shown; --max-ranges 0 shows all)") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	code, out, _ = runInspect(t, "--max-ranges", "0", p)
	if code != 0 || !strings.Contains(out, ", 480-480, 490-490\n") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// Ensure that a log of more than 2^26 regions shows its progress on
// stderr and still counts every region (a sparse file: all dirty).
func TestInspectProgress(t *testing.T) {
	const nr = 1<<26 + 100
	p := filepath.Join(t.TempDir(), "big.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := header.Header{Magic: header.Magic, Version: 2, NrRegions: nr}.MarshalBinary()
	if _, err := f.Write(h); err != nil {
		t.Fatal(err)
	}
	bs, _ := header.BufSize(nr, 512)
	if err := f.Truncate(int64(bs)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	code, out, errs := runInspect(t, p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, fmt.Sprintf("reading %d regions: 100%%", nr)) || !strings.Contains(errs, "regions:  12%\n") || strings.Count(errs, "\n") != 9 {
		t.Errorf("progress: %q", errs)
	}
	if !strings.Contains(out, fmt.Sprintf("dirty regions: %d (100.00%%)", nr)) || !strings.Contains(out, fmt.Sprintf("dirty ranges:  0-%d\n", nr-1)) {
		t.Errorf("output:\n%s", out)
	}
	// Small logs print nothing on stderr.
	if _, _, errs := runInspect(t, kernelImagePath("synced-128")); errs != "" {
		t.Errorf("stderr for a small log: %q", errs)
	}
}
