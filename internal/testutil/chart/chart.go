package chart

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// ErrNoData is returned for a chart with nothing to draw.
var ErrNoData = errors.New("chart: no data")

// Palette is the series colours, in order: distinct for the usual forms of
// colour blindness (Okabe and Ito).
var Palette = []color.RGBA{
	{0x00, 0x72, 0xb2, 0xff}, // blue
	{0xd5, 0x5e, 0x00, 0xff}, // vermillion
	{0x00, 0x9e, 0x73, 0xff}, // bluish green
	{0xcc, 0x79, 0xa7, 0xff}, // reddish purple
	{0xe6, 0x9f, 0x00, 0xff}, // orange
	{0x56, 0xb4, 0xe9, 0xff}, // sky blue
	{0x00, 0x00, 0x00, 0xff}, // black
}

// DPI is the resolution charts are rendered at: a width in pixels is
// width*72/DPI points to gonum.
const DPI = 96

func pt(px float64) vg.Length { return vg.Length(px * 72 / DPI) }

// Point is one measured value with its spread.
type Point struct {
	X, Y float64
	// Lo and Hi are the spread of Y (min and max), drawn as an error bar
	// when Hi > Lo.
	Lo, Hi float64
}

// Series is one line of a line chart or one colour of bars.
type Series struct {
	Name   string // legend entry (none when empty)
	Color  color.RGBA
	Dashed bool
	Points []Point
}

// New returns a plot with title and, below it, subtitle wrapped to fit
// width pixels, and the legend in the top left corner. AddLines and AddBars
// add the grid.
func New(title, subtitle string, width int) *plot.Plot {
	p := plot.New()
	p.Title.TextStyle.Font.Size = 14
	lines := []string{title}
	if subtitle != "" {
		lines = append(lines, wrap(subtitle, p.Title.TextStyle.Font, pt(float64(width)*0.95))...)
	}
	p.Title.Text = strings.Join(lines, "\n")
	p.Title.Padding = pt(8)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = pt(8), -pt(4)
	return p
}

// wrap splits s into lines no wider than w, at spaces.
func wrap(s string, f font.Font, w vg.Length) []string {
	face := plot.DefaultTextHandler.Cache().Lookup(f, f.Size)
	var lines []string
	cur := ""
	for _, word := range strings.Fields(s) {
		if cur != "" && face.Width(cur+" "+word) > w {
			lines = append(lines, cur)
			cur = word
			continue
		}
		if cur != "" {
			cur += " "
		}
		cur += word
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// points is a series' points as gonum's XYer and YErrorer.
type points []Point

func (ps points) Len() int                    { return len(ps) }
func (ps points) XY(i int) (float64, float64) { return ps[i].X, ps[i].Y }
func (ps points) YError(i int) (float64, float64) {
	return ps[i].Y - ps[i].Lo, ps[i].Hi - ps[i].Y
}

// spread is the points of s that have a spread.
func spread(s []Point) points {
	var out points
	for _, p := range s {
		if p.Hi > p.Lo {
			out = append(out, p)
		}
	}
	return out
}

// AddLines adds each series as a line through its points, a dot on each
// point and its spreads as error bars, with a legend entry.
func AddLines(p *plot.Plot, series ...Series) error {
	if len(series) == 0 {
		return ErrNoData
	}
	p.Add(plotter.NewGrid())
	for _, s := range series {
		l, sc, err := plotter.NewLinePoints(points(s.Points))
		if err != nil {
			return fmt.Errorf("chart: %s: %w", s.Name, err)
		}
		l.Color, l.Width = s.Color, pt(2)
		if s.Dashed {
			l.Dashes = []vg.Length{pt(6), pt(4)}
		}
		sc.Color, sc.Shape, sc.Radius = s.Color, draw.CircleGlyph{}, pt(4)
		p.Add(l, sc)
		if e := spread(s.Points); len(e) > 0 {
			bars, err := plotter.NewYErrorBars(e)
			if err != nil {
				return fmt.Errorf("chart: %s: %w", s.Name, err)
			}
			bars.Color, bars.Width, bars.CapWidth = s.Color, pt(1.5), pt(8)
			p.Add(bars)
		}
		if s.Name != "" {
			p.Legend.Add(s.Name, l, sc)
		}
	}
	return nil
}

// bars is one series of a grouped bar chart: bar i stands at category i,
// the group's slot-th of n. It draws from zero, or from the bottom of a
// log axis.
type bars struct {
	s       Series
	slot, n int
	log     bool
}

const groupWidth = 0.8 // of a category

func (b *bars) span(i int) (float64, float64) {
	w := groupWidth / float64(b.n)
	x0 := float64(i) - groupWidth/2 + float64(b.slot)*w
	return x0, x0 + w
}

func (b *bars) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	base := 0.0
	if b.log {
		base = p.Y.Min
	}
	c.SetColor(b.s.Color)
	for i, v := range b.s.Points {
		if math.IsNaN(v.Y) {
			continue
		}
		x0, x1 := b.span(i)
		r := vg.Rectangle{Min: vg.Point{X: tx(x0), Y: ty(max(base, p.Y.Min))}, Max: vg.Point{X: tx(x1), Y: ty(v.Y)}}
		c.Fill(r.Path())
	}
}

func (b *bars) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = -0.5, float64(len(b.s.Points))-0.5
	ymin, ymax = math.Inf(1), math.Inf(-1)
	if !b.log {
		ymin = 0
	}
	for _, v := range b.s.Points {
		for _, y := range []float64{v.Y, v.Lo, v.Hi} {
			if math.IsNaN(y) || (b.log && y <= 0) || (y == 0 && v.Hi <= v.Lo) {
				continue
			}
			ymin, ymax = min(ymin, y), max(ymax, y)
		}
	}
	return xmin, xmax, ymin, ymax
}

func (b *bars) Thumbnail(c *draw.Canvas) {
	c.SetColor(b.s.Color)
	c.Fill(c.Rectangle.Path())
}

// AddBars adds a grouped bar chart: one group per category, one bar per
// series in each group (a NaN Y leaves the bar out), spreads as error
// bars and, when label is not nil, each bar's value above it. Set the y
// axis' scale before: on a log axis the bars stand on its bottom.
func AddBars(p *plot.Plot, categories []string, series []Series, label func(float64) string) error {
	if len(categories) == 0 || len(series) == 0 {
		return ErrNoData
	}
	_, log := p.Y.Scale.(plot.LogScale)
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	p.Add(grid)
	for k, s := range series {
		if len(s.Points) != len(categories) {
			return fmt.Errorf("chart: series %q has %d bars for %d categories", s.Name, len(s.Points), len(categories))
		}
		b := &bars{s: s, slot: k, n: len(series), log: log}
		p.Add(b)
		var mid points
		var top plotter.XYLabels
		for i, v := range s.Points {
			if math.IsNaN(v.Y) {
				continue
			}
			x0, x1 := b.span(i)
			c := Point{X: (x0 + x1) / 2, Y: v.Y, Lo: v.Lo, Hi: v.Hi}
			if v.Hi > v.Lo {
				mid = append(mid, c)
			}
			if label != nil {
				top.XYs = append(top.XYs, plotter.XY{X: c.X, Y: max(v.Y, v.Hi)})
				top.Labels = append(top.Labels, label(v.Y))
			}
		}
		if len(mid) > 0 {
			e, err := plotter.NewYErrorBars(mid)
			if err != nil {
				return fmt.Errorf("chart: %s: %w", s.Name, err)
			}
			e.Color, e.Width, e.CapWidth = color.Black, pt(1), pt(8)
			p.Add(e)
		}
		if label != nil {
			l, err := plotter.NewLabels(top)
			if err != nil {
				return fmt.Errorf("chart: %s: %w", s.Name, err)
			}
			for i := range l.TextStyle {
				l.TextStyle[i].XAlign = draw.XCenter
			}
			l.Offset = vg.Point{Y: pt(4)}
			p.Add(l)
		}
		if s.Name != "" {
			p.Legend.Add(s.Name, b)
		}
	}
	p.NominalX(categories...)
	if log {
		p.Y.Min = math.Pow(10, math.Floor(math.Log10(p.Y.Min)))
		p.Y.Max = math.Pow(10, math.Ceil(math.Log10(p.Y.Max*1.5)))
	} else {
		p.Y.Max *= 1.08 // room for the value labels
	}
	return nil
}

// LogTicks ticks a log axis at the powers of Base (2 or 10) in its range,
// every few powers so that at most ten are labelled, with the 2x and 5x
// steps too on a base-10 axis of two decades or less, and unlabelled
// minor ticks between the powers of ten. Format labels a tick (nil: %g).
type LogTicks struct {
	Base   float64
	Format func(float64) string
}

// Ticks implements plot.Ticker.
func (t LogTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo {
		return nil
	}
	logb := func(v float64) float64 { return math.Log(v) / math.Log(t.Base) }
	e0, e1 := math.Ceil(logb(lo)-1e-9), math.Floor(logb(hi)+1e-9)
	step := math.Max(1, math.Ceil((e1-e0+1)/10))
	var out []plot.Tick
	for e := e0; e <= e1; e += step {
		v := math.Pow(t.Base, e)
		out = append(out, plot.Tick{Value: v, Label: t.label(v)})
		if t.Base == 10 && logb(hi)-logb(lo) <= 2 {
			for _, k := range []float64{2, 5} {
				if k*v <= hi {
					out = append(out, plot.Tick{Value: k * v, Label: t.label(k * v)})
				}
			}
		}
	}
	// Unlabelled minor ticks at 2..9 times each power of ten.
	if t.Base == 10 && step == 1 {
		for e := e0 - 1; e <= e1; e++ {
			for k := 2.0; k <= 9; k++ {
				if v := k * math.Pow(10, e); v >= lo && v <= hi && (logb(hi)-logb(lo) > 2 || (k != 2 && k != 5) || e < e0) {
					out = append(out, plot.Tick{Value: v})
				}
			}
		}
	}
	return out
}

func (t LogTicks) label(v float64) string {
	if t.Format != nil {
		return t.Format(v)
	}
	return fmt.Sprintf("%g", v)
}

// Format labels the ticks of ticker with f.
func Format(ticker plot.Ticker, f func(float64) string) plot.Ticker {
	return plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		ts := ticker.Ticks(lo, hi)
		for i := range ts {
			if ts[i].Label != "" {
				ts[i].Label = f(ts[i].Value)
			}
		}
		return ts
	})
}

// Frame is a rendered chart: the image and where its data went.
type Frame struct {
	*image.RGBA
	// Data is the rectangle of the data area; Pixel maps a data point to
	// its pixel.
	Data  image.Rectangle
	Pixel func(x, y float64) image.Point
}

// Render draws p into a w x h pixel image.
func Render(p *plot.Plot, w, h int) *Frame {
	c := vgimg.NewWith(vgimg.UseWH(pt(float64(w)), pt(float64(h))), vgimg.UseDPI(DPI))
	dc := draw.New(c)
	p.Draw(dc)
	return frame(c, p, dc)
}

func frame(c *vgimg.Canvas, p *plot.Plot, dc draw.Canvas) *Frame {
	img := c.Image().(*image.RGBA)
	h := float64(img.Bounds().Dy())
	toPx := func(v vg.Point) image.Point {
		return image.Pt(int(math.Round(float64(v.X)*DPI/72)), int(math.Round(h-float64(v.Y)*DPI/72)))
	}
	data := p.DataCanvas(dc)
	tx, ty := p.Transforms(&data)
	return &Frame{
		RGBA:  img,
		Data:  image.Rectangle{Min: toPx(vg.Point{X: data.Min.X, Y: data.Max.Y}), Max: toPx(vg.Point{X: data.Max.X, Y: data.Min.Y})},
		Pixel: func(x, y float64) image.Point { return toPx(vg.Point{X: tx(x), Y: ty(y)}) },
	}
}

// RenderStack draws a title and, below it, the panels one above the
// other, each the same height, into a w x h pixel image, and returns the
// image with the frame of each panel.
func RenderStack(title string, panels []*plot.Plot, w, h int) (*image.RGBA, []*Frame) {
	c := vgimg.NewWith(vgimg.UseWH(pt(float64(w)), pt(float64(h))), vgimg.UseDPI(DPI))
	dc := draw.New(c)
	sty := plot.New().Title.TextStyle
	sty.Font.Size = 16
	dc.FillText(sty, vg.Point{X: dc.Center().X, Y: dc.Max.Y - pt(8)}, title)
	dc.Max.Y -= sty.Height(title) + pt(16)
	rows := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		rows[i] = []*plot.Plot{p}
	}
	tiles := plot.Align(rows, draw.Tiles{Rows: len(panels), Cols: 1, PadY: pt(16), PadLeft: pt(8), PadRight: pt(8), PadBottom: pt(8)}, dc)
	frames := make([]*Frame, len(panels))
	for i, p := range panels {
		p.Draw(tiles[i][0])
		frames[i] = frame(c, p, tiles[i][0])
	}
	return frames[0].RGBA, frames
}

// Encode writes img as PNG.
func Encode(w io.Writer, img image.Image) error {
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(w, img); err != nil {
		return fmt.Errorf("chart: encode png: %w", err)
	}
	return nil
}

// WriteFile writes img as a PNG file at path.
func WriteFile(path string, img image.Image) error {
	var buf bytes.Buffer
	if err := Encode(&buf, img); err != nil {
		return fmt.Errorf("chart: %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}
