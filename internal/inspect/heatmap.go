package inspect

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Colours of the heat map.
var (
	// ColorClean is a cell with no dirty region.
	ColorClean = color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	// ColorNone is a cell past the last region.
	ColorNone = color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
	// colorFew and ColorDirty are the ends of the dirty scale: a cell with
	// few dirty regions, and a cell whose regions are all dirty.
	colorFew   = color.RGBA{0xff, 0xd7, 0x00, 0xff}
	ColorDirty = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	// ColorText is the colour of the title, the row labels and the legend
	// text; colorBackground and colorFrame the page and the legend's frame.
	ColorText       = color.RGBA{0x00, 0x00, 0x00, 0xff}
	colorBackground = color.RGBA{0xff, 0xff, 0xff, 0xff}
	colorFrame      = color.RGBA{0x80, 0x80, 0x80, 0xff}
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
	*image.RGBA
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

// EncodePNG writes the heat map as a PNG.
func (h *HeatMap) EncodePNG(w io.Writer) error {
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(w, h.RGBA); err != nil {
		return fmt.Errorf("inspect: encode heat map: %w", err)
	}
	return nil
}

// WriteFile writes the heat map as a PNG file at path.
func (h *HeatMap) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("inspect: heat map: %w", err)
	}
	bw := bufio.NewWriter(f)
	if err := h.EncodePNG(bw); err != nil {
		f.Close()
		return fmt.Errorf("inspect: %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("inspect: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("inspect: close %s: %w", path, err)
	}
	return nil
}

// The labels are set in basicfont's 7x13 face: lineHeight pixels from one
// line to the next, textHeight the ink box of one line.
var face = basicfont.Face7x13

const (
	textHeight = 13
	lineHeight = textHeight + 5
	hmMargin   = 12  // pixels around everything
	hmMapW     = 512 // target width of the cell grid in pixels
	swatchW    = 32  // legend colour sample
)

func textWidth(s string) int { return font.MeasureString(face, s).Ceil() }

// drawText draws s with the top-left corner of its line box at (x, y) and
// returns the x after it.
func drawText(dst draw.Image, x, y int, s string) int {
	d := font.Drawer{Dst: dst, Src: image.NewUniform(ColorText), Face: face, Dot: fixed.P(x, y+face.Ascent)}
	d.DrawString(s)
	return d.Dot.X.Ceil()
}

func fill(dst draw.Image, r image.Rectangle, c color.Color) {
	draw.Draw(dst, r, image.NewUniform(c), image.Point{}, draw.Src)
}

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

	per := "1 region per cell"
	if res.RegionsPerCell > 1 {
		per = fmt.Sprintf("%d regions per cell", res.RegionsPerCell)
	}
	title := "dlog disk log " + name
	sub := fmt.Sprintf("%d regions, %s, %d dirty (%.2f%%)", res.Regions, per, res.Dirty, 100*res.DirtyFraction())

	// Row labels: the first region of a row, every `every` rows.
	every := max(1, (lineHeight+cs-1)/cs)
	rowLabel := func(r int) string { return strconv.FormatUint(uint64(r*cols)*res.RegionsPerCell, 10) }
	labelW := 0
	for r := 0; r < rows; r += every {
		labelW = max(labelW, textWidth(rowLabel(r)))
	}
	mapX := hmMargin + labelW + hmMargin
	mapY := hmMargin + 2*lineHeight + lineHeight/2
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
	legendW := hmMargin
	for _, e := range legend {
		legendW += swatchW + 6 + textWidth(e.text) + hmMargin*2
	}
	legendH := textHeight + hmMargin

	w := max(mapX+mapW+hmMargin, textWidth(title)+2*hmMargin, textWidth(sub)+2*hmMargin, legendW+2*hmMargin)
	h := mapY + mapH + hmMargin + legendH + hmMargin
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(img, img.Bounds(), colorBackground)
	drawText(img, hmMargin, hmMargin, title)
	drawText(img, hmMargin, hmMargin+lineHeight, sub)

	hm := &HeatMap{RGBA: img, Cols: cols, Rows: rows, CellSize: cs, Origin: image.Pt(mapX, mapY)}
	for i := 0; i < rows*cols; i++ {
		fill(img, hm.Cell(i), CellColor(res, i))
	}
	for r := 0; r < rows; r += every {
		y := mapY + r*cs + (cs-textHeight)/2
		if cs < textHeight {
			y = mapY + r*cs
		}
		s := rowLabel(r)
		drawText(img, mapX-hmMargin/2-textWidth(s), y, s)
	}

	ly := mapY + mapH + hmMargin
	hm.Legend = image.Rect(hmMargin, ly, hmMargin+legendW, ly+legendH)
	for _, side := range []image.Rectangle{
		{hm.Legend.Min, image.Pt(hm.Legend.Max.X, hm.Legend.Min.Y+1)},
		{image.Pt(hm.Legend.Min.X, hm.Legend.Max.Y-1), hm.Legend.Max},
		{hm.Legend.Min, image.Pt(hm.Legend.Min.X+1, hm.Legend.Max.Y)},
		{image.Pt(hm.Legend.Max.X-1, hm.Legend.Min.Y), hm.Legend.Max},
	} {
		fill(img, side, colorFrame)
	}
	x := hmMargin * 2
	for _, e := range legend {
		box := image.Rect(x, ly+hmMargin/2, x+swatchW, ly+hmMargin/2+textHeight)
		if e.grad {
			for gx := box.Min.X; gx < box.Max.X; gx++ {
				f := float64(gx-box.Min.X+1) / float64(box.Dx())
				fill(img, image.Rect(gx, box.Min.Y, gx+1, box.Max.Y), DirtyColor(f))
			}
		} else {
			fill(img, box, e.col)
		}
		x = drawText(img, box.Max.X+6, box.Min.Y, e.text) + hmMargin*2
	}
	return hm
}
