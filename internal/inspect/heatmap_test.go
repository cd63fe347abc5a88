package inspect_test

import (
	"bytes"
	"flag"
	"image"
	"image/color"
	"image/png"
	"path/filepath"
	"testing"

	"github.com/dlog-dev/dlog/internal/inspect"
)

var keepPNG = flag.String("inspect.keep", "", "write the test heat maps as PNG files into this directory")

func render(t *testing.T, name string, img []byte, opts inspect.Options) (*inspect.Result, *inspect.HeatMap, image.Image) {
	t.Helper()
	res, err := inspect.Read(bytes.NewReader(img), int64(len(img)), opts)
	if err != nil {
		t.Fatal(err)
	}
	hm := inspect.RenderHeatMap(res, name)
	var buf bytes.Buffer
	if err := hm.EncodePNG(&buf); err != nil {
		t.Fatal(err)
	}
	if *keepPNG != "" {
		if err := hm.WriteFile(filepath.Join(*keepPNG, name+".png")); err != nil {
			t.Fatal(err)
		}
	}
	dec, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return res, hm, dec
}

func at(img image.Image, p image.Point) color.RGBA {
	r, g, b, a := img.At(p.X, p.Y).RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}

func centre(r image.Rectangle) image.Point { return r.Min.Add(r.Max).Div(2) }

func hasColour(img image.Image, r image.Rectangle, c color.RGBA) bool {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if at(img, image.Pt(x, y)) == c {
				return true
			}
		}
	}
	return false
}

// Ensure that the heat map of a kernel image has the expected grid, that
// the known dirty cell is red and its neighbours green, in the decoded PNG,
// and that the legend is in the picture.
func TestHeatMapInflight(t *testing.T) {
	res, hm, img := render(t, "inflight-write-128", kernelImage(t, "inflight-write-128"), inspect.Options{})
	if hm.Cols != 16 || hm.Rows != 8 || hm.CellSize != 32 || res.RegionsPerCell != 1 {
		t.Errorf("grid %dx%d cells of %d px, %d regions per cell", hm.Cols, hm.Rows, hm.CellSize, res.RegionsPerCell)
	}
	if b := img.Bounds(); b != hm.Bounds() || b.Dx() < hm.Cols*hm.CellSize || b.Dy() < hm.Rows*hm.CellSize {
		t.Errorf("png bounds %v, canvas %v", b, hm.Bounds())
	}
	if got := at(img, centre(hm.Cell(5))); got != inspect.ColorDirty {
		t.Errorf("cell 5 (dirty) is %v, want %v", got, inspect.ColorDirty)
	}
	for _, i := range []int{0, 4, 6, 127} {
		if got := at(img, centre(hm.Cell(i))); got != inspect.ColorClean {
			t.Errorf("cell %d (clean) is %v", i, got)
		}
	}
	checkLegend(t, img, hm, inspect.ColorDirty)
	// The title above the grid and the row labels left of it are drawn.
	if !hasColour(img, image.Rect(0, 0, img.Bounds().Dx(), hm.Origin.Y), inspect.ColorText) {
		t.Error("no title above the grid")
	}
	for _, r := range []int{0, 7} {
		row := image.Rect(0, hm.Origin.Y+r*hm.CellSize, hm.Origin.X, hm.Origin.Y+(r+1)*hm.CellSize)
		if !hasColour(img, row, inspect.ColorText) {
			t.Errorf("no label left of row %d", r)
		}
	}
}

func checkLegend(t *testing.T, img image.Image, hm *inspect.HeatMap, dirty color.RGBA) {
	t.Helper()
	if !img.Bounds().Intersect(hm.Legend).Eq(hm.Legend) {
		t.Fatalf("legend %v outside the picture %v", hm.Legend, img.Bounds())
	}
	for name, c := range map[string]color.RGBA{"clean": inspect.ColorClean, "dirty": dirty, "no region": inspect.ColorNone, "text": inspect.ColorText} {
		if !hasColour(img, hm.Legend, c) {
			t.Errorf("legend lacks %s (%v)", name, c)
		}
	}
}

// Ensure that cells past the last region are drawn as no region.
func TestHeatMapPastTheEnd(t *testing.T) {
	_, hm, img := render(t, "nosync-100", kernelImage(t, "nosync-100"), inspect.Options{})
	if hm.Cols*hm.Rows != 112 {
		t.Fatalf("grid %dx%d", hm.Cols, hm.Rows)
	}
	if got := at(img, centre(hm.Cell(99))); got != inspect.ColorClean {
		t.Errorf("cell 99 is %v", got)
	}
	for _, i := range []int{100, 111} {
		if got := at(img, centre(hm.Cell(i))); got != inspect.ColorNone {
			t.Errorf("cell %d (no region) is %v", i, got)
		}
	}
}

// Ensure that a large log gets one pixel per region while it fits, and
// the boundary between clean and dirty is where the regions say.
func TestHeatMapLarge(t *testing.T) {
	_, hm, img := render(t, "large-grow", kernelImage(t, "large-grow-65536-to-100000-resyncing"), inspect.Options{})
	if hm.Cols != 512 || hm.Rows != 196 || hm.CellSize != 1 {
		t.Errorf("grid %dx%d cells of %d px", hm.Cols, hm.Rows, hm.CellSize)
	}
	for i, want := range map[int]color.RGBA{0: inspect.ColorClean, 65535: inspect.ColorClean, 65536: inspect.ColorDirty, 99999: inspect.ColorDirty, 100000: inspect.ColorNone} {
		if got := at(img, hm.Cell(i).Min); got != want {
			t.Errorf("cell %d is %v, want %v", i, got, want)
		}
	}
}

// Ensure that cells of several regions are shaded by their dirty share.
func TestHeatMapShares(t *testing.T) {
	const nr = 1 << 20
	// Cell k (4 regions each) has k%5 dirty regions.
	img := logImage(nr, 0, func(i uint64) bool { return i%4 < (i/4)%5 })
	res, hm, png := render(t, "shares", img, inspect.Options{MaxCells: 1 << 18})
	if res.RegionsPerCell != 4 || len(res.Cells) != 1<<18 {
		t.Fatalf("%d regions per cell, %d cells", res.RegionsPerCell, len(res.Cells))
	}
	for k := 0; k < 10; k++ {
		want := inspect.ColorClean
		if n := k % 5; n > 0 {
			want = inspect.DirtyColor(float64(n) / 4)
		}
		if got := at(png, hm.Cell(k).Min); got != want {
			t.Errorf("cell %d (%d of 4 dirty) is %v, want %v", k, k%5, got, want)
		}
	}
	if inspect.DirtyColor(0.25) == inspect.DirtyColor(1) || inspect.DirtyColor(1) != inspect.ColorDirty {
		t.Error("dirty scale does not run to ColorDirty")
	}
	checkLegend(t, png, hm, inspect.DirtyColor(1))
}
