package plot

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"
	"strings"
)

// Scale is how an axis maps values to pixels.
type Scale int

const (
	// Linear maps values proportionally; ticks at 1, 2 or 5 x 10^k steps.
	Linear Scale = iota
	// Log2 maps log2 of the value; ticks at powers of two.
	Log2
	// Log10 maps log10 of the value; ticks at powers of ten (and 2x, 5x
	// when the range spans few decades).
	Log10
)

// Axis describes one axis of a chart.
type Axis struct {
	Label string
	Scale Scale
	// Format writes a tick label (nil: strconv 'g').
	Format func(float64) string
	// Min and Max fix the range when Max > Min; otherwise it is taken
	// from the data (linear axes of non-negative data start at 0).
	Min, Max float64
}

// Point is one measured value with its spread.
type Point struct {
	X, Y float64
	// Lo and Hi are the spread of Y (min and max, or quartiles), drawn as
	// an error bar when Hi > Lo.
	Lo, Hi float64
}

// Series is one line of a line chart or one colour of bars.
type Series struct {
	// Name is the series' legend entry (none when empty).
	Name string
	// Color is the series colour (zero: the next colour of Palette).
	Color  color.RGBA
	Dashed bool
	Points []Point
}

// Frame is where a rendered chart put its data: the plot rectangle and
// the value-to-pixel mappings, for tests and annotations.
type Frame struct {
	Plot image.Rectangle
	X    func(float64) int
	Y    func(float64) int
	// Legend is the rectangle of the legend, below the plot (empty when
	// no series has a name).
	Legend image.Rectangle
}

// LineChart is a chart of series over a numeric x axis.
type LineChart struct {
	Title, Subtitle string
	X, Y            Axis
	Series          []Series
	// Width and Height in pixels (0: 960 x 600); FontScale multiplies the
	// font (0: 2).
	Width, Height, FontScale int
}

// BarChart is a chart of grouped bars: one group per category, one bar
// per series in each group.
type BarChart struct {
	Title, Subtitle string
	Y               Axis
	Categories      []string
	// Series[i].Points[j] is the bar of series i in category j (X is
	// ignored); a NaN Y leaves the bar out.
	Series []Series
	// ValueFormat labels each bar with its value (nil: no labels).
	ValueFormat func(float64) string
	// Width and Height in pixels (0: 960 x 600); FontScale multiplies the
	// font (0: 2).
	Width, Height, FontScale int
}

// ErrNoData is returned for a chart with nothing to draw.
var ErrNoData = errors.New("plot: no data")

// axisMap is a resolved axis: range, ticks and the pixel mapping.
type axisMap struct {
	Axis
	lo, hi float64 // in transformed units (log for log axes)
	ticks  []float64
}

func (a *axisMap) tr(v float64) float64 {
	switch a.Scale {
	case Log2:
		return math.Log2(v)
	case Log10:
		return math.Log10(v)
	}
	return v
}

// frac is the position of v along the axis, 0 at lo and 1 at hi.
func (a *axisMap) frac(v float64) float64 {
	if a.hi == a.lo {
		return 0.5
	}
	return (a.tr(v) - a.lo) / (a.hi - a.lo)
}

func (a *axisMap) label(v float64) string {
	if a.Format != nil {
		return a.Format(v)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// valid reports whether v can be drawn on the axis.
func (a *axisMap) valid(v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	return a.Scale == Linear || v > 0
}

// resolve picks the range and the ticks of an axis for data between dmin
// and dmax (already restricted to values the axis can show).
func resolve(a Axis, dmin, dmax float64, zeroBased bool) *axisMap {
	m := &axisMap{Axis: a}
	if a.Max > a.Min {
		dmin, dmax = a.Min, a.Max
	}
	switch a.Scale {
	case Log2, Log10:
		base := 2.0
		if a.Scale == Log10 {
			base = 10
		}
		lo, hi := math.Floor(m.tr(dmin)), math.Ceil(m.tr(dmax))
		if a.Max > a.Min {
			lo, hi = m.tr(dmin), m.tr(dmax)
		}
		if hi <= lo {
			hi = lo + 1
		}
		m.lo, m.hi = lo, hi
		step := math.Max(1, math.Ceil((hi-lo)/10))
		for e := math.Ceil(lo); e <= hi+1e-9; e += step {
			m.ticks = append(m.ticks, math.Pow(base, e))
			if a.Scale == Log10 && hi-lo <= 2 {
				for _, k := range []float64{2, 5} {
					if e+math.Log10(k) < hi {
						m.ticks = append(m.ticks, k*math.Pow(base, e))
					}
				}
			}
		}
	default:
		if zeroBased && dmin >= 0 && a.Max <= a.Min {
			dmin = 0
		}
		if dmax <= dmin {
			dmax = dmin + 1
		}
		step := niceStep((dmax - dmin) / 5)
		lo, hi := dmin, dmax
		if a.Max <= a.Min {
			lo = math.Floor(dmin/step) * step
			hi = math.Ceil(dmax/step) * step
		}
		m.lo, m.hi = lo, hi
		for t := math.Ceil(lo/step) * step; t <= hi+step*1e-9; t += step {
			m.ticks = append(m.ticks, t)
		}
	}
	return m
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, k := range []float64{1, 2, 5, 10} {
		if k*p >= x {
			return k * p
		}
	}
	return 10 * p
}

// layout is the common frame of both chart kinds.
type layout struct {
	c      *Canvas
	s      int // font scale
	plot   image.Rectangle
	legend image.Rectangle
	x, y   *axisMap
}

const (
	legendSwatch = 14 // font pixels of the legend's colour sample
	inset        = 12 // screen pixels between the axes and the data
)

func seriesColor(s Series, i int) color.RGBA {
	if s.Color.A != 0 {
		return s.Color
	}
	return Palette[i%len(Palette)]
}

// wrap splits s into lines no wider than w pixels at scale, at spaces (a
// word wider than w gets a line of its own).
func wrap(s string, w, scale int) []string {
	var lines []string
	cur := ""
	for _, word := range strings.Fields(s) {
		if cur != "" && TextWidth(cur+" "+word, scale) > w {
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

// legendEntry is one series in the legend: its swatch and name.
type legendEntry struct {
	x, y int // top-left of the swatch, relative to the legend's corner
	s    Series
	col  color.RGBA
}

// layoutLegend places the entries in rows no wider than w, and returns
// them with the legend's size.
func layoutLegend(series []Series, w, s int) ([]legendEntry, int, int) {
	margin := 4 * s
	var out []legendEntry
	x, y, maxX := margin, margin, 0
	for i, sr := range series {
		if sr.Name == "" {
			continue
		}
		ew := (legendSwatch+4)*s + TextWidth(sr.Name, s)
		if x > margin && x+ew+margin > w {
			x, y = margin, y+LineHeight*s
		}
		out = append(out, legendEntry{x: x, y: y, s: sr, col: seriesColor(sr, i)})
		x += ew + 3*margin
		maxX = max(maxX, x-2*margin)
	}
	if len(out) == 0 {
		return nil, 0, 0
	}
	return out, maxX, y + LineHeight*s + margin/2
}

// newLayout draws the title, the axes, the ticks, the grid and the legend
// (below the plot) and returns the frame to draw the data in. xcats labels
// the x axis when x is nil (bar charts).
func newLayout(w, h, s int, title, subtitle string, x, y *axisMap, xLabel string, xcats []string, series []Series, bars bool) *layout {
	if w == 0 {
		w = 960
	}
	if h == 0 {
		h = 600
	}
	if s == 0 {
		s = 2
	}
	c := NewCanvas(w, h, White)
	lh := LineHeight * s
	margin := 4 * s
	top := margin
	for _, line := range wrap(title, w-2*margin, s) {
		c.TextCenter(w/2, top, line, Black, s)
		top += lh
	}
	for _, line := range wrap(subtitle, w-2*margin, s) {
		c.TextCenter(w/2, top, line, Grey, s)
		top += lh
	}
	top += lh / 2

	yw := 0
	for _, t := range y.ticks {
		yw = max(yw, TextWidth(y.label(t), s))
	}
	left := margin + TextHeight(s) + margin + yw + margin
	right := w - 2*margin
	entries, legendW, legendH := layoutLegend(series, right-left, s)

	// Category labels may wrap: the x axis gets the lines it needs.
	catLines := make([][]string, len(xcats))
	nl := 1
	if len(xcats) > 0 {
		gw := (right - left - 2*inset) / len(xcats)
		for i, cat := range xcats {
			catLines[i] = wrap(cat, gw-2*s, s)
			nl = max(nl, len(catLines[i]))
		}
	}
	xlab := 0
	if xLabel != "" {
		xlab = lh
	}
	bottom := h - margin - legendH - margin - xlab - nl*lh - s*4
	l := &layout{c: c, s: s, x: x, y: y}
	l.plot = image.Rect(left, top, right, bottom)

	// Grid and y ticks.
	for _, t := range y.ticks {
		py := l.py(t)
		c.HLine(l.plot.Min.X, l.plot.Max.X, py, LightGrey)
		c.HLine(l.plot.Min.X-s*2, l.plot.Min.X, py, Black)
		c.TextRight(l.plot.Min.X-s*3, py-TextHeight(s)/2+s/2, y.label(t), Black, s)
	}
	if x != nil {
		for _, t := range x.ticks {
			px := l.px(t)
			c.VLine(px, l.plot.Min.Y, l.plot.Max.Y, LightGrey)
			c.VLine(px, l.plot.Max.Y, l.plot.Max.Y+s*2, Black)
			c.TextCenter(px, l.plot.Max.Y+s*4, x.label(t), Black, s)
		}
	}
	for i, lines := range catLines {
		for k, line := range lines {
			c.TextCenter(l.catX(i, len(xcats)), l.plot.Max.Y+s*4+k*lh, line, Black, s)
		}
	}
	// Axes.
	c.VLine(l.plot.Min.X, l.plot.Min.Y, l.plot.Max.Y, Black)
	c.HLine(l.plot.Min.X, l.plot.Max.X, l.plot.Max.Y, Black)
	if xLabel != "" {
		c.TextCenter((l.plot.Min.X+l.plot.Max.X)/2, l.plot.Max.Y+s*4+nl*lh, xLabel, Black, s)
	}
	DrawTextUp(c.RGBA, margin, (l.plot.Min.Y+l.plot.Max.Y)/2+TextWidth(y.Label, s)/2, y.Label, Black, s)

	// Legend, centred below the plot.
	if len(entries) > 0 {
		lx := (l.plot.Min.X+l.plot.Max.X)/2 - legendW/2
		ly := h - margin - legendH
		l.legend = image.Rect(lx, ly, lx+legendW, ly+legendH)
		c.Outline(l.legend, Grey)
		for _, e := range entries {
			sw := image.Rect(lx+e.x, ly+e.y, lx+e.x+legendSwatch*s, ly+e.y+TextHeight(s)-s)
			if bars {
				c.Fill(sw, e.col)
			} else {
				dash := 0
				if e.s.Dashed {
					dash = 3 * s
				}
				mid := (sw.Min.Y + sw.Max.Y) / 2
				c.Line(sw.Min.X, mid, sw.Max.X, mid, s, dash, e.col)
				c.Fill(image.Rect((sw.Min.X+sw.Max.X)/2-2*s, mid-2*s, (sw.Min.X+sw.Max.X)/2+2*s, mid+2*s), e.col)
			}
			c.Text(sw.Max.X+4*s, ly+e.y, e.s.Name, Black, s)
		}
	}
	return l
}

// px and py map values to pixels inside the plot, inset from the axes.
func (l *layout) px(v float64) int {
	return l.plot.Min.X + inset + int(math.Round(l.x.frac(v)*float64(l.plot.Dx()-2*inset)))
}

func (l *layout) py(v float64) int {
	return l.plot.Max.Y - inset - int(math.Round(l.y.frac(v)*float64(l.plot.Dy()-2*inset)))
}

// catX is the centre of category i of n.
func (l *layout) catX(i, n int) int {
	w := float64(l.plot.Dx()-2*inset) / float64(n)
	return l.plot.Min.X + inset + int(w*(float64(i)+0.5))
}

func (l *layout) frame() Frame {
	f := Frame{Plot: l.plot, Y: l.py, Legend: l.legend}
	if l.x != nil {
		f.X = l.px
	}
	return f
}

// errorBar draws a vertical bar from lo to hi at x with caps.
func (l *layout) errorBar(x int, p Point, col color.Color) {
	if !(p.Hi > p.Lo) || !l.y.valid(p.Lo) || !l.y.valid(p.Hi) {
		return
	}
	y0, y1 := l.py(p.Lo), l.py(p.Hi)
	l.c.VLine(x, y0, y1, col)
	l.c.HLine(x-2*l.s, x+2*l.s, y0, col)
	l.c.HLine(x-2*l.s, x+2*l.s, y1, col)
}

// dataRange returns the smallest and largest values of the points that
// the axis can show, spreads included.
func dataRange(a Axis, series []Series, get func(Point) []float64) (float64, float64, bool) {
	m := &axisMap{Axis: a}
	lo, hi, ok := math.Inf(1), math.Inf(-1), false
	for _, s := range series {
		for _, p := range s.Points {
			for _, v := range get(p) {
				if m.valid(v) {
					lo, hi, ok = math.Min(lo, v), math.Max(hi, v), true
				}
			}
		}
	}
	return lo, hi, ok
}

func yValues(p Point) []float64 {
	if p.Hi > p.Lo {
		return []float64{p.Y, p.Lo, p.Hi}
	}
	return []float64{p.Y}
}

// Render draws the chart.
func (ch *LineChart) Render() (*Canvas, Frame, error) {
	xlo, xhi, okx := dataRange(ch.X, ch.Series, func(p Point) []float64 { return []float64{p.X} })
	ylo, yhi, oky := dataRange(ch.Y, ch.Series, yValues)
	if !okx || !oky {
		return nil, Frame{}, fmt.Errorf("line chart %q: %w", ch.Title, ErrNoData)
	}
	x := resolve(ch.X, xlo, xhi, false)
	y := resolve(ch.Y, ylo, yhi, true)
	l := newLayout(ch.Width, ch.Height, ch.FontScale, ch.Title, ch.Subtitle, x, y, ch.X.Label, nil, ch.Series, false)
	for i, sr := range ch.Series {
		col := seriesColor(sr, i)
		dash := 0
		if sr.Dashed {
			dash = 3 * l.s
		}
		prev := image.Point{-1, -1}
		for _, p := range sr.Points {
			if !x.valid(p.X) || !y.valid(p.Y) {
				prev = image.Point{-1, -1}
				continue
			}
			pt := image.Pt(l.px(p.X), l.py(p.Y))
			if prev.X >= 0 {
				l.c.Line(prev.X, prev.Y, pt.X, pt.Y, l.s, dash, col)
			}
			prev = pt
		}
		for _, p := range sr.Points {
			if !x.valid(p.X) || !y.valid(p.Y) {
				continue
			}
			px, py := l.px(p.X), l.py(p.Y)
			l.errorBar(px, p, col)
			l.c.Fill(image.Rect(px-2*l.s, py-2*l.s, px+2*l.s, py+2*l.s), col)
		}
	}
	return l.c, l.frame(), nil
}

// Render draws the chart.
func (ch *BarChart) Render() (*Canvas, Frame, error) {
	if len(ch.Categories) == 0 || len(ch.Series) == 0 {
		return nil, Frame{}, fmt.Errorf("bar chart %q: %w", ch.Title, ErrNoData)
	}
	ylo, yhi, ok := dataRange(ch.Y, ch.Series, yValues)
	if !ok {
		return nil, Frame{}, fmt.Errorf("bar chart %q: %w", ch.Title, ErrNoData)
	}
	y := resolve(ch.Y, ylo, yhi, true)
	l := newLayout(ch.Width, ch.Height, ch.FontScale, ch.Title, ch.Subtitle, nil, y, "", ch.Categories, ch.Series, true)
	n := len(ch.Categories)
	groupW := float64(l.plot.Dx()-2*inset) / float64(n)
	barW := int(groupW * 0.8 / float64(len(ch.Series)))
	base := l.plot.Max.Y
	if y.Scale == Linear && y.lo <= 0 && y.hi >= 0 {
		base = l.py(0)
	}
	for i, sr := range ch.Series {
		col := seriesColor(sr, i)
		for j, p := range sr.Points {
			if j >= n || !y.valid(p.Y) {
				continue
			}
			x0 := l.catX(j, n) - int(groupW*0.4) + i*barW
			top := l.py(p.Y)
			l.c.Fill(image.Rect(x0+1, min(top, base), x0+barW-1, max(top, base)), col)
			l.errorBar(x0+barW/2, p, Black)
			if ch.ValueFormat != nil {
				lab := ch.ValueFormat(p.Y)
				fs := l.s // the chart's font if the label fits the bar, else the smallest
				if TextWidth(lab, fs) > barW {
					fs = 1
				}
				ty := top
				if p.Hi > p.Lo && y.valid(p.Hi) {
					ty = min(ty, l.py(p.Hi))
				}
				l.c.TextCenter(x0+barW/2, ty-TextHeight(fs)-l.s, lab, Black, fs)
			}
		}
	}
	return l.c, l.frame(), nil
}
