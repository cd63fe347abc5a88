package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	logimage "github.com/dlog-dev/dlog/internal/inspect"
)

const helpInspect = `NAME
    dlogd inspect - read a disk log image

SYNOPSIS
    dlogd inspect DEVICE|FILE [--json] [--png FILE] [--max-ranges N]

DESCRIPTION
    Reads the dirty log that the kernel's "disk" log, or a clustered-disk
    log of dlogd, keeps on its log device, and shows the header (magic,
    version, nr_regions), how many regions are clean and how many dirty,
    and the dirty regions as ranges of region numbers, first-last
    ("0-4, 9-9, 100-127": region 9 alone is "9-9"). A dirty region is one
    the mirror will resynchronise when it is next activated: its bit in
    the bitmap at byte 1024 is clear.

    DEVICE is named as in a mirror table: major:minor (253:2), a block
    device path (/dev/vg/lv_mlog), or a regular file holding an image. It
    is opened read-only, with O_DIRECT where the filesystem allows it so
    that the bits shown are the device's and not a page cache's; inspect
    never writes. The log may be in use: what is shown is then a snapshot
    that the next flush changes.

    The region count is the header's nr_regions; bits past it are not
    regions. A header that is not a disk log's is refused with the reason:
    a wrong magic (a fresh device, or something else), a version other
    than 1 or 2, an nr_regions the device cannot hold, an image shorter
    than its header. A device of 0 bytes is named as such (a loop device
    with no file attached, a logical volume not activated). Logs of more
    than 2^26 regions are read in chunks with a percentage on standard
    error.

OPTIONS
    --json
        Print one JSON object instead of the text: path, size, magic,
        version, nr_regions, capacity (the regions the device can hold),
        regions, clean, dirty, dirty_fraction, dirty_range_count,
        dirty_ranges_complete, dirty_ranges ([[first, last], ...]) and
        dirty_ranges_text.

    --png FILE
        Also write a heat map of the dirty regions to FILE, a PNG: one cell
        per group of regions (a power of two, at most 512 x 512 cells),
        green when clean, yellow to red by the share of dirty regions in
        it, grey past the last region; the title gives the regions per
        cell and the dirty fraction, and a legend is drawn in the picture.
        Where it was written is confirmed (on standard error with --json).

    --max-ranges N
        Show at most N dirty ranges (default 1000; 0 shows them all). The
        counts always cover the whole log.

EXIT STATUS
    0 the log was read, 1 it was refused or could not be read, 2 bad usage.

EXAMPLES
    dlogd inspect 253:2
    dlogd inspect --json /dev/vg/lv_mlog | jq .dirty
    dlogd inspect log.img --png heat.png
`

// progressOver is the region count above which inspect shows progress.
const progressOver = 1 << 26

func inspect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dlogd inspect", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	pngPath := fs.String("png", "", "")
	maxRanges := fs.Int("max-ranges", 1000, "")
	usage := func(format string, a ...any) int {
		return usageError(stderr, "dlogd inspect", format, a...)
	}
	pos, code, ok := parseInterleaved(fs, args, helpInspect, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(pos) == 0:
		return usage("missing the log DEVICE or FILE to read")
	case len(pos) > 1:
		return usage("want one DEVICE or FILE, got %d arguments", len(pos))
	}
	if *maxRanges < 0 {
		return usage("--max-ranges %d: want 0 or more", *maxRanges)
	}
	arg := pos[0]

	dev, err := logimage.Open(arg)
	if err != nil {
		fmt.Fprintf(stderr, "dlogd inspect: %v\n", err)
		return 1
	}
	defer dev.Close()
	if dev.Size == 0 {
		fmt.Fprintf(stderr, "dlogd inspect: %s: the %s is empty (0 bytes): a loop device with no file attached, a logical volume that is not active, or an empty file; nothing to read\n", arg, dev.Kind)
		return 1
	}
	p := newProgress(stderr)
	res, err := logimage.Read(dev, dev.Size, logimage.Options{MaxRanges: *maxRanges, Progress: p.update})
	p.done()
	if err != nil {
		fmt.Fprintf(stderr, "dlogd inspect: %s: %v\n", arg, err)
		return 1
	}
	res.Path = arg

	var written string
	if *pngPath != "" {
		hm := logimage.RenderHeatMap(res, arg)
		if err := hm.WriteFile(*pngPath); err != nil {
			fmt.Fprintf(stderr, "dlogd inspect: heat map: %v\n", err)
			return 1
		}
		b := hm.RGBA.Bounds()
		written = fmt.Sprintf("heat map written to %s (%dx%d PNG, %s)\n", *pngPath, b.Dx(), b.Dy(), perCell(res.RegionsPerCell))
	}
	if *asJSON {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "dlogd inspect: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", b)
		// stdout is the JSON alone: the confirmation goes to stderr.
		fmt.Fprint(stderr, written)
		return 0
	}
	printResult(stdout, res, dev)
	fmt.Fprint(stdout, written)
	return 0
}

func printResult(w io.Writer, res *logimage.Result, dev *logimage.Device) {
	direct := "O_DIRECT"
	if !dev.Direct {
		direct = "buffered"
	}
	line := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%-15s%s\n", label+":", fmt.Sprintf(format, a...))
	}
	line("path", "%s (%s, %d bytes, read %s)", res.Path, dev.Kind, res.Size, direct)
	line("magic", "%#08x (\"MiRr\", a disk log)", res.Header.Magic)
	if res.Header.Version == 1 {
		line("version", "1 (the kernel upgrades it to 2 at the next resume)")
	} else {
		line("version", "%d", res.Header.Version)
	}
	line("nr_regions", "%d (the device holds up to %d)", res.Header.NrRegions, res.Capacity)
	line("clean regions", "%d", res.Clean)
	line("dirty regions", "%d (%.2f%%)", res.Dirty, 100*res.DirtyFraction())
	switch {
	case res.RangeCount == 0:
		line("dirty ranges", "none")
	case res.RangesComplete():
		line("dirty ranges", "%s", firstLast(res.Ranges))
	default:
		line("dirty ranges", "%s, ... (%d of %d ranges shown; --max-ranges 0 shows all)",
			firstLast(res.Ranges), len(res.Ranges), res.RangeCount)
	}
}

// firstLast formats ranges as "0-4, 9-9": a lone region is a range too,
// so that "9-9" cannot be read as a count of 9.
func firstLast(rs []logimage.Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d-%d", r.First, r.Last)
	}
	return strings.Join(parts, ", ")
}

func perCell(n uint64) string {
	if n <= 1 {
		return "1 region per cell"
	}
	return fmt.Sprintf("%d regions per cell", n)
}

// progress prints the percentage read of a very large log: on one line
// rewritten in place on a terminal, else a line every 10%.
type progress struct {
	w     io.Writer
	tty   bool
	last  int
	shown bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, last: -1}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(done, total uint64) {
	if total <= progressOver {
		return
	}
	pct := int(done * 100 / total)
	step := pct
	if !p.tty {
		step = pct / 10
	}
	if step == p.last {
		return
	}
	p.last = step
	p.shown = true
	if p.tty {
		fmt.Fprintf(p.w, "\rdlogd inspect: reading %d regions: %3d%%", total, pct)
	} else {
		fmt.Fprintf(p.w, "dlogd inspect: reading %d regions: %3d%%\n", total, pct)
	}
}

func (p *progress) done() {
	if p.shown && p.tty {
		fmt.Fprintln(p.w)
	}
}
