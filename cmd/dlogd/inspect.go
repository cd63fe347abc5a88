package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

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
    and the dirty regions as ranges ("0-4, 9, 100-127"). A dirty region is
    one the mirror will resynchronise when it is next activated: its bit
    in the bitmap at byte 1024 is clear.

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
    than its header. Logs of more than 2^26 regions are read in chunks
    with a percentage on standard error.

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
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "")
	pngPath := fs.String("png", "", "")
	maxRanges := fs.Int("max-ranges", 1000, "")
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "dlogd inspect: "+format+"\n\n%s", append(a, helpInspect)...)
		return exitUsage
	}
	// Flags may come before and after the device.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, helpInspect)
				return 0
			}
			return usage("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 {
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
	p := newProgress(stderr)
	res, err := logimage.Read(dev, dev.Size, logimage.Options{MaxRanges: *maxRanges, Progress: p.update})
	p.done()
	if err != nil {
		fmt.Fprintf(stderr, "dlogd inspect: %s: %v\n", arg, err)
		return 1
	}
	res.Path = arg

	if *pngPath != "" {
		hm := logimage.RenderHeatMap(res, arg)
		if err := hm.WriteFile(*pngPath); err != nil {
			fmt.Fprintf(stderr, "dlogd inspect: heat map: %v\n", err)
			return 1
		}
	}
	if *asJSON {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "dlogd inspect: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	printResult(stdout, res, dev)
	return 0
}

func printResult(w io.Writer, res *logimage.Result, dev *logimage.Device) {
	direct := "O_DIRECT"
	if !dev.Direct {
		direct = "buffered"
	}
	fmt.Fprintf(w, "path         %s (%s, %d bytes, read %s)\n", res.Path, dev.Kind, res.Size, direct)
	fmt.Fprintf(w, "magic        %#08x (\"MiRr\", a disk log)\n", res.Header.Magic)
	if res.Header.Version == 1 {
		fmt.Fprintf(w, "version      1 (the kernel upgrades it to 2 at the next resume)\n")
	} else {
		fmt.Fprintf(w, "version      %d\n", res.Header.Version)
	}
	fmt.Fprintf(w, "nr_regions   %d (the device holds up to %d)\n", res.Header.NrRegions, res.Capacity)
	fmt.Fprintf(w, "clean        %d\n", res.Clean)
	fmt.Fprintf(w, "dirty        %d (%.2f%%)\n", res.Dirty, 100*res.DirtyFraction())
	switch {
	case res.RangeCount == 0:
		fmt.Fprintf(w, "dirty ranges (none)\n")
	case res.RangesComplete():
		fmt.Fprintf(w, "dirty ranges %s\n", logimage.FormatRanges(res.Ranges))
	default:
		fmt.Fprintf(w, "dirty ranges %s, ... (%d of %d ranges shown; --max-ranges 0 shows all)\n",
			logimage.FormatRanges(res.Ranges), len(res.Ranges), res.RangeCount)
	}
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
