package chart_test

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"path/filepath"
	"testing"

	"github.com/dlog-dev/dlog/internal/testutil/chart"
	"gonum.org/v1/plot"
)

var keep = flag.String("chart.keep", "", "write the test charts as PNG files into this directory")

func save(t *testing.T, name string, img image.Image) {
	t.Helper()
	if *keep != "" {
		if err := chart.WriteFile(filepath.Join(*keep, name), img); err != nil {
			t.Fatal(err)
		}
	}
}

// decode round-trips img through PNG and checks its size.
func decode(t *testing.T, img image.Image, w, h int) image.Image {
	t.Helper()
	var buf bytes.Buffer
	if err := chart.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	dec, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := dec.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("png is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	return dec
}

func rgba(img image.Image, p image.Point) color.RGBA {
	r, g, b, a := img.At(p.X, p.Y).RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}

// count is how many pixels of r are c.
func count(img image.Image, r image.Rectangle, c color.RGBA) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if rgba(img, image.Pt(x, y)) == c {
				n++
			}
		}
	}
	return n
}

// Ensure that a line chart on log axes puts each point where its axes say,
// in its series' colour, with higher values higher up and equal ratios at
// equal distances, and draws the legend and the title.
func TestLines(t *testing.T) {
	var a, b []chart.Point
	for k := 16; k <= 28; k += 2 {
		x := math.Ldexp(1, k)
		a = append(a, chart.Point{X: x, Y: 200e3, Lo: 150e3, Hi: 260e3})
		b = append(b, chart.Point{X: x, Y: x / 8 * 0.5})
	}
	p := chart.New("Flush latency", "32 marks per flush", 960)
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, chart.LogTicks{Base: 2, Format: func(v float64) string { return fmt.Sprintf("2^%d", int(math.Log2(v))) }}
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, chart.LogTicks{Base: 10}
	series := []chart.Series{{Name: "dlog", Color: chart.Palette[0], Points: a}, {Name: "kernel", Color: chart.Palette[1], Dashed: true, Points: b}}
	if err := chart.AddLines(p, series...); err != nil {
		t.Fatal(err)
	}
	f := chart.Render(p, 960, 600)
	save(t, "lines.png", f)
	img := decode(t, f, 960, 600)
	for _, s := range series {
		for _, q := range s.Points {
			if got := rgba(img, f.Pixel(q.X, q.Y)); got != s.Color {
				t.Errorf("%s at (%g, %g), pixel %v: %v, want %v", s.Name, q.X, q.Y, f.Pixel(q.X, q.Y), got, s.Color)
			}
		}
	}
	if d1, d2 := f.Pixel(1<<18, 1).X-f.Pixel(1<<16, 1).X, f.Pixel(1<<28, 1).X-f.Pixel(1<<26, 1).X; d1 < d2-1 || d1 > d2+1 || d1 < 20 {
		t.Errorf("log2 axis uneven: %d and %d pixels per 4x", d1, d2)
	}
	if f.Pixel(1<<16, 1e6).Y >= f.Pixel(1<<16, 1e3).Y {
		t.Error("y axis points down")
	}
	black := color.RGBA{0, 0, 0, 0xff}
	if count(img, image.Rect(0, 0, 960, f.Data.Min.Y), black) < 50 {
		t.Error("no title above the data")
	}
	// The legend, top left in the data area: both colours and text.
	legend := image.Rect(f.Data.Min.X, f.Data.Min.Y, f.Data.Min.X+200, f.Data.Min.Y+60)
	for _, s := range series {
		if count(img, legend, s.Color) < 10 {
			t.Errorf("legend lacks the colour of %s", s.Name)
		}
	}
	if count(img, legend, black) < 20 {
		t.Error("legend has no text")
	}
	if err := chart.AddLines(chart.New("empty", "", 960)); err == nil {
		t.Error("a chart without series was accepted")
	}
}

// Ensure that grouped bars stand on the bottom of a log axis, each series
// in its colour, with the value labelled above.
func TestBarsLog(t *testing.T) {
	p := chart.New("Scan", "", 800)
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, chart.LogTicks{Base: 10}
	s := []chart.Series{
		{Name: "a", Color: chart.Palette[0], Points: []chart.Point{{Y: 29, Lo: 25, Hi: 33}, {Y: 1432}}},
		{Name: "b", Color: chart.Palette[2], Points: []chart.Point{{Y: 18}, {Y: math.NaN()}}},
	}
	if err := chart.AddBars(p, []string{"memory read", "summary"}, s, func(v float64) string { return fmt.Sprint(v) }); err != nil {
		t.Fatal(err)
	}
	f := chart.Render(p, 800, 500)
	save(t, "bars.png", f)
	img := decode(t, f, 800, 500)
	// Category 0 is centred on x=0: series a left of it, b right.
	for _, c := range []struct {
		x, y float64
		col  color.RGBA
	}{{-0.2, 20, s[0].Color}, {0.2, 12, s[1].Color}, {0.8, 1000, s[0].Color}} {
		if got := rgba(img, f.Pixel(c.x, c.y)); got != c.col {
			t.Errorf("bar at (%g, %g) is %v, want %v", c.x, c.y, got, c.col)
		}
	}
	// The missing bar of b in category 1 is not drawn.
	if got := rgba(img, f.Pixel(1.2, 12)); got == s[1].Color {
		t.Error("a NaN bar was drawn")
	}
	if err := chart.AddBars(p, []string{"x"}, s, nil); err == nil {
		t.Error("series of 2 bars for 1 category accepted")
	}
}

// Ensure that stacked panels share the picture under the title, in order.
func TestRenderStack(t *testing.T) {
	var panels []*plot.Plot
	for i := range 3 {
		p := chart.New(fmt.Sprintf("panel %d", i), "", 1000)
		if err := chart.AddLines(p, chart.Series{Color: chart.Palette[i], Points: []chart.Point{{X: 1, Y: 1}, {X: 2, Y: 2}}}); err != nil {
			t.Fatal(err)
		}
		panels = append(panels, p)
	}
	img, frames := chart.RenderStack("stack", panels, 1000, 900)
	dec := decode(t, img, 1000, 900)
	for i, f := range frames {
		if got := rgba(dec, f.Pixel(2, 2)); got != chart.Palette[i] {
			t.Errorf("panel %d: data point pixel %v", i, got)
		}
		if i > 0 && f.Data.Min.Y <= frames[i-1].Data.Max.Y {
			t.Errorf("panel %d (%v) is not below panel %d (%v)", i, f.Data, i-1, frames[i-1].Data)
		}
	}
}

// Ensure that log ticks label the powers in range, thin them to at most
// ten labels, add 2x and 5x on short base-10 ranges and unlabelled minor
// ticks between decades.
func TestLogTicks(t *testing.T) {
	labels := func(ts []plot.Tick) (l []float64, minor int) {
		for _, tk := range ts {
			if tk.Label == "" {
				minor++
			} else {
				l = append(l, tk.Value)
			}
		}
		return l, minor
	}
	if l, minor := labels(chart.LogTicks{Base: 2}.Ticks(1<<16, 1<<28)); len(l) != 7 || l[0] != 1<<16 || l[6] != 1<<28 || minor != 0 {
		t.Errorf("base 2, 2^16..2^28: labels %v, %d minor", l, minor)
	}
	if l, minor := labels(chart.LogTicks{Base: 10}.Ticks(3e2, 6e4)); fmt.Sprint(l) != "[1000 10000]" || minor != 7+8+5 {
		t.Errorf("base 10, 300..60000: labels %v, %d minor", l, minor)
	}
	if l, _ := labels(chart.LogTicks{Base: 10}.Ticks(1, 100)); fmt.Sprint(l) != "[1 2 5 10 20 50 100]" {
		t.Errorf("base 10, 1..100: labels %v", l)
	}
	if ts := (chart.LogTicks{Base: 10}).Ticks(0, 100); ts != nil {
		t.Errorf("ticks for a range from 0: %v", ts)
	}
}
