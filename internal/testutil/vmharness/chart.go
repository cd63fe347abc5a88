package vmharness

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
)

// The benchmark chart, drawn with the standard library only: bars, and
// text in a built-in 5x7 bitmap font (upper case, digits, a little
// punctuation), scaled 2x.

// ChartPanel is one horizontal bar chart: a value per label.
type ChartPanel struct {
	Title  string
	Labels []string
	Values []float64 // seconds; 0 means no bar
	Notes  []string  // printed after each bar's value, e.g. "8.1X KERNEL DISK"
}

// BenchChart builds the panels for the report: 4 KiB writes and 4 KiB
// reads by log, median seconds.
func (r *BenchResults) BenchChart() []ChartPanel {
	st := r.Stats()
	kd := st[BenchKernelDisk]
	var out []ChartPanel
	for _, op := range []struct{ key, title string }{
		{"write 4K", fmt.Sprintf("%d MIB OF 4 KIB O_DIRECT WRITES THROUGH DM-MIRROR, SECONDS (MEDIAN OF %d)", r.Bytes>>20, r.Rounds)},
		{"read 4K", fmt.Sprintf("%d MIB OF 4 KIB O_DIRECT READS, SECONDS (MEDIAN OF %d)", r.Bytes>>20, r.Rounds)},
		{"write 1M", fmt.Sprintf("%d MIB OF 1 MIB O_DIRECT WRITES, SECONDS (MEDIAN OF %d)", r.Bytes>>20, r.Rounds)},
	} {
		p := ChartPanel{Title: op.title}
		for _, c := range r.Configs {
			v := st[c][op.key].Median
			p.Labels = append(p.Labels, c)
			p.Values = append(p.Values, v)
			note := ""
			if base := kd[op.key].Median; base > 0 && v > 0 {
				note = fmt.Sprintf("%.1fX KERNEL DISK", v/base)
			}
			p.Notes = append(p.Notes, note)
		}
		out = append(out, p)
	}
	return out
}

const (
	glyphW, glyphH = 5, 7
	scale          = 2
	charW          = (glyphW + 1) * scale
	lineH          = (glyphH + 3) * scale
)

var (
	colBG    = color.RGBA{255, 255, 255, 255}
	colText  = color.RGBA{20, 20, 20, 255}
	colAxis  = color.RGBA{160, 160, 160, 255}
	colGrid  = color.RGBA{230, 230, 230, 255}
	barColor = []color.RGBA{
		{90, 90, 90, 255},    // kernel core
		{40, 40, 40, 255},    // kernel disk
		{200, 140, 40, 255},  // bare
		{230, 180, 90, 255},  // bare on the netpoller
		{40, 110, 190, 255},  // dlogd core
		{30, 150, 90, 255},   // dlogd disk
		{110, 160, 220, 255}, // dlogd core if
		{100, 200, 140, 255}, // dlogd disk if
	}
)

// RenderChart draws the panels one above the other and returns the PNG.
func RenderChart(title string, panels []ChartPanel) ([]byte, error) {
	labelW := 0
	for _, p := range panels {
		for _, l := range p.Labels {
			labelW = max(labelW, textWidth(l))
		}
	}
	const width, barH, gap, margin = 1200, 18, 6, 16
	barX := margin + labelW + 12
	barMax := width - barX - 360 // room for "20.82 S  11.3X KERNEL DISK"
	height := margin + lineH*2
	for _, p := range panels {
		height += lineH + 8 + len(p.Labels)*(barH+gap) + lineH + 12
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fill(img, img.Bounds(), colBG)
	y := margin
	drawText(img, margin, y, title, colText)
	y += lineH * 2
	for _, p := range panels {
		drawText(img, margin, y, p.Title, colText)
		y += lineH + 8
		maxV := 0.0
		for _, v := range p.Values {
			maxV = max(maxV, v)
		}
		if maxV <= 0 {
			maxV = 1
		}
		top := y
		for i := 0; i <= 4; i++ { // grid
			x := barX + barMax*i/4
			fill(img, image.Rect(x, top-2, x+1, top+len(p.Labels)*(barH+gap)), colGrid)
		}
		for i, l := range p.Labels {
			drawText(img, barX-12-textWidth(l), y+(barH-glyphH*scale)/2, l, colText)
			w := int(float64(barMax) * p.Values[i] / maxV)
			if p.Values[i] > 0 && w < 1 {
				w = 1
			}
			fill(img, image.Rect(barX, y, barX+w, y+barH), barColor[i%len(barColor)])
			val := "N/A"
			if p.Values[i] > 0 {
				val = fmt.Sprintf("%.2f S", p.Values[i])
				if i < len(p.Notes) && p.Notes[i] != "" {
					val += "  " + p.Notes[i]
				}
			}
			drawText(img, barX+w+8, y+(barH-glyphH*scale)/2, val, colText)
			y += barH + gap
		}
		fill(img, image.Rect(barX, top-2, barX+1, y), colAxis)
		for i := 0; i <= 4; i++ {
			t := fmt.Sprintf("%.1f", maxV*float64(i)/4)
			drawText(img, barX+barMax*i/4-textWidth(t)/2, y+4, t, colAxis)
		}
		y += lineH + 12
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func textWidth(s string) int { return len([]rune(s)) * charW }

// drawText writes s at (x, y) (top left), upper-cased.
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		g, ok := font5x7[r]
		if !ok {
			g = font5x7['?']
		}
		for row := 0; row < glyphH; row++ {
			for col := 0; col < glyphW; col++ {
				if g[row][col] == '#' {
					fill(img, image.Rect(x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale), c)
				}
			}
		}
		x += charW
	}
}

// font5x7 is a 5x7 bitmap font: '#' is ink.
var font5x7 = map[rune][glyphH]string{
	' ':  {".....", ".....", ".....", ".....", ".....", ".....", "....."},
	'A':  {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'B':  {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."},
	'C':  {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."},
	'D':  {"####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."},
	'E':  {"#####", "#....", "#....", "####.", "#....", "#....", "#####"},
	'F':  {"#####", "#....", "#....", "####.", "#....", "#....", "#...."},
	'G':  {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"},
	'H':  {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'I':  {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'J':  {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."},
	'K':  {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"},
	'L':  {"#....", "#....", "#....", "#....", "#....", "#....", "#####"},
	'M':  {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"},
	'N':  {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"},
	'O':  {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'P':  {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."},
	'Q':  {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"},
	'R':  {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"},
	'S':  {".####", "#....", "#....", ".###.", "....#", "....#", "####."},
	'T':  {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."},
	'U':  {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'V':  {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."},
	'W':  {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."},
	'X':  {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"},
	'Y':  {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."},
	'Z':  {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"},
	'0':  {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."},
	'1':  {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'2':  {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"},
	'3':  {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."},
	'4':  {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."},
	'5':  {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."},
	'6':  {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."},
	'7':  {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."},
	'8':  {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."},
	'9':  {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."},
	'.':  {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."},
	',':  {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."},
	':':  {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."},
	'-':  {".....", ".....", ".....", "#####", ".....", ".....", "....."},
	'+':  {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."},
	'_':  {".....", ".....", ".....", ".....", ".....", ".....", "#####"},
	'/':  {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."},
	'(':  {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."},
	')':  {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."},
	'%':  {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"},
	'=':  {".....", ".....", "#####", ".....", "#####", ".....", "....."},
	'?':  {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."},
	'\'': {"..#..", "..#..", ".#...", ".....", ".....", ".....", "....."},
	'<':  {"...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."},
	'>':  {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."},
}
