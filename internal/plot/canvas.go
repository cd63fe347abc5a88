package plot

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"os"
)

// Colours used by the charts and the heat map.
var (
	White     = color.RGBA{0xff, 0xff, 0xff, 0xff}
	Black     = color.RGBA{0x00, 0x00, 0x00, 0xff}
	Grey      = color.RGBA{0x80, 0x80, 0x80, 0xff}
	LightGrey = color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
	// Palette is the series colours, in order: distinct for the usual
	// forms of colour blindness (Okabe and Ito).
	Palette = []color.RGBA{
		{0x00, 0x72, 0xb2, 0xff}, // blue
		{0xd5, 0x5e, 0x00, 0xff}, // vermillion
		{0x00, 0x9e, 0x73, 0xff}, // bluish green
		{0xcc, 0x79, 0xa7, 0xff}, // reddish purple
		{0xe6, 0x9f, 0x00, 0xff}, // orange
		{0x56, 0xb4, 0xe9, 0xff}, // sky blue
		{0x00, 0x00, 0x00, 0xff}, // black
	}
)

// Canvas is an RGBA image with the drawing operations the charts need.
type Canvas struct {
	*image.RGBA
}

// NewCanvas returns a w x h canvas filled with bg.
func NewCanvas(w, h int, bg color.Color) *Canvas {
	c := &Canvas{image.NewRGBA(image.Rect(0, 0, w, h))}
	c.Fill(c.Bounds(), bg)
	return c
}

// Fill paints r with col.
func (c *Canvas) Fill(r image.Rectangle, col color.Color) {
	draw.Draw(c.RGBA, r, image.NewUniform(col), image.Point{}, draw.Src)
}

// Outline draws the one-pixel border just inside r.
func (c *Canvas) Outline(r image.Rectangle, col color.Color) {
	c.HLine(r.Min.X, r.Max.X-1, r.Min.Y, col)
	c.HLine(r.Min.X, r.Max.X-1, r.Max.Y-1, col)
	c.VLine(r.Min.X, r.Min.Y, r.Max.Y-1, col)
	c.VLine(r.Max.X-1, r.Min.Y, r.Max.Y-1, col)
}

// HLine draws from (x0, y) to (x1, y) inclusive.
func (c *Canvas) HLine(x0, x1, y int, col color.Color) {
	c.Fill(image.Rect(min(x0, x1), y, max(x0, x1)+1, y+1), col)
}

// VLine draws from (x, y0) to (x, y1) inclusive.
func (c *Canvas) VLine(x, y0, y1 int, col color.Color) {
	c.Fill(image.Rect(x, min(y0, y1), x+1, max(y0, y1)+1), col)
}

// Line draws a line from (x0, y0) to (x1, y1) inclusive, width pixels
// wide (Bresenham, each step a width x width square). dash > 0 draws
// dash pixels on, dash pixels off.
func (c *Canvas) Line(x0, y0, x1, y1, width, dash int, col color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	off := (width - 1) / 2
	for i := 0; ; i++ {
		if dash <= 0 || (i/dash)%2 == 0 {
			c.Fill(image.Rect(x0-off, y0-off, x0-off+width, y0-off+width), col)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

// Text draws s with its top-left corner at (x, y) and returns the x after it.
func (c *Canvas) Text(x, y int, s string, col color.Color, scale int) int {
	return DrawText(c.RGBA, x, y, s, col, scale)
}

// TextRight draws s ending at x.
func (c *Canvas) TextRight(x, y int, s string, col color.Color, scale int) {
	DrawText(c.RGBA, x-TextWidth(s, scale), y, s, col, scale)
}

// TextCenter draws s centred on x.
func (c *Canvas) TextCenter(x, y int, s string, col color.Color, scale int) {
	DrawText(c.RGBA, x-TextWidth(s, scale)/2, y, s, col, scale)
}

// Encode writes img as PNG.
func Encode(w io.Writer, img image.Image) error {
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(w, img); err != nil {
		return fmt.Errorf("plot: encode png: %w", err)
	}
	return nil
}

// WriteFile writes img as a PNG file at path.
func WriteFile(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	bw := bufio.NewWriter(f)
	if err := Encode(bw, img); err != nil {
		f.Close()
		return fmt.Errorf("plot: %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot: close %s: %w", path, err)
	}
	return nil
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}
