package plot_test

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/internal/plot"
)

var keep = flag.String("plot.keep", "", "write the test charts as PNG files into this directory")

func save(t *testing.T, name string, img image.Image) {
	t.Helper()
	if *keep == "" {
		return
	}
	if err := plot.WriteFile(filepath.Join(*keep, name), img); err != nil {
		t.Fatal(err)
	}
}

// Ensure that every printable ASCII character has a glyph of its own (only
// the space is blank) and that no glyph is shared by two characters.
func TestFontCoversASCII(t *testing.T) {
	seen := map[string]rune{}
	for r := rune(' '); r <= '~'; r++ {
		c := plot.NewCanvas(plot.Advance, plot.GlyphHeight, plot.White)
		plot.DrawText(c.RGBA, 0, 0, string(r), plot.Black, 1)
		ink := inkString(c.RGBA, c.Bounds(), plot.Black)
		if r == ' ' {
			if strings.Contains(ink, "#") {
				t.Errorf("space has ink")
			}
			continue
		}
		if !strings.Contains(ink, "#") {
			t.Errorf("%q has no glyph", r)
		}
		if o, dup := seen[ink]; dup {
			t.Errorf("%q and %q have the same glyph", o, r)
		}
		seen[ink] = r
	}
}

// inkString renders the pixels of r that are col as '#', others as '.'.
func inkString(img *image.RGBA, r image.Rectangle, col color.RGBA) string {
	var sb strings.Builder
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if img.RGBAAt(x, y) == col {
				sb.WriteByte('#')
			} else {
				sb.WriteByte('.')
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Ensure that text is drawn pixel for pixel as the font says, scaled, and
// that non-ASCII runes fall back to '?'.
func TestDrawText(t *testing.T) {
	c := plot.NewCanvas(40, 20, plot.White)
	end := c.Text(1, 2, "T1", plot.Black, 2)
	if want := 1 + 2*plot.Advance*2; end != want {
		t.Errorf("Text returned x=%d, want %d", end, want)
	}
	if w, want := plot.TextWidth("T1", 2), (2*plot.Advance-1)*2; w != want {
		t.Errorf("TextWidth = %d, want %d", w, want)
	}
	// The top bar of T is the first font row: 5 font pixels, 10 screen pixels.
	for x := 1; x < 11; x++ {
		if got := c.RGBAAt(x, 2); got != plot.Black {
			t.Fatalf("pixel (%d,2) of T's bar is %v", x, got)
		}
	}
	if got := c.RGBAAt(11, 2); got != plot.White {
		t.Errorf("pixel right of T is %v, want white", got)
	}
	q := plot.NewCanvas(6, 8, plot.White)
	plot.DrawText(q.RGBA, 0, 0, "?", plot.Black, 1)
	u := plot.NewCanvas(6, 8, plot.White)
	plot.DrawText(u.RGBA, 0, 0, "µ", plot.Black, 1)
	if !bytes.Equal(q.Pix, u.Pix) {
		t.Error("a non-ASCII rune is not drawn as '?'")
	}
}

// Ensure that upward text is the horizontal text turned a quarter turn.
func TestDrawTextUp(t *testing.T) {
	h := plot.NewCanvas(plot.TextWidth("Ab", 1), plot.GlyphHeight, plot.White)
	plot.DrawText(h.RGBA, 0, 0, "Ab", plot.Black, 1)
	v := plot.NewCanvas(plot.GlyphHeight, plot.TextWidth("Ab", 1), plot.White)
	plot.DrawTextUp(v.RGBA, 0, plot.TextWidth("Ab", 1), "Ab", plot.Black, 1)
	for y := 0; y < plot.GlyphHeight; y++ {
		for x := 0; x < plot.TextWidth("Ab", 1); x++ {
			// (x, y) of the horizontal text is (y, W-1-x) upwards.
			if hb, vb := h.RGBAAt(x, y), v.RGBAAt(y, plot.TextWidth("Ab", 1)-1-x); hb != vb {
				t.Fatalf("(%d,%d): horizontal %v, upward %v", x, y, hb, vb)
			}
		}
	}
}

func TestLine(t *testing.T) {
	c := plot.NewCanvas(20, 20, plot.White)
	c.Line(0, 0, 19, 19, 1, 0, plot.Black)
	for i := range 20 {
		if c.RGBAAt(i, i) != plot.Black {
			t.Fatalf("diagonal pixel %d not drawn", i)
		}
	}
	c = plot.NewCanvas(20, 3, plot.White)
	c.Line(0, 1, 19, 1, 1, 2, plot.Black)
	if c.RGBAAt(0, 1) != plot.Black || c.RGBAAt(2, 1) != plot.White || c.RGBAAt(4, 1) != plot.Black {
		t.Error("dashed line is not 2 on, 2 off")
	}
}

// Ensure that a line chart puts each point where its axes say, in its
// series' colour, and draws the legend with every series' colour.
func TestLineChart(t *testing.T) {
	var a, b []plot.Point
	for k := 16; k <= 28; k += 2 {
		x := math.Pow(2, float64(k))
		a = append(a, plot.Point{X: x, Y: 200e3, Lo: 150e3, Hi: 260e3})
		b = append(b, plot.Point{X: x, Y: x / 8 * 0.5})
	}
	ch := &plot.LineChart{
		Title: "Flush latency", Subtitle: "32 marks per flush",
		X:      plot.Axis{Label: "regions", Scale: plot.Log2, Format: func(v float64) string { return fmt.Sprintf("2^%d", int(math.Log2(v))) }},
		Y:      plot.Axis{Label: "ns per flush", Scale: plot.Log10},
		Series: []plot.Series{{Name: "dlog", Points: a}, {Name: "kernel", Dashed: true, Points: b}},
	}
	img, f, err := ch.Render()
	if err != nil {
		t.Fatal(err)
	}
	save(t, "line.png", img)
	for i, s := range ch.Series {
		for _, p := range s.Points {
			if got := img.RGBAAt(f.X(p.X), f.Y(p.Y)); got != plot.Palette[i] {
				t.Errorf("%s at (%g, %g): pixel %v, want %v", s.Name, p.X, p.Y, got, plot.Palette[i])
			}
		}
		if !hasColor(img.RGBA, f.Legend, plot.Palette[i]) {
			t.Errorf("legend lacks the colour of %s", s.Name)
		}
	}
	if !hasColor(img.RGBA, f.Legend, plot.Black) {
		t.Error("legend has no text")
	}
	// X is logarithmic: equal ratios, equal distances.
	d1 := f.X(1<<18) - f.X(1<<16)
	d2 := f.X(1<<28) - f.X(1<<26)
	if d1 != d2 && d1 != d2+1 && d1 != d2-1 {
		t.Errorf("log2 axis uneven: %d and %d pixels per 4x", d1, d2)
	}
	// Higher values are higher up.
	if f.Y(1e6) >= f.Y(1e3) {
		t.Error("y axis points down")
	}
	var buf bytes.Buffer
	if err := plot.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	dec, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Bounds() != img.Bounds() {
		t.Errorf("decoded bounds %v, want %v", dec.Bounds(), img.Bounds())
	}
}

func TestBarChart(t *testing.T) {
	ch := &plot.BarChart{
		Title:      "IN_SYNC round trip",
		Y:          plot.Axis{Label: "us"},
		Categories: []string{"1 client", "2 clients"},
		Series: []plot.Series{
			{Name: "echo", Points: []plot.Point{{Y: 10, Lo: 9, Hi: 11}, {Y: 12}}},
			{Name: "dlogd", Points: []plot.Point{{Y: 11}, {Y: math.NaN()}}},
		},
		ValueFormat: func(v float64) string { return fmt.Sprintf("%.0f", v) },
	}
	img, f, err := ch.Render()
	if err != nil {
		t.Fatal(err)
	}
	save(t, "bar.png", img)
	// The foot of each drawn bar is its colour, just above the zero line.
	inner := f.Plot.Inset(1)
	if !hasColor(img.RGBA, inner, plot.Palette[0]) || !hasColor(img.RGBA, inner, plot.Palette[1]) {
		t.Error("bars missing")
	}
	if _, _, err := (&plot.BarChart{Title: "empty"}).Render(); err == nil {
		t.Error("empty bar chart rendered")
	}
	if _, _, err := (&plot.LineChart{Title: "empty", Y: plot.Axis{Scale: plot.Log10}, Series: []plot.Series{{Points: []plot.Point{{X: 1, Y: -1}}}}}).Render(); err == nil {
		t.Error("line chart without a drawable point rendered")
	}
}

func hasColor(img *image.RGBA, r image.Rectangle, col color.RGBA) bool {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if img.RGBAAt(x, y) == col {
				return true
			}
		}
	}
	return false
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(m.Run())
}
