package vmharness

import (
	"bytes"
	"fmt"
	"image"
	"image/color"

	"github.com/dlog-dev/dlog/internal/testutil/chart"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The benchmark chart (bench/vm-results.png): one panel of horizontal bars
// per operation, a bar per configuration, drawn with gonum.org/v1/plot
// through package chart.

// ChartPanel is one horizontal bar chart: a value per label.
type ChartPanel struct {
	Title  string
	Labels []string
	Values []float64 // seconds; 0 means no bar
	Notes  []string  // printed after each bar's value, e.g. "8.1x kernel disk"
}

// ChartTitle is the title of the benchmark chart.
func (r *BenchResults) ChartTitle() string {
	return "dlog make vmbench: dm-mirror on " + r.Kernel + " under qemu TCG, by dirty log"
}

// ChartPNG renders the benchmark chart of r as a PNG.
func (r *BenchResults) ChartPNG() ([]byte, error) {
	return RenderChart(r.ChartTitle(), r.BenchChart())
}

// BenchChart builds the panels for the report: 4 KiB writes (ms per
// write), 4 KiB reads and 1 MiB writes (median seconds) by log.
func (r *BenchResults) BenchChart() []ChartPanel {
	st := r.Stats()
	kd := st[BenchKernelDisk]
	var out []ChartPanel
	// 4 KiB writes per write: the cmirrord rows move less than the rest.
	w := ChartPanel{Title: fmt.Sprintf("4 KiB O_DIRECT writes through dm-mirror, ms per write (median of %d)", r.Rounds)}
	for _, c := range r.Configs {
		v := st[c]["write 4K"].PerOp
		w.Labels = append(w.Labels, c)
		w.Values = append(w.Values, v)
		note := ""
		if base := kd["write 4K"].PerOp; base > 0 && v > 0 {
			note = fmt.Sprintf("%.1fx kernel disk", v/base)
		}
		w.Notes = append(w.Notes, note)
	}
	out = append(out, w)
	for _, op := range []struct{ key, title string }{
		{"read 4K", fmt.Sprintf("%d MiB of 4 KiB O_DIRECT reads, seconds (median of %d)", r.Bytes>>20, r.Rounds)},
		{"write 1M", fmt.Sprintf("%d MiB of 1 MiB O_DIRECT writes, seconds (median of %d)", r.Bytes>>20, r.Rounds)},
	} {
		p := ChartPanel{Title: op.title}
		for _, c := range r.Configs {
			v := st[c][op.key].Median
			p.Labels = append(p.Labels, c)
			p.Values = append(p.Values, v)
			note := ""
			if base := kd[op.key].Median; base > 0 && v > 0 {
				note = fmt.Sprintf("%.1fx kernel disk", v/base)
			}
			p.Notes = append(p.Notes, note)
		}
		out = append(out, p)
	}
	return out
}

// barColor is the colour of the i-th configuration's bars.
var barColor = []color.RGBA{
	{90, 90, 90, 255},    // kernel core
	{40, 40, 40, 255},    // kernel disk
	{200, 140, 40, 255},  // bare
	{230, 180, 90, 255},  // bare on the netpoller
	{40, 110, 190, 255},  // dlogd core
	{30, 150, 90, 255},   // dlogd disk
	{110, 160, 220, 255}, // dlogd core if
	{100, 200, 140, 255}, // dlogd disk if
	{150, 80, 160, 255},  // bare if and the cmirrord rows
	{180, 60, 60, 255},
	{220, 110, 110, 255},
	{120, 40, 40, 255},
	{200, 170, 200, 255},
}

const (
	chartWidth = 1200
	barPixels  = 26 // height of one bar's row
	panelExtra = 110
)

// RenderChart draws the panels one above the other and returns the PNG.
func RenderChart(title string, panels []ChartPanel) ([]byte, error) {
	img, _, err := renderChart(title, panels)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := chart.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// renderChart draws the panels; in panel k, bar i of n stands at y = n-1-i
// (the first label on top).
func renderChart(title string, panels []ChartPanel) (*image.RGBA, []*chart.Frame, error) {
	if len(panels) == 0 {
		return nil, nil, chart.ErrNoData
	}
	var plots []*plot.Plot
	height := 60
	for _, pn := range panels {
		p, err := panelPlot(pn)
		if err != nil {
			return nil, nil, err
		}
		plots = append(plots, p)
		height += len(pn.Labels)*barPixels + panelExtra
	}
	img, frames := chart.RenderStack(title, plots, chartWidth, height)
	return img, frames, nil
}

func panelPlot(pn ChartPanel) (*plot.Plot, error) {
	n := len(pn.Labels)
	if n == 0 || len(pn.Values) != n {
		return nil, fmt.Errorf("vmharness: chart panel %q: %d labels, %d values", pn.Title, n, len(pn.Values))
	}
	p := chart.New(pn.Title, "", chartWidth)
	p.Title.TextStyle.Font.Size = 12
	p.X.Label.Text = "seconds"
	grid := plotter.NewGrid()
	grid.Horizontal.Color = nil
	p.Add(grid)
	maxV := 0.0
	var labels plotter.XYLabels
	names := make([]string, n)
	for i, v := range pn.Values {
		y := float64(n - 1 - i)
		names[n-1-i] = pn.Labels[i]
		maxV = max(maxV, v)
		text := "n/a"
		if v > 0 {
			text = fmt.Sprintf("%.2f s", v)
			if i < len(pn.Notes) && pn.Notes[i] != "" {
				text += "   " + pn.Notes[i]
			}
		}
		labels.XYs = append(labels.XYs, plotter.XY{X: v, Y: y})
		labels.Labels = append(labels.Labels, text)
		b, err := plotter.NewBarChart(plotter.Values{v}, vg.Length(barPixels)*72/chart.DPI*0.75)
		if err != nil {
			return nil, fmt.Errorf("vmharness: chart panel %q: %w", pn.Title, err)
		}
		b.Horizontal, b.XMin = true, y
		b.Color, b.LineStyle.Width = barColor[i%len(barColor)], 0
		p.Add(b)
	}
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, fmt.Errorf("vmharness: chart panel %q: %w", pn.Title, err)
	}
	for i := range l.TextStyle {
		l.TextStyle[i].YAlign = draw.YCenter
	}
	l.Offset = vg.Point{X: 6 * 72 / chart.DPI}
	p.Add(l)
	p.NominalY(names...)
	p.X.Min = 0
	if maxV <= 0 {
		maxV = 1
	}
	// Room right of the longest bar for its value and note.
	p.X.Max = maxV * 1.45
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	return p, nil
}
