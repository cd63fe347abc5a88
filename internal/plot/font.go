package plot

import (
	"image"
	"image/color"
	"image/draw"
	"strings"
)

// The font is dlog's own 5x7 bitmap font for printable ASCII, with one
// more row below the baseline for the descenders of g, j, p, q, y and the
// comma. Each glyph is eight rows of five columns, '#' for ink, written
// out below so it can be read and corrected by eye; runes outside ASCII
// are drawn as '?'.
const (
	// GlyphWidth and GlyphHeight are the size of a glyph in font pixels
	// (the last row is the descender row).
	GlyphWidth  = 5
	GlyphHeight = 8
	// Advance is the horizontal distance from one glyph to the next.
	Advance = GlyphWidth + 1
	// LineHeight is the vertical distance from one line to the next.
	LineHeight = GlyphHeight + 2
)

var glyphSrc = map[byte]string{
	' ':  "",
	'!':  "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
	'"':  ".#.#. .#.#. .#.#.",
	'#':  ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
	'$':  "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
	'%':  "##... ##..# ...#. ..#.. .#... #..## ...##",
	'&':  ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
	'\'': "..#.. ..#.. .#...",
	'(':  "...#. ..#.. .#... .#... .#... ..#.. ...#.",
	')':  ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
	'*':  "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
	'+':  "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
	',':  "..... ..... ..... ..... ..... .##.. ..#.. .#...",
	'-':  "..... ..... ..... ##### ..... ..... .....",
	'.':  "..... ..... ..... ..... ..... .##.. .##..",
	'/':  "..... ....# ...#. ..#.. .#... #.... .....",
	'0':  ".###. #...# #..## #.#.# ##..# #...# .###.",
	'1':  "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
	'2':  ".###. #...# ....# ...#. ..#.. .#... #####",
	'3':  "##### ...#. ..#.. ...#. ....# #...# .###.",
	'4':  "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
	'5':  "##### #.... ####. ....# ....# #...# .###.",
	'6':  "..##. .#... #.... ####. #...# #...# .###.",
	'7':  "##### ....# ...#. ..#.. .#... .#... .#...",
	'8':  ".###. #...# #...# .###. #...# #...# .###.",
	'9':  ".###. #...# #...# .#### ....# ...#. .##..",
	':':  "..... .##.. .##.. ..... .##.. .##.. .....",
	';':  "..... .##.. .##.. ..... .##.. ..#.. .#...",
	'<':  "...#. ..#.. .#... #.... .#... ..#.. ...#.",
	'=':  "..... ..... ##### ..... ##### ..... .....",
	'>':  ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
	'?':  ".###. #...# ....# ...#. ..#.. ..... ..#..",
	'@':  ".###. #...# ....# .##.# #.#.# #.#.# .###.",
	'A':  ".###. #...# #...# ##### #...# #...# #...#",
	'B':  "####. #...# #...# ####. #...# #...# ####.",
	'C':  ".###. #...# #.... #.... #.... #...# .###.",
	'D':  "###.. #..#. #...# #...# #...# #..#. ###..",
	'E':  "##### #.... #.... ####. #.... #.... #####",
	'F':  "##### #.... #.... ####. #.... #.... #....",
	'G':  ".###. #...# #.... #.### #...# #...# .####",
	'H':  "#...# #...# #...# ##### #...# #...# #...#",
	'I':  ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
	'J':  "..### ...#. ...#. ...#. ...#. #..#. .##..",
	'K':  "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
	'L':  "#.... #.... #.... #.... #.... #.... #####",
	'M':  "#...# ##.## #.#.# #.#.# #...# #...# #...#",
	'N':  "#...# #...# ##..# #.#.# #..## #...# #...#",
	'O':  ".###. #...# #...# #...# #...# #...# .###.",
	'P':  "####. #...# #...# ####. #.... #.... #....",
	'Q':  ".###. #...# #...# #...# #.#.# #..#. .##.#",
	'R':  "####. #...# #...# ####. #.#.. #..#. #...#",
	'S':  ".#### #.... #.... .###. ....# ....# ####.",
	'T':  "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
	'U':  "#...# #...# #...# #...# #...# #...# .###.",
	'V':  "#...# #...# #...# #...# #...# .#.#. ..#..",
	'W':  "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
	'X':  "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
	'Y':  "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
	'Z':  "##### ....# ...#. ..#.. .#... #.... #####",
	'[':  ".###. .#... .#... .#... .#... .#... .###.",
	'\\': "..... #.... .#... ..#.. ...#. ....# .....",
	']':  ".###. ...#. ...#. ...#. ...#. ...#. .###.",
	'^':  "..#.. .#.#. #...#",
	'_':  "..... ..... ..... ..... ..... ..... #####",
	'`':  ".#... ..#..",
	'a':  "..... ..... .###. ....# .#### #...# .####",
	'b':  "#.... #.... #.##. ##..# #...# #...# ####.",
	'c':  "..... ..... .###. #.... #.... #...# .###.",
	'd':  "....# ....# .##.# #..## #...# #...# .####",
	'e':  "..... ..... .###. #...# ##### #.... .###.",
	'f':  "..##. .#..# .#... ###.. .#... .#... .#...",
	'g':  "..... ..... .#### #...# #...# .#### ....# .###.",
	'h':  "#.... #.... #.##. ##..# #...# #...# #...#",
	'i':  "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
	'j':  "...#. ..... ..##. ...#. ...#. ...#. #..#. .##..",
	'k':  "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
	'l':  ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
	'm':  "..... ..... ##.#. #.#.# #.#.# #...# #...#",
	'n':  "..... ..... #.##. ##..# #...# #...# #...#",
	'o':  "..... ..... .###. #...# #...# #...# .###.",
	'p':  "..... ..... ####. #...# #...# ####. #.... #....",
	'q':  "..... ..... .#### #...# #...# .#### ....# ....#",
	'r':  "..... ..... #.##. ##..# #.... #.... #....",
	's':  "..... ..... .#### #.... .###. ....# ####.",
	't':  ".#... .#... ###.. .#... .#... .#..# ..##.",
	'u':  "..... ..... #...# #...# #...# #..## .##.#",
	'v':  "..... ..... #...# #...# #...# .#.#. ..#..",
	'w':  "..... ..... #...# #...# #.#.# #.#.# .#.#.",
	'x':  "..... ..... #...# .#.#. ..#.. .#.#. #...#",
	'y':  "..... ..... #...# #...# #...# .#### ....# .###.",
	'z':  "..... ..... ##### ...#. ..#.. .#... #####",
	'{':  "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",
	'|':  "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
	'}':  ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",
	'~':  "..... ..... .#... #.#.# ...#. ..... .....",
}

// glyphs[c-' '] holds the rows of glyph c, bit 4 the leftmost column.
var glyphs = func() (g [95][GlyphHeight]uint8) {
	for c, src := range glyphSrc {
		for y, row := range strings.Fields(src) {
			if y >= GlyphHeight || len(row) != GlyphWidth {
				panic("plot: malformed glyph " + string(rune(c)))
			}
			for x := range GlyphWidth {
				if row[x] == '#' {
					g[c-' '][y] |= 1 << (GlyphWidth - 1 - x)
				}
			}
		}
	}
	return g
}()

// glyph returns the rows of the glyph drawn for r.
func glyph(r rune) *[GlyphHeight]uint8 {
	if r < ' ' || r > '~' {
		r = '?'
	}
	return &glyphs[r-' ']
}

// TextWidth is the width in pixels of s drawn at scale (no trailing gap).
func TextWidth(s string, scale int) int {
	n := len([]rune(s))
	if n == 0 {
		return 0
	}
	return (n*Advance - 1) * scale
}

// TextHeight is the height in pixels of one line drawn at scale, from the
// top of the capitals to the bottom of the descenders.
func TextHeight(scale int) int { return GlyphHeight * scale }

// DrawText draws s with its top-left corner at (x, y), each font pixel a
// scale x scale square of colour c. It returns the x after the last glyph.
func DrawText(dst draw.Image, x, y int, s string, c color.Color, scale int) int {
	src := image.NewUniform(c)
	for _, r := range s {
		g := glyph(r)
		for gy, row := range g {
			for gx := range GlyphWidth {
				if row&(1<<(GlyphWidth-1-gx)) != 0 {
					px := image.Rect(x+gx*scale, y+gy*scale, x+(gx+1)*scale, y+(gy+1)*scale)
					draw.Draw(dst, px, src, image.Point{}, draw.Src)
				}
			}
		}
		x += Advance * scale
	}
	return x
}

// DrawTextUp draws s rotated a quarter turn counter-clockwise (reading
// upwards, as a y-axis label), with the bottom-left corner of its first
// glyph at (x, y): the text occupies [x, x+TextHeight) horizontally and
// [y-TextWidth, y) vertically.
func DrawTextUp(dst draw.Image, x, y int, s string, c color.Color, scale int) {
	src := image.NewUniform(c)
	for _, r := range s {
		g := glyph(r)
		for gy, row := range g {
			for gx := range GlyphWidth {
				if row&(1<<(GlyphWidth-1-gx)) != 0 {
					// (gx, gy) turns to (gy, -gx).
					px := image.Rect(x+gy*scale, y-(gx+1)*scale, x+(gy+1)*scale, y-gx*scale)
					draw.Draw(dst, px, src, image.Point{}, draw.Src)
				}
			}
		}
		y -= Advance * scale
	}
}
