package inspect

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"

	"github.com/dlog-dev/dlog/internal/plot"
)

// Colours of the heat map.
var (
	// ColorClean is a cell with no dirty region.
	ColorClean = color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	// ColorNone is a cell past the last region.
	ColorNone = plot.LightGrey
	// colorFew and ColorDirty are the ends of the dirty scale: a cell with
	// few dirty regions, and a cell whose regions are all dirty.
	colorFew   = color.RGBA{0xff, 0xd7, 0x00, 0xff}
	ColorDirty = color.RGBA{0xd6, 0x27, 0x28, 0xff}
)

// DirtyColor is the colour of a cell whose dirty share is f (0 < f <= 1):
// yellow for a few dirty regions to red for all of them.
func DirtyColor(f float64) color.RGBA {
	f = min(max(f, 0), 1)
	mix := func(a, b uint8) uint8 { return uint8(math.Round(float64(a) + (float64(b)-float64(a))*f)) }
	return color.RGBA{mix(colorFew.R, ColorDirty.R), mix(colorFew.G, ColorDirty.G), mix(colorFew.B, ColorDirty.B), 0xff}
}

// CellColor is the colour of cell i of res.
func CellColor(res *Result, i int) color.RGBA {
	if i >= len(res.Cells) {
		return ColorNone
	}
	if res.Cells[i] == 0 {
		return ColorClean
	}
	return DirtyColor(float64(res.Cells[i]) / float64(res.CellRegions(i)))
}

// HeatMap is a rendered heat map and where it drew what.
type HeatMap struct {
	*plot.Canvas
	// Cols and Rows are the grid of cells; cell i is at column i%Cols,
	// row i/Cols.
	Cols, Rows int
	// CellSize is the side of a cell in pixels, Origin the top-left pixel
	// of cell 0.
	CellSize int
	Origin   image.Point
	// Legend is the rectangle of the legend.
	Legend image.Rectangle
}

// Cell is the rectangle of pixels painted for cell i (without the one-pixel
// gap drawn between cells of 4 pixels or more).
func (h *HeatMap) Cell(i int) image.Rectangle {
	x := h.Origin.X + (i%h.Cols)*h.CellSize
	y := h.Origin.Y + (i/h.Cols)*h.CellSize
	s := h.CellSize
	if s >= 4 {
		s--
	}
	return image.Rect(x, y, x+s, y+s)
}

const (
	hmScale  = 2   // font scale
	hmMargin = 12  // pixels around everything
	hmMapW   = 512 // target width of the cell grid in pixels
)

// RenderHeatMap draws the dirty regions of res, one cell per
// res.RegionsPerCell regions, with a title (name, regions per cell, dirty
// fraction), the first region of every few rows on the left, and a legend
// in the picture.
func RenderHeatMap(res *Result, name string) *HeatMap {
	n := max(1, len(res.Cells))
	cols := 1
	for cols*cols < n {
		cols *= 2
	}
	rows := (n + cols - 1) / cols
	cs := min(32, max(1, hmMapW/cols))
	lh := plot.LineHeight * hmScale

	per := "1 region per cell"
	if res.RegionsPerCell > 1 {
		per = fmt.Sprintf("%d regions per cell", res.RegionsPerCell)
	}
	title := "dlog disk log " + name
	sub := fmt.Sprintf("%d regions, %s, %d dirty (%.2f%%)", res.Regions, per, res.Dirty, 100*res.DirtyFraction())

	// Row labels: the first region of a row, every `every` rows.
	every := max(1, (lh+cs-1)/cs)
	labelW := 0
	for r := 0; r < rows; r += every {
		labelW = max(labelW, plot.TextWidth(strconv.FormatUint(uint64(r*cols)*res.RegionsPerCell, 10), hmScale))
	}
	mapX := hmMargin + labelW + hmMargin
	mapY := hmMargin + 2*lh + lh/2
	mapW, mapH := cols*cs, rows*cs

	type entry struct {
		col  color.RGBA
		grad bool
		text string
	}
	legend := []entry{{col: ColorClean, text: "clean"}}
	if res.RegionsPerCell == 1 {
		legend = append(legend, entry{col: ColorDirty, text: "dirty"})
	} else {
		legend = append(legend, entry{grad: true, text: fmt.Sprintf("1-%d of %d dirty", res.RegionsPerCell, res.RegionsPerCell)})
	}
	legend = append(legend, entry{col: ColorNone, text: "no region"})
	sw := 16 * hmScale // swatch width
	legendW := hmMargin
	for _, e := range legend {
		legendW += sw + hmScale*3 + plot.TextWidth(e.text, hmScale) + hmMargin*2
	}
	legendH := lh + hmMargin

	w := max(mapX+mapW+hmMargin, plot.TextWidth(title, hmScale)+2*hmMargin, plot.TextWidth(sub, hmScale)+2*hmMargin, legendW+2*hmMargin)
	h := mapY + mapH + hmMargin + legendH + hmMargin
	c := plot.NewCanvas(w, h, plot.White)
	c.Text(hmMargin, hmMargin, title, plot.Black, hmScale)
	c.Text(hmMargin, hmMargin+lh, sub, plot.Black, hmScale)

	hm := &HeatMap{Canvas: c, Cols: cols, Rows: rows, CellSize: cs, Origin: image.Pt(mapX, mapY)}
	for i := 0; i < rows*cols; i++ {
		c.Fill(hm.Cell(i), CellColor(res, i))
	}
	for r := 0; r < rows; r += every {
		y := mapY + r*cs + (cs-plot.TextHeight(hmScale))/2
		if cs < plot.TextHeight(hmScale) {
			y = mapY + r*cs
		}
		c.TextRight(mapX-hmMargin/2, y, strconv.FormatUint(uint64(r*cols)*res.RegionsPerCell, 10), plot.Black, hmScale)
	}

	ly := mapY + mapH + hmMargin
	hm.Legend = image.Rect(hmMargin, ly, hmMargin+legendW, ly+legendH)
	c.Outline(hm.Legend, plot.Grey)
	x := hmMargin * 2
	for _, e := range legend {
		box := image.Rect(x, ly+hmMargin/2, x+sw, ly+hmMargin/2+plot.TextHeight(hmScale))
		if e.grad {
			for gx := box.Min.X; gx < box.Max.X; gx++ {
				f := float64(gx-box.Min.X+1) / float64(box.Dx())
				c.Fill(image.Rect(gx, box.Min.Y, gx+1, box.Max.Y), DirtyColor(f))
			}
		} else {
			c.Fill(box, e.col)
		}
		x = c.Text(box.Max.X+hmScale*3, box.Min.Y, e.text, plot.Black, hmScale) + hmMargin*2
	}
	return hm
}
