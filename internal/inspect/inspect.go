package inspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/dlog-dev/dlog/header"
)

// Defaults of Options.
const (
	// DefaultChunk is the bitmap bytes read at a time: 8 Mi regions.
	DefaultChunk = 1 << 20
	// DefaultMaxCells bounds the heat map: 512 x 512 cells.
	DefaultMaxCells = 512 * 512
)

// Options tune Read. The zero value reads with the defaults and keeps
// every dirty range.
type Options struct {
	// MaxRanges is how many dirty ranges Result.Ranges keeps (0: all).
	// The rest are still counted in Result.RangeCount.
	MaxRanges int
	// MaxCells bounds the heat map (0: DefaultMaxCells); each cell covers
	// a power-of-two number of regions.
	MaxCells int
	// Chunk is the bitmap bytes read per ReadAt call, rounded down to a
	// multiple of 8 (0: DefaultChunk).
	Chunk int
	// Progress, when set, is called after every chunk with the regions
	// scanned so far and the total.
	Progress func(done, total uint64)
}

// Result is what Read found.
type Result struct {
	// Path names the image; Read leaves it empty for the caller to fill.
	Path string
	// Header is the decoded header, as stored.
	Header header.Header
	// Size is the image's size in bytes.
	Size int64
	// Capacity is how many regions the bitmap area of Size bytes holds:
	// (Size - 1024) * 8.
	Capacity uint64
	// Regions is the number of regions scanned: the header's nr_regions,
	// clamped to Capacity.
	Regions uint64
	// Clean and Dirty count the regions whose clean bit is set and clear.
	Clean, Dirty uint64
	// Ranges are the dirty regions as inclusive runs, in order, the first
	// Options.MaxRanges of RangeCount.
	Ranges     []Range
	RangeCount uint64
	// Cells[i] is the number of dirty regions among regions
	// [i*RegionsPerCell, (i+1)*RegionsPerCell) (the last cell may be
	// short): the heat map.
	Cells          []uint32
	RegionsPerCell uint64
}

// DirtyFraction is Dirty / Regions (0 for an empty log).
func (r *Result) DirtyFraction() float64 {
	if r.Regions == 0 {
		return 0
	}
	return float64(r.Dirty) / float64(r.Regions)
}

// RangesComplete reports whether Ranges holds every dirty range.
func (r *Result) RangesComplete() bool { return uint64(len(r.Ranges)) == r.RangeCount }

// CellRegions is the number of regions cell i covers.
func (r *Result) CellRegions(i int) uint64 {
	first := uint64(i) * r.RegionsPerCell
	return min(r.RegionsPerCell, r.Regions-first)
}

// MarshalJSON encodes r for `dlogd inspect --json`.
func (r *Result) MarshalJSON() ([]byte, error) {
	ranges := r.Ranges
	if ranges == nil {
		ranges = []Range{}
	}
	return json.Marshal(struct {
		Path           string  `json:"path"`
		Size           int64   `json:"size"`
		Magic          string  `json:"magic"`
		Version        uint32  `json:"version"`
		NrRegions      uint64  `json:"nr_regions"`
		Capacity       uint64  `json:"capacity"`
		Regions        uint64  `json:"regions"`
		Clean          uint64  `json:"clean"`
		Dirty          uint64  `json:"dirty"`
		DirtyFraction  float64 `json:"dirty_fraction"`
		RangeCount     uint64  `json:"dirty_range_count"`
		RangesComplete bool    `json:"dirty_ranges_complete"`
		Ranges         []Range `json:"dirty_ranges"`
		RangesText     string  `json:"dirty_ranges_text"`
	}{
		r.Path, r.Size, fmt.Sprintf("%#08x", r.Header.Magic), r.Header.Version, r.Header.NrRegions,
		r.Capacity, r.Regions, r.Clean, r.Dirty, r.DirtyFraction(),
		r.RangeCount, r.RangesComplete(), ranges, FormatRanges(r.Ranges),
	})
}

// Read inspects the disk log image of size bytes that r holds.
//
// It fails with ErrTruncated (wrapped, with the reason) for an image too
// short for the 16-byte header or the 1024-byte header area, or that ends
// early; ErrNotLog for a wrong magic; ErrVersion for a version other than
// 1 or 2. For a header whose nr_regions exceeds what the image holds (or
// 2^32-1), it returns ErrRegions together with a Result over the regions
// the image does hold, so that a caller may still look at them.
func Read(r io.ReaderAt, size int64, opts Options) (*Result, error) {
	if size < header.Size {
		return nil, fmt.Errorf("%w: %d bytes, a disk log header is %d", ErrTruncated, size, header.Size)
	}
	hb := make([]byte, header.Size)
	if err := readFull(r, hb, 0); err != nil {
		return nil, err
	}
	h, err := header.Decode(hb)
	if err != nil {
		return nil, fmt.Errorf("decode header: %w", err)
	}
	res := &Result{Header: h, Size: size}
	if h.Magic != header.Magic {
		return nil, fmt.Errorf("%w: magic %#08x, want %#08x (a fresh or foreign device)", ErrNotLog, h.Magic, header.Magic)
	}
	if h.Version != 1 && h.Version != header.Version {
		return nil, fmt.Errorf("%w: version %d (the kernel reads versions 1 and 2 and fails a log device with any other)", ErrVersion, h.Version)
	}
	if size < header.BitmapOffset {
		return nil, fmt.Errorf("%w: %d bytes, the bitmap starts at byte %d", ErrTruncated, size, header.BitmapOffset)
	}
	res.Capacity = uint64(size-header.BitmapOffset) * 8
	res.Regions = min(h.NrRegions, res.Capacity, header.MaxRegions)
	var regionsErr error
	switch {
	case h.NrRegions > header.MaxRegions:
		regionsErr = fmt.Errorf("%w: nr_regions %d exceeds the kernel's limit of 2^32-1 (a corrupt header)", ErrRegions, h.NrRegions)
	case h.NrRegions > res.Capacity:
		regionsErr = fmt.Errorf("%w: nr_regions %d, but %d bytes hold at most %d regions (a corrupt header, or a truncated image: %d bytes needed)",
			ErrRegions, h.NrRegions, size, res.Capacity, header.BitmapOffset+(h.NrRegions+7)/8)
	}
	if err := res.scan(r, opts); err != nil {
		return nil, err
	}
	return res, regionsErr
}

// readFull reads len(p) bytes at off, calling a short image truncated.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: read %d of %d bytes at offset %d", ErrTruncated, n, len(p), off)
	}
	return fmt.Errorf("read %d bytes at offset %d: %w", len(p), off, err)
}

// scan walks the clean bits of the res.Regions regions.
func (res *Result) scan(r io.ReaderAt, opts Options) error {
	maxCells := opts.MaxCells
	if maxCells <= 0 {
		maxCells = DefaultMaxCells
	}
	res.RegionsPerCell = 1
	for (res.Regions+res.RegionsPerCell-1)/res.RegionsPerCell > uint64(maxCells) {
		res.RegionsPerCell *= 2
	}
	res.Cells = make([]uint32, (res.Regions+res.RegionsPerCell-1)/res.RegionsPerCell)
	chunk := opts.Chunk
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	chunk = max(8, chunk&^7)

	need := (res.Regions + 7) / 8 // bitmap bytes holding the regions
	buf := make([]byte, min(uint64(chunk), (need+7)&^7))
	set := rangeSet{max: opts.MaxRanges}
	cellShift := uint(bits.TrailingZeros64(res.RegionsPerCell))
	for off := uint64(0); off < need; {
		n := min(uint64(len(buf)), need-off)
		b := buf[:(n+7)&^7]
		clear(b[n:]) // the last word may be partly beyond the regions
		if err := readFull(r, b[:n], int64(header.BitmapOffset+off)); err != nil {
			return err
		}
		base := off * 8
		for i := 0; i < len(b); i += 8 {
			w := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
				uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
			res.word(w, base+uint64(i)*8, cellShift, &set)
		}
		off += n
		if opts.Progress != nil {
			opts.Progress(min(off*8, res.Regions), res.Regions)
		}
	}
	if set.open {
		set.end(res.Regions - 1)
	}
	res.Ranges, res.RangeCount = set.kept, set.count
	return nil
}

// word accounts for the 64 clean bits w of regions [base, base+64).
func (res *Result) word(w, base uint64, cellShift uint, set *rangeSet) {
	valid := min(64, res.Regions-base)
	mask := ^uint64(0)
	if valid < 64 {
		mask = 1<<valid - 1
	}
	d := ^w & mask // dirty bits
	nd := uint64(bits.OnesCount64(d))
	res.Dirty += nd
	res.Clean += valid - nd

	// Runs: a fully dirty or fully clean word is the common case.
	switch {
	case d == mask && valid == 64:
		if !set.open {
			set.begin(base)
		}
	case d == 0:
		if set.open {
			set.end(base - 1)
		}
	default:
		for pos := uint64(0); pos < valid; {
			if set.open {
				c := (^d & mask) >> pos // clean bits from pos on
				if c == 0 {
					break
				}
				z := uint64(bits.TrailingZeros64(c))
				set.end(base + pos + z - 1)
				pos += z
			} else {
				dd := d >> pos
				if dd == 0 {
					break
				}
				z := uint64(bits.TrailingZeros64(dd))
				set.begin(base + pos + z)
				pos += z
			}
		}
	}

	// Heat map cells.
	if nd == 0 {
		return
	}
	if cellShift >= 6 {
		res.Cells[base>>cellShift] += uint32(nd)
		return
	}
	per := uint64(1) << cellShift
	cm := uint64(1)<<per - 1
	for k := uint64(0); k < valid; k += per {
		if c := bits.OnesCount64(d >> k & cm); c != 0 {
			res.Cells[(base+k)>>cellShift] += uint32(c)
		}
	}
}
