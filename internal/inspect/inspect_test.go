package inspect_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/header"
	"github.com/dlog-dev/dlog/internal/inspect"
)

// kernelImages are the images of engine/testdata/kernel, written by the
// kernel's own disk log, with what their README says they hold.
var kernelImages = []struct {
	name         string
	size         int64
	regions      uint64
	clean, dirty uint64
	ranges       string
}{
	{"synced-128", 1536, 128, 128, 0, ""},
	{"nosync-100", 1536, 100, 100, 0, ""},
	{"grow-128-to-256-resyncing", 1536, 256, 128, 128, "128-255"},
	// Bits 128..255 are set on disk (stale, past the 16-byte bitset): not regions.
	{"shrink-256-to-100", 1536, 100, 100, 0, ""},
	{"lbs4096-128", 4096, 128, 128, 0, ""},
	{"large-nosync-65536", 9216, 65536, 65536, 0, ""},
	{"large-grow-65536-to-100000-resyncing", 13824, 100000, 65536, 34464, "65536-99999"},
	{"inflight-write-128", 1536, 128, 127, 1, "5"},
	{"forcesync-128-resyncing", 1536, 128, 0, 128, "0-127"},
}

func kernelImage(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "engine", "testdata", "kernel", name+".img"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Ensure that every image the kernel wrote reads as its README says: the
// header, the counts and the exact dirty ranges.
func TestReadKernelImages(t *testing.T) {
	for _, k := range kernelImages {
		t.Run(k.name, func(t *testing.T) {
			img := kernelImage(t, k.name)
			res, err := inspect.Read(bytes.NewReader(img), int64(len(img)), inspect.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if want := (header.Header{Magic: header.Magic, Version: 2, NrRegions: k.regions}); res.Header != want {
				t.Errorf("header %v, want %v", res.Header, want)
			}
			if res.Size != k.size || res.Regions != k.regions || res.Clean != k.clean || res.Dirty != k.dirty {
				t.Errorf("size %d regions %d clean %d dirty %d, want %d %d %d %d",
					res.Size, res.Regions, res.Clean, res.Dirty, k.size, k.regions, k.clean, k.dirty)
			}
			if got := inspect.FormatRanges(res.Ranges); got != k.ranges {
				t.Errorf("ranges %q, want %q", got, k.ranges)
			}
			if !res.RangesComplete() {
				t.Error("ranges incomplete")
			}
			if res.Capacity != uint64(k.size-1024)*8 {
				t.Errorf("capacity %d", res.Capacity)
			}
			var cells uint64
			for _, c := range res.Cells {
				cells += uint64(c)
			}
			if cells != res.Dirty {
				t.Errorf("cells hold %d dirty regions, want %d", cells, res.Dirty)
			}
		})
	}
}

// logImage builds a version-2 image of nr regions whose dirty regions are
// those for which dirty returns true, in size bytes (0: the kernel's
// buf_size at 512-byte blocks).
func logImage(nr uint64, size int, dirty func(uint64) bool) []byte {
	if size == 0 {
		bs, _ := header.BufSize(nr, 512)
		size = int(bs)
	}
	b := make([]byte, size)
	header.Header{Magic: header.Magic, Version: 2, NrRegions: nr}.Encode(b)
	for i := uint64(0); i < nr; i++ {
		if !dirty(i) {
			b[1024+i/8] |= 1 << (i % 8)
		}
	}
	return b
}

// model is the bit-by-bit reading of an image Read must agree with.
func model(b []byte, nr uint64) (dirty uint64, ranges []inspect.Range) {
	for i := uint64(0); i < nr; i++ {
		if b[1024+i/8]&(1<<(i%8)) != 0 {
			continue
		}
		dirty++
		if n := len(ranges); n > 0 && ranges[n-1].Last == i-1 {
			ranges[n-1].Last = i
		} else {
			ranges = append(ranges, inspect.Range{First: i, Last: i})
		}
	}
	return dirty, ranges
}

// Ensure that Read agrees with a bit-by-bit model on random images of
// every shape: region counts around word boundaries, chunks of one word
// up, sparse and dense dirt, heat-map cells of 1 to 2^k regions.
func TestReadModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for iter := range 300 {
		nr := []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 4095, 4096, 4097, 70000}[iter%13] + uint64(rng.IntN(3))
		density := []float64{0, 0.001, 0.1, 0.5, 0.9, 1}[rng.IntN(6)]
		runny := rng.IntN(2) == 0
		last := false
		img := logImage(nr, 0, func(uint64) bool {
			if runny && rng.Float64() < 0.9 {
				return last
			}
			last = rng.Float64() < density
			return last
		})
		opts := inspect.Options{Chunk: 8 * (1 + rng.IntN(40)), MaxCells: 1 + rng.IntN(200)}
		res, err := inspect.Read(bytes.NewReader(img), int64(len(img)), opts)
		if err != nil {
			t.Fatal(err)
		}
		dirty, ranges := model(img, nr)
		if res.Dirty != dirty || res.Clean != nr-dirty {
			t.Fatalf("iter %d: %d regions: dirty %d clean %d, model dirty %d", iter, nr, res.Dirty, res.Clean, dirty)
		}
		if got, want := inspect.FormatRanges(res.Ranges), inspect.FormatRanges(ranges); got != want {
			t.Fatalf("iter %d: %d regions, chunk %d:\n got %s\nwant %s", iter, nr, opts.Chunk, got, want)
		}
		if res.RangeCount != uint64(len(ranges)) {
			t.Fatalf("iter %d: range count %d, want %d", iter, res.RangeCount, len(ranges))
		}
		if len(res.Cells) > opts.MaxCells {
			t.Fatalf("iter %d: %d cells, at most %d wanted", iter, len(res.Cells), opts.MaxCells)
		}
		for i, c := range res.Cells {
			var want uint32
			for r := uint64(i) * res.RegionsPerCell; r < min(nr, uint64(i+1)*res.RegionsPerCell); r++ {
				if img[1024+r/8]&(1<<(r%8)) == 0 {
					want++
				}
			}
			if c != want {
				t.Fatalf("iter %d: cell %d (%d regions each): %d dirty, want %d", iter, i, res.RegionsPerCell, c, want)
			}
		}
	}
}

// Ensure that MaxRanges bounds the ranges kept, not the ranges counted.
func TestMaxRanges(t *testing.T) {
	img := logImage(1000, 0, func(i uint64) bool { return i%10 == 0 })
	res, err := inspect.Read(bytes.NewReader(img), int64(len(img)), inspect.Options{MaxRanges: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := inspect.FormatRanges(res.Ranges); got != "0, 10, 20" {
		t.Errorf("ranges %q", got)
	}
	if res.RangeCount != 100 || res.RangesComplete() || res.Dirty != 100 {
		t.Errorf("count %d complete %v dirty %d", res.RangeCount, res.RangesComplete(), res.Dirty)
	}
}

func TestFormatRanges(t *testing.T) {
	rs := []inspect.Range{{0, 4}, {9, 9}, {100, 127}}
	if got, want := inspect.FormatRanges(rs), "0-4, 9, 100-127"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := inspect.FormatRanges(nil); got != "" {
		t.Errorf("no ranges: %q", got)
	}
	b, _ := json.Marshal(rs)
	if got, want := string(b), "[[0,4],[9,9],[100,127]]"; got != want {
		t.Errorf("json %s, want %s", got, want)
	}
}

// Ensure that a corrupt or foreign image is refused with the reason.
func TestReadRefusals(t *testing.T) {
	hdr := func(magic, version uint32, nr uint64, size int) []byte {
		b := make([]byte, size)
		header.Header{Magic: magic, Version: version, NrRegions: nr}.Encode(b)
		return b
	}
	for _, tc := range []struct {
		name  string
		img   []byte
		err   error
		words []string
	}{
		{"empty", nil, inspect.ErrTruncated, []string{"0 bytes, a disk log header is 16"}},
		{"short header", hdr(header.Magic, 2, 8, 16)[:10], inspect.ErrTruncated, []string{"10 bytes"}},
		{"zeroed device", make([]byte, 4096), inspect.ErrNotLog, []string{"not a dirty log: magic 0x00000000", "a fresh or foreign device"}},
		{"foreign", append([]byte("\x7fELF"), make([]byte, 2000)...), inspect.ErrNotLog, []string{"magic 0x464c457f"}},
		{"byte-swapped magic", hdr(0x7252694d, 2, 8, 1536), inspect.ErrNotLog, []string{"magic 0x7252694d"}},
		{"version 3", hdr(header.Magic, 3, 8, 1536), inspect.ErrVersion, []string{"version 3"}},
		{"version 0", hdr(header.Magic, 0, 8, 1536), inspect.ErrVersion, []string{"version 0"}},
		{"no bitmap area", hdr(header.Magic, 2, 8, 1000), inspect.ErrTruncated, []string{"1000 bytes, the bitmap starts at byte 1024"}},
		{"beyond the device", hdr(header.Magic, 2, 4097, 1536), inspect.ErrRegions, []string{"nr_regions 4097", "1536 bytes hold at most 4096 regions", "1537 bytes needed"}},
		{"beyond the kernel", hdr(header.Magic, 2, 1<<40, 1536), inspect.ErrRegions, []string{"2^32-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inspect.Read(bytes.NewReader(tc.img), int64(len(tc.img)), inspect.Options{})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}

// Ensure that nr_regions beyond the image still gives a result over the
// regions the image holds, with the error.
func TestReadClamped(t *testing.T) {
	img := logImage(4096, 1536, func(i uint64) bool { return i >= 4000 })
	binary.LittleEndian.PutUint64(img[8:], 5000)
	res, err := inspect.Read(bytes.NewReader(img), int64(len(img)), inspect.Options{})
	if !errors.Is(err, inspect.ErrRegions) || res == nil {
		t.Fatalf("res %v err %v", res, err)
	}
	if res.Regions != 4096 || res.Dirty != 96 || inspect.FormatRanges(res.Ranges) != "4000-4095" {
		t.Errorf("regions %d dirty %d ranges %s", res.Regions, res.Dirty, inspect.FormatRanges(res.Ranges))
	}
}

// shortReader claims a size it cannot deliver: a device that shrank.
type shortReader struct{ b []byte }

func (s shortReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(s.b)) {
		return 0, io.EOF
	}
	n := copy(p, s.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

type failReader struct{}

func (failReader) ReadAt(p []byte, off int64) (int, error) { return 0, errors.New("EIO") }

func TestReadShortAndFailing(t *testing.T) {
	img := logImage(4096, 0, func(uint64) bool { return false })
	_, err := inspect.Read(shortReader{img[:1100]}, int64(len(img)), inspect.Options{})
	if !errors.Is(err, inspect.ErrTruncated) || !strings.Contains(err.Error(), "read 76 of 512 bytes at offset 1024") {
		t.Errorf("short image: %v", err)
	}
	_, err = inspect.Read(failReader{}, 1536, inspect.Options{})
	if err == nil || !strings.Contains(err.Error(), "EIO") || errors.Is(err, inspect.ErrTruncated) {
		t.Errorf("failing reader: %v", err)
	}
}

// Ensure that progress is reported after every chunk, up to the total.
func TestProgress(t *testing.T) {
	img := logImage(100000, 0, func(i uint64) bool { return i%3 == 0 })
	var calls []uint64
	_, err := inspect.Read(bytes.NewReader(img), int64(len(img)), inspect.Options{
		Chunk:    4096,
		Progress: func(done, total uint64) { calls = append(calls, done); _ = total },
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (12500 + 4095) / 4096; len(calls) != want {
		t.Errorf("%d progress calls, want %d", len(calls), want)
	}
	if calls[len(calls)-1] != 100000 || calls[0] != 4096*8 {
		t.Errorf("progress %v", calls)
	}
}

func TestJSON(t *testing.T) {
	img := kernelImage(t, "inflight-write-128")
	res, err := inspect.Read(bytes.NewReader(img), int64(len(img)), inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res.Path = "x.img"
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"path": "x.img", "size": 1536.0, "magic": "0x4d695272", "version": 2.0, "nr_regions": 128.0,
		"capacity": 4096.0, "regions": 128.0, "clean": 127.0, "dirty": 1.0, "dirty_fraction": 1.0 / 128,
		"dirty_range_count": 1.0, "dirty_ranges_complete": true, "dirty_ranges_text": "5",
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if fmt.Sprint(got["dirty_ranges"]) != "[[5 5]]" {
		t.Errorf("dirty_ranges = %v", got["dirty_ranges"])
	}
}
